"""Cross-origin requests (CORS), as Auth0's "Allowed Origins (CORS)" of an application.

A single-page app on its own origin (``https://app.example.com``) calls the custom domain
(``https://login.example.com``); the browser lets it read an answer only when the answer says
the app's origin may. The decision takes two steps, because a preflight carries no body:

1. A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) of an origin that *any*
   client of the tenant allows is answered ``204`` with the methods, request headers and
   max-age; any other origin's preflight gets no CORS headers (the browser then blocks it).
2. The actual request is decided per client: its origin must be one the client it names allows
   (the ``client_id`` of the body or of HTTP Basic on ``/passkey/*`` and ``/oauth/*``; the
   ``client_id`` of the access token on ``/userinfo`` and ``/me/v1/*``). Otherwise the answer
   carries no CORS headers and the browser keeps it from the page, and an ``origin_refused``
   event reports the request (Auth0's tenant log code ``fco``).

A client's allowed origins are its ``allowed_origins`` or, when it has none configured, its
``web_origins``. The discovery documents and the JWKS (``/.well-known/*``) are public: any
origin may read them (``Access-Control-Allow-Origin: *``). Credentials mode (cookies) is never
allowed: the API takes none.

flask-cors is not used: its ``origins`` is a fixed list or pattern per resource, decided before
the view runs, while here the origin a response may go to depends on the client the request
names.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Flask, Response, g, request
from joserfc import jws
from joserfc.errors import JoseError

from flask_passkey.events import PasskeyEvent
from flask_passkey.web.blueprint import (
    ACCOUNT_BLUEPRINT_NAME,
    BLUEPRINT_NAME,
    CLIENT_ID,
    USERINFO_BLUEPRINT_NAME,
    event_endpoint,
    readable_authorization,
)
from flask_passkey.web.discovery_views import DISCOVERY_BLUEPRINT_NAME

if TYPE_CHECKING:
    from flask_passkey.extension import PasskeyState
    from flask_passkey.models import Client

logger = logging.getLogger("flask_passkey")

#: The methods a preflight may ask for, per blueprint.
_METHODS = {
    BLUEPRINT_NAME: "POST",
    USERINFO_BLUEPRINT_NAME: "GET, POST",
    ACCOUNT_BLUEPRINT_NAME: "GET, POST, PATCH, DELETE",
    DISCOVERY_BLUEPRINT_NAME: "GET",
}
#: Blueprints whose requests name a client in the body or HTTP Basic ...
_CLIENT_NAMED = {BLUEPRINT_NAME}
#: ... or through the access token they present.
_TOKEN_NAMED = {USERINFO_BLUEPRINT_NAME, ACCOUNT_BLUEPRINT_NAME}
ALLOW_HEADERS = "Content-Type, Authorization, DPoP, Auth0-Client"
EXPOSE_HEADERS = (
    "DPoP-Nonce, WWW-Authenticate, Location, Retry-After, "
    "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
)
#: How long (seconds) a browser may reuse a preflight's answer.
MAX_AGE = "600"


def cors_origins(client: Client) -> tuple[str, ...]:
    """The origins whose pages may read ``client``'s answers: its ``allowed_origins``, or its
    ``web_origins`` when it has none configured."""
    origins = client.allowed_origins if client.allowed_origins is not None else client.web_origins
    return tuple(origin.lower() for origin in origins)


def install_cors(app: Flask, state: PasskeyState) -> None:
    """Answer preflights and add the CORS headers to the extension's responses in ``app``."""

    def is_preflight() -> bool:
        return (
            request.method == "OPTIONS"
            and request.blueprint in _METHODS
            and "Origin" in request.headers
            and "Access-Control-Request-Method" in request.headers
        )

    def any_client_allows(origin: str) -> bool:
        return any(origin in cors_origins(client) for client in state.clients())

    def preflight() -> Response | None:
        if not is_preflight():
            return None
        origin = request.headers["Origin"].lower()
        public = request.blueprint == DISCOVERY_BLUEPRINT_NAME
        response = Response(status=204, headers={"Vary": "Origin"})
        if public or any_client_allows(origin):
            response.headers["Access-Control-Allow-Origin"] = "*" if public else origin
            response.headers["Access-Control-Allow-Methods"] = _METHODS[request.blueprint or ""]
            response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
            response.headers["Access-Control-Max-Age"] = MAX_AGE
        return response

    def add_headers(response: Response) -> Response:
        if request.blueprint == DISCOVERY_BLUEPRINT_NAME:
            response.headers["Access-Control-Allow-Origin"] = "*"
            return response
        if request.blueprint not in _CLIENT_NAMED | _TOKEN_NAMED or is_preflight():
            return response
        _vary_on_origin(response)
        origin = request.headers.get("Origin", "").lower()
        if not origin:
            return response
        client_id = _requesting_client_id(state.settings.max_body_size)
        if origin in _origins_of(state, client_id):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        elif _cross_origin(origin):
            state.emit(
                PasskeyEvent(
                    name="origin_refused",
                    endpoint=event_endpoint(),
                    client_ip=state.client_address(),
                    client_id=client_id,
                    description=f"Origin {origin[:256]!r} is not an allowed origin of the client.",
                )
            )
        return response

    app.before_request(preflight)
    app.after_request(add_headers)
    if state.limiter is not None:
        # A preflight is the browser asking, not the app: it costs no request of the limit.
        state.limiter.request_filter(is_preflight)


def _vary_on_origin(response: Response) -> None:
    """``Vary: Origin`` on ``response``, with whatever it varies on already."""
    if "Vary" in response.headers:
        response.vary.add("Origin")
    else:  # the common case, without parsing a header set
        response.headers["Vary"] = "Origin"


def _cross_origin(origin: str) -> bool:
    """Whether ``origin`` is another than the API's own (browsers send Origin on same-origin
    POSTs too, and those need no CORS headers)."""
    try:
        return urlsplit(origin).netloc != request.host.lower()
    except ValueError:  # not even a URL
        return True


def _origins_of(state: PasskeyState, client_id: str | None) -> tuple[str, ...]:
    if client_id is None:
        return ()
    try:
        client: Client | None = state.plugin_manager.hook.passkey_get_client(client_id=client_id)
    except Exception:
        # The answer is made already; a client store that fails now must not turn it into a
        # 500. Without the headers the browser withholds it, which is the safe side.
        logger.exception("Could not look up client %r for the CORS headers", client_id)
        return ()
    return cors_origins(client) if client is not None else ()


def _requesting_client_id(max_body_size: int) -> str | None:
    """The client the request names: by its body or Basic credentials, or by its token."""
    if request.blueprint in _CLIENT_NAMED:
        named = g.get(CLIENT_ID)
        if isinstance(named, str):
            return named
        basic = readable_authorization()
        if basic is not None and basic.type == "basic":
            return basic.username
        return _text(_body(max_body_size).get("client_id"))
    authorization = request.headers.get("Authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() not in ("bearer", "dpop"):
        token = _text(_body(max_body_size).get("access_token")) or ""
    claims = _unverified_claims(token.strip())
    return _text(claims.get("client_id")) or _text(claims.get("azp"))


def _body(max_body_size: int) -> dict[str, Any]:
    """The request's form or JSON object, when it is one the view could have read (any
    failure is an empty body: this only picks whose origins apply, never what is allowed)."""
    if not 0 < (request.content_length or 0) <= max_body_size:
        return {}
    if request.mimetype == "application/x-www-form-urlencoded":
        return request.form.to_dict()
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested too deeply: the view has refused it already
        return {}
    return body if isinstance(body, dict) else {}


def _unverified_claims(token: str) -> dict[str, Any]:
    """The payload of the JWT ``token``, not verified.

    Enough to pick whose origins apply: the view verifies the token, so a forged one only
    ever gets its error read, and a valid one names its real client.
    """
    try:
        claims = json.loads(jws.extract_compact(token.encode()).payload)
    except (JoseError, ValueError, RecursionError):  # nested too deeply for the JSON parser
        return {}
    return claims if isinstance(claims, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
