"""The HTTP endpoints: read the request, call the validator and the core, write JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request
from flask_limiter import RateLimitExceeded
from werkzeug.exceptions import InternalServerError, RequestEntityTooLarge

from .context import Endpoint, PasskeyRequest
from .errors import (
    BackendUnavailable,
    InvalidRequest,
    MethodNotAllowed,
    PasskeyError,
    PayloadTooLarge,
    TemporarilyUnavailable,
    TooManyRequests,
)
from .events import PasskeyEvent
from .ratelimit import BLUEPRINT_NAME, forwarded_value
from .schemas import ChallengeRequestSchema, ChallengeResponseSchema, load_body

if TYPE_CHECKING:
    from .extension import PasskeyState

_OTHER_METHODS = ["GET", "PUT", "PATCH", "DELETE"]


def create_blueprint(state: PasskeyState) -> Blueprint:
    """The blueprint for one app, closed over that app's state."""
    bp = Blueprint(
        BLUEPRINT_NAME, __name__, url_prefix=state.settings.url_prefix or None
    )
    settings = state.settings
    challenge_schema = ChallengeRequestSchema()
    challenge_response = ChallengeResponseSchema()

    def incoming(endpoint: Endpoint) -> PasskeyRequest:
        host, port = _request_host(settings.trusted_proxies)
        return state.validator.check_request(
            endpoint=endpoint, host=host, port=port, client_ip=state.client_address()
        )

    def json_body() -> Any:
        request.max_content_length = settings.max_body_size
        body = request.get_json(silent=True)
        if body is None:
            raise InvalidRequest(
                "The request body must be JSON (Content-Type: application/json)."
            )
        return body

    @bp.post("/passkey/challenge")
    def challenge() -> Response:
        passkey_request = incoming("challenge")
        body = load_body(challenge_schema, json_body())
        context = state.validator.check_client(
            passkey_request,
            client_id=body["client_id"],
            client_secret=body["client_secret"],
            secret_source="post" if body["client_secret"] is not None else "none",
            realm=body["realm"],
            organization=body["organization"],
        )
        result = state.ceremonies.begin_login(context=context)
        state.emit(
            PasskeyEvent(
                name="challenge_issued",
                endpoint="challenge",
                client_ip=passkey_request.client_ip,
                client_id=context.client_id,
                connection=context.connection_name,
                organization_id=context.organization_id,
            )
        )
        return jsonify(challenge_response.dump(result))

    def method_not_allowed() -> NoReturn:
        raise MethodNotAllowed()

    bp.add_url_rule(
        "/passkey/challenge",
        "challenge_other",
        method_not_allowed,
        methods=_OTHER_METHODS,
    )

    @bp.errorhandler(PasskeyError)
    def passkey_error(error: PasskeyError) -> tuple[Response, int]:
        state.emit(
            PasskeyEvent(
                name="rate_limited"
                if isinstance(error, TooManyRequests)
                else "request_rejected",
                endpoint=request.endpoint or "",
                client_ip=state.client_address(),
                error=error.error,
                description=error.description,
            )
        )
        response = jsonify(error.to_dict())
        if isinstance(error, MethodNotAllowed):
            response.headers["Allow"] = "POST"
        return response, error.status

    @bp.errorhandler(RateLimitExceeded)
    def rate_limited(error: RateLimitExceeded) -> tuple[Response, int]:
        return passkey_error(
            TooManyRequests(f"Too many requests: limit {error.description}.")
        )

    @bp.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge) -> tuple[Response, int]:
        return passkey_error(
            PayloadTooLarge(f"The request body exceeds {settings.max_body_size} bytes.")
        )

    @bp.errorhandler(BackendUnavailable)
    def backend_down(error: BackendUnavailable) -> tuple[Response, int]:
        return passkey_error(TemporarilyUnavailable())

    @bp.errorhandler(InternalServerError)
    def server_error(error: InternalServerError) -> tuple[Response, int]:
        # Flask has already logged the original exception; the client gets JSON, not HTML.
        return jsonify(
            {"error": "server_error", "error_description": "Internal server error."}
        ), 500

    if state.limiter is not None:
        state.limiter.limit(settings.rate_limit)(bp)
    return bp


def _request_host(trusted_proxies: int) -> tuple[str, int | None]:
    raw = (
        forwarded_value(request.headers.get("X-Forwarded-Host"), trusted_proxies)
        or request.host
    )
    try:
        parts = urlsplit("//" + raw)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise InvalidRequest("The Host header is malformed.") from None
    if not host:
        raise InvalidRequest("The Host header is missing.")
    return host.rstrip("."), port
