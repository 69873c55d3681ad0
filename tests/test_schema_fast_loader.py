"""The fast path of ``load_body`` (schemas.fast_loader) answers exactly what marshmallow does."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from flask_passkey import schemas
from flask_passkey.errors import InvalidRequest
from flask_passkey.schemas import fast_loader, load_body

REQUEST_SCHEMAS = [
    schemas.ChallengeRequestSchema,
    schemas.TokenRequestSchema,
    schemas.RegisterRequestSchema,
    schemas.WebAuthnGrantSchema,
    schemas.RefreshGrantSchema,
]

VALUES: list[Any] = [
    "bench-spa",
    "",
    "x" * 256,
    "x" * 257,
    "x" * 1025,
    None,
    0,
    True,
    ["a"],
    {"a": 1},
    b"bytes",
]
FIELDS = ["client_id", "client_secret", "realm", "organization", "grant_type", "scope", "extra"]


def _bodies() -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = [{}]
    for name in FIELDS:
        bodies += [{name: value} for value in VALUES]
    for first, second in itertools.combinations(FIELDS[:5], 2):
        bodies += [
            {first: a, second: b} for a, b in itertools.product(["ok", "", None, 1], repeat=2)
        ]
    bodies.append(
        {"client_id": "bench-spa", "client_secret": "s", "realm": "r", "organization": "o"}
    )
    return bodies


def _marshmallow(schema: Schema, body: dict[str, Any]) -> dict[str, Any] | None:
    try:
        loaded: dict[str, Any] = schema.load(body)
    except ValidationError:
        return None
    return loaded


@pytest.mark.parametrize("schema_class", REQUEST_SCHEMAS, ids=lambda c: c.__name__)
def test_fast_loader_agrees_with_marshmallow(schema_class: type[Schema]) -> None:
    schema = schema_class()
    fast = fast_loader(schema)
    if fast is None:
        return  # not a plain-string schema: marshmallow loads it
    accepted = 0
    for body in _bodies():
        quick = fast(body)
        if quick is not None:
            accepted += 1
            assert quick == _marshmallow(schema, body), body
            assert list(quick) == list(schema.load(body)), body  # same keys, same order
    assert accepted > 10


def test_the_challenge_and_token_schemas_take_the_fast_path() -> None:
    assert fast_loader(schemas.ChallengeRequestSchema()) is not None
    assert fast_loader(schemas.TokenRequestSchema()) is not None


def test_load_body_errors_are_marshmallows() -> None:
    schema = schemas.ChallengeRequestSchema()
    with pytest.raises(InvalidRequest, match="client_id"):
        load_body(schema, {"client_id": ""})
    with pytest.raises(InvalidRequest, match="realm"):
        load_body(schema, {"client_id": "a", "realm": 3})
    assert load_body(schema, {"client_id": "a", "other": 1}) == {
        "client_id": "a",
        "client_secret": None,
        "realm": None,
        "organization": None,
    }


class _Strict(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(min=2))


def test_unknown_fields_under_raise_go_to_marshmallow() -> None:
    fast = fast_loader(_Strict())
    assert fast is not None
    assert fast({"name": "ab"}) == {"name": "ab"}
    assert fast({"name": "ab", "other": 1}) is None
    assert fast({"name": "a"}) is None


def test_schemas_with_anything_else_have_no_fast_path() -> None:
    class Hooked(_Strict):
        @schemas.post_load
        def _upper(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
            return data

    class Other(Schema):
        count = fields.Integer()

    class Renamed(Schema):
        name = fields.String(data_key="other")

    class Regexp(Schema):
        name = fields.String(validate=validate.Regexp("a"))

    others = (Hooked(), Other(), Renamed(), Regexp(), _Strict(only=("name",)), _Strict(many=True))
    for schema in others:
        assert fast_loader(schema) is None
