"""Request and response bodies of the HTTP API (marshmallow), and their error messages.

Request schemas validate every body. Response schemas describe what the endpoints answer (the
API description is generated from them, and the tests check answers against them); the views
build those small dicts directly to keep the hot path lean.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
)

from flask_passkey.errors import InvalidRequest
from flask_passkey.models import REFRESH_TOKEN_GRANT, WEBAUTHN_GRANT

E164 = r"^\+[1-9][0-9]{1,14}$"
USERNAME = r"^[A-Za-z0-9_.+@-]{1,128}$"
_ID = validate.Length(min=1, max=256)


def _optional_string(*, max_length: int = 256) -> fields.String:
    return fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=max_length)
    )


class ClientRequestSchema(Schema):
    """Fields every client-facing endpoint takes. Unknown top-level fields are ignored."""

    class Meta:
        unknown = EXCLUDE

    #: Required, unless the client authenticates with HTTP Basic (which names it).
    client_id = _optional_string()
    client_secret = _optional_string(max_length=1024)
    realm = _optional_string()
    organization = _optional_string()


class ChallengeRequestSchema(ClientRequestSchema):
    """``POST /passkey/challenge``."""


class UserProfileSchema(Schema):
    """``user_profile`` of a sign-up: unknown properties are rejected."""

    class Meta:
        unknown = RAISE

    email = fields.Email(validate=validate.Length(max=254))
    phone_number = fields.String(
        validate=validate.Regexp(E164, error="must be E.164 (+15551234567).")
    )
    username = fields.String(validate=validate.Regexp(USERNAME))
    name = fields.String(validate=validate.Length(min=1, max=300))
    given_name = fields.String(validate=validate.Length(min=1, max=150))
    family_name = fields.String(validate=validate.Length(min=1, max=150))
    nickname = fields.String(validate=validate.Length(min=1, max=300))
    picture = fields.Url(schemes={"https"}, validate=validate.Length(max=2048))

    @post_load
    def _normalise(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if "email" in data:
            data["email"] = data["email"].lower()
        return data


class RegisterRequestSchema(ClientRequestSchema):
    """``POST /passkey/register``."""

    user_profile = fields.Nested(UserProfileSchema, required=True)
    user_metadata = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=255)),
        values=fields.String(validate=validate.Length(max=500)),
        load_default=dict,
        validate=validate.Length(max=10, error="at most 10 properties."),
    )


class CredentialJson(fields.Field[dict[str, Any]]):
    """The browser's ``PublicKeyCredential.toJSON()``: an object, or that object as JSON text
    (form-encoded requests)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                raise ValidationError("must be a JSON object.") from None
            if not is_unicode_clean(value):
                raise ValidationError("must not contain unpaired surrogate escapes.")
        if not isinstance(value, dict):
            raise ValidationError("must be a JSON object.")
        return value


class TokenRequestSchema(Schema):
    """Fields of ``POST /oauth/token`` shared by every grant."""

    class Meta:
        unknown = EXCLUDE

    grant_type = fields.String(required=True, validate=validate.Length(min=1, max=256))
    client_id = fields.String(load_default=None, allow_none=True, validate=_ID)
    client_secret = _optional_string(max_length=1024)
    scope = _optional_string(max_length=1024)
    audience = _optional_string(max_length=1024)


class WebAuthnGrantSchema(TokenRequestSchema):
    """``grant_type=urn:okta:params:oauth:grant-type:webauthn``."""

    grant_type = fields.String(required=True, validate=validate.Equal(WEBAUTHN_GRANT))
    auth_session = fields.String(required=True, validate=validate.Length(min=1, max=512))
    authn_response = CredentialJson(required=True)
    realm = _optional_string()
    organization = _optional_string()


class RefreshGrantSchema(TokenRequestSchema):
    """``grant_type=refresh_token``."""

    grant_type = fields.String(required=True, validate=validate.Equal(REFRESH_TOKEN_GRANT))
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=512))


class RevokeRequestSchema(Schema):
    """``POST /oauth/revoke`` (RFC 7009): the token, and the client as at the token endpoint."""

    class Meta:
        unknown = EXCLUDE

    token = fields.String(required=True, validate=validate.Length(min=1, max=8192))
    #: Accepted and ignored: only refresh tokens can be revoked, whatever the hint says.
    token_type_hint = _optional_string()
    client_id = fields.String(load_default=None, allow_none=True, validate=_ID)
    client_secret = _optional_string(max_length=1024)


class RequestOptionsSchema(Schema):
    """WebAuthn ``PublicKeyCredentialRequestOptions`` (JSON form)."""

    challenge = fields.String(required=True)
    timeout = fields.Integer(required=True)
    rpId = fields.String(required=True)
    userVerification = fields.String(required=True)


class ChallengeResponseSchema(Schema):
    """200 answer of ``POST /passkey/challenge``."""

    auth_session = fields.String(required=True)
    authn_params_public_key = fields.Nested(RequestOptionsSchema, required=True)


class _RelyingPartySchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)


class _UserEntitySchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    displayName = fields.String(required=True)


class _CredentialParameterSchema(Schema):
    type = fields.String(required=True)
    alg = fields.Integer(required=True)


class _AuthenticatorSelectionSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    residentKey = fields.String(required=True)
    userVerification = fields.String(required=True)
    requireResidentKey = fields.Boolean()


class CreationOptionsSchema(Schema):
    """WebAuthn ``PublicKeyCredentialCreationOptions`` (JSON form)."""

    class Meta:
        unknown = EXCLUDE

    challenge = fields.String(required=True)
    timeout = fields.Integer(required=True)
    rp = fields.Nested(_RelyingPartySchema, required=True)
    user = fields.Nested(_UserEntitySchema, required=True)
    pubKeyCredParams = fields.List(fields.Nested(_CredentialParameterSchema), required=True)
    authenticatorSelection = fields.Nested(_AuthenticatorSelectionSchema, required=True)
    attestation = fields.String()
    excludeCredentials = fields.List(fields.Dict())


class RegisterResponseSchema(Schema):
    """200 answer of ``POST /passkey/register``."""

    auth_session = fields.String(required=True)
    authn_params_public_key = fields.Nested(CreationOptionsSchema, required=True)


class UserInfoSchema(Schema):
    """200 answer of ``GET``/``POST /userinfo`` (OIDC Core §5.3.2): ``sub``, and the claims the
    access token's scopes release (``profile``, ``email``, ``phone``)."""

    sub = fields.String(required=True)
    name = fields.String()
    given_name = fields.String()
    family_name = fields.String()
    nickname = fields.String()
    picture = fields.String()
    preferred_username = fields.String()
    email = fields.String()
    email_verified = fields.Boolean()
    phone_number = fields.String()
    phone_number_verified = fields.Boolean()


class TokenResponseSchema(Schema):
    """200 answer of ``POST /oauth/token``."""

    access_token = fields.String(required=True)
    id_token = fields.String()
    token_type = fields.String(
        required=True,
        validate=validate.OneOf(["Bearer", "DPoP"]),
        metadata={"description": "`DPoP` when the request carried a valid DPoP proof."},
    )
    expires_in = fields.Integer(required=True)
    scope = fields.String(required=True)
    refresh_token = fields.String()


class EnrollmentRequestSchema(Schema):
    """``POST /me/v1/authentication-methods``: start adding a passkey to the signed-in user."""

    class Meta:
        unknown = EXCLUDE

    type = fields.String(
        required=True,
        validate=validate.Equal("passkey", error="only passkey enrollment is supported."),
    )
    connection = _optional_string(max_length=128)
    identity_user_id = _optional_string(max_length=255)


class EnrollmentVerifySchema(Schema):
    """``POST /me/v1/authentication-methods/passkey|new/verify``."""

    class Meta:
        unknown = EXCLUDE

    auth_session = fields.String(required=True, validate=validate.Length(min=1, max=512))
    authn_response = CredentialJson(required=True)


class RenameRequestSchema(Schema):
    """``PATCH /me/v1/authentication-methods/{id}``: a passkey's new name."""

    class Meta:
        unknown = EXCLUDE

    name = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=255),
            validate.Regexp(r"\s*\S", error="must not be blank."),
        ],
    )


class EnrollmentChallengeResponseSchema(RegisterResponseSchema):
    """202 answer of ``POST /me/v1/authentication-methods`` (with a ``Location`` header)."""


class AuthenticationMethodSchema(Schema):
    """A passkey as the My Account API shows it (Auth0's ``type: "passkey"`` method)."""

    id = fields.String(required=True)
    type = fields.String(required=True, validate=validate.Equal("passkey"))
    name = fields.String()
    created_at = fields.String(required=True)
    last_auth_at = fields.String()
    usage = fields.List(fields.String(), required=True)
    identity_user_id = fields.String(required=True)
    key_id = fields.String(required=True)
    public_key = fields.String(required=True)
    user_handle = fields.String(required=True)
    credential_device_type = fields.String(
        required=True, validate=validate.OneOf(["single_device", "multi_device"])
    )
    credential_backed_up = fields.Boolean(required=True)
    aaguid = fields.String(required=True)
    relying_party_id = fields.String(required=True)
    transports = fields.List(fields.String(), required=True)


class AuthenticationMethodListSchema(Schema):
    """200 answer of ``GET /me/v1/authentication-methods``."""

    authentication_methods = fields.List(fields.Nested(AuthenticationMethodSchema), required=True)


class FactorSchema(Schema):
    """A factor the user may enroll, as Auth0's My Account API lists it."""

    type = fields.String(required=True)
    usage = fields.List(fields.String(), required=True)


class FactorListSchema(Schema):
    """200 answer of ``GET /me/v1/factors``."""

    factors = fields.List(fields.Nested(FactorSchema), required=True)


class ErrorSchema(Schema):
    """Every 4xx/5xx body."""

    error = fields.String(required=True)
    error_description = fields.String(required=True)
    #: Names the request in the server's log, where the details of the refusal are.
    request_id = fields.String(required=True)
    unknown_credential_id = fields.String(
        metadata={
            "description": "Only at /oauth/token, for a valid auth_session redeemed with a passkey "
            "the server does not hold: its id (base64url), for signalUnknownCredential."
        }
    )


class ProblemErrorSchema(ErrorSchema):
    """The My Account API's error body: ours plus the RFC 7807 members Auth0's SDKs read."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)


def is_unicode_clean(value: Any) -> bool:
    """Whether every string in a decoded JSON value is valid Unicode.

    JSON's ``\\ud800`` escapes decode to lone surrogates that no encoder, database driver or
    JWT signer accepts: refuse them at the door instead of failing halfway through the work.
    """
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def load_body(schema: Schema, body: Any) -> dict[str, Any]:
    """Validate a decoded body; raise InvalidRequest naming every bad field."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        data: dict[str, Any] = schema.load(body)
    except ValidationError as error:
        raise InvalidRequest(describe_errors(error.messages)) from error
    return data


def describe_errors(messages: Any, path: str = "") -> str:
    """Flatten marshmallow's nested error messages into one sentence per field."""
    if isinstance(messages, Mapping):
        return "; ".join(
            describe_errors(value, f"{path}.{key}" if path else str(key))
            for key, value in messages.items()
        )
    if isinstance(messages, list):
        text = " ".join(str(m) for m in messages if not isinstance(m, (Mapping, list)))
        nested = [describe_errors(m, path) for m in messages if isinstance(m, (Mapping, list))]
        return "; ".join(filter(None, [f"{path}: {text}" if text else "", *nested]))
    return f"{path}: {messages}"


# -- the rest of the API description: what ``authn_response`` carries, and the well-known
# files. Like the response schemas above they are not used to load anything: they document the
# wire format (flask_passkey.web.openapi builds the OpenAPI document from them) and the tests check
# real answers against them.


class _AttestationResponseSchema(Schema):
    """``AuthenticatorAttestationResponseJSON``: the ``response`` of a created passkey."""

    class Meta:
        unknown = EXCLUDE

    clientDataJSON = fields.String(required=True, metadata={"description": "base64url"})
    attestationObject = fields.String(required=True, metadata={"description": "base64url CBOR"})
    authenticatorData = fields.String(metadata={"description": "base64url"})
    publicKey = fields.String(metadata={"description": "base64url DER SubjectPublicKeyInfo"})
    publicKeyAlgorithm = fields.Integer(metadata={"description": "COSE algorithm identifier"})
    transports = fields.List(fields.String())


class _AssertionResponseSchema(Schema):
    """``AuthenticatorAssertionResponseJSON``: the ``response`` of a passkey sign-in."""

    class Meta:
        unknown = EXCLUDE

    clientDataJSON = fields.String(required=True, metadata={"description": "base64url"})
    authenticatorData = fields.String(required=True, metadata={"description": "base64url"})
    signature = fields.String(required=True, metadata={"description": "base64url"})
    userHandle = fields.String(allow_none=True, metadata={"description": "base64url"})


class PublicKeyCredentialSchema(Schema):
    """The browser's ``PublicKeyCredential.toJSON()`` (``authn_response``): the answer of
    ``navigator.credentials.create()`` (sign-up) or ``navigator.credentials.get()`` (login)."""

    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True, metadata={"description": "base64url credential id"})
    rawId = fields.String(required=True, metadata={"description": "base64url credential id"})
    type = fields.String(required=True, validate=validate.Equal("public-key"))
    authenticatorAttachment = fields.String(
        allow_none=True, validate=validate.OneOf(["platform", "cross-platform"])
    )
    clientExtensionResults = fields.Dict()
    response = fields.Raw(
        required=True,
        metadata={
            "anyOf": [
                {"$ref": "#/components/schemas/AttestationResponse"},
                {"$ref": "#/components/schemas/AssertionResponse"},
            ]
        },
    )


class JwkSchema(Schema):
    """A public RSA signing key (RFC 7517)."""

    kty = fields.String(required=True, validate=validate.Equal("RSA"))
    kid = fields.String(required=True)
    alg = fields.String(required=True, validate=validate.Equal("RS256"))
    use = fields.String(validate=validate.Equal("sig"))
    n = fields.String(required=True)
    e = fields.String(required=True)


class JwksSchema(Schema):
    """200 answer of ``GET /.well-known/jwks.json``: the keys that sign ID and access tokens."""

    keys = fields.List(fields.Nested(JwkSchema), required=True)


class OpenIdConfigurationSchema(Schema):
    """200 answer of ``GET /.well-known/openid-configuration`` (OpenID Connect Discovery)."""

    issuer = fields.String(required=True)
    jwks_uri = fields.String(required=True)
    token_endpoint = fields.String(required=True)
    userinfo_endpoint = fields.String(required=True)
    grant_types_supported = fields.List(fields.String(), required=True)
    response_types_supported = fields.List(fields.String(), required=True)
    subject_types_supported = fields.List(fields.String(), required=True)
    id_token_signing_alg_values_supported = fields.List(fields.String(), required=True)
    token_endpoint_auth_methods_supported = fields.List(fields.String(), required=True)
    revocation_endpoint = fields.String(required=True)
    revocation_endpoint_auth_methods_supported = fields.List(fields.String(), required=True)
    scopes_supported = fields.List(fields.String(), required=True)
    claims_supported = fields.List(fields.String(), required=True)
    dpop_signing_alg_values_supported = fields.List(fields.String(), required=True)


class _AndroidAppTargetSchema(Schema):
    namespace = fields.String(required=True, validate=validate.Equal("android_app"))
    package_name = fields.String(required=True)
    sha256_cert_fingerprints = fields.List(fields.String(), required=True)


class AssetLinkStatementSchema(Schema):
    """One statement of ``GET /.well-known/assetlinks.json`` (an array of them): an Android app
    that may use this domain's passkeys."""

    relation = fields.List(fields.String(), required=True)
    target = fields.Nested(_AndroidAppTargetSchema, required=True)


class _WebCredentialsSchema(Schema):
    apps = fields.List(fields.String(), required=True, metadata={"description": "TEAMID.bundle"})


class AppleAppSiteAssociationSchema(Schema):
    """200 answer of ``GET /.well-known/apple-app-site-association``: the iOS apps that may use
    this domain's passkeys."""

    webcredentials = fields.Nested(_WebCredentialsSchema, required=True)


class WebAuthnRelatedOriginsSchema(Schema):
    """200 answer of ``GET /.well-known/webauthn`` (WebAuthn Level 3 §5.11): the origins whose
    pages may use this domain's RP ID."""

    origins = fields.List(fields.String(), required=True)
