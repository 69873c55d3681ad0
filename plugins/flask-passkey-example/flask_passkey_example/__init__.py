"""An example flask-passkey plugin, shipped as its own distribution.

* A validation step: sign-ups (``POST /passkey/register``) whose email domain is on the
  ``PASSKEY_EXAMPLE_BLOCKED_DOMAINS`` list are refused with 403 ``access_denied``. The list is
  empty by default, so installing the plugin changes nothing until an app sets it.
* An event listener: with ``PASSKEY_EXAMPLE_AUDIT_LOG = True``, every event goes to the
  ``flask_passkey_example.audit`` logger as one line. Events never carry secrets, challenges
  or tokens, and this listener logs only their fixed fields.

Both keys are declared through ``passkey_config_defaults``, so flask-passkey's unknown-key
check accepts them (and fills in their defaults) wherever the plugin is installed.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable, Mapping
from typing import Any

from flask import current_app, has_app_context

from flask_passkey import (
    AccessDenied,
    ConfigurationError,
    PasskeyEvent,
    ValidationContext,
    hookimpl,
)

__all__ = [
    "AUDIT_LOG",
    "BLOCKED_DOMAINS",
    "BlockedEmailDomain",
    "ExamplePlugin",
    "audit_logger",
    "is_blocked",
    "plugin",
]

BLOCKED_DOMAINS = "PASSKEY_EXAMPLE_BLOCKED_DOMAINS"
AUDIT_LOG = "PASSKEY_EXAMPLE_AUDIT_LOG"

audit_logger = logging.getLogger("flask_passkey_example.audit")

_AUDITED_FIELDS = ("client_id", "user_id", "connection", "organization_id", "error")


class BlockedEmailDomain(AccessDenied):
    """A sign-up refused because of its email domain (403 ``access_denied``)."""

    default_description = "Sign-ups with this email domain are not allowed."


def normalise_domains(value: Any) -> frozenset[str]:
    """The configured blocklist as lower-case domains. Accepts a list/tuple/set of strings or a
    comma-separated string (handy from environment variables)."""
    if not value:
        return frozenset()
    items: Iterable[Any] = value.split(",") if isinstance(value, str) else value
    domains = set()
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{BLOCKED_DOMAINS} must hold domain names, not {item!r}.")
        domain = item.strip().lstrip("@").strip(".").lower()
        if domain:
            domains.add(domain)
    return frozenset(domains)


def is_blocked(email: str, blocked: Iterable[str]) -> bool:
    """Whether the email's domain is on the list or a subdomain of a listed domain."""
    domain = email.rpartition("@")[2].strip().rstrip(".").lower()
    return any(domain == entry or domain.endswith("." + entry) for entry in blocked)


class ExamplePlugin:
    """One instance serves every app: configuration is read from ``current_app`` per call."""

    @hookimpl
    def passkey_config_defaults(self) -> dict[str, Any]:
        return {BLOCKED_DOMAINS: [], AUDIT_LOG: False}

    @hookimpl
    def passkey_check_config(self, config: Mapping[str, Any]) -> None:
        try:
            normalise_domains(config[BLOCKED_DOMAINS])
        except TypeError as error:
            raise ConfigurationError(str(error)) from error

    # A wrapper runs around every implementation of the step: the built-in realm checks
    # (validation step 6) go first, and only a request they accept reaches the blocklist.
    @hookimpl(wrapper=True)
    def passkey_check_realm(self, context: ValidationContext) -> Generator[None, Any, Any]:
        result = yield
        if context.request.endpoint == "register":
            blocked = normalise_domains(current_app.config.get(BLOCKED_DOMAINS))
            email = (context.user_profile or {}).get("email")
            if email is not None and is_blocked(email, blocked):
                domain = email.rpartition("@")[2].lower()
                raise BlockedEmailDomain(
                    f"Sign-ups with email addresses at {domain} are not allowed."
                )
        return result

    @hookimpl
    def passkey_event(self, event: PasskeyEvent) -> None:
        if not (has_app_context() and current_app.config.get(AUDIT_LOG)):
            return
        fields = " ".join(
            f"{name}={value}"
            for name in _AUDITED_FIELDS
            if (value := getattr(event, name)) is not None
        )
        audit_logger.info(
            "passkey %s endpoint=%s ip=%s %s", event.name, event.endpoint, event.client_ip, fields
        )


#: The object the ``flask_passkey`` entry point names.
plugin = ExamplePlugin()
