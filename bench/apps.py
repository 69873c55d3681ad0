"""The WSGI apps gunicorn serves: the bare-Flask floor, flask-passkey on each backend, two
diagnostic apps that split the cost of a challenge between flask-limiter and flask-passkey, and
the issue's reference endpoints (a naive py_webauthn challenge, with and without Redis and
flask-limiter), which calibrate this run against the reference points the targets came from.

``gunicorn 'bench.apps:app_from_env()'`` builds the app named by ``BENCH_APP``: ``floor``,
``floor+limiter``, ``memory-nolimit``, ``memory+metrics`` (:data:`METRICS_APP`), a reference
app of :data:`NAIVE_APPS`, ``memory-pool``
(the memory store with users and refresh tokens made ahead, :data:`POOL_APP`), or a backend of
:func:`bench.common.passkey_config` (``memory``, ``sqlite``, ``postgres``, ``redis``), with
``BENCH_DATABASE`` as PostgreSQL database.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis
from flask import Blueprint, Flask, Response, jsonify, request
from flask_limiter import Limiter
from webauthn import generate_authentication_options
from webauthn.helpers import bytes_to_base64url

from flask_passkey import Passkey

from .common import BENCH_DATABASE, HOST, RATE_LIMIT, REDIS_URL, passkey_config

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


def floor_app(*, limited: bool = False) -> Flask:
    """Flask alone: parse the same JSON body, answer a constant JSON. ``limited``: behind
    flask-limiter configured as flask-passkey configures it (a blueprint limit, headers, the
    in-process storage), to measure what the limiter alone costs."""
    app = Flask("bench_floor")
    blueprint = Blueprint("floor", __name__)

    @blueprint.post("/passkey/challenge")
    def challenge() -> Response:
        if request.get_json(silent=True) is None:
            return jsonify(error="invalid_request")
        return jsonify(_FLOOR_ANSWER)

    if limited:
        import flask_passkey.web.ratelimit  # noqa: F401 - registers passkey+memory://

        limiter = Limiter(
            lambda: request.remote_addr or "unknown",
            storage_uri="passkey+memory://",
            headers_enabled=True,
            strategy="fixed-window",
            key_prefix="passkey",
        )
        limiter.init_app(app)
        limiter.limit(RATE_LIMIT)(blueprint)
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


#: The memory store, its users and refresh tokens made before gunicorn forks its workers (served
#: with --preload; see bench.fixtures.memory_pool_app): BENCH_POOL_SIZE tokens, written with an
#: access token to BENCH_POOL_FILE.
POOL_APP = "memory-pool"


#: The memory store with the Prometheus plugin (flask-passkey-prometheus) counting and timing
#: every request, in multiprocess mode as under any multi-worker gunicorn (bench.run gives this
#: server a PROMETHEUS_MULTIPROC_DIR): the plugin's cost is its difference to ``memory``.
METRICS_APP = "memory+metrics"
METRICS_PLUGIN = "flask_passkey_prometheus:plugin"


#: The issue's reference endpoints: BENCH_APP name -> (sessions in Redis, limiter storage).
NAIVE_APPS: dict[str, tuple[bool, str | None]] = {
    "naive": (False, None),
    "naive+limiter": (False, "memory://"),
    "naive+redis": (True, None),
    "naive+redis+limiter": (True, REDIS_URL),
}


def naive_app(*, redis_sessions: bool, limiter_storage: str | None) -> Flask:
    """The naive challenge endpoint the issue's reference points describe: py_webauthn's
    ``generate_authentication_options``, the session in a dict (or one Redis ``SET`` with a
    TTL), and optionally flask-limiter with its documented defaults on the route.

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
        limiter = Limiter(lambda: request.remote_addr or "unknown", storage_uri=limiter_storage)
        limiter.init_app(app)
        challenge = limiter.limit(RATE_LIMIT)(challenge)
    app.post("/passkey/challenge")(challenge)
    return app


def app_from_env() -> Flask:
    name = os.environ["BENCH_APP"]
    if name in ("floor", "floor+limiter"):
        return floor_app(limited=name == "floor+limiter")
    if name in NAIVE_APPS:
        redis_sessions, limiter_storage = NAIVE_APPS[name]
        return naive_app(redis_sessions=redis_sessions, limiter_storage=limiter_storage)
    if name == POOL_APP:
        from .fixtures import memory_pool_app  # bench.fixtures builds its apps with this module

        pool_file, size = Path(os.environ["BENCH_POOL_FILE"]), int(os.environ["BENCH_POOL_SIZE"])
        return memory_pool_app(pool_file, size)
    if name == METRICS_APP:
        return passkey_app("memory", config={"PASSKEY_PLUGINS": [METRICS_PLUGIN]})
    return passkey_app(name, database=os.environ.get("BENCH_DATABASE", BENCH_DATABASE))
