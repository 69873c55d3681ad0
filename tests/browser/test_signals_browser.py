"""The WebAuthn Signal API in the demo, in Chromium: the sign-in page signals a passkey the
server does not know, the account page the passkeys it accepts and the user's details; and the
account page names passkeys after their provider (PASSKEY_AUTHENTICATOR_NAMES_FILE).

A script injected before the demo's own records each signal call (then makes it), so a test
sees what the page said; Chromium's virtual authenticator shows what the browser did with it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from webauthn.helpers import bytes_to_base64url

from tests.support import new_email

from .conftest import (
    NO_AUTOFILL,
    RECORD_SIGNALS,
    Page,
    ServerFactory,
)

pytestmark = pytest.mark.browser

#: The AAGUID Chromium's virtual authenticator reports.
VIRTUAL_AAGUID = "01020304-0506-0708-0102-030405060708"
ICON_LIGHT = "data:image/svg+xml;base64," + base64.b64encode(b"<svg id='light'/>").decode()
ICON_DARK = (
    "data:image/svg+xml;base64,"
    + base64.b64encode(b"<svg xmlns='http://www.w3.org/2000/svg'/>").decode()
)


def signals(page: Page, name: str) -> list[dict[str, Any]]:
    calls = page.driver.execute_script("return window.__signals || []")
    return [options for called, options in calls if called == name]


@pytest.fixture
def signal_page(page: Page) -> Page:
    """The ``page`` fixture, recording every WebAuthn signal call in ``window.__signals``."""
    page.inject(RECORD_SIGNALS)
    return page


def test_chromium_has_the_signal_api(signal_page: Page) -> None:
    signal_page.open("/")
    assert signal_page.driver.execute_script(
        "return ['signalUnknownCredential', 'signalAllAcceptedCredentials',"
        " 'signalCurrentUserDetails'].every((n) => typeof PublicKeyCredential[n] === 'function')"
    )


def test_a_passkey_the_server_does_not_know_is_signalled_unknown(signal_page: Page) -> None:
    page = signal_page
    page.sign_up(new_email("gone"))
    page.wait_for_path("/account")
    sub = page.text("claim-sub")
    page.sign_out()
    (credential,) = page.server.users.list_credentials(sub)
    assert page.server.users.delete_credential(user_id=sub, credential_id=credential.id)

    page.find("signin-button").click()
    page.wait_for_message()

    page.wait(lambda d: signals(page, "signalUnknownCredential"))
    assert signals(page, "signalUnknownCredential") == [
        {"rpId": "localhost", "credentialId": bytes_to_base64url(credential.id)}
    ]
    page.wait(lambda d: not d.get_credentials(), timeout=5)  # the virtual authenticator drops it


def test_the_account_page_signals_the_accepted_passkeys_and_the_user(signal_page: Page) -> None:
    page = signal_page
    email = new_email("ann")
    page.sign_up(email, "Ann Example")
    page.wait_for_path("/account")
    user = page.server.find_user(email)
    (credential,) = page.server.users.list_credentials(user.id)

    page.wait(lambda d: signals(page, "signalCurrentUserDetails"))
    user_id = bytes_to_base64url(user.user_handle)
    assert signals(page, "signalAllAcceptedCredentials") == [
        {
            "rpId": "localhost",
            "userId": user_id,
            "allAcceptedCredentialIds": [bytes_to_base64url(credential.id)],
        }
    ]
    assert signals(page, "signalCurrentUserDetails") == [
        {"rpId": "localhost", "userId": user_id, "name": email, "displayName": "Ann Example"}
    ]
    assert len(page.driver.get_credentials()) == 1  # the passkey it accepts stays


def test_the_account_page_names_the_passkey_after_its_provider_with_its_icon(
    browser: Any, demo_server_factory: ServerFactory, tmp_path: Path
) -> None:
    names = tmp_path / "aaguid.json"
    names.write_text(
        json.dumps(
            {
                VIRTUAL_AAGUID: {
                    "name": "Test Vault",
                    "icon_light": ICON_LIGHT,
                    "icon_dark": ICON_DARK,
                }
            }
        )
    )
    server = demo_server_factory(PASSKEY_AUTHENTICATOR_NAMES_FILE=str(names))
    page = Page(browser, server)
    page.add_authenticator()
    page.inject(NO_AUTOFILL)
    try:
        page.sign_up(new_email("named"))
        page.wait_for_path("/account")

        [passkey] = page.driver.find_elements("css selector", "#passkeys .passkey")
        assert passkey.find_element("css selector", ".passkey-name").text == "Test Vault"
        icon = passkey.find_element("css selector", ".provider-icon img")
        assert icon.get_attribute("src") == ICON_LIGHT
        dark = passkey.find_element("css selector", ".provider-icon source")
        assert dark.get_attribute("srcset") == ICON_DARK
        assert dark.get_attribute("media") == "(prefers-color-scheme: dark)"
    finally:
        page.cleanup()


def test_without_a_known_provider_the_passkey_is_called_passkey(signal_page: Page) -> None:
    signal_page.sign_up(new_email("plain"))  # the demo's own names file lacks the virtual one
    signal_page.wait_for_path("/account")
    [passkey] = signal_page.driver.find_elements("css selector", "#passkeys .passkey")
    assert passkey.find_element("css selector", ".passkey-name").text == "Passkey"
    assert not passkey.find_elements("css selector", ".provider-icon")
