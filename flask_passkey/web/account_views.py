"""The My Account API's passkey endpoints (``/me/v1/authentication-methods`` and
``/me/v1/factors``): read the bearer token and the body, call
:class:`flask_passkey.core.my_account.MyAccount`, write JSON with Auth0's statuses.

Every request is checked in this order: rate limit (429), passkeys enabled (404), custom domain
(400), access token and DPoP proof (401), the endpoint's scope (403), body (400), then the
passkey it names (404 when it is not the caller's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request, url_for

from flask_passkey.core.audiences import (
    SCOPE_CREATE,
    SCOPE_DELETE,
    SCOPE_READ,
    SCOPE_READ_FACTORS,
    SCOPE_UPDATE,
)
from flask_passkey.core.my_account import (
    ENROLLMENT_METHOD_ID,
    Caller,
    MyAccount,
    available_factors,
)
from flask_passkey.core.passkey_request import PasskeyRequest
from flask_passkey.events import EventName, PasskeyEvent
from flask_passkey.web.blueprint import (
    ACCOUNT_BLUEPRINT_NAME,
    NO_STORE,
    event_endpoint,
    method_not_allowed,
    presented,
    read_body,
    register_error_handlers,
    request_intake,
)
from flask_passkey.web.schemas import (
    EnrollmentRequestSchema,
    EnrollmentVerifySchema,
    RenameRequestSchema,
    load_body,
)

if TYPE_CHECKING:
    from flask_passkey.extension import PasskeyState

#: Where the My Account API lives, below ``PASSKEY_URL_PREFIX``.
ACCOUNT_ROOT = "/me/v1"
#: The authentication methods, below :data:`ACCOUNT_ROOT`.
METHODS_PATH = "/authentication-methods"
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def create_account_blueprint(state: PasskeyState) -> Blueprint:
    """The rate-limited My Account blueprint for one app."""
    settings = state.settings
    bp = Blueprint(ACCOUNT_BLUEPRINT_NAME, __name__, url_prefix=settings.url_prefix + ACCOUNT_ROOT)
    hook = state.plugin_manager.hook
    account = MyAccount(
        ceremonies=state.ceremonies,
        access=state.access,
        get_client=lambda client_id: hook.passkey_get_client(client_id=client_id),
        get_connection=lambda name: hook.passkey_get_connection(name=name),
        allow_deleting_last_passkey=settings.allow_deleting_last_passkey,
        authenticators=state.authenticators,
    )
    enrollment_schema = EnrollmentRequestSchema()
    verify_schema = EnrollmentVerifySchema()
    rename_schema = RenameRequestSchema()
    incoming = request_intake(state)

    def authenticated(scope: str) -> tuple[PasskeyRequest, Caller]:
        passkey_request = incoming("account")
        caller = account.authenticate(
            presented(passkey_request), request=passkey_request, scope=scope
        )
        return passkey_request, caller

    def body(schema: Any) -> dict[str, Any]:
        return load_body(schema, read_body(settings.max_body_size))

    def happened(name: EventName, passkey_request: PasskeyRequest, caller: Caller) -> None:
        state.emit(
            PasskeyEvent(
                name=name,
                endpoint=event_endpoint(),
                client_ip=passkey_request.client_ip,
                client_id=caller.client_id,
                user_id=caller.user.id,
                connection=caller.user.connection,
            )
        )

    def location(passkey_request: PasskeyRequest, authentication_method_id: str) -> str:
        # Absolute, so that clients on another origin (SPAs) can use it as it is.
        return passkey_request.origin + url_for(
            ".get_method", authentication_method_id=authentication_method_id
        )

    @bp.post(METHODS_PATH)
    def enroll() -> tuple[Response, int, dict[str, str]]:
        passkey_request, caller = authenticated(SCOPE_CREATE)
        data = body(enrollment_schema)
        challenge = account.begin_enrollment(
            caller,
            request=passkey_request,
            connection=data["connection"],
            identity_user_id=data["identity_user_id"],
        )
        happened("challenge_issued", passkey_request, caller)
        # 202, as Auth0 answers: the method is not created until it is verified, at the
        # Location (which Auth0's SDKs read the method id from).
        return (
            jsonify(
                auth_session=challenge.auth_session,
                authn_params_public_key=challenge.authn_params_public_key,
            ),
            202,
            {**NO_STORE, "Location": location(passkey_request, ENROLLMENT_METHOD_ID)},
        )

    @bp.post(METHODS_PATH + "/<authentication_method_id>/verify")
    def verify(authentication_method_id: str) -> tuple[Response, int, dict[str, str]]:
        passkey_request, caller = authenticated(SCOPE_CREATE)
        data = body(verify_schema)
        method = account.finish_enrollment(
            caller,
            authentication_method_id=authentication_method_id,
            auth_session=data["auth_session"],
            authn_response=data["authn_response"],
        )
        happened("passkey_enrolled", passkey_request, caller)
        created = {**NO_STORE, "Location": location(passkey_request, method["id"])}
        return jsonify(method), 201, created

    @bp.get(METHODS_PATH)
    def list_methods() -> tuple[Response, int, dict[str, str]]:
        _, caller = authenticated(SCOPE_READ)
        methods = account.list_methods(caller, method_type=request.args.get("type"))
        return jsonify(authentication_methods=methods), 200, NO_STORE

    @bp.get(METHODS_PATH + "/<authentication_method_id>")
    def get_method(authentication_method_id: str) -> tuple[Response, int, dict[str, str]]:
        _, caller = authenticated(SCOPE_READ)
        return jsonify(account.get_method(caller, authentication_method_id)), 200, NO_STORE

    @bp.patch(METHODS_PATH + "/<authentication_method_id>")
    def rename_method(authentication_method_id: str) -> tuple[Response, int, dict[str, str]]:
        passkey_request, caller = authenticated(SCOPE_UPDATE)
        name = body(rename_schema)["name"]
        method = account.rename_method(caller, authentication_method_id, name=name)
        happened("passkey_renamed", passkey_request, caller)
        return jsonify(method), 200, NO_STORE

    @bp.delete(METHODS_PATH + "/<authentication_method_id>")
    def delete_method(authentication_method_id: str) -> Response:
        passkey_request, caller = authenticated(SCOPE_DELETE)
        account.delete_method(caller, authentication_method_id)
        happened("passkey_deleted", passkey_request, caller)
        return Response(status=204, headers=NO_STORE)

    @bp.get("/factors")
    def factors() -> tuple[Response, int, dict[str, str]]:
        authenticated(SCOPE_READ_FACTORS)
        return jsonify(factors=available_factors()), 200, NO_STORE

    for rule, endpoint, allowed in (
        (METHODS_PATH, "collection", ("GET", "POST")),
        (METHODS_PATH + "/<authentication_method_id>", "method", ("GET", "PATCH", "DELETE")),
        (METHODS_PATH + "/<authentication_method_id>/verify", "verify", ("POST",)),
        ("/factors", "factors", ("GET",)),
    ):
        bp.add_url_rule(
            rule,
            f"{endpoint}_other_methods",
            method_not_allowed(allowed),
            methods=[method for method in _METHODS if method not in allowed],
        )

    register_error_handlers(bp, state, problem_details=True)
    if state.limiter is not None:
        state.limiter.limit(settings.rate_limit)(bp)
    return bp
