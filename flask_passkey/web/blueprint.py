"""What every flask-passkey blueprint shares: request intake (host, custom domain, body) and
JSON error responses."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn

from flask import Blueprint, Flask, Response, g, jsonify, request
from flask_limiter import RateLimitExceeded
from limits.errors import StorageError
from werkzeug.datastructures import Authorization
from werkzeug.exceptions import BadHost, HTTPException, InternalServerError, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES

from flask_passkey.core.access import Presented
from flask_passkey.core.passkey_request import Endpoint, PasskeyRequest
from flask_passkey.errors import (
    AttestationRefused,
    BackendUnavailable,
    EnrollmentAttestationRefused,
    InvalidRequest,
    LockedOut,
    MethodNotAllowed,
    PasskeyError,
    PayloadTooLarge,
    PossibleClone,
    RefreshTokenReused,
    ServerError,
    TemporarilyUnavailable,
    TooManyRequests,
)
from flask_passkey.events import EventName, PasskeyEvent
from flask_passkey.web.lockout import count_failure
from flask_passkey.web.proxy import MALFORMED_HOST, request_host
from flask_passkey.web.request_ids import request_id
from flask_passkey.web.schemas import is_unicode_clean

if TYPE_CHECKING:
    from flask_passkey.extension import PasskeyState

logger = logging.getLogger("flask_passkey")
#: The passkey endpoints' blueprint (``/passkey/...``, ``/oauth/...``).
BLUEPRINT_NAME = "passkey"
#: The My Account API's blueprint (``/me/v1/...``).
ACCOUNT_BLUEPRINT_NAME = "passkey_account"
#: The userinfo endpoint's blueprint (``/userinfo``).
USERINFO_BLUEPRINT_NAME = "passkey_userinfo"
#: The blueprints whose every endpoint gets the per-IP limit.
LIMITED_BLUEPRINTS = frozenset({BLUEPRINT_NAME, ACCOUNT_BLUEPRINT_NAME, USERINFO_BLUEPRINT_NAME})
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
#: flask.g attribute: the client_id the request names, for rejection events.
CLIENT_ID = "passkey_client_id"
#: flask.g attribute: the grant_type of a token request, for its events.
GRANT_TYPE = "passkey_grant_type"
#: How much of a Host or User-Agent header events carry.
_HEADER_CHARS = 256


def request_intake(state: PasskeyState) -> Callable[[Endpoint], PasskeyRequest]:
    """Steps 1 and 2 for the request in hand: passkeys enabled, custom domain."""
    trusted_proxies = state.settings.trusted_proxies

    def incoming(endpoint: Endpoint) -> PasskeyRequest:
        host, port = request_host(trusted_proxies)
        return state.validator.check_request(
            endpoint=endpoint, host=host, port=port, client_ip=state.client_address()
        )

    return incoming


def register_error_handlers(
    bp: Blueprint, state: PasskeyState, *, problem_details: bool = False
) -> None:
    """Answer every failure in ``bp`` with the JSON error body (never HTML), emit the rejection
    event and count the failure for the lockout.

    With ``problem_details`` the body also carries RFC 7807 members (``type``, ``title``,
    ``status``, ``detail``), which Auth0's My Account API clients read.
    """
    max_body_size = state.settings.max_body_size

    @bp.errorhandler(PasskeyError)
    def passkey_error(error: PasskeyError) -> tuple[Response, int, dict[str, str]]:
        rid = request_id()
        rejected = PasskeyEvent(
            name=rejection_name(error),
            endpoint=event_endpoint(),
            client_ip=state.client_address(),
            client_id=g.get(CLIENT_ID),
            grant_type=g.get(GRANT_TYPE),
            error=error.error,
            description=error.description,
            detail=error.detail,
            user_id=error.user_id if isinstance(error, PossibleClone) else None,
            request_id=rid,
        )
        state.emit(rejected)
        for description in count_failure(state.lockout, error):
            state.emit(
                replace(rejected, name="lockout_started", error=None, description=description)
            )
        return error_answer(error, problem_details=problem_details)

    @bp.errorhandler(RateLimitExceeded)
    def rate_limited(error: RateLimitExceeded) -> tuple[Response, int, dict[str, str]]:
        return passkey_error(TooManyRequests(f"Too many requests: limit {error.description}."))

    @bp.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge) -> tuple[Response, int, dict[str, str]]:
        return passkey_error(PayloadTooLarge(f"The request body exceeds {max_body_size} bytes."))

    @bp.errorhandler(BackendUnavailable)
    @bp.errorhandler(StorageError)
    def backend_down(error: Exception) -> tuple[Response, int, dict[str, str]]:
        return passkey_error(TemporarilyUnavailable())

    @bp.errorhandler(InternalServerError)
    def server_error(error: InternalServerError) -> tuple[Response, int, dict[str, str]]:
        # Flask has already logged the original exception; the client gets JSON, not HTML.
        return passkey_error(ServerError())


def error_answer(
    error: PasskeyError, *, problem_details: bool = False
) -> tuple[Response, int, dict[str, str]]:
    """The JSON answer for ``error``: ``error``, ``error_description`` and the request id (with
    RFC 7807 members when ``problem_details``), its status, ``Cache-Control: no-store`` and the
    error's own headers. Its detail, which the caller is not told, goes to the log."""
    rid = request_id()
    if error.detail is not None:
        logger.warning("passkey request_id=%r %s: %r", rid, error.error, error.detail)
    headers = NO_STORE | error.headers(authorization_header=_authorization_sent())
    body: dict[str, Any] = error.to_dict() | {"request_id": rid}
    if problem_details:
        body |= {
            "type": f"urn:flask-passkey:error:{error.error}",
            "title": HTTP_STATUS_CODES.get(error.status, "Error"),
            "status": error.status,
            "detail": error.description,
        }
    return jsonify(body), error.status, headers


def _authorization_sent() -> bool:
    """Whether the request sent an ``Authorization`` header werkzeug can read. One it cannot
    counts as none: reading it must not turn the error being answered into another."""
    return readable_authorization() is not None


def readable_authorization() -> Authorization | None:
    """``request.authorization``, or None for a header werkzeug cannot read (it raises
    ValueError for Basic credentials that are not ASCII base64)."""
    try:
        return request.authorization
    except ValueError:
        return None


def read_body(max_body_size: int, *, form_allowed: bool = False) -> Any:
    """The request's decoded JSON body (or form fields, when allowed and sent as a form).

    Raises InvalidRequest when it is not JSON, RequestEntityTooLarge beyond ``max_body_size``.
    """
    request.max_content_length = max_body_size
    if form_allowed and request.mimetype == "application/x-www-form-urlencoded":
        return request.form.to_dict()
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested too deeply for the JSON parser: not a body we take
        body = None
    if body is None:
        raise InvalidRequest("The request body must be JSON (Content-Type: application/json).")
    # Only an escape can smuggle in a lone surrogate; skip the walk for ordinary bodies.
    if b"\\u" in request.get_data() and not is_unicode_clean(body):
        raise InvalidRequest("The request body contains an unpaired surrogate escape (\\ud800).")
    return body


def request_url(passkey_request: PasskeyRequest) -> str:
    """The URL of the request as clients are told to write it (a DPoP proof's ``htu``): the
    https origin of its custom domain, the path, no query."""
    return url_on(passkey_request.origin)


def url_on(origin: str) -> str:
    """The request's URL on ``origin`` (an https origin): the path, no query."""
    return origin + request.script_root + request.path


def dpop_proof() -> str | None:
    """The request's ``DPoP`` header, if it sent one."""
    return request.headers.get("DPoP")


def presented(passkey_request: PasskeyRequest, *, access_token: str | None = None) -> Presented:
    """What the request shows a protected resource: its ``Authorization`` header (or, when
    given, ``access_token`` from a form body, as a bearer token) and its DPoP proof."""
    authorization = request.headers.get("Authorization")
    if authorization is None and access_token is not None:
        authorization = f"Bearer {access_token}"
    return Presented(
        authorization=authorization,
        dpop=dpop_proof(),
        method=request.method,
        url=request_url(passkey_request),
    )


def rejection_name(error: PasskeyError) -> EventName:
    if isinstance(error, RefreshTokenReused):
        return "refresh_token_reused"
    if isinstance(error, LockedOut):
        return "locked_out"
    if isinstance(error, AttestationRefused | EnrollmentAttestationRefused):
        return error.event
    if isinstance(error, PossibleClone):
        return "possible_clone"
    return "rate_limited" if isinstance(error, TooManyRequests) else "request_rejected"


def with_request_details(event: PasskeyEvent) -> PasskeyEvent:
    """``event`` with what the request in hand says about itself (:func:`request_details`)."""
    return replace(event, **request_details())


def request_details() -> dict[str, Any]:
    """What the request in hand says about itself, as :class:`PasskeyEvent` fields:
    ``grant_type``, ``request_id``, ``hostname``, ``user_agent``; never a secret."""
    grant_type = g.get(GRANT_TYPE)
    return {
        "grant_type": grant_type if isinstance(grant_type, str) else None,
        "request_id": request_id(),
        "hostname": request.host[:_HEADER_CHARS] or None,
        "user_agent": request.headers.get("User-Agent", "")[:_HEADER_CHARS] or None,
    }


def event_endpoint() -> str:
    """The endpoint name events use (``challenge``, ``register``, ``token``...), whatever the
    outcome: the view's name without blueprint or method-fallback suffix."""
    name = (request.endpoint or "").rpartition(".")[2]
    return name.removesuffix("_other_methods")


def method_not_allowed(allow: tuple[str, ...]) -> Callable[..., NoReturn]:
    """A view for the other methods of a rule: a JSON 405 naming ``allow``."""

    def refuse(**_: Any) -> NoReturn:
        raise MethodNotAllowed(allow=allow)

    return refuse


def refuse_unroutable_hosts(app: Flask, blueprints: Sequence[str]) -> None:
    """Answer a request to one of ``blueprints`` whose Host werkzeug's router cannot encode (an
    empty label, one over 63 characters) with the blueprint's JSON 400, not werkzeug's HTML.

    The router refuses such a host before a blueprint is chosen, so only an app-wide handler
    sees it; on the host app's own routes it leaves werkzeug's ``BadHost`` as it was.
    """
    ours = frozenset(blueprints)

    def bad_host(error: BadHost) -> Any:
        try:
            rule, _ = app.url_map.bind("localhost", script_name=request.script_root or None).match(
                request.path, method=request.method, return_rule=True
            )
        except HTTPException:
            return error
        if rule.endpoint.partition(".")[0] not in ours:
            return error
        # The rule the router would have matched picks the blueprint whose handler answers.
        request.url_rule = rule
        return app.handle_user_exception(InvalidRequest(MALFORMED_HOST))

    app.register_error_handler(BadHost, bad_host)
