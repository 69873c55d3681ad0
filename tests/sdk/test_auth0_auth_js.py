"""@auth0/auth0-auth-js (Auth0's authentication client for JavaScript runtimes) against a
running flask-passkey server, through Node.

Each SDK call is one run of ``node/auth_js.mjs``, with the pinned package of
``node/package-lock.json`` (installed with ``npm ci`` on first use into the git-ignored
``node/node_modules``). Node trusts the test CA through ``NODE_EXTRA_CA_CERTS``. Without Node or
npm these tests skip, saying so; under ``CI=true`` they fail instead.

The SDK asks for the passkey challenges without the client secret but exchanges the passkey
for tokens only as a confidential client (client_secret_post), so its passkey flows need the
per-client opt-in of the wire contract (api.md, validation step 4) that waives a *missing*
secret on the challenge endpoints: the SDK's app has ``challenge_without_secret`` on.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from flask_passkey.testing import SoftAuthenticator
from tests.apps import OFFLINE
from tests.node_projects import npm_installed
from tests.sdk.conftest import SDK_CLIENT_ID, SDK_CLIENT_SECRET, SdkServer
from tests.support import find_user, new_email

pytestmark = pytest.mark.sdk

NODE_PROJECT = Path(__file__).parent / "node"
SCRIPT = NODE_PROJECT / "auth_js.mjs"


class AuthJsError(Exception):
    """An error the SDK threw: its ``name``, ``code``, ``message`` and ``cause``."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('name')}: {error.get('message')} ({error.get('cause')})")
        self.error = error


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with the locked packages installed (``npm ci``) on first use."""
    return npm_installed(NODE_PROJECT, "@auth0/auth0-auth-js")


class AuthJs:
    """``new AuthClient({domain, clientId, clientSecret})`` for ``server``, one call per run."""

    def __init__(self, node: str, server: SdkServer) -> None:
        self.node = node
        self.client = {
            "domain": server.domain,
            "clientId": SDK_CLIENT_ID,
            "clientSecret": SDK_CLIENT_SECRET,
        }

    def __call__(self, command: str, **options: Any) -> Any:
        run = subprocess.run(
            [self.node, str(SCRIPT), command],
            input=json.dumps({"client": self.client, "options": options}),
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "NODE_EXTRA_CA_CERTS": os.environ["SSL_CERT_FILE"]},
        )
        assert run.stdout, run.stderr
        result = json.loads(run.stdout)
        if run.returncode:
            raise AuthJsError(result["error"])
        return result


def sign_up(sdk: AuthJs, server: SdkServer, passkey: SoftAuthenticator, email: str) -> Any:
    """Sign up through the SDK with a new passkey of ``passkey``; the token response."""
    challenge = sdk("register", email=email, name="Ann Example")
    credential = passkey.create(challenge["authnParamsPublicKey"], origin=server.origin)
    return sdk(
        "getTokenByPasskey",
        authSession=challenge["authSession"],
        credential=credential,
        scope=OFFLINE,
    )


def test_discovery_passes_openid_client_checks(node: str, sdk_server: SdkServer) -> None:
    # openid-client (under the SDK) refuses a document whose issuer is not the URL it asked.
    metadata = AuthJs(node, sdk_server)("metadata")

    assert metadata["issuer"] == f"{sdk_server.origin}/"
    assert metadata["token_endpoint"] == f"{sdk_server.origin}/oauth/token"


def test_sign_up_with_a_passkey(node: str, sdk_server: SdkServer) -> None:
    passkey, email = SoftAuthenticator(), new_email()

    tokens = sign_up(AuthJs(node, sdk_server), sdk_server, passkey, email)

    # The SDK (openid-client) checked the ID token's iss, aud, exp and iat.
    stored = find_user(sdk_server.app, email)
    assert stored is not None
    assert (tokens["claims"]["sub"], tokens["claims"]["email"]) == (stored.id, email)
    assert tokens["refreshToken"]


def test_login_with_the_passkey(node: str, sdk_server: SdkServer) -> None:
    sdk, passkey = AuthJs(node, sdk_server), SoftAuthenticator()
    signed_up = sign_up(sdk, sdk_server, passkey, new_email())

    challenge = sdk("challenge")
    assertion = passkey.get(challenge["authnParamsPublicKey"], origin=sdk_server.origin)
    tokens = sdk("getTokenByPasskey", authSession=challenge["authSession"], credential=assertion)

    assert tokens["claims"]["sub"] == signed_up["claims"]["sub"]


def test_refresh(node: str, sdk_server: SdkServer) -> None:
    sdk = AuthJs(node, sdk_server)
    signed_up = sign_up(sdk, sdk_server, SoftAuthenticator(), new_email())

    refreshed = sdk("getTokenByRefreshToken", refreshToken=signed_up["refreshToken"])

    assert refreshed["accessToken"] != signed_up["accessToken"]
    assert refreshed["claims"]["sub"] == signed_up["claims"]["sub"]
    assert refreshed["refreshToken"] not in (None, signed_up["refreshToken"])
