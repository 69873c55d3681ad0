"""Request and response bodies of the HTTP API (marshmallow), and their error messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from .errors import InvalidRequest


class ClientRequestSchema(Schema):
    """Fields every client-facing endpoint takes. Unknown top-level fields are ignored."""

    class Meta:
        unknown = EXCLUDE

    client_id = fields.String(required=True, validate=validate.Length(min=1, max=256))
    client_secret = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=1024)
    )
    realm = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=256)
    )
    organization = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=256)
    )


class ChallengeRequestSchema(ClientRequestSchema):
    """``POST /passkey/challenge``."""


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


class ErrorSchema(Schema):
    """Every 4xx/5xx body."""

    error = fields.String(required=True)
    error_description = fields.String(required=True)


def load_body(schema: Schema, body: Any) -> dict[str, Any]:
    """Validate a decoded JSON body; raise InvalidRequest naming every bad field."""
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
        nested = [
            describe_errors(m, path) for m in messages if isinstance(m, (Mapping, list))
        ]
        return "; ".join(filter(None, [f"{path}: {text}" if text else "", *nested]))
    return f"{path}: {messages}"
