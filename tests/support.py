"""What tests do with an app of :func:`tests.apps.make_app`: run ceremonies, send requests,
look at the stores, and check answers (error bodies, tokens)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from webauthn.helpers import bytes_to_base64url

from flask_passkey.testing import PasskeyFlow, android_origin
from tests.apps import (
    BETA_ANDROID_FINGERPRINT,
    CONFIDENTIAL_SECRET,
    CUSTOM_DOMAIN,
    DB_CONNECTION,
    HOST,
    ORIGIN,
    REFRESH_GRANT,
    UNLISTED_ANDROID_FINGERPRINT,
    WEB_ORIGIN,
)

SPA_BODY: dict[str, Any] = {"client_id": "spa"}
#: The description of a sign-in with a passkey the server does not hold
#: (flask_passkey.core.ceremony).
UNKNOWN_CREDENTIAL = "Unknown credential."
#: RFC 7807 members the My Account endpoints add to the error body for Auth0's SDKs.
PROBLEM_DETAILS = {"type", "title", "status", "detail"}
#: Every user of a user store with its credentials, as :func:`store_snapshot` takes it.
Snapshot = list[tuple[Any, tuple[Any, ...]]]


# -- ceremonies and requests ---------------------------------------------------------------------


def passkey_flow(app: Flask, client_id: str = "spa", **kwargs: Any) -> PasskeyFlow:
    """A PasskeyFlow on ``app``'s custom domain with a fresh test client and authenticator."""
    kwargs.setdefault("host", CUSTOM_DOMAIN)
    if client_id == "confidential":
        kwargs.setdefault("client_secret", CONFIDENTIAL_SECRET)
    return PasskeyFlow(app.test_client(), client_id=client_id, **kwargs)


def post_challenge(
    client: FlaskClient,
    body: Any = SPA_BODY,
    *,
    host: str = CUSTOM_DOMAIN,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> Any:
    """POST /passkey/challenge with ``body`` as JSON (or ``data=`` as raw bytes) on ``host``.

    The Host goes in as a header: werkzeug's EnvironBuilder overwrites an ``HTTP_HOST`` put in
    ``environ_base`` with its own ``localhost``.
    """
    if "data" not in kwargs:
        kwargs["json"] = body
    return client.post("/passkey/challenge", headers={"Host": host, **(headers or {})}, **kwargs)


def refresh(client: FlaskClient, token: str, client_id: str = "refreshing", **body: Any) -> Any:
    """Redeem the refresh ``token`` of public client ``client_id`` at /oauth/token."""
    return client.post(
        "/oauth/token",
        json={"grant_type": REFRESH_GRANT, "client_id": client_id, "refresh_token": token, **body},
        headers=HOST,
    )


def common_lies(*, wrong_type: str) -> list[Any]:
    """Lies both a sign-up's attestation and a sign-in's assertion are refused for, as
    ``(lie, client_id, origin)`` parameters: the soft authenticator signs with ``lie`` (keyword
    arguments of its ``create`` or ``get``) for the client's ceremony on ``origin``.

    ``wrong_type`` is the other ceremony's clientDataJSON type.
    """
    return [
        pytest.param(
            {"challenge": bytes_to_base64url(os.urandom(32))}, "spa", ORIGIN, id="wrong challenge"
        ),
        pytest.param({}, "spa", "https://evil.example", id="wrong origin"),
        pytest.param({}, "confidential", WEB_ORIGIN, id="web origin of another client"),
        pytest.param({"user_present": False}, "spa", ORIGIN, id="user not present"),
        pytest.param({"client_data_type": wrong_type}, "spa", ORIGIN, id="wrong type"),
        pytest.param(
            {}, "native", android_origin(UNLISTED_ANDROID_FINGERPRINT), id="unlisted android app"
        ),
        pytest.param(
            {},
            "native",
            android_origin(BETA_ANDROID_FINGERPRINT),
            id="android app of another client",
        ),
    ]


# -- the stores ----------------------------------------------------------------------------------


def new_email(prefix: str = "user") -> str:
    """An email no other test uses, for tests sharing one app (and so one user store)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def find_user(app: Flask, email: str, connection: str = DB_CONNECTION) -> Any:
    """The stored user with ``email`` (lower-cased) in ``connection``, or None."""
    return app.extensions["passkey"].users.find_user(
        connection=connection, kind="email", value=email.lower()
    )


def store_snapshot(app: Flask) -> Snapshot:
    """Every user of the app's user store with its credentials (counters, last use, backup)."""
    users = app.extensions["passkey"].users
    return [(user, tuple(users.list_credentials(user.id))) for user in users.list_users()]


# -- answers -------------------------------------------------------------------------------------


def assert_oauth_error(response: Any, status: int, error: str) -> None:
    """``response`` is ``status`` with the JSON error body of the spec carrying ``error``."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert_error_body(body, status)
    assert body["error"] == error, body


def assert_error_body(body: Any, status: int) -> None:
    """The spec's error body with its request id, optionally with consistent RFC 7807 members
    (My Account API)."""
    assert {"error", "error_description", "request_id"} <= set(body), body
    assert all(isinstance(body[k], str) for k in ("error", "error_description", "request_id"))
    extra = set(body) - {"error", "error_description", "request_id"}
    if body["error_description"] == UNKNOWN_CREDENTIAL:  # the token endpoint's one extra member
        assert extra == {"unknown_credential_id"} and body["unknown_credential_id"], body
        return
    assert extra in (set(), PROBLEM_DETAILS), body
    if extra:
        assert body["status"] == status and body["detail"] == body["error_description"], body


def stable_error(response: Any) -> dict[str, Any]:
    """The response's error body without its ``request_id`` (new on every request)."""
    return {k: v for k, v in response.get_json().items() if k != "request_id"}


def verify_jwt(
    client: FlaskClient,
    token: str,
    *,
    audience: str,
    host: str = CUSTOM_DOMAIN,
) -> dict[str, Any]:
    """Check ``token`` with PyJWT against GET /.well-known/jwks.json of ``host``.

    Verifies the RS256 signature with the published key named by the token's ``kid``, ``iss``
    (``https://<host>/``), ``aud``, ``exp`` and ``iat``; returns the claims.
    """
    response = client.get("/.well-known/jwks.json", headers={"Host": host})
    assert response.status_code == 200, response.get_data(as_text=True)
    keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(response.get_json()).keys}
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] in keys, f"kid {header['kid']!r} is not in the JWKS"
    claims: dict[str, Any] = jwt.decode(
        token,
        keys[header["kid"]].key,
        algorithms=["RS256"],
        audience=audience,
        issuer=f"https://{host}/",
        options={"require": ["iss", "sub", "aud", "iat", "exp"]},
    )
    return claims
