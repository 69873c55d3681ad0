"""The WSGI apps gunicorn serves: the bare-Flask floor, flask-passkey on each backend, two
diagnostic apps that split the cost of a challenge between flask-limiter and flask-passkey, and
the hand-written reference endpoints the targets are ratios to (a naive py_webauthn challenge,
with and without Redis and flask-limiter; a naive token endpoint).

``gunicorn 'bench.apps:app_from_env()'`` builds the app named by ``BENCH_APP``: ``floor``,
``floor+limiter``, ``memory-nolimit``, ``memory+metrics`` (:data:`METRICS_APP`), a reference
app of :data:`NAIVE_APPS`, ``naive-token`` (:data:`NAIVE_TOKEN_APP`, its sessions and
credentials read from ``BENCH_NAIVE_TOKEN_FILE``), ``memory-pool`` (the memory store with
users, login sessions and refresh tokens made ahead, :data:`POOL_APP`), or a backend of
:func:`bench.common.passkey_config` (``memory``, ``sqlite``, ``postgres``, ``redis``), with
``BENCH_DATABASE`` as PostgreSQL database.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis
from flask import Blueprint, Flask, Response, jsonify, request
from flask_limiter import Limiter
from joserfc import jwt
from joserfc.jwk import RSAKey
from webauthn import generate_authentication_options, verify_authentication_response
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException

from flask_passkey import Passkey
from flask_passkey.models import WEBAUTHN_GRANT

from .common import (
    BENCH_DATABASE,
    CLIENT_ID,
    HOST,
    LOGIN_SCOPE,
    ORIGIN,
    RATE_LIMIT,
    REDIS_URL,
    passkey_config,
)

#: What the floor answers: the shape and size of a challenge response, always the same.
_FLOOR_ANSWER = {
    "auth_session": "p5VqAqQ7qG5wtg3l9zVQe1bO1P0b7Ykq0sYc1wFh2sQ",
    "authn_params_public_key": {
        "challenge": "qNQ2fI4dKxZVx2n2b7m0hT3cX9wqB0bS1nYtq5JmF2cA0c3f7bVxk5cR6n7sWq8z5Qe1A",
        "timeout": 60000,
        "rpId": "login.bench.test",
        "userVerification": "preferred",
    },
}


def _client_ip() -> str:
    return request.remote_addr or "unknown"


def _retry_after_only_on_429(response: Response) -> Response:
    """flask-limiter's header writer puts ``Retry-After`` on every response; flask-passkey
    keeps it for a 429, and so do the apps measured beside it."""
    if response.status_code != 429:
        response.headers.pop("Retry-After", None)
    return response


def limiter_like_passkey(app: Flask, storage_uri: str) -> Limiter:
    """flask-limiter set up on ``app`` the way flask-passkey sets up its own: the client IP as
    key, the fixed window, ``X-RateLimit-*`` headers on every response and ``Retry-After`` on a
    429 only. The caller puts :data:`~bench.common.RATE_LIMIT` (never reached) on its routes."""
    limiter = Limiter(
        _client_ip, storage_uri=storage_uri, headers_enabled=True, strategy="fixed-window"
    )
    # Registered before flask-limiter's header writer, so Flask runs it after the writer.
    app.after_request(_retry_after_only_on_429)
    limiter.init_app(app)
    return limiter


def floor_app(*, limited: bool = False) -> Flask:
    """Flask alone: parse the same JSON body, answer a constant JSON. ``limited``: behind
    flask-limiter configured as flask-passkey configures it (a blueprint limit, headers,
    limits' in-process storage), to measure what the limiter alone costs."""
    app = Flask("bench_floor")
    blueprint = Blueprint("floor", __name__)

    @blueprint.post("/passkey/challenge")
    def challenge() -> Response:
        if request.get_json(silent=True) is None:
            return jsonify(error="invalid_request")
        return jsonify(_FLOOR_ANSWER)

    if limited:
        limiter_like_passkey(app, "memory://").limit(RATE_LIMIT)(blueprint)
    app.register_blueprint(blueprint)
    return app


def passkey_app(
    backend: str, *, database: str = BENCH_DATABASE, config: Mapping[str, Any] | None = None
) -> Flask:
    """flask-passkey on ``backend`` (``memory-nolimit``: memory without limiter), with
    ``config`` on top of the benchmark's configuration."""
    app = Flask("bench_passkey")
    if backend == "memory-nolimit":
        app.config.update(passkey_config("memory"), PASSKEY_RATE_LIMIT_ENABLED=False)
    else:
        app.config.update(passkey_config(backend, database=database))
    app.config.update(config or {})
    Passkey(app)
    return app


#: The memory store, its users, login sessions and refresh tokens made before gunicorn forks its
#: workers (served with --preload; see bench.fixtures.memory_pool_app): BENCH_POOL_LOGINS login
#: bodies and BENCH_POOL_REFRESH refresh tokens, written with an access token to BENCH_POOL_FILE.
POOL_APP = "memory-pool"


#: The memory store with the Prometheus plugin (flask-passkey-prometheus) counting and timing
#: every request, in multiprocess mode as under any multi-worker gunicorn (bench.run gives this
#: server a PROMETHEUS_MULTIPROC_DIR): the plugin's cost is its difference to ``memory``.
METRICS_APP = "memory+metrics"
METRICS_PLUGIN = "flask_passkey_prometheus:plugin"


#: The reference challenge endpoints: BENCH_APP name -> (sessions in Redis, limiter storage).
NAIVE_APPS: dict[str, tuple[bool, str | None]] = {
    "naive": (False, None),
    "naive+limiter": (False, "memory://"),
    "naive+redis": (True, None),
    "naive+redis+limiter": (True, REDIS_URL),
}
#: The reference token endpoint (:func:`naive_token_app`).
NAIVE_TOKEN_APP = "naive-token"


def naive_app(*, redis_sessions: bool, limiter_storage: str | None) -> Flask:
    """A naive challenge endpoint: py_webauthn's ``generate_authentication_options``, the
    session in a dict (or one Redis ``SET`` with a TTL), and optionally flask-limiter on the
    route (:func:`limiter_like_passkey`).

    No validation, no client, no plugins: what a challenge costs at the least, with and
    without the storage and the limiter flask-passkey's targets are measured with.
    """
    app = Flask("bench_naive")
    sessions: dict[str, str] = {}
    store = redis.Redis.from_url(REDIS_URL) if redis_sessions else None

    def challenge() -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not body.get("client_id"):
            return jsonify(error="invalid_request")
        options = generate_authentication_options(rp_id=HOST)
        challenge = bytes_to_base64url(options.challenge)
        auth_session = bytes_to_base64url(os.urandom(32))
        if store is not None:
            store.set(f"naive:{auth_session}", challenge, ex=300)
        else:
            sessions[auth_session] = challenge
        return jsonify(
            auth_session=auth_session,
            authn_params_public_key={
                "challenge": challenge,
                "timeout": options.timeout,
                "rpId": options.rp_id,
                "userVerification": "preferred",
            },
        )

    if limiter_storage is not None:
        challenge = limiter_like_passkey(app, limiter_storage).limit(RATE_LIMIT)(challenge)
    app.post("/passkey/challenge")(challenge)
    return app


def naive_token_app(reference_file: Path) -> Flask:
    """A naive passkey login at ``POST /oauth/token``: the session's challenge and the
    credential (by ``rawId``) each a dict lookup, py_webauthn's
    ``verify_authentication_response``, an access token and an ID token signed RS256 with
    joserfc's ``jwt.encode``, and flask-limiter on the route with limits' in-process storage
    (:func:`limiter_like_passkey`).

    ``reference_file`` (written by :func:`bench.fixtures.naive_token_fixture`) holds the login
    sessions' challenges and the credentials' public keys and owners. A session is redeemed
    once; no sign count is kept (the benchmark's passkeys are synced: counter zero).
    """
    app = Flask("bench_naive_token")
    reference = json.loads(reference_file.read_text())
    challenges: dict[str, bytes] = {
        session: base64url_to_bytes(challenge)
        for session, challenge in reference["sessions"].items()
    }
    credentials: dict[str, dict[str, Any]] = reference["credentials"]
    public_keys = {raw_id: base64url_to_bytes(c["public_key"]) for raw_id, c in credentials.items()}
    key = RSAKey.generate_key(2048, auto_kid=True)
    issuer = f"{ORIGIN}/"

    def sign(typ: str, claims: dict[str, Any]) -> str:
        return jwt.encode({"typ": typ, "alg": "RS256", "kid": key.kid}, claims, key, ["RS256"])

    def refused(error: str) -> tuple[Response, int]:
        return jsonify(error=error, error_description="refused"), 400

    def token() -> Response | tuple[Response, int]:
        body = request.get_json(silent=True)
        if (
            not isinstance(body, dict)
            or body.get("grant_type") != WEBAUTHN_GRANT
            or body.get("client_id") != CLIENT_ID
            or not isinstance(body.get("auth_session"), str)
            or not isinstance(body.get("authn_response"), dict)
        ):
            return refused("invalid_request")
        assertion = body["authn_response"]
        raw_id = assertion.get("rawId")
        challenge = challenges.pop(body["auth_session"], None)
        owner = credentials.get(raw_id) if isinstance(raw_id, str) else None
        if challenge is None or owner is None:
            return refused("invalid_grant")
        try:
            verify_authentication_response(
                credential=assertion,
                expected_challenge=challenge,
                expected_rp_id=HOST,
                expected_origin=ORIGIN,
                credential_public_key=public_keys[raw_id],
                credential_current_sign_count=0,
                require_user_verification=True,
            )
        except WebAuthnException:
            return refused("invalid_grant")
        now = int(time.time())
        scope = body.get("scope") or LOGIN_SCOPE
        access_token = sign(
            "at+jwt",
            {
                "iss": issuer,
                "sub": owner["sub"],
                "iat": now,
                "aud": f"{issuer}userinfo",
                "exp": now + 86400,
                "client_id": CLIENT_ID,
                "azp": CLIENT_ID,
                "scope": scope,
                "jti": secrets.token_urlsafe(16),
            },
        )
        id_token = sign(
            "JWT",
            {
                "iss": issuer,
                "sub": owner["sub"],
                "aud": CLIENT_ID,
                "iat": now,
                "exp": now + 36000,
                "auth_time": now,
                "amr": ["pop"],
                "name": owner["name"],
                "email": owner["email"],
                "email_verified": False,
            },
        )
        response = jsonify(
            access_token=access_token,
            expires_in=86400,
            id_token=id_token,
            scope=scope,
            token_type="Bearer",
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response

    app.post("/oauth/token")(limiter_like_passkey(app, "memory://").limit(RATE_LIMIT)(token))
    return app


def app_from_env() -> Flask:
    name = os.environ["BENCH_APP"]
    if name in ("floor", "floor+limiter"):
        return floor_app(limited=name == "floor+limiter")
    if name in NAIVE_APPS:
        redis_sessions, limiter_storage = NAIVE_APPS[name]
        return naive_app(redis_sessions=redis_sessions, limiter_storage=limiter_storage)
    if name == NAIVE_TOKEN_APP:
        return naive_token_app(Path(os.environ["BENCH_NAIVE_TOKEN_FILE"]))
    if name == POOL_APP:
        from .fixtures import memory_pool_app  # bench.fixtures builds its apps with this module

        return memory_pool_app(
            Path(os.environ["BENCH_POOL_FILE"]),
            logins=int(os.environ["BENCH_POOL_LOGINS"]),
            refresh_tokens=int(os.environ["BENCH_POOL_REFRESH"]),
        )
    if name == METRICS_APP:
        return passkey_app("memory", config={"PASSKEY_PLUGINS": [METRICS_PLUGIN]})
    return passkey_app(name, database=os.environ.get("BENCH_DATABASE", BENCH_DATABASE))
