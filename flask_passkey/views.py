"""The HTTP endpoints: read the request, call the validator and the core, write JSON."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import unquote_plus

from flask import Blueprint, Response, g, jsonify, request
from flask_limiter import RateLimitExceeded
from limits.errors import StorageError
from werkzeug.exceptions import InternalServerError, RequestEntityTooLarge

from .context import Endpoint, PasskeyRequest, SecretSource
from .errors import (
    BackendUnavailable,
    InvalidClient,
    InvalidRequest,
    LockedOut,
    MethodNotAllowed,
    PasskeyError,
    PayloadTooLarge,
    ServerError,
    TemporarilyUnavailable,
    TooManyRequests,
    UnsupportedGrantType,
)
from .events import EventName, PasskeyEvent
from .grants import TokenRequest
from .lockout import count_failure, guard_exchange
from .models import REFRESH_TOKEN_GRANT, WEBAUTHN_GRANT
from .openapi import OPENAPI_PATH, openapi_json
from .ratelimit import BLUEPRINT_NAME, forwarded_value
from .schemas import (
    ChallengeRequestSchema,
    RefreshGrantSchema,
    RegisterRequestSchema,
    TokenRequestSchema,
    WebAuthnGrantSchema,
    load_body,
)
from .validation import REFRESH_STEPS, TOKEN_STEPS

if TYPE_CHECKING:
    from .extension import PasskeyState

DISCOVERY_BLUEPRINT_NAME = "passkey_discovery"
_OTHER_METHODS = ["GET", "PUT", "PATCH", "DELETE"]
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_CLIENT_ID = "passkey_client_id"  # flask.g attribute: the client_id the request names
#: A Host value: a DNS name or IPv4 address (or a bracketed IPv6 one), and an optional port.
_HOST = re.compile(
    r"(?P<name>[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?", re.ASCII | re.IGNORECASE
)


def create_blueprints(state: PasskeyState) -> list[Blueprint]:
    """The rate-limited API blueprint and the discovery blueprint for one app."""
    return [_api_blueprint(state), _discovery_blueprint(state)]


def _api_blueprint(state: PasskeyState) -> Blueprint:
    bp = Blueprint(BLUEPRINT_NAME, __name__, url_prefix=state.settings.url_prefix or None)
    settings = state.settings
    validator = state.validator
    challenge_schema = ChallengeRequestSchema()
    register_schema = RegisterRequestSchema()
    token_schema = TokenRequestSchema()
    grant_schemas = {
        WEBAUTHN_GRANT: WebAuthnGrantSchema(),
        REFRESH_TOKEN_GRANT: RefreshGrantSchema(),
    }
    grant_steps = {WEBAUTHN_GRANT: TOKEN_STEPS, REFRESH_TOKEN_GRANT: REFRESH_STEPS}
    incoming = _incoming(state)

    def json_body(*, form_allowed: bool = False) -> Any:
        return read_body(settings.max_body_size, form_allowed=form_allowed)

    def issued(name: EventName, passkey_request: PasskeyRequest, **fields: Any) -> None:
        state.emit(
            PasskeyEvent(
                name=name,
                endpoint=passkey_request.endpoint,
                client_ip=passkey_request.client_ip,
                **fields,
            )
        )

    @bp.post("/passkey/challenge")
    def challenge() -> Response:
        passkey_request = incoming("challenge")
        body = load_body(challenge_schema, json_body())
        context = validator.check_client(
            passkey_request,
            **_client_fields(body),
            realm=body["realm"],
            organization=body["organization"],
        )
        result = state.ceremonies.begin_login(context=context)
        issued(
            "challenge_issued",
            passkey_request,
            client_id=context.client_id,
            connection=context.connection_name,
            organization_id=context.organization_id,
        )
        return jsonify(
            auth_session=result.auth_session, authn_params_public_key=result.authn_params_public_key
        )

    @bp.post("/passkey/register")
    def register() -> Response:
        passkey_request = incoming("register")
        body = load_body(register_schema, json_body())
        context = validator.check_client(
            passkey_request,
            **_client_fields(body),
            realm=body["realm"],
            organization=body["organization"],
            user_profile=body["user_profile"],
        )
        result = state.ceremonies.begin_signup(
            context=context, user_profile=body["user_profile"], user_metadata=body["user_metadata"]
        )
        issued(
            "challenge_issued",
            passkey_request,
            client_id=context.client_id,
            connection=context.connection_name,
            organization_id=context.organization_id,
        )
        return jsonify(
            auth_session=result.auth_session, authn_params_public_key=result.authn_params_public_key
        )

    @bp.post("/oauth/token")
    def token() -> tuple[Response, int, dict[str, str]]:
        passkey_request = incoming("token")
        body = json_body(form_allowed=True)
        grant_type = load_body(token_schema, body)["grant_type"]
        if grant_type not in grant_schemas:
            raise UnsupportedGrantType(f"Unsupported grant_type {grant_type!r}.")
        data = load_body(grant_schemas[grant_type], body)
        client_id, secret, source = _client_credentials(data)
        guard_exchange(
            state.lockout,
            client_ip=passkey_request.client_ip,
            authn_response=data.get("authn_response"),
        )
        context = validator.check_client(
            passkey_request,
            client_id=client_id,
            client_secret=secret,
            secret_source=source,
            realm=None,
            organization=None,
            steps=grant_steps[grant_type],
        )
        token_request = TokenRequest(
            client=context.client,
            issuer=passkey_request.origin + "/",
            scope=data["scope"],
            audience=data["audience"],
        )
        if grant_type == WEBAUTHN_GRANT:
            result = state.grants.webauthn(
                token_request,
                auth_session=data["auth_session"],
                authn_response=data["authn_response"],
                realm=data["realm"],
                organization=data["organization"],
            )
        else:
            result = state.grants.refresh(token_request, refresh_token=data["refresh_token"])
        issued(
            result.event,
            passkey_request,
            client_id=client_id,
            user_id=result.user_id,
            connection=result.connection,
            organization_id=result.organization_id,
        )
        return jsonify(result.body), 200, _NO_STORE

    for rule, endpoint in (
        ("/passkey/challenge", "challenge"),
        ("/passkey/register", "register"),
        ("/oauth/token", "token"),
    ):
        bp.add_url_rule(
            rule, f"{endpoint}_other_methods", _method_not_allowed, methods=_OTHER_METHODS
        )

    _register_error_handlers(bp, state)
    if state.limiter is not None:
        state.limiter.limit(settings.rate_limit)(bp)
    return bp


def _discovery_blueprint(state: PasskeyState) -> Blueprint:
    """The well-known files: JWKS, OpenID configuration, Android asset links, Apple AASA."""
    bp = Blueprint(DISCOVERY_BLUEPRINT_NAME, __name__)
    incoming = _incoming(state)
    prefix = state.settings.url_prefix

    @bp.get("/.well-known/jwks.json")
    def jwks() -> tuple[Response, int, dict[str, str]]:
        incoming("discovery")
        return (
            jsonify(state.grants.issuer.keys.jwks()),
            200,
            {"Cache-Control": "public, max-age=300"},
        )

    @bp.get("/.well-known/openid-configuration")
    def openid_configuration() -> Response:
        base = incoming("discovery").origin
        return jsonify(
            issuer=base + "/",
            jwks_uri=f"{base}/.well-known/jwks.json",
            token_endpoint=f"{base}{prefix}/oauth/token",
            grant_types_supported=[WEBAUTHN_GRANT, REFRESH_TOKEN_GRANT],
            response_types_supported=["token"],
            subject_types_supported=["public"],
            id_token_signing_alg_values_supported=["RS256"],
            token_endpoint_auth_methods_supported=[
                "none",
                "client_secret_post",
                "client_secret_basic",
            ],
            scopes_supported=["openid", "profile", "email", "phone", "offline_access"],
            claims_supported=[
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "amr",
                "org_id",
                "name",
                "given_name",
                "family_name",
                "nickname",
                "picture",
                "preferred_username",
                "email",
                "email_verified",
                "phone_number",
                "phone_number_verified",
            ],
        )

    @bp.get("/.well-known/assetlinks.json")
    def assetlinks() -> Response:
        incoming("discovery")
        statements = [
            {
                "relation": [
                    "delegate_permission/common.handle_all_urls",
                    "delegate_permission/common.get_login_creds",
                ],
                "target": {
                    "namespace": "android_app",
                    "package_name": app.package_name,
                    "sha256_cert_fingerprints": list(app.sha256_cert_fingerprints),
                },
            }
            for client in state.clients()
            for app in client.android_apps
        ]
        return jsonify(statements)

    @bp.get("/.well-known/apple-app-site-association")
    def apple_app_site_association() -> Response:
        incoming("discovery")
        apps = sorted({app.app_id for client in state.clients() for app in client.ios_apps})
        return jsonify(webcredentials={"apps": apps})

    @bp.get(prefix + OPENAPI_PATH)
    def openapi_document() -> Response:
        incoming("discovery")
        return Response(openapi_json(state.settings), mimetype="application/json")

    for rule, endpoint in (
        ("/.well-known/jwks.json", "jwks"),
        ("/.well-known/openid-configuration", "openid_configuration"),
        ("/.well-known/assetlinks.json", "assetlinks"),
        ("/.well-known/apple-app-site-association", "apple_app_site_association"),
        (prefix + OPENAPI_PATH, "openapi_document"),
    ):
        bp.add_url_rule(
            rule, f"{endpoint}_other_methods", _get_only, methods=["POST", "PUT", "PATCH", "DELETE"]
        )

    _register_error_handlers(bp, state)
    return bp


def _incoming(state: PasskeyState) -> Callable[[Endpoint], PasskeyRequest]:
    trusted_proxies = state.settings.trusted_proxies

    def incoming(endpoint: Endpoint) -> PasskeyRequest:
        host, port = _request_host(trusted_proxies)
        return state.validator.check_request(
            endpoint=endpoint, host=host, port=port, client_ip=state.client_address()
        )

    return incoming


def _register_error_handlers(bp: Blueprint, state: PasskeyState) -> None:
    max_body_size = state.settings.max_body_size

    @bp.errorhandler(PasskeyError)
    def passkey_error(error: PasskeyError) -> tuple[Response, int, dict[str, str]]:
        rejected = PasskeyEvent(
            name=_rejection_name(error),
            endpoint=_event_endpoint(),
            client_ip=state.client_address(),
            client_id=g.get(_CLIENT_ID),
            error=error.error,
            description=error.description,
        )
        state.emit(rejected)
        for description in count_failure(state.lockout, error):
            state.emit(
                replace(rejected, name="lockout_started", error=None, description=description)
            )
        headers = dict(_NO_STORE)
        if isinstance(error, LockedOut):
            headers["Retry-After"] = str(error.retry_after)
        if isinstance(error, MethodNotAllowed):
            headers["Allow"] = ", ".join(error.allow)
        if isinstance(error, InvalidClient) and request.authorization is not None:
            headers["WWW-Authenticate"] = 'Basic realm="passkey"'
        challenge = error.www_authenticate()
        if challenge is not None:
            headers["WWW-Authenticate"] = challenge
        return jsonify(error.to_dict()), error.status, headers

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
    return body


def _rejection_name(error: PasskeyError) -> EventName:
    if isinstance(error, LockedOut):
        return "locked_out"
    return "rate_limited" if isinstance(error, TooManyRequests) else "request_rejected"


def _event_endpoint() -> str:
    """The endpoint name events use (``challenge``, ``register``, ``token``...), whatever the
    outcome: the view's name without blueprint or method-fallback suffix."""
    name = (request.endpoint or "").rpartition(".")[2]
    return name.removesuffix("_other_methods")


def _method_not_allowed() -> NoReturn:
    raise MethodNotAllowed()


def _get_only() -> NoReturn:
    raise MethodNotAllowed(allow=("GET", "HEAD"))


def _client_fields(body: dict[str, Any]) -> dict[str, Any]:
    """Client credentials of a challenge request: id from the body, secret from the body or
    HTTP Basic."""
    client_id, secret, source = _client_credentials(body)
    return {"client_id": client_id, "client_secret": secret, "secret_source": source}


def _client_credentials(body: dict[str, Any]) -> tuple[str, str | None, SecretSource]:
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        basic_id = unquote_plus(auth.username or "")
        if body.get("client_secret") is not None:
            raise InvalidRequest("Use one client authentication method, not both.")
        if body.get("client_id") not in (None, basic_id):
            raise InvalidRequest("client_id does not match the HTTP Basic credentials.")
        setattr(g, _CLIENT_ID, basic_id)
        return basic_id, unquote_plus(auth.password or ""), "basic"
    client_id = body.get("client_id")
    if not client_id:
        raise InvalidRequest("client_id: Missing data for required field.")
    setattr(g, _CLIENT_ID, client_id)
    secret = body.get("client_secret")
    return client_id, secret, "post" if secret is not None else "none"


def _request_host(trusted_proxies: int) -> tuple[str, int | None]:
    """The request's host name (lower case, one trailing dot dropped) and port.

    Anything but ``name[:port]`` is refused, whether from Host or X-Forwarded-Host: user info,
    a path, a second port, non-ASCII look-alikes, an empty or out-of-range port.
    """
    forwarded = (
        forwarded_value(request.headers.get("X-Forwarded-Host"), trusted_proxies)
        if trusted_proxies > 0
        else None
    )
    raw = forwarded or request.host
    if not raw:
        raise InvalidRequest("The Host header is missing.")
    match = _HOST.fullmatch(raw)
    port = int(match["port"]) if match and match["port"] else None
    if match is None or (port is not None and not 0 < port < 65536):
        raise InvalidRequest("The Host header is malformed.")
    return match["name"].lower().removesuffix("."), port
