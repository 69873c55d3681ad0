"""The WSGI apps gunicorn serves: the bare-Flask floor, flask-passkey on each backend, and two
diagnostic apps that split the cost of a challenge between flask-limiter and flask-passkey.

``gunicorn 'bench.apps:app_from_env()'`` builds the app named by ``BENCH_APP``: ``floor``,
``floor+limiter``, ``memory-nolimit`` or a backend of :func:`bench.common.passkey_config`
(``memory``, ``sqlite``, ``postgres``, ``redis``), with ``BENCH_DATABASE`` as PostgreSQL
database.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from flask_limiter import Limiter

from flask_passkey import Passkey

from .common import BENCH_DATABASE, RATE_LIMIT, passkey_config

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
        import flask_passkey.ratelimit  # noqa: F401 - registers passkey+memory://

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
    """flask-passkey on ``backend`` (``memory-nolimit``: memory, limiter off), with
    ``config`` on top of the benchmark's configuration."""
    app = Flask("bench_passkey")
    if backend == "memory-nolimit":
        app.config.update(passkey_config("memory"), PASSKEY_RATE_LIMIT_ENABLED=False)
    else:
        app.config.update(passkey_config(backend, database=database))
    app.config.update(config or {})
    Passkey(app)
    return app


def app_from_env() -> Flask:
    name = os.environ["BENCH_APP"]
    if name in ("floor", "floor+limiter"):
        return floor_app(limited=name == "floor+limiter")
    return passkey_app(name, database=os.environ.get("BENCH_DATABASE", BENCH_DATABASE))
