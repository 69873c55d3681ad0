"""The test tenant and the one app builder, ``make_app``, with the names tests share.

A plain module, not a conftest: test modules, fixtures of any scope, the plugins' tests and
subprocesses (with the repository on ``PYTHONPATH``) import from it alike.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask

from flask_passkey import Passkey
from flask_passkey.models import REFRESH_TOKEN_GRANT, WEBAUTHN_GRANT

CUSTOM_DOMAIN = "login.acme.test"
DEFAULT_DOMAIN = "acme.auth0.com"
#: A domain tests add to the tenant's custom domains.
OTHER_DOMAIN = "id.acme.test"
#: The web origin passkeys are made for on the custom domain, and the issuer of its tokens.
ORIGIN = f"https://{CUSTOM_DOMAIN}"
ISSUER = f"{ORIGIN}/"
#: The default audience of access tokens, and the My Account API's.
USERINFO = f"{ORIGIN}/userinfo"
ME = f"{ORIGIN}/me/"
#: Headers that send a test client's request to the custom domain.
HOST = {"Host": CUSTOM_DOMAIN}
FORM = "application/x-www-form-urlencoded"
DB_CONNECTION = "Username-Password-Authentication"
#: The ``spa`` client's own web origin, on another host than the custom domain.
WEB_ORIGIN = "https://app.acme.test"
CONFIDENTIAL_SECRET = "s3cret-value-for-tests"
BASIC_SECRET = "basic-s3cret-for-tests"
API_AUDIENCE = "https://api.acme.test/"
#: A scope asking for a refresh token.
OFFLINE = "openid profile email offline_access"
REFRESH_GRANT = REFRESH_TOKEN_GRANT
ANDROID_PACKAGE = "com.acme.app"
#: The signing-certificate fingerprint of the ``native`` client's Android app.
ANDROID_FINGERPRINT = ":".join(f"{i:02X}" for i in range(32))
#: The fingerprint of another client's Android app (``native-beta``).
BETA_ANDROID_FINGERPRINT = ":".join(f"{i:02X}" for i in range(100, 132))
#: A fingerprint no client lists.
UNLISTED_ANDROID_FINGERPRINT = ":".join(f"{255 - i:02X}" for i in range(32))
IOS_TEAM_ID = "ABCDE12345"
IOS_BUNDLE_ID = "com.acme.app"


def tenant_data() -> dict[str, Any]:
    """A new copy of the test tenant: one client per interesting configuration."""
    connections = [DB_CONNECTION, "partners"]
    with_refresh = [WEBAUTHN_GRANT, REFRESH_GRANT]
    return {
        "default_domain": DEFAULT_DOMAIN,
        "custom_domains": [CUSTOM_DOMAIN],
        "rp_name": "Acme",
        "default_connection": DB_CONNECTION,
        "connections": [
            {"name": DB_CONNECTION, "required_identifiers": ["email"]},
            {"name": "partners", "required_identifiers": ["username"]},
            {"name": "no-passkeys", "passkeys_enabled": False},
            {"name": "elsewhere"},
        ],
        "clients": [
            {
                "client_id": "spa",
                "connections": [*connections, "no-passkeys"],
                "web_origins": [WEB_ORIGIN],
            },
            {
                "client_id": "confidential",
                "app_type": "regular_web",
                "client_secret": CONFIDENTIAL_SECRET,
                "token_endpoint_auth_method": "client_secret_post",
                "connections": connections,
            },
            {"client_id": "third-party", "is_first_party": False, "connections": connections},
            {
                "client_id": "no-grant",
                "grant_types": ["authorization_code"],
                "connections": connections,
            },
            {"client_id": "legacy", "oidc_conformant": False, "connections": connections},
            {
                "client_id": "org-required",
                "organization_usage": "require",
                "connections": connections,
            },
            {"client_id": "org-allowed", "organization_usage": "allow", "connections": connections},
            {
                "client_id": "native",
                "app_type": "native",
                "connections": connections,
                "grant_types": with_refresh,
                "android_apps": [
                    {
                        "package_name": ANDROID_PACKAGE,
                        "sha256_cert_fingerprints": [ANDROID_FINGERPRINT],
                    }
                ],
                "ios_apps": [{"team_id": IOS_TEAM_ID, "bundle_id": IOS_BUNDLE_ID}],
            },
            {
                "client_id": "native-beta",
                "app_type": "native",
                "connections": connections,
                "android_apps": [
                    {
                        "package_name": "com.acme.beta",
                        "sha256_cert_fingerprints": [BETA_ANDROID_FINGERPRINT, ANDROID_FINGERPRINT],
                    }
                ],
                "ios_apps": [{"team_id": "ZYXWV98765", "bundle_id": "com.acme.beta"}],
            },
            {"client_id": "refreshing", "connections": connections, "grant_types": with_refresh},
            {"client_id": "refreshing-2", "connections": connections, "grant_types": with_refresh},
            {
                "client_id": "basic",
                "app_type": "regular_web",
                "client_secret": BASIC_SECRET,
                "token_endpoint_auth_method": "client_secret_basic",
                "connections": connections,
                "grant_types": with_refresh,
            },
        ],
        "organizations": [{"id": "org_acme", "name": "acme"}],
    }


def generate_rsa_pem() -> str:
    """A new 2048-bit RSA private key as PKCS#8 PEM text (slow: reuse it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@functools.cache
def shared_signing_key() -> str:
    """The one token-signing key of this process's apps (generating one per app is slow)."""
    return generate_rsa_pem()


class FakeClock:
    """A clock for ``make_app(clock=...)`` that only moves when told to."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_app(
    *,
    tenant: Mapping[str, Any] | None = None,
    clock: Callable[[], float] | None = None,
    host_config: Mapping[str, Any] | None = None,
    **config: Any,
) -> Flask:
    """A new app with flask-passkey over ``tenant`` (a copy; default :func:`tenant_data`).

    Keyword arguments become PASSKEY_* config (``plugins=[...]``, ``rate_limit="2 per hour"``);
    unless given, users live in memory (``database_url="memory://"``) and tokens are signed with
    :func:`shared_signing_key` (``signing_keys=[]`` makes the app generate and store its own).
    ``host_config`` is the host app's own configuration, set before flask-passkey reads it
    (``{"PASSKEY_TENANT": None}`` takes the tenant away). ``clock`` replaces ``time.time``.
    """
    config.setdefault("database_url", "memory://")
    config.setdefault("signing_keys", [shared_signing_key()])
    app = Flask(__name__)
    app.config.update(TESTING=True, PASSKEY_TENANT=copy.deepcopy(tenant or tenant_data()))
    app.config.update(host_config or {})
    app.config.update({f"PASSKEY_{key.upper()}": value for key, value in config.items()})
    if clock is None:
        Passkey(app)
    else:
        Passkey(app, clock=clock)
    return app
