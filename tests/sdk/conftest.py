"""Auth0's own SDKs as test clients of a real flask-passkey server.

The server is the app of ``tests.apps.make_app`` served over HTTPS by werkzeug in a
thread, on a free port of ``localhost``, with a certificate from a throwaway CA (trustme). The
tenant's custom domain is ``localhost``, so the SDK's ``domain`` is ``localhost:<port>``, the
issuer ``https://localhost:<port>/`` and passkeys are made for the origin
``https://localhost:<port>`` with RP ID ``localhost``.

auth0-server-python builds every URL as ``https://{domain}...`` and talks through httpx without
exposing its TLS settings (its ``ssl_context`` is only for mTLS), so the SDK is pointed at the
CA the way httpx reads it from the environment: ``SSL_CERT_FILE``.

Passkey ceremonies use ``flask_passkey.testing.SoftAuthenticator`` (real keys and signatures)
in the browser's place: the SDK hands over the options, the authenticator answers them, the
SDK redeems the answer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from flask import Flask

from flask_passkey.core.audiences import MY_ACCOUNT_SCOPES
from flask_passkey.models import REFRESH_TOKEN_GRANT, WEBAUTHN_GRANT
from tests.apps import DB_CONNECTION, make_app, tenant_data
from tests.servers import ServerThreads, server_tls

with warnings.catch_warnings():
    # The SDK's models and its Authlib warn of deprecated pydantic and httpx use on import
    # (Authlib's own "always" filter, set as it is imported, must come first to be overridden).
    import authlib.deprecate  # noqa: F401

    warnings.simplefilter("ignore", DeprecationWarning)
    from auth0_server_python.auth_server import MyAccountClient, ServerClient
    from auth0_server_python.auth_types import PasskeyAuthResponse
    from auth0_server_python.store import StateStore

SDK_CLIENT_ID = "sdk-web"
SDK_CLIENT_SECRET = "sdk-client-s3cret-for-tests"
#: The secret auth0-server-python encrypts its own cookies with (unused by a memory store).
SDK_SESSION_SECRET = "sdk-session-secret-for-tests-0123456789abcdef"


def sdk_tenant(*, my_account_audience: str | None = None) -> dict[str, Any]:
    """tenant_data() on the custom domain ``localhost``, plus the confidential regular web
    app the server SDKs are (Auth0's docs: "This application must be a Regular Web Application").
    It may start challenges without its secret (``challenge_without_secret``): @auth0/auth0-auth-js
    sends none there. It may name an organization, by id or (the tenant allows it) by name.

    With ``my_account_audience``, the app's refresh-token policies (Auth0's Multi-Resource
    Refresh Token) let a refresh ask for a My Account token.
    """
    tenant = tenant_data()
    tenant["custom_domains"] = ["localhost"]
    tenant["allow_organization_name_in_authentication_api"] = True
    client: dict[str, Any] = {
        "client_id": SDK_CLIENT_ID,
        "app_type": "regular_web",
        "client_secret": SDK_CLIENT_SECRET,
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": [WEBAUTHN_GRANT, REFRESH_TOKEN_GRANT],
        "connections": [DB_CONNECTION],
        "challenge_without_secret": True,
        "organization_usage": "allow",
    }
    if my_account_audience is not None:
        client["refresh_token"] = {
            "policies": [{"audience": my_account_audience, "scope": list(MY_ACCOUNT_SCOPES)}]
        }
    tenant["clients"].append(client)
    return tenant


@dataclass
class SdkServer:
    """A running flask-passkey server as an Auth0 SDK sees it."""

    app: Flask
    port: int

    @property
    def domain(self) -> str:
        """What the SDKs take as ``domain``: the custom domain with the port."""
        return f"localhost:{self.port}"

    @property
    def origin(self) -> str:
        """The web origin passkeys are made and used on."""
        return f"https://{self.domain}"

    @property
    def my_account_audience(self) -> str:
        return f"https://{self.domain}/me/"


ServerFactory = Callable[..., SdkServer]


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    """A throwaway CA, and its certificate as a PEM file for ``SSL_CERT_FILE``."""
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


@pytest.fixture(autouse=True)
def trust_test_ca(tls_ca: tuple[trustme.CA, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make httpx (the SDK's HTTP client) trust the test CA, and only it."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_ca[1]))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.fixture(scope="session")
def sdk_server_factory(tls_ca: tuple[trustme.CA, Path]) -> Iterator[ServerFactory]:
    """Start servers over HTTPS on free ports; ``start(my_account_refresh=True)`` gives the
    SDK's app a refresh-token policy for the My Account API of that server's domain;
    other keyword arguments become PASSKEY_* config."""
    context = server_tls(tls_ca[0], "localhost")
    threads = ServerThreads()

    def start(*, my_account_refresh: bool = False, **config: Any) -> SdkServer:
        # Bind first (port 0: the OS picks), then build the app for the port it got.
        server = threads.bind("localhost", ssl_context=context)
        audience = f"https://localhost:{server.port}/me/" if my_account_refresh else None
        app = make_app(tenant=sdk_tenant(my_account_audience=audience), **config)
        threads.serve(server, app, name=f"sdk:{server.port}")
        return SdkServer(app=app, port=server.port)

    yield start
    threads.stop_all()


@pytest.fixture(scope="session")
def sdk_server(sdk_server_factory: ServerFactory) -> SdkServer:
    """One server for the tests that need no special tenant (each signs up its own user)."""
    return sdk_server_factory()


class MemoryStateStore(StateStore):
    """The session store a web app gives auth0-server-python (it ships none): here, one
    browser's session kept in memory, as the SDK hands it over."""

    def __init__(self) -> None:
        super().__init__({"secret": SDK_SESSION_SECRET})
        self.sessions: dict[str, Any] = {}

    async def set(
        self,
        identifier: str,
        state: Any,
        remove_if_expires: bool = False,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.sessions[identifier] = state

    async def get(self, identifier: str, options: dict[str, Any] | None = None) -> Any:
        return self.sessions.get(identifier)

    async def delete(self, identifier: str, options: dict[str, Any] | None = None) -> None:
        self.sessions.pop(identifier, None)


def server_client(server: SdkServer) -> ServerClient[Any]:
    """auth0-server-python configured for ``server`` as a regular web app, with a new (empty)
    session: one per browser."""
    return ServerClient(
        domain=server.domain,
        client_id=SDK_CLIENT_ID,
        client_secret=SDK_CLIENT_SECRET,
        secret=SDK_SESSION_SECRET,
        state_store=MemoryStateStore(),
    )


def my_account_client(server: SdkServer) -> MyAccountClient:
    """auth0-server-python's My Account API client for ``server``."""
    return MyAccountClient(domain=server.domain)


def browser_credential(credential: dict[str, Any]) -> PasskeyAuthResponse:
    """A ``PublicKeyCredential.toJSON()`` (here the soft authenticator's) as the SDK takes it.

    The SDK models ``response`` as ``dict[str, str]``, so the browser's non-string members
    (``transports``, a list; ``publicKeyAlgorithm``, a number) must be dropped first, as an
    app using the SDK has to: the server needs neither.
    """
    response = {k: v for k, v in credential["response"].items() if isinstance(v, str)}
    return PasskeyAuthResponse.model_validate({**credential, "response": response})
