"""Request and response bodies of the HTTP API (marshmallow), and their error messages.

Request schemas validate every body. Response schemas describe what the endpoints answer (the
API description is generated from them, and the tests check answers against them); the views
build those small dicts directly to keep the hot path lean.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, post_load, validate

from .errors import InvalidRequest

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

    client_id = fields.String(required=True, validate=_ID)
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
            except ValueError:
                raise ValidationError("must be a JSON object.") from None
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

    auth_session = fields.String(required=True, validate=validate.Length(min=1, max=512))
    authn_response = CredentialJson(required=True)
    realm = _optional_string()
    organization = _optional_string()


class RefreshGrantSchema(TokenRequestSchema):
    """``grant_type=refresh_token``."""

    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=512))


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


class TokenResponseSchema(Schema):
    """200 answer of ``POST /oauth/token``."""

    access_token = fields.String(required=True)
    id_token = fields.String()
    token_type = fields.String(required=True, validate=validate.Equal("Bearer"))
    expires_in = fields.Integer(required=True)
    scope = fields.String(required=True)
    refresh_token = fields.String()


class ErrorSchema(Schema):
    """Every 4xx/5xx body."""

    error = fields.String(required=True)
    error_description = fields.String(required=True)


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
