"""An app-factory example: ``Passkey()`` at module level, ``init_app`` in ``create_app``.

Run it with ``flask --app examples/factory/acme run --host localhost --port 5001``; configure it
with ``FLASK_*`` environment variables (``FLASK_PASSKEY_DATABASE_URL=memory://``) or by passing
a mapping to ``create_app`` (tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from .api import api
from .extensions import passkey

HERE = Path(__file__).resolve().parent
API_AUDIENCE = "https://api.acme.test"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        PASSKEY_TENANT_FILE=str(HERE.parent / "tenant.toml"),
        # Access tokens for this API: the client asks /oauth/token for audience=API_AUDIENCE.
        PASSKEY_AUDIENCES=[API_AUDIENCE],
    )
    app.config.from_prefixed_env()  # FLASK_PASSKEY_DATABASE_URL=..., FLASK_SECRET_KEY=...
    app.config.update(config or {})

    passkey.init_app(app)  # checks the configuration now: a mistake fails here, not later
    app.register_blueprint(api)
    return app
