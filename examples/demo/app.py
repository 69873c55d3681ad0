"""The flask-passkey demo site: sign up and sign in with a passkey on http://localhost:5000.

Run it with ``make demo`` (or ``flask --app examples/demo/app.py run --host localhost``). The
tenant comes from the TOML file named by ``PASSKEY_DEMO_TENANT`` (default: ``tenant.toml``
beside this file); users are kept in a SQLite file in ``examples/demo/instance/``; rate limits
are in memory.

It uses the extension the way an operator would: the browser talks to the Auth0-compatible
API (``/passkey/register``, ``/passkey/challenge``, ``/oauth/token``) from one small ES module,
then hands the ID token to this site, which verifies it against the extension's own JWKS
before it trusts a single claim.

Sign-ins are kept server-side (a SQLite file in the instance folder); the cookie only names
one. Signing out ends it for every copy of the cookie, and so does deleting the passkey it was
made with (checked on every request); the cookie is ``Secure`` when the site is served over
https.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
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
from flask.sessions import SecureCookieSessionInterface
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from flask_passkey import AuthenticatorInfo, Credential, Passkey

HERE = Path(__file__).resolve().parent
CLIENT_ID = "demo-spa"
#: What the browser asks ``/oauth/token`` for: an ID token with the profile and email claims.
SCOPE = "openid profile email"
#: Seconds of clock skew tolerated when checking ``exp`` and ``iat``.
LEEWAY = 30
#: The server-side sign-ins, in the instance folder.
SIGN_INS_FILE = "sign_ins.sqlite3"
#: The extension, bound to the app in ``create_app``; its methods read the app in hand.
passkey = Passkey()

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


@dataclass(frozen=True)
class SignIn:
    """A server-side sign-in: the verified ID token and the passkey it was made with."""

    user_id: str
    credential_id: str  # base64url
    id_token: str


class SignIns:
    """Sign-ins in a SQLite file (owner-only). The cookie carries a random id; the file only
    its SHA-256, so neither a copy of the file nor of the cookie outlives :meth:`end`."""

    def __init__(self, path: Path) -> None:
        self._path = path
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS sign_ins (id_hash TEXT PRIMARY KEY, user_id TEXT "
                "NOT NULL, credential_id TEXT NOT NULL, id_token TEXT NOT NULL, "
                "expires_at REAL NOT NULL)"
            )

    def start(self, sign_in: SignIn, *, expires_at: float) -> str:
        """Store ``sign_in`` until ``expires_at``; its id, for the cookie."""
        sign_in_id = secrets.token_urlsafe(32)
        with self._db() as db:
            db.execute("DELETE FROM sign_ins WHERE expires_at <= ?", (time.time(),))
            db.execute(
                "INSERT INTO sign_ins VALUES (?, ?, ?, ?, ?)",
                (
                    _digest(sign_in_id),
                    sign_in.user_id,
                    sign_in.credential_id,
                    sign_in.id_token,
                    expires_at,
                ),
            )
        return sign_in_id

    def get(self, sign_in_id: str) -> SignIn | None:
        """The live sign-in with this id, if any."""
        with self._db() as db:
            row = db.execute(
                "SELECT user_id, credential_id, id_token FROM sign_ins "
                "WHERE id_hash = ? AND expires_at > ?",
                (_digest(sign_in_id), time.time()),
            ).fetchone()
        return None if row is None else SignIn(*row)

    def end(self, sign_in_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM sign_ins WHERE id_hash = ?", (_digest(sign_in_id),))

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        if not self._path.exists():  # created owner-only: it holds ID tokens
            os.close(os.open(self._path, os.O_WRONLY | os.O_CREAT, 0o600))
        with closing(sqlite3.connect(self._path, timeout=10)) as db, db:
            yield db


def _digest(sign_in_id: str) -> str:
    return hashlib.sha256(sign_in_id.encode()).hexdigest()


class DemoSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with a ``Secure`` cookie for requests over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or super().get_cookie_secure(app)


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
        # A few providers' names, in the format of the community passkey-authenticator-aaguids
        # list: point this at a downloaded copy of that list for every provider and its icons.
        PASSKEY_AUTHENTICATOR_NAMES_FILE=str(HERE / "authenticator_names.json"),
        DEMO_CLIENT_ID=CLIENT_ID,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path))
    app.session_interface = DemoSessionInterface()
    Path(app.instance_path).mkdir(mode=0o700, parents=True, exist_ok=True)
    app.extensions["demo_sign_ins"] = SignIns(Path(app.instance_path) / SIGN_INS_FILE)
    passkey.init_app(app)

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
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
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
    if _signed_in() is not None:
        return redirect(url_for("account"))
    return render_template("signin.html")


def signup_page() -> Any:
    if _signed_in() is not None:
        return redirect(url_for("account"))
    return render_template("signup.html")


def account_page() -> Any:
    current = _signed_in()
    if current is None:
        return redirect(url_for("signin"))
    sign_in, claims = current
    users = passkey.user_store()
    user = users.get_user(claims["sub"])
    if user is None:
        _end_session()
        flash("Your account no longer exists. Create a new one to continue.", "error")
        return redirect(url_for("signup"))
    credentials = users.list_credentials(user.id)
    passkeys = [
        _describe(credential, passkey.authenticator_name(credential.aaguid))
        for credential in credentials
    ]
    rp_id = passkey.tenant().rp_id_for(request.host.split(":")[0].lower())
    return render_template(
        "account.html",
        claims=claims,
        passkeys=passkeys,
        # What the page tells the passkey provider (WebAuthn Signal API): which passkeys this
        # site still accepts for the user, and the user's current name.
        signals={
            "rpId": rp_id,
            "userId": bytes_to_base64url(user.user_handle),
            "acceptedCredentialIds": [
                bytes_to_base64url(c.id) for c in credentials if c.rp_id == rp_id
            ],
            "name": user.email or user.username or user.phone_number or user.id,
            "displayName": user.profile.get("name") or user.email or user.id,
        },
        key_id=jwt.get_unverified_header(sign_in.id_token).get("kid"),
        this_passkey=sign_in.credential_id,
    )


# -- the session: verified ID token in, server-side sign-in, cookie out ---------------------

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
    """The browser posts the ID token and the id of the passkey it signed in with; once the
    token is verified and the passkey is the user's, a server-side sign-in starts."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("id_token"), str):
        return _json_error("Expected a JSON body with an id_token.", 400)
    try:
        claims = verify_id_token(body["id_token"])
        credential_id = _users_passkey(claims["sub"], body.get("credential_id"))
    except TokenRejected as error:
        current_app.logger.warning("Refused a sign-in: %s", error)
        return _json_error("The sign-in could not be verified. Please try again.", 400)
    _end_session()  # a new session for a new sign-in (no fixation)
    sign_in = SignIn(claims["sub"], credential_id, body["id_token"])
    session["sign_in"] = _sign_ins().start(sign_in, expires_at=float(claims["exp"]))
    session["csrf"] = secrets.token_urlsafe(32)
    return jsonify(redirect=url_for("account"), sub=claims["sub"])


@csrf_protected
def signout() -> Any:
    _end_session()
    flash("You're signed out. Your passkey stays on your device for next time.", "info")
    return redirect(url_for("signin"))


def verify_id_token(token: str) -> dict[str, Any]:
    """Check the ID token's RS256 signature against the extension's JWKS, and its ``iss``,
    ``aud``, ``exp`` and ``iat``. Raises TokenRejected."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        keys = jwt.PyJWKSet.from_dict(passkey.jwks())
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


def _users_passkey(user_id: str, credential_id: Any) -> str:
    """``credential_id`` (base64url) if it names a passkey of ``user_id``; else TokenRejected."""
    if not isinstance(credential_id, str) or len(credential_id) > 1400:
        raise TokenRejected("no credential_id")
    try:
        raw_id = base64url_to_bytes(credential_id)
    except (binascii.Error, ValueError):
        raise TokenRejected("a malformed credential_id") from None
    credential = passkey.user_store().get_credential(raw_id)
    if credential is None or credential.user_id != user_id:
        raise TokenRejected("the credential_id is not a passkey of the user")
    return bytes_to_base64url(raw_id)


def _signed_in() -> tuple[SignIn, dict[str, Any]] | None:
    """The session's sign-in and its ID token's claims, checked again on every request: the
    sign-in not ended, the token valid, the passkey it was made with not deleted."""
    sign_in_id = session.get("sign_in")
    if not isinstance(sign_in_id, str):
        return None
    sign_in = _sign_ins().get(sign_in_id)
    try:
        if sign_in is None:
            raise TokenRejected("the sign-in has ended")
        _users_passkey(sign_in.user_id, sign_in.credential_id)
        return sign_in, verify_id_token(sign_in.id_token)
    except TokenRejected:
        _end_session()
        flash("Your session has ended. Sign in again with your passkey.", "info")
        return None


def _end_session() -> None:
    """End the session's sign-in, for every copy of the cookie, and clear the session."""
    sign_in_id = session.get("sign_in")
    if isinstance(sign_in_id, str):
        _sign_ins().end(sign_in_id)
    session.clear()


def _sign_ins() -> SignIns:
    sign_ins: SignIns = current_app.extensions["demo_sign_ins"]
    return sign_ins


def _json_error(description: str, status: int) -> tuple[Response, int]:
    return jsonify(error="demo_error", error_description=description), status


# -- presentation ----------------------------------------------------------------------------


def _template_globals() -> dict[str, Any]:
    tenant = passkey.tenant()
    host = request.host.split(":")[0].lower()
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return {
        "csrf_token": session["csrf"],
        "client_id": current_app.config["DEMO_CLIENT_ID"],
        "api_prefix": current_app.config["PASSKEY_URL_PREFIX"],
        "rp_name": tenant.rp_name,
        "scope": SCOPE,
        # Passkeys are bound to a domain: on any other host the API refuses to start.
        "wrong_host": host not in tenant.custom_domains,
        "custom_domain": tenant.custom_domains[0],
    }


def _describe(credential: Credential, provider: AuthenticatorInfo | None) -> dict[str, Any]:
    if credential.backed_up:
        kind, kind_note = "Synced", "Backed up by your passkey provider, available on your devices."
    elif credential.backup_eligible:
        kind, kind_note = "Syncable", "Can be synced by its provider, but is not backed up yet."
    else:
        kind, kind_note = "Device-bound", "Lives only on the authenticator that created it."
    return {
        "id": bytes_to_base64url(credential.id),
        "name": credential.name or (provider.name if provider else "Passkey"),
        "provider": provider.name if provider else None,
        # data:image URIs (AaguidFile keeps nothing else): never a URL the page would fetch.
        "icon_light": provider.icon_light if provider else None,
        "icon_dark": provider.icon_dark if provider else None,
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
