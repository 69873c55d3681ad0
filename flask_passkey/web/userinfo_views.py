"""The OpenID Connect userinfo endpoint (``GET``/``POST /userinfo``, OIDC Core §5.3): the
signed-in user's claims for an access token issued for the userinfo audience.

Checked in this order: rate limit (429), passkeys enabled (404), custom domain (400), access
token and DPoP proof (401, with a ``WWW-Authenticate`` challenge).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Blueprint, Response, jsonify, request

from flask_passkey.core.access import userinfo_claims
from flask_passkey.core.audiences import userinfo_audience
from flask_passkey.errors import InvalidRequest
from flask_passkey.web.blueprint import (
    NO_STORE,
    USERINFO_BLUEPRINT_NAME,
    method_not_allowed,
    presented,
    register_error_handlers,
    request_intake,
)

if TYPE_CHECKING:
    from flask_passkey.extension import PasskeyState

#: Where the endpoint lives, below ``PASSKEY_URL_PREFIX``.
USERINFO_PATH = "/userinfo"
_FORM = "application/x-www-form-urlencoded"


def create_userinfo_blueprint(state: PasskeyState) -> Blueprint:
    """The rate-limited userinfo blueprint for one app."""
    settings = state.settings
    bp = Blueprint(USERINFO_BLUEPRINT_NAME, __name__, url_prefix=settings.url_prefix or None)
    incoming = request_intake(state)

    @bp.route(USERINFO_PATH, methods=["GET", "POST"])
    def userinfo() -> tuple[Response, int, dict[str, str]]:
        passkey_request = incoming("userinfo")
        form_token = None
        if request.method == "POST" and request.mimetype == _FORM:
            # OIDC Core §5.3.1 / RFC 6750 §2.2: the token may come as a form field instead.
            request.max_content_length = settings.max_body_size
            form_token = request.form.get("access_token")
            if form_token is not None and "Authorization" in request.headers:
                raise InvalidRequest("Send the access token one way, not in two.")
        issuer = f"{passkey_request.origin}/"
        access = state.access.verify(
            presented(passkey_request, access_token=form_token),
            issuer=issuer,
            audience=userinfo_audience(issuer),
        )
        return jsonify(userinfo_claims(access)), 200, NO_STORE

    bp.add_url_rule(
        USERINFO_PATH,
        "userinfo_other_methods",
        method_not_allowed(("GET", "POST")),
        methods=["PUT", "PATCH", "DELETE"],
    )
    register_error_handlers(bp, state)
    if state.limiter is not None:
        state.limiter.limit(settings.rate_limit)(bp)
    return bp
