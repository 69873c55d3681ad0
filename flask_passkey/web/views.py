"""The passkey API endpoints: read the request, call the validator and the core, write JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from flask import Blueprint, Response, g, jsonify, request

from flask_passkey.core.ceremony import Challenge
from flask_passkey.core.grants import TokenRequest
from flask_passkey.core.passkey_request import PasskeyRequest, SecretSource, ValidationContext
from flask_passkey.core.validation import REVOKE_STEPS
from flask_passkey.errors import InvalidRequest, UnsupportedGrantType
from flask_passkey.events import EventName, PasskeyEvent
from flask_passkey.web.blueprint import (
    BLUEPRINT_NAME,
    CLIENT_ID,
    GRANT_TYPE,
    NO_STORE,
    dpop_proof,
    method_not_allowed,
    read_body,
    register_error_handlers,
    request_details,
    request_intake,
    request_url,
)
from flask_passkey.web.discovery_views import create_discovery_blueprint
from flask_passkey.web.grants import TOKEN_GRANTS
from flask_passkey.web.lockout import guard_exchange
from flask_passkey.web.schemas import (
    ChallengeRequestSchema,
    RegisterRequestSchema,
    RevokeRequestSchema,
    TokenRequestSchema,
    load_body,
)
from flask_passkey.web.userinfo_views import create_userinfo_blueprint

if TYPE_CHECKING:
    from flask_passkey.extension import PasskeyState

_OTHER_METHODS = ["GET", "PUT", "PATCH", "DELETE"]


def create_blueprints(state: PasskeyState) -> list[Blueprint]:
    """The rate-limited API and userinfo blueprints and the discovery blueprint for one app."""
    return [
        _api_blueprint(state),
        create_discovery_blueprint(state),
        create_userinfo_blueprint(state),
    ]


def _api_blueprint(state: PasskeyState) -> Blueprint:
    bp = Blueprint(BLUEPRINT_NAME, __name__, url_prefix=state.settings.url_prefix or None)
    settings = state.settings
    validator = state.validator
    challenge_schema = ChallengeRequestSchema()
    register_schema = RegisterRequestSchema()
    token_schema = TokenRequestSchema()
    revoke_schema = RevokeRequestSchema()
    grants = {entry.grant_type: (entry.grant, entry.schema()) for entry in TOKEN_GRANTS}
    incoming = request_intake(state)

    def json_body(*, form_allowed: bool = False) -> Any:
        return read_body(settings.max_body_size, form_allowed=form_allowed)

    def issued(name: EventName, passkey_request: PasskeyRequest, **fields: Any) -> None:
        state.emit(
            PasskeyEvent(
                name=name,
                endpoint=passkey_request.endpoint,
                client_ip=passkey_request.client_ip,
                **(request_details() | fields),
            ),
            detailed=True,
        )

    def answer_challenge(
        passkey_request: PasskeyRequest, context: ValidationContext, result: Challenge
    ) -> Response:
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
        return answer_challenge(passkey_request, context, result)

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
        return answer_challenge(passkey_request, context, result)

    @bp.post("/oauth/token")
    def token() -> tuple[Response, int, dict[str, str]]:
        passkey_request = incoming("token")
        body = json_body(form_allowed=True)
        grant_type = load_body(token_schema, body)["grant_type"]
        if grant_type not in grants:
            raise UnsupportedGrantType(f"Unsupported grant_type {grant_type!r}.")
        setattr(g, GRANT_TYPE, grant_type)
        grant, schema = grants[grant_type]
        data = load_body(schema, body)
        client_id, secret, source = _client_credentials(data)
        guard_exchange(state.lockout, client_ip=passkey_request.client_ip)
        context = validator.check_client(
            passkey_request,
            client_id=client_id,
            client_secret=secret,
            secret_source=source,
            realm=data.get("realm"),
            organization=data.get("organization"),
            steps=grant.steps_for(data),
        )
        proof = dpop_proof()
        token_request = TokenRequest(
            client=context.client,
            issuer=passkey_request.origin + "/",
            scope=data["scope"],
            audience=data["audience"],
            organization_names=passkey_request.tenant.allow_organization_name_in_authentication_api,
            dpop_jkt=None
            if proof is None
            else state.proofs.verify(proof, method="POST", url=request_url(passkey_request)),
        )
        result = grant.redeem(state.grants, token_request, data, context)
        issued(
            result.event,
            passkey_request,
            client_id=client_id,
            grant_type=grant_type,
            user_id=result.user_id,
            connection=result.connection,
            organization_id=result.organization_id,
        )
        return jsonify(result.body), 200, NO_STORE

    @bp.post("/oauth/revoke")
    def revoke() -> tuple[str, int, dict[str, str]]:
        """RFC 7009, as Auth0 answers it: 200 with an empty body, whether the token was
        revoked, unknown or another client's."""
        passkey_request = incoming("revoke")
        data = load_body(revoke_schema, json_body(form_allowed=True))
        client_id, secret, source = _client_credentials(data)
        context = validator.check_client(
            passkey_request,
            client_id=client_id,
            client_secret=secret,
            secret_source=source,
            realm=None,
            organization=None,
            steps=REVOKE_STEPS,
        )
        state.grants.revoke(context.client, token=data["token"])
        issued("refresh_revoked", passkey_request, client_id=client_id)
        return "", 200, NO_STORE

    for rule, endpoint in (
        ("/passkey/challenge", "challenge"),
        ("/passkey/register", "register"),
        ("/oauth/token", "token"),
        ("/oauth/revoke", "revoke"),
    ):
        bp.add_url_rule(
            rule,
            f"{endpoint}_other_methods",
            method_not_allowed(("POST",)),
            methods=_OTHER_METHODS,
        )

    register_error_handlers(bp, state)
    if state.limiter is not None:
        state.limiter.limit(settings.rate_limit)(bp)
    return bp


def _client_fields(body: dict[str, Any]) -> dict[str, Any]:
    """Client credentials of a challenge request: id from the body, secret from the body or
    HTTP Basic."""
    client_id, secret, source = _client_credentials(body)
    return {"client_id": client_id, "client_secret": secret, "secret_source": source}


def _client_credentials(body: dict[str, Any]) -> tuple[str, str | None, SecretSource]:
    try:
        auth = request.authorization
    except ValueError:  # Basic credentials that are not ASCII base64
        raise InvalidRequest("Malformed HTTP Basic credentials.") from None
    if auth is not None and auth.type == "basic":
        basic_id = unquote_plus(auth.username or "")
        if body.get("client_secret") is not None:
            raise InvalidRequest("Use one client authentication method, not both.")
        if body.get("client_id") not in (None, basic_id):
            raise InvalidRequest("client_id does not match the HTTP Basic credentials.")
        setattr(g, CLIENT_ID, basic_id)
        return basic_id, unquote_plus(auth.password or ""), "basic"
    client_id = body.get("client_id")
    if not client_id:
        raise InvalidRequest("client_id: Missing data for required field.")
    setattr(g, CLIENT_ID, client_id)
    secret = body.get("client_secret")
    return client_id, secret, "post" if secret is not None else "none"
