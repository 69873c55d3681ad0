"""Helpers the browser tests share: driving Chromium's WebAuthn virtual authenticator."""

from __future__ import annotations

from typing import Any


def add_virtual_authenticator(driver: Any, *, user_verified: bool = True) -> None:
    """Give ``driver`` a platform (internal, CTAP2) authenticator that holds resident keys."""
    from selenium.webdriver.common.virtual_authenticator import VirtualAuthenticatorOptions

    driver.add_virtual_authenticator(
        VirtualAuthenticatorOptions(
            protocol=VirtualAuthenticatorOptions.Protocol.CTAP2,
            transport=VirtualAuthenticatorOptions.Transport.INTERNAL,
            has_resident_key=True,
            has_user_verification=True,
            is_user_verified=user_verified,
        )
    )
