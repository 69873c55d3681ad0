"""Serve examples/spa: the flask-passkey API on one origin, the single-page app on another.

``make spa`` (or ``python examples/spa/serve.py`` after ``npm ci`` in examples/spa) starts

* the single-page app, a static page using Auth0's auth0-spa-js: https://acme.localhost:5444
* the API, the way a deployment runs it on its custom domain: https://login.acme.localhost:5443

both over HTTPS with certificates of a throwaway local CA (trustme), written to
``examples/spa/instance/ca.pem``. Chromium resolves every ``*.localhost`` name to the loopback
address by itself, so no hosts file is needed; trust the CA, or start a throwaway Chromium that
ignores certificate errors (the script prints the command).

The names have the shape of a deployment with the app on ``example.com`` and the custom domain
``login.example.com``: the tenant (built by :func:`tenant`) has the RP ID ``acme.localhost``,
the app's own host name and a suffix of the API's, so the app's page may make passkeys for it.
(Chromium refuses the RP ID ``localhost`` on a page of ``app.localhost``: ``localhost`` is no
registrable domain suffix.) The app's client allows its
origin for CORS through its ``web_origins`` and may refresh into a My Account API token (its
``refresh_token.policies``). Users are kept in ``examples/spa/instance/passkey.sqlite3``.

The tests (tests/browser/test_spa_browser.py) build the same two apps with
:func:`create_api_app` and :func:`create_spa_app` on other names and ports.
"""

from __future__ import annotations

import argparse
import ssl
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flask import Flask, abort, jsonify, send_from_directory
from werkzeug.serving import BaseWSGIServer, make_server

from flask_passkey import MY_ACCOUNT_SCOPES, REFRESH_TOKEN_GRANT, WEBAUTHN_GRANT, Passkey

HERE = Path(__file__).resolve().parent
CLIENT_ID = "spa-example"
CONNECTION = "Username-Password-Authentication"
#: The browser bundle of @auth0/auth0-spa-js, as npm installed it (package-lock.json).
SDK_DIST = HERE / "node_modules" / "@auth0" / "auth0-spa-js" / "dist"
SDK_BUNDLE = "auth0-spa-js.production.esm.js"
#: The page's own files; nothing else of this folder is served.
PAGE_FILES = ("index.html", "app.js", "style.css")


def tenant(
    *,
    api_domain: str,
    rp_id: str,
    app_origins: list[str],
    related_origins: Sequence[str] = (),
) -> dict[str, Any]:
    """The tenant: ``api_domain`` (``host:port``) as custom domain, one public SPA client
    whose pages on ``app_origins`` may make passkeys and call the API.

    With ``related_origins`` (pages on other registrable domains that use the RP ID, WebAuthn
    Related Origin Requests) the RP ID's own host is a custom domain too: browsers ask it for
    ``https://<rp_id>/.well-known/webauthn``.
    """
    host = api_domain.split(":")[0]
    return {
        "default_domain": "spa-example.auth0.example",
        "custom_domains": [host, rp_id] if related_origins else [host],
        "rp_id": rp_id,
        "related_origins": list(related_origins),
        "rp_name": "flask-passkey SPA example",
        "default_connection": CONNECTION,
        "connections": [{"name": CONNECTION, "required_identifiers": ["email"]}],
        "clients": [
            {
                "client_id": CLIENT_ID,
                "name": "SPA example",
                "app_type": "spa",
                "token_endpoint_auth_method": "none",
                "grant_types": [WEBAUTHN_GRANT, REFRESH_TOKEN_GRANT],
                "connections": [CONNECTION],
                # Passkey ceremonies come from these origins, and (no allowed_origins given)
                # so may cross-origin calls.
                "web_origins": app_origins,
                "refresh_token": {
                    "policies": [
                        {"audience": f"https://{api_domain}/me/", "scope": list(MY_ACCOUNT_SCOPES)}
                    ]
                },
            }
        ],
    }


def create_api_app(
    *,
    api_domain: str,
    rp_id: str,
    app_origins: list[str],
    instance: Path,
    related_origins: Sequence[str] = (),
    **config: Any,
) -> Flask:
    """The flask-passkey API for ``api_domain``; ``config`` is more PASSKEY_* settings."""
    instance.mkdir(parents=True, exist_ok=True)
    app = Flask("spa_example_api", instance_path=str(instance))
    app.config.update(
        PASSKEY_TENANT=tenant(
            api_domain=api_domain,
            rp_id=rp_id,
            app_origins=app_origins,
            related_origins=related_origins,
        ),
        PASSKEY_DATABASE_URL=f"sqlite:///{instance / 'passkey.sqlite3'}",
        **{f"PASSKEY_{key.upper()}": value for key, value in config.items()},
    )
    Passkey(app)
    return app


def create_spa_app(*, api_domain: str) -> Flask:
    """The single-page app: its static files, the SDK bundle and ``config.json`` (where the
    page finds the API)."""
    if not (SDK_DIST / SDK_BUNDLE).is_file():
        raise SystemExit(f"{SDK_DIST / SDK_BUNDLE} is missing: run `npm ci` in {HERE}")
    app = Flask("spa_example_app", static_folder=None)
    settings = {
        "domain": api_domain,
        "clientId": CLIENT_ID,
        "myAccountAudience": f"https://{api_domain}/me/",
    }

    @app.get("/")
    def index() -> Any:
        return send_from_directory(HERE, "index.html")

    @app.get("/<name>")
    def page_file(name: str) -> Any:
        if name not in PAGE_FILES:
            abort(404)
        return send_from_directory(HERE, name)

    @app.get("/vendor/" + SDK_BUNDLE)
    def sdk() -> Any:
        return send_from_directory(SDK_DIST, SDK_BUNDLE, mimetype="text/javascript")

    @app.get("/config.json")
    def config() -> Any:
        return jsonify(settings)

    return app


def start(app: Flask, *, host: str, port: int, tls: ssl.SSLContext) -> BaseWSGIServer:
    """Serve ``app`` over HTTPS on ``host:port`` (0: a free port) in a daemon thread."""
    server = make_server(host, port, app, threaded=True, ssl_context=tls)
    threading.Thread(target=server.serve_forever, name=f"{host}:{port}", daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-port", type=int, default=5443)
    parser.add_argument("--app-port", type=int, default=5444)
    args = parser.parse_args()
    import trustme  # the dev extra: only this script needs it

    instance = HERE / "instance"
    instance.mkdir(exist_ok=True)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(instance / "ca.pem"))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("login.acme.localhost", "acme.localhost").configure_cert(tls)

    api_domain = f"login.acme.localhost:{args.api_port}"
    app_origin = f"https://acme.localhost:{args.app_port}"
    api = create_api_app(
        api_domain=api_domain, rp_id="acme.localhost", app_origins=[app_origin], instance=instance
    )
    servers = [
        start(api, host="localhost", port=args.api_port, tls=tls),
        start(create_spa_app(api_domain=api_domain), host="localhost", port=args.app_port, tls=tls),
    ]
    print(f"API:  https://{api_domain}\nApp:  {app_origin}  <- open this")
    print(
        f"Certificates come from the throwaway CA in {instance / 'ca.pem'}. Trust it, or try it "
        "in a throwaway Chromium:\n  chromium --ignore-certificate-errors "
        f"--user-data-dir=$(mktemp -d) {app_origin}"
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        for server in servers:
            server.shutdown()


if __name__ == "__main__":
    main()
