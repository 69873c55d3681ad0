"""The flask-passkey demo site: sign up and sign in with a passkey on http://localhost:5000.

Run it with ``make demo`` (or ``flask --app examples/demo/app.py run``). The tenant comes from
the TOML file named by PASSKEY_DEMO_TENANT (default: tenant.toml beside this file); users are
kept in a SQLite file in the instance folder; rate limits are in memory.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from flask_passkey import Passkey

HERE = Path(__file__).parent


def create_app() -> Flask:
    app = Flask(__name__, instance_path=str(HERE / "instance"))
    app.config["PASSKEY_TENANT_FILE"] = os.environ.get(
        "PASSKEY_DEMO_TENANT", str(HERE / "tenant.toml")
    )
    Passkey(app)
    return app


app = create_app()
