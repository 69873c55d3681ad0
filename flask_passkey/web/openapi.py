"""The OpenAPI 3.1 description of the HTTP API, generated from the marshmallow schemas.

:func:`build_openapi` turns :data:`OPERATIONS` (each endpoint: its request schema, its answer's
schema, the error statuses it can answer) into an OpenAPI document with apispec; every body
schema in it comes from :mod:`flask_passkey.web.schemas`. The extension serves the document at
``GET <PASSKEY_URL_PREFIX>/passkey/openapi.json``; ``python -m flask_passkey.web.openapi`` prints
it for the default configuration.
"""

from __future__ import annotations

import copy
import inspect
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from marshmallow import Schema, fields

from flask_passkey.config import Settings
from flask_passkey.models import WEBAUTHN_GRANT
from flask_passkey.web import schemas
from flask_passkey.web.grants import TOKEN_GRANTS, TokenGrant

#: Where the document is served, below ``PASSKEY_URL_PREFIX``.
OPENAPI_PATH = "/passkey/openapi.json"
OPENAPI_VERSION = "3.1.0"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
_RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")

#: What each error status means, unless an operation says more.
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "`invalid_request` (the host is not a custom domain, the body is not valid), "
    "`unauthorized_client`, `invalid_grant` or `unsupported_grant_type`.",
    401: "`invalid_client`: unknown client, or a missing or wrong secret.",
    403: "`access_denied`.",
    404: "`not_found`: passkeys are disabled for the tenant.",
    405: "The HTTP method is not allowed on this path; `Allow` lists the ones that are.",
    409: "`conflict`: the request contradicts the resource's current state.",
    413: "The request body is larger than `PASSKEY_MAX_BODY_SIZE`.",
    429: "`too_many_requests`: the per-IP rate limit is exhausted; retry after `Retry-After` "
    "seconds.",
    503: "`temporarily_unavailable`: a backend (store, rate-limit storage) is down.",
}


@dataclass(frozen=True)
class Operation:
    """One endpoint of the API, as the document describes it."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    #: The 2xx status and the schema of its JSON body (None: no body).
    success: tuple[int, type[Schema] | Mapping[str, Any] | None]
    #: The error statuses it can answer, each with the error body.
    errors: tuple[int, ...]
    description: str = ""
    #: JSON request body schema, or a full ``requestBody`` object.
    request: type[Schema] | Mapping[str, Any] | None = None
    #: Below ``PASSKEY_URL_PREFIX`` (the API endpoints) or at the root (the well-known files).
    prefixed: bool = True
    #: Counted by the per-IP rate limit (and so carrying its headers).
    rate_limited: bool = True
    #: Refused with 429 during a lockout (``PASSKEY_LOCKOUT``) after repeated failures.
    locks_out: bool = False
    security: tuple[Mapping[str, Sequence[str]], ...] | None = None
    parameters: tuple[Mapping[str, Any], ...] = ()
    error_descriptions: Mapping[int, str] = field(default_factory=dict)
    success_headers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    links: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


_CLIENT_AUTH: tuple[Mapping[str, Sequence[str]], ...] = ({}, {"clientSecretBasic": []})
_BEARER: tuple[Mapping[str, Sequence[str]], ...] = ({"bearerAuth": []}, {"dpopAuth": []})
#: The optional ``DPoP`` header: a proof (RFC 9449) for this request.
_DPOP_HEADER = {
    "name": "DPoP",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "A DPoP proof (RFC 9449) for this request: at the token endpoint it binds "
    "the tokens to its key; at a resource it proves that key for a DPoP-bound access token "
    "(with `ath`).",
}
_RESOURCE_401 = (
    "`invalid_token`: the access token is missing, invalid, expired, not for this audience "
    "and domain, of a user who no longer exists, or sent with the wrong scheme (a DPoP-bound "
    "token as `Bearer`); `invalid_dpop_proof`: its DPoP proof is missing or invalid. "
    "`WWW-Authenticate` carries the challenge (`Bearer` or `DPoP`)."
)
_USERINFO_ERRORS = {
    401: _RESOURCE_401 + " The audience is `https://<custom domain>/userinfo`.",
}
_CLIENT_ERRORS = (400, 401, 403, 404, 405, 413, 429, 503)
_DISCOVERY_ERRORS = (400, 404, 405, 503)
_ACCOUNT_PATH = "/me/v1/authentication-methods"
_ACCOUNT_ERRORS = {
    401: _RESOURCE_401 + " The audience is `https://<custom domain>/me/`.",
    403: "`insufficient_scope`: the access token lacks the scope this operation needs.",
    404: "`not_found`: passkeys are disabled for the tenant, or the authentication method is "
    "not one of the caller's.",
}
_METHOD_ID = {
    "name": "authentication_method_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "`passkey|<credential id, base64url>`.",
}
_REDEEM_LINK = {
    "operationId": "token",
    "description": "Redeem the challenge: the `auth_session` goes to the passkey grant.",
    "requestBody": {"grant_type": WEBAUTHN_GRANT, "auth_session": "$response.body#/auth_session"},
}
_VERIFY_LINK = {
    "operationId": "verifyPasskeyEnrollment",
    "description": "Confirm the enrollment with the browser's attestation.",
    "parameters": {"path.authentication_method_id": "passkey|new"},
    "requestBody": {"auth_session": "$response.body#/auth_session"},
}


def _schema_name(schema: type[Schema] | Schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__.lstrip("_").removesuffix("Schema")


def _grant_component(grant: TokenGrant, *, form: bool) -> str:
    """The schema component of a body of ``grant``: in a form, a grant whose body holds a
    credential (which a form carries as JSON text) has a component of its own, ``<name>Form``."""
    name = _schema_name(grant.schema)
    credential = any(isinstance(f, schemas.CredentialJson) for f in grant.schema().fields.values())
    return name + "Form" if form and credential else name


def _token_body(*, form: bool) -> dict[str, Any]:
    """A ``oneOf`` of the grants of :data:`TOKEN_GRANTS`, told apart by ``grant_type``."""
    names = {grant.grant_type: _grant_component(grant, form=form) for grant in TOKEN_GRANTS}
    return {
        "oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in names.values()],
        "discriminator": {
            "propertyName": "grant_type",
            "mapping": {grant: f"#/components/schemas/{name}" for grant, name in names.items()},
        },
    }


#: Every endpoint of the API. A test checks this against the app's URL map, so an endpoint
#: added without a line here fails the suite.
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "post",
        "/passkey/challenge",
        "challenge",
        "Start a passkey login",
        "passkeys",
        success=(200, schemas.ChallengeResponseSchema),
        errors=_CLIENT_ERRORS,
        description="Returns an `auth_session` and the options for "
        "`navigator.credentials.get()` (usernameless: no `allowCredentials`). The challenge is "
        "single use and expires after `timeout` milliseconds.",
        request=schemas.ChallengeRequestSchema,
        security=_CLIENT_AUTH,
        links={"redeem": _REDEEM_LINK},
    ),
    Operation(
        "post",
        "/passkey/register",
        "register",
        "Start a passkey sign-up",
        "passkeys",
        success=(200, schemas.RegisterResponseSchema),
        errors=_CLIENT_ERRORS,
        description="Returns an `auth_session` and the options for "
        "`navigator.credentials.create()`. Nothing is stored until the token exchange "
        "succeeds.",
        request=schemas.RegisterRequestSchema,
        security=_CLIENT_AUTH,
        error_descriptions={
            400: ERROR_DESCRIPTIONS[400] + " Also when an identifier of `user_profile` is "
            "taken in the connection."
        },
        links={"redeem": _REDEEM_LINK},
    ),
    Operation(
        "post",
        "/oauth/token",
        "token",
        "Exchange a passkey response (or a refresh token) for tokens",
        "passkeys",
        success=(200, schemas.TokenResponseSchema),
        errors=_CLIENT_ERRORS,
        description="The `auth_session` is consumed atomically: of any number of concurrent "
        "redemptions exactly one succeeds. Form-encoded requests carry `authn_response` as "
        "JSON text. A refresh token is rotated on every use, and checked before it is spent: "
        "a refused request leaves it usable; a spent one presented again revokes every token "
        "rotated from the same sign-in.",
        request={
            "required": True,
            "content": {
                JSON: {"schema": _token_body(form=False)},
                FORM: {"schema": _token_body(form=True)},
            },
        },
        security=_CLIENT_AUTH,
        parameters=(_DPOP_HEADER,),
        locks_out=True,
        error_descriptions={
            400: ERROR_DESCRIPTIONS[400] + " `invalid_grant` with `Unknown or invalid refresh "
            "token.` for a refresh token that cannot be redeemed, or a DPoP-bound one that comes "
            "without a proof of its key; `invalid_scope` when a refresh asks for a scope the "
            "sign-in was not granted; `invalid_dpop_proof`: the `DPoP` header is not a valid "
            "proof for this request.",
            403: "`access_denied`: the user is not a member of the organization, or the "
            "`audience` is unknown.",
            429: ERROR_DESCRIPTIONS[429] + " `too_many_attempts` during a lockout "
            "(`PASSKEY_LOCKOUT`): too many failed exchanges from this client IP or with this "
            "passkey.",
        },
        success_headers={"Cache-Control": {"schema": {"type": "string", "const": "no-store"}}},
    ),
    Operation(
        "post",
        "/oauth/revoke",
        "revoke",
        "Revoke a refresh token and every token rotated from the same sign-in (RFC 7009)",
        "passkeys",
        success=(200, None),
        errors=_CLIENT_ERRORS,
        description="The client authenticates as at `/oauth/token`. The answer is 200 with an "
        "empty body whether the token was revoked, unknown, already revoked, or issued to "
        "another client (which leaves it alone). Access tokens cannot be revoked: they expire.",
        request={
            "required": True,
            "content": {
                JSON: {"schema": {"$ref": "#/components/schemas/RevokeRequest"}},
                FORM: {"schema": {"$ref": "#/components/schemas/RevokeRequest"}},
            },
        },
        security=_CLIENT_AUTH,
    ),
    Operation(
        "get",
        "/.well-known/jwks.json",
        "jwks",
        "The keys that sign ID and access tokens",
        "discovery",
        success=(200, schemas.JwksSchema),
        errors=_DISCOVERY_ERRORS,
        prefixed=False,
        rate_limited=False,
    ),
    Operation(
        "get",
        "/.well-known/openid-configuration",
        "openidConfiguration",
        "OpenID Connect discovery document",
        "discovery",
        success=(200, schemas.OpenIdConfigurationSchema),
        errors=_DISCOVERY_ERRORS,
        prefixed=False,
        rate_limited=False,
    ),
    Operation(
        "get",
        "/.well-known/assetlinks.json",
        "assetLinks",
        "Android Digital Asset Links: the apps that may use this domain's passkeys",
        "discovery",
        success=(200, {"type": "array", "items": schemas.AssetLinkStatementSchema}),
        errors=_DISCOVERY_ERRORS,
        prefixed=False,
        rate_limited=False,
    ),
    Operation(
        "get",
        "/.well-known/apple-app-site-association",
        "appleAppSiteAssociation",
        "Apple app-site association: the iOS apps that may use this domain's passkeys",
        "discovery",
        success=(200, schemas.AppleAppSiteAssociationSchema),
        errors=_DISCOVERY_ERRORS,
        prefixed=False,
        rate_limited=False,
    ),
    Operation(
        "get",
        "/.well-known/webauthn",
        "webauthnRelatedOrigins",
        "WebAuthn related origins: pages on other domains that may use this domain's RP ID",
        "discovery",
        success=(200, schemas.WebAuthnRelatedOriginsSchema),
        errors=_DISCOVERY_ERRORS,
        prefixed=False,
        rate_limited=False,
    ),
    Operation(
        "get",
        OPENAPI_PATH,
        "openapi",
        "This document",
        "discovery",
        success=(200, {"type": "object"}),
        errors=(400, 404, 405),
        rate_limited=False,
    ),
    # -- OpenID Connect userinfo ----------------------------------------------------------------
    Operation(
        "get",
        "/userinfo",
        "userinfo",
        "The signed-in user's claims",
        "userinfo",
        success=(200, schemas.UserInfoSchema),
        errors=(400, 401, 404, 405, 429, 503),
        description="OpenID Connect userinfo (OIDC Core §5.3) for an access token of the "
        "userinfo audience: `sub`, and the claims its scopes release (`profile`, `email`, "
        "`phone`).",
        security=_BEARER,
        parameters=(_DPOP_HEADER,),
        error_descriptions=_USERINFO_ERRORS,
    ),
    Operation(
        "post",
        "/userinfo",
        "userinfoPost",
        "The signed-in user's claims (POST)",
        "userinfo",
        success=(200, schemas.UserInfoSchema),
        errors=(400, 401, 404, 405, 413, 429, 503),
        description="As `GET /userinfo`; a bearer token may also come as the form field "
        "`access_token` (RFC 6750 §2.2), but not both ways at once (400).",
        request={
            "required": False,
            "content": {
                FORM: {
                    "schema": {
                        "type": "object",
                        "properties": {"access_token": {"type": "string"}},
                    }
                }
            },
        },
        security=_BEARER,
        parameters=(_DPOP_HEADER,),
        error_descriptions=_USERINFO_ERRORS,
    ),
    # -- My Account API: a signed-in user's own passkeys ---------------------------------------
    Operation(
        "post",
        _ACCOUNT_PATH,
        "startPasskeyEnrollment",
        "Start adding a passkey to the signed-in user",
        "my-account",
        success=(202, schemas.EnrollmentChallengeResponseSchema),
        errors=(400, 401, 403, 404, 405, 413, 429, 503),
        description="Scope `create:me:authentication_methods`. Returns creation options that "
        "exclude the user's passkeys; `Location` names the method to verify "
        "(`.../passkey%7Cnew`): post the attestation to its `/verify`.",
        request=schemas.EnrollmentRequestSchema,
        security=_BEARER,
        parameters=(_DPOP_HEADER,),
        error_descriptions=_ACCOUNT_ERRORS,
        success_headers={"Location": {"schema": {"type": "string"}}},
        links={"verify": _VERIFY_LINK},
    ),
    Operation(
        "post",
        _ACCOUNT_PATH + "/{authentication_method_id}/verify",
        "verifyPasskeyEnrollment",
        "Confirm a passkey enrollment with the browser's attestation",
        "my-account",
        success=(201, schemas.AuthenticationMethodSchema),
        errors=(400, 401, 403, 404, 405, 413, 429, 503),
        description="Scope `create:me:authentication_methods`; `authentication_method_id` is "
        "`passkey|new`. `Location` is the new passkey.",
        request=schemas.EnrollmentVerifySchema,
        security=_BEARER,
        parameters=(_METHOD_ID, _DPOP_HEADER),
        error_descriptions=_ACCOUNT_ERRORS,
        success_headers={"Location": {"schema": {"type": "string"}}},
    ),
    Operation(
        "get",
        _ACCOUNT_PATH,
        "listAuthenticationMethods",
        "The signed-in user's passkeys",
        "my-account",
        success=(200, schemas.AuthenticationMethodListSchema),
        errors=(400, 401, 403, 404, 405, 429, 503),
        description="Scope `read:me:authentication_methods`.",
        security=_BEARER,
        parameters=(
            {
                "name": "type",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": "Only methods of this type (`passkey`).",
            },
            _DPOP_HEADER,
        ),
        error_descriptions=_ACCOUNT_ERRORS,
    ),
    Operation(
        "get",
        _ACCOUNT_PATH + "/{authentication_method_id}",
        "getAuthenticationMethod",
        "One of the signed-in user's passkeys",
        "my-account",
        success=(200, schemas.AuthenticationMethodSchema),
        errors=(400, 401, 403, 404, 405, 429, 503),
        description="Scope `read:me:authentication_methods`.",
        security=_BEARER,
        parameters=(_METHOD_ID, _DPOP_HEADER),
        error_descriptions=_ACCOUNT_ERRORS,
    ),
    Operation(
        "patch",
        _ACCOUNT_PATH + "/{authentication_method_id}",
        "renameAuthenticationMethod",
        "Rename one of the signed-in user's passkeys",
        "my-account",
        success=(200, schemas.AuthenticationMethodSchema),
        errors=(400, 401, 403, 404, 405, 413, 429, 503),
        description="Scope `update:me:authentication_methods`.",
        request=schemas.RenameRequestSchema,
        security=_BEARER,
        parameters=(_METHOD_ID, _DPOP_HEADER),
        error_descriptions=_ACCOUNT_ERRORS,
    ),
    Operation(
        "delete",
        _ACCOUNT_PATH + "/{authentication_method_id}",
        "deleteAuthenticationMethod",
        "Delete one of the signed-in user's passkeys",
        "my-account",
        success=(204, None),
        errors=(400, 401, 403, 404, 405, 409, 429, 503),
        description="Scope `delete:me:authentication_methods`. The user's last passkey is kept "
        "(409) unless `PASSKEY_ALLOW_DELETING_LAST_PASSKEY`.",
        security=_BEARER,
        parameters=(_METHOD_ID, _DPOP_HEADER),
        error_descriptions={**_ACCOUNT_ERRORS, 409: "`conflict`: it is the user's last passkey."},
    ),
    Operation(
        "get",
        "/me/v1/factors",
        "getFactors",
        "The factors the signed-in user may enroll",
        "my-account",
        success=(200, schemas.FactorListSchema),
        errors=(400, 401, 403, 404, 405, 429, 503),
        description="Scope `read:me:factors`. Lists `passkey`, for signing in.",
        security=_BEARER,
        parameters=(_DPOP_HEADER,),
        error_descriptions={**_ACCOUNT_ERRORS, 404: "`not_found`: passkeys are disabled."},
    ),
)


def build_openapi(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API as ``settings`` configure it (URL prefix, body size
    limit, rate limiting, lockout), as a new dict."""
    return copy.deepcopy(_build(*_relevant(settings)))


def openapi_json(settings: Settings) -> str:
    """:func:`build_openapi` as JSON text (computed once per configuration)."""
    return _json(*_relevant(settings))


def _relevant(settings: Settings) -> tuple[str, int, str | None, str | None]:
    """The settings the document depends on."""
    return (
        settings.url_prefix,
        settings.max_body_size,
        settings.rate_limit if settings.rate_limit_enabled else None,
        settings.lockout or None,
    )


@lru_cache(maxsize=16)
def _json(url_prefix: str, max_body_size: int, rate_limit: str | None, lockout: str | None) -> str:
    return json.dumps(_build(url_prefix, max_body_size, rate_limit, lockout), indent=2)


@lru_cache(maxsize=16)
def _build(
    url_prefix: str, max_body_size: int, rate_limit: str | None, lockout: str | None
) -> dict[str, Any]:
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(
        title="flask-passkey",
        version=_version(),
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={
            "description": "Auth0-compatible passkey (WebAuthn) API: sign-up and login "
            "challenges, the token endpoint, discovery files and the My Account API. Every "
            "request must be made on one of the tenant's custom domains. Errors are "
            '`{"error": "<code>", "error_description": "<sentence>"}`.'
            + (
                f" Each client IP may make {rate_limit} requests to each rate-limited endpoint."
                if rate_limit
                else " Rate limiting is off."
            )
            + (
                f" The token endpoint allows {lockout} failed exchanges per client IP; then it "
                "answers 429 until the window ends."
                if lockout
                else ""
            ),
        },
    )
    assert plugin.converter is not None
    for attribute_function in (_credential_json, _dict_size):
        plugin.converter.add_attribute_function(attribute_function)  # type: ignore[no-untyped-call]
    _add_components(spec, plugin.converter)
    for operation in OPERATIONS:
        path = (url_prefix if operation.prefixed else "") + operation.path
        spec.path(
            path=path,
            operations={
                operation.method: _operation(
                    operation, max_body_size, limited=bool(rate_limit), lockout=bool(lockout)
                )
            },
        )
    document = spec.to_dict()
    _describe_components(document["components"]["schemas"])
    return document


def _describe_components(components: dict[str, Any]) -> None:
    """Each schema component's description is its marshmallow class's docstring (apispec only
    reads ``Meta.description``, and then drops ``additionalProperties``)."""
    for value in vars(schemas).values():
        if isinstance(value, type) and issubclass(value, Schema) and value.__doc__:
            component = components.get(_schema_name(value))
            if component is not None and "description" not in component:
                component["description"] = inspect.cleandoc(value.__doc__)


def _version() -> str:
    try:
        return metadata.version("flask-passkey")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def _credential_json(
    self: OpenAPIConverter, field: fields.Field[Any], **kwargs: Any
) -> dict[str, Any]:
    """``authn_response`` (schemas.CredentialJson) is a PublicKeyCredential JSON object."""
    if isinstance(field, schemas.CredentialJson):
        ref: dict[str, Any] = self.resolve_nested_schema(  # type: ignore[no-untyped-call]
            schemas.PublicKeyCredentialSchema
        )
        return ref
    return {}


def _dict_size(self: OpenAPIConverter, field: fields.Field[Any], **kwargs: Any) -> dict[str, Any]:
    """A Length validator on a Dict limits its number of properties, not a string length
    (apispec would write minLength/maxLength)."""
    if not isinstance(field, fields.Dict):
        return {}
    ret: dict[str, Any] = kwargs["ret"]
    moved = {}
    for source, target in (("minLength", "minProperties"), ("maxLength", "maxProperties")):
        if source in ret:
            moved[target] = ret.pop(source)
    return moved


def _add_components(spec: APISpec, converter: OpenAPIConverter) -> None:
    spec.components.schema("Error", schema=schemas.ErrorSchema)
    spec.components.schema("ProblemError", schema=schemas.ProblemErrorSchema)
    spec.components.schema("AttestationResponse", schema=schemas._AttestationResponseSchema)
    spec.components.schema("AssertionResponse", schema=schemas._AssertionResponseSchema)
    spec.components.schema("PublicKeyCredential", schema=schemas.PublicKeyCredentialSchema)
    for grant in TOKEN_GRANTS:
        spec.components.schema(_schema_name(grant.schema), schema=grant.schema)
    spec.components.schema("RevokeRequest", schema=schemas.RevokeRequestSchema)
    # A form carries authn_response as JSON text: the same fields, that one as a string whose
    # content is a PublicKeyCredential.
    form: dict[str, Any] = converter.schema2jsonschema(  # type: ignore[no-untyped-call]
        schemas.WebAuthnGrantSchema()
    )
    form["properties"]["authn_response"] = {
        "type": "string",
        "contentMediaType": JSON,
        "contentSchema": {"$ref": "#/components/schemas/PublicKeyCredential"},
    }
    spec.components.schema("WebAuthnGrantForm", component=form)
    spec.components.header(
        "X-RateLimit-Limit",
        {"description": "Requests allowed in the current window.", "schema": {"type": "integer"}},
    )
    spec.components.header(
        "X-RateLimit-Remaining",
        {"description": "Requests left in the current window.", "schema": {"type": "integer"}},
    )
    spec.components.header(
        "X-RateLimit-Reset",
        {
            "description": "When the window resets (Unix time, seconds).",
            "schema": {"type": "integer"},
        },
    )
    spec.components.header(
        "Retry-After",
        {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}},
    )
    spec.components.header(
        "WWW-Authenticate",
        {"description": "The authentication scheme to use.", "schema": {"type": "string"}},
    )
    spec.components.security_scheme(
        "clientSecretBasic",
        {
            "type": "http",
            "scheme": "basic",
            "description": "`client_secret_basic`: client_id and client_secret as HTTP Basic "
            "credentials. Clients using `client_secret_post` send `client_secret` in the body; "
            "public clients (`none`) send neither.",
        },
    )
    spec.components.security_scheme(
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token of this server for the operation's audience "
            "(`https://<custom domain>/me/` with the operation's scope for the My Account API, "
            "`https://<custom domain>/userinfo` for userinfo).",
        },
    )
    spec.components.security_scheme(
        "dpopAuth",
        {
            "type": "http",
            "scheme": "dpop",
            "description": "A DPoP-bound access token (RFC 9449, `token_type` `DPoP`) as "
            "`Authorization: DPoP <token>`, with a `DPoP` header proving its key for this "
            "request.",
        },
    )


def _operation(
    operation: Operation, max_body_size: int, *, limited: bool, lockout: bool
) -> dict[str, Any]:
    rate_limited = limited and operation.rate_limited
    too_many = rate_limited or (lockout and operation.locks_out)
    limit_headers: dict[str, Any] = (
        {name: name for name in _RATE_LIMIT_HEADERS} if rate_limited else {}
    )
    status, body = operation.success
    success: dict[str, Any] = {
        "description": "Success.",
        "headers": {**limit_headers, **operation.success_headers},
    }
    if body is not None:
        success["content"] = {JSON: {"schema": body}}
    if operation.links:
        success["links"] = dict(operation.links)
    responses: dict[str, Any] = {str(status): success}
    error_schema = (
        schemas.ProblemErrorSchema if operation.tag == "my-account" else schemas.ErrorSchema
    )
    for code in operation.errors:
        if code == 429 and not too_many:
            continue
        description = operation.error_descriptions.get(code, ERROR_DESCRIPTIONS[code])
        if code == 413:
            description = f"The request body is larger than {max_body_size} bytes."
        headers = dict(limit_headers)
        if code == 429:
            headers["Retry-After"] = "Retry-After"
        if code == 401:
            headers["WWW-Authenticate"] = "WWW-Authenticate"
        if code == 405:
            headers["Allow"] = {
                "description": "The methods this path answers.",
                "schema": {"type": "string"},
            }
        responses[str(code)] = {
            "description": description,
            "headers": headers,
            "content": {JSON: {"schema": error_schema}},
        }
    for response in responses.values():
        if not response["headers"]:
            del response["headers"]
    result: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "tags": [operation.tag],
        "responses": responses,
    }
    if operation.description:
        result["description"] = operation.description
    if operation.parameters:
        result["parameters"] = [dict(p) for p in operation.parameters]
    if isinstance(operation.request, type):
        result["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": operation.request}},
        }
    elif operation.request is not None:
        result["requestBody"] = copy.deepcopy(dict(operation.request))
    if operation.security is not None:
        result["security"] = [dict(s) for s in operation.security]
    return result


def main() -> None:
    """Print the document for the default configuration
    (``python -m flask_passkey.web.openapi``)."""
    sys.stdout.write(openapi_json(Settings()) + "\n")


if __name__ == "__main__":
    main()
