"""The WSGI apps gunicorn serves: the bare-Flask floor, and flask-passkey on each backend.

``gunicorn 'bench.apps:app_from_env()'`` builds the app named by ``BENCH_APP`` (``floor`` or a
backend of :func:`bench.common.passkey_config`) with ``BENCH_DATABASE`` as PostgreSQL database.
"""

from __future__ import annotations

import os

from flask import Flask, Response, jsonify, request

from flask_passkey import Passkey

from .common import BENCH_DATABASE, passkey_config

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


def floor_app() -> Flask:
    """Flask alone: parse the same JSON body, answer a constant JSON."""
    app = Flask("bench_floor")

    @app.post("/passkey/challenge")
    def challenge() -> Response:
        if request.get_json(silent=True) is None:
            return jsonify(error="invalid_request")
        return jsonify(_FLOOR_ANSWER)

    return app


def passkey_app(backend: str, *, database: str = BENCH_DATABASE) -> Flask:
    app = Flask("bench_passkey")
    app.config.update(passkey_config(backend, database=database))
    Passkey(app)
    return app


def app_from_env() -> Flask:
    name = os.environ["BENCH_APP"]
    if name == "floor":
        return floor_app()
    return passkey_app(name, database=os.environ.get("BENCH_DATABASE", BENCH_DATABASE))
