"""The flask-passkey demo site: sign up and sign in with a passkey on http://localhost:5000.

Run it with ``make demo`` (or ``flask --app examples/demo/app.py run --host localhost``). The
tenant comes from the TOML file named by ``PASSKEY_DEMO_TENANT`` (default: ``tenant.toml``
beside this file); users are kept in a SQLite file in ``examples/demo/instance/``; rate limits
are in memory.

It uses the extension the way an operator would: the browser talks to the Auth0-compatible
API (``/passkey/register``, ``/passkey/challenge``, ``/oauth/token``) from one small ES module,
then hands the ID token to this site, which verifies it against the extension's own JWKS
before it trusts a single claim.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import jwt
from flask import (
    Flask,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from flask_passkey import Passkey
from flask_passkey.models import Credential

HERE = Path(__file__).resolve().parent
CLIENT_ID = "demo-spa"
#: What the browser asks ``/oauth/token`` for: an ID token with the profile and email claims.
SCOPE = "openid profile email"
#: Seconds of clock skew tolerated when checking ``exp`` and ``iat``.
LEEWAY = 30

#: Authenticator models (AAGUID) the passkeys list names; anything else is "Passkey".
KNOWN_AUTHENTICATORS = {
    "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": "Google Password Manager",
    "adce0002-35bc-c60a-648b-0b25f1f05503": "Chrome on Mac",
    "fbfc3007-154e-4ecc-8c0b-6e020557d7bd": "iCloud Keychain",
    "08987058-cadc-4b81-b6e1-30de50dcbe96": "Windows Hello",
    "9ddd1817-af5a-4672-a2b9-3e3dd95000a9": "Windows Hello",
    "6028b017-b1d4-4c02-b4b3-afcdafc96bb2": "Windows Hello",
    "bada5566-a7aa-401f-bd96-45619a55120d": "1Password",
    "d548826e-79b4-db40-a3d8-11116f7e8349": "Bitwarden",
}
TRANSPORT_NAMES = {
    "internal": "built into the device",
    "hybrid": "phone (QR code)",
    "usb": "USB security key",
    "nfc": "NFC",
    "ble": "Bluetooth",
    "smart-card": "smart card",
}


class TokenRejected(Exception):
    """The browser handed us an ID token we will not trust."""


def create_app(
    config: Mapping[str, Any] | None = None, *, instance_path: str | os.PathLike[str] | None = None
) -> Flask:
    """Build the demo. ``config`` overrides any key (``PASSKEY_TENANT_FILE``,
    ``PASSKEY_DATABASE_URL``, ``SECRET_KEY``...), e.g. to serve it on another port in tests.
    """
    app = Flask(
        __name__,
        root_path=str(HERE),
        instance_path=str(instance_path or HERE / "instance"),
    )
    app.config.update(
        # A path given in the shell is the shell's: make it absolute before the app reads it.
        PASSKEY_TENANT_FILE=os.path.abspath(
            os.environ.get("PASSKEY_DEMO_TENANT", HERE / "tenant.toml")
        ),
        DEMO_CLIENT_ID=CLIENT_ID,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path))
    Passkey(app)

    app.add_url_rule("/", "signin", signin_page)
    app.add_url_rule("/signup", "signup", signup_page)
    app.add_url_rule("/account", "account", account_page)
    app.add_url_rule("/session", "start_session", start_session, methods=["POST"])
    app.add_url_rule("/signout", "signout", signout, methods=["POST"])
    app.context_processor(_template_globals)
    app.template_filter("when")(format_when)
    app.template_filter("ago")(format_ago)
    return app


def _instance_secret(instance: Path) -> str:
    """The session-signing key, generated once and kept in the instance folder (0600)."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(key)
        return key


# -- pages ---------------------------------------------------------------------------------


def signin_page() -> Any:
    if _signed_in_claims() is not None:
        return redirect(url_for("account"))
    return render_template("signin.html")


def signup_page() -> Any:
    if _signed_in_claims() is not None:
        return redirect(url_for("account"))
    return render_template("signup.html")


def account_page() -> Any:
    claims = _signed_in_claims()
    if claims is None:
        return redirect(url_for("signin"))
    users = current_app.extensions["passkey"].users
    if users.get_user(claims["sub"]) is None:
        session.clear()
        flash("Your account no longer exists. Create a new one to continue.", "error")
        return redirect(url_for("signup"))
    passkeys = [_describe(credential) for credential in users.list_credentials(claims["sub"])]
    return render_template(
        "account.html",
        claims=claims,
        passkeys=passkeys,
        key_id=session.get("kid"),
        this_passkey=session.get("credential_id"),
    )


# -- the session: verified ID token in, cookie out -------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def csrf_protected(view: F) -> F:
    """Refuse a POST without this session's CSRF token (header or form field)."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
        expected = session.get("csrf", "")
        if not expected or not hmac.compare_digest(sent, expected):
            if request.is_json:
                return _json_error("The page is out of date: reload it and try again.", 403)
            abort(403)
        return view(*args, **kwargs)

    return checked  # type: ignore[return-value]


@csrf_protected
def start_session() -> Any:
    """The browser posts the token response here; we keep the ID token only once verified."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
        return _json_error("Expected a JSON body with an id_token.", 400)
    try:
        claims = verify_id_token(body["id_token"])
    except TokenRejected as error:
        current_app.logger.warning("Refused an ID token: %s", error)
        return _json_error("The sign-in could not be verified. Please try again.", 400)
    credential_id = body.get("credential_id")
    session.clear()  # a new session for a new sign-in (no fixation)
    session["id_token"] = body["id_token"]
    session["kid"] = jwt.get_unverified_header(body["id_token"]).get("kid")
    if isinstance(credential_id, str) and len(credential_id) <= 1400:
        session["credential_id"] = credential_id  # only to label "used for this sign-in"
    session["csrf"] = secrets.token_urlsafe(32)
    return jsonify(redirect=url_for("account"), sub=claims["sub"])


@csrf_protected
def signout() -> Any:
    session.clear()
    flash("You're signed out. Your passkey stays on your device for next time.", "info")
    return redirect(url_for("signin"))


def verify_id_token(token: str) -> dict[str, Any]:
    """Check the ID token's RS256 signature against the extension's JWKS, and its ``iss``,
    ``aud``, ``exp`` and ``iat``. Raises TokenRejected."""
    state = current_app.extensions["passkey"]
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        keys = jwt.PyJWKSet.from_dict(state.grants.issuer.keys.jwks())
        key = next((k for k in keys.keys if k.key_id == kid), None)
        if key is None:
            raise TokenRejected(f"no published key has kid {kid!r}")
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=["RS256"],
            audience=current_app.config["DEMO_CLIENT_ID"],
            issuer=_expected_issuer(),
            leeway=LEEWAY,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except (jwt.PyJWTError, ValueError) as error:
        raise TokenRejected(str(error)) from None
    return claims


def _expected_issuer() -> str:
    """``https://<host>/``, the issuer the token endpoint names for requests on this host."""
    host = request.host.lower()
    if host.endswith(":443"):
        host = host[: -len(":443")]
    return f"https://{host}/"


def _signed_in_claims() -> dict[str, Any] | None:
    """The claims of the session's ID token, verified again on every request."""
    token = session.get("id_token")
    if not token:
        return None
    try:
        return verify_id_token(token)
    except TokenRejected:
        session.clear()
        flash("Your session has ended. Sign in again with your passkey.", "info")
        return None


def _json_error(description: str, status: int) -> tuple[Response, int]:
    return jsonify(error="demo_error", error_description=description), status


# -- presentation ----------------------------------------------------------------------------


def _template_globals() -> dict[str, Any]:
    state = current_app.extensions["passkey"]
    tenant = state.validator.tenant()
    host = request.host.split(":")[0].lower()
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return {
        "csrf_token": session["csrf"],
        "client_id": current_app.config["DEMO_CLIENT_ID"],
        "api_prefix": state.settings.url_prefix,
        "rp_name": tenant.rp_name,
        "scope": SCOPE,
        # Passkeys are bound to a domain: on any other host the API refuses to start.
        "wrong_host": host not in tenant.custom_domains,
        "custom_domain": tenant.custom_domains[0],
    }


def _describe(credential: Credential) -> dict[str, Any]:
    from webauthn.helpers import bytes_to_base64url

    if credential.backed_up:
        kind, kind_note = "Synced", "Backed up by your passkey provider, available on your devices."
    elif credential.backup_eligible:
        kind, kind_note = "Syncable", "Can be synced by its provider, but is not backed up yet."
    else:
        kind, kind_note = "Device-bound", "Lives only on the authenticator that created it."
    return {
        "id": bytes_to_base64url(credential.id),
        "name": credential.name or KNOWN_AUTHENTICATORS.get(credential.aaguid, "Passkey"),
        "kind": kind,
        "kind_note": kind_note,
        "synced": credential.backup_eligible,
        "created_at": credential.created_at,
        "last_used_at": credential.last_used_at,
        "transports": [TRANSPORT_NAMES.get(t, t) for t in credential.transports],
    }


def format_when(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    moment = datetime.fromtimestamp(timestamp, UTC)
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def format_ago(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    seconds = int(datetime.now(UTC).timestamp() - timestamp)
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"
