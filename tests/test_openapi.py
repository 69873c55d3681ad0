"""The OpenAPI document (flask_passkey.web.openapi): a valid OpenAPI 3.1 description generated from
the marshmallow schemas, served at /passkey/openapi.json, covering every route of the app, and
truthful: real answers of every endpoint match the schemas it gives for their status."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from flask import Flask
from werkzeug.test import TestResponse

from flask_passkey.config import Settings
from flask_passkey.core.audiences import MY_ACCOUNT_SCOPES
from flask_passkey.models import REFRESH_TOKEN_GRANT
from flask_passkey.testing import SoftAuthenticator
from flask_passkey.web.openapi import OPENAPI_PATH, OPERATIONS, build_openapi, main
from tests.apps import (
    ANDROID_PACKAGE,
    CUSTOM_DOMAIN,
    DEFAULT_DOMAIN,
    HOST,
    IOS_TEAM_ID,
    ME,
    make_app,
    tenant_data,
)
from tests.support import assert_oauth_error, new_email

ACCOUNT = "/me/v1/authentication-methods"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_openapi(Settings())


@pytest.fixture(scope="module")
def shared_app() -> Flask:
    return make_app(rate_limit_enabled=False)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def check_response(document: dict[str, Any], path: str, method: str, response: Any) -> None:
    """``response`` has a status the document lists for the operation, its content type, its
    documented headers in their schemas, and a body that validates against its schema."""
    operation = document["paths"][path][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], (path, method, status, response.get_data())
    documented = operation["responses"][status]
    content = documented.get("content")
    if content is None:
        assert response.get_data() == b""
        return
    assert response.mimetype in content, (path, status, response.mimetype)
    schema = content[response.mimetype]["schema"]
    validator = jsonschema_rs.validator_for({**schema, "components": document["components"]})
    body = response.get_json()
    errors = [str(error) for error in validator.iter_errors(body)]
    assert not errors, (path, method, status, body, errors)
    for name, header in documented.get("headers", {}).items():
        header = _resolve(document, header["$ref"]) if "$ref" in header else header
        if name in response.headers and header["schema"].get("type") == "integer":
            assert re.fullmatch(r"[0-9]+", response.headers[name]), (name, response.headers)


# -- the document itself -------------------------------------------------------------------


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    schemathesis.openapi.from_dict(document).validate()


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = set(_refs(document))
    assert "#/components/schemas/Error" in refs
    for ref in refs:
        assert isinstance(_resolve(document, ref), dict), ref


def test_every_operation_documents_its_error_statuses_with_the_error_body(
    document: dict[str, Any],
) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            codes = {int(code) for code in operation["responses"]}
            assert any(200 <= code < 300 for code in codes), (path, method)
            assert {400, 404, 405} <= codes, (path, method)
            for code, response in operation["responses"].items():
                if int(code) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    expected = "ProblemError" if path.startswith("/me/") else "Error"
                    assert schema == {"$ref": f"#/components/schemas/{expected}"}, (path, code)
            if operation.get("requestBody"):
                assert 413 in codes, (path, method)
            if path.startswith("/.well-known/"):
                assert 503 in codes and 429 not in codes, path
            elif path != OPENAPI_PATH:
                assert {429, 503} <= codes, (path, method)


def test_rate_limited_responses_document_the_rate_limit_headers(document: dict[str, Any]) -> None:
    token = document["paths"]["/oauth/token"]["post"]["responses"]
    for response in token.values():
        assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(
            response["headers"]
        )
    assert "Retry-After" in token["429"]["headers"]
    jwks = document["paths"]["/.well-known/jwks.json"]["get"]["responses"]
    assert all("X-RateLimit-Limit" not in r.get("headers", {}) for r in jwks.values())


def test_token_request_is_one_of_the_grants_in_json_and_form(document: dict[str, Any]) -> None:
    content = document["paths"]["/oauth/token"]["post"]["requestBody"]["content"]
    assert set(content) == {"application/json", "application/x-www-form-urlencoded"}
    for body in content.values():
        schema = body["schema"]
        assert len(schema["oneOf"]) == 2
        assert schema["discriminator"]["propertyName"] == "grant_type"
        assert set(schema["discriminator"]["mapping"]) == {
            "urn:okta:params:oauth:grant-type:webauthn",
            REFRESH_TOKEN_GRANT,
        }
    components = document["components"]["schemas"]
    assert components["WebAuthnGrant"]["properties"]["authn_response"] == {
        "$ref": "#/components/schemas/PublicKeyCredential"
    }
    form = components["WebAuthnGrantForm"]["properties"]["authn_response"]
    assert form["type"] == "string" and form["contentMediaType"] == "application/json"


def test_challenges_link_their_auth_session_to_the_token_endpoint(
    document: dict[str, Any],
) -> None:
    for path in ("/passkey/challenge", "/passkey/register"):
        link = document["paths"][path]["post"]["responses"]["200"]["links"]["redeem"]
        assert link["operationId"] == "token"
        assert link["requestBody"]["auth_session"] == "$response.body#/auth_session"


def test_document_follows_the_settings() -> None:
    document = build_openapi(
        Settings(url_prefix="/auth", max_body_size=4096, rate_limit_enabled=False)
    )
    paths = set(document["paths"])
    assert {"/auth/passkey/challenge", "/auth/oauth/token", "/auth" + OPENAPI_PATH} <= paths
    assert "/.well-known/jwks.json" in paths
    assert "/auth" + ACCOUNT in paths
    token = document["paths"]["/auth/oauth/token"]["post"]["responses"]
    assert "4096 bytes" in token["413"]["description"]
    assert "429" not in token
    assert all("X-RateLimit-Limit" not in r.get("headers", {}) for r in token.values())


def test_request_schemas_ignore_unknown_top_level_fields_but_not_in_user_profile(
    document: dict[str, Any],
) -> None:
    components = document["components"]["schemas"]
    for name in ("ChallengeRequest", "RegisterRequest", "WebAuthnGrant", "RefreshGrant"):
        assert components[name].get("additionalProperties", True) is not False, name
    assert components["UserProfile"]["additionalProperties"] is False
    assert components["RegisterRequest"]["properties"]["user_metadata"]["maxProperties"] == 10


def test_build_returns_a_new_document_each_time() -> None:
    first = build_openapi(Settings())
    first["paths"].clear()
    assert build_openapi(Settings())["paths"]


def test_main_prints_the_default_document(capsys: pytest.CaptureFixture[str]) -> None:
    main()
    assert json.loads(capsys.readouterr().out) == build_openapi(Settings())


# -- the document and the app ------------------------------------------------------------------


def _app_routes(app: Flask) -> set[tuple[str, str]]:
    """(path in OpenAPI form, method) of every flask-passkey view of ``app``."""
    routes = set()
    for rule in app.url_map.iter_rules():
        blueprint, _, name = rule.endpoint.rpartition(".")
        if not blueprint.startswith("passkey") or name.endswith("_other_methods"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower()))
    return routes


@pytest.mark.parametrize("prefix", ["", "/auth"])
def test_document_describes_exactly_the_routes_of_the_app(prefix: str) -> None:
    app = make_app(url_prefix=prefix)
    document = build_openapi(app.extensions["passkey"].settings)
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == _app_routes(app)
    assert len(OPERATIONS) == len(documented)


def test_served_document_is_the_generated_one_on_custom_domains_only() -> None:
    app = make_app(url_prefix="/auth")
    client = app.test_client()

    response = client.get("/auth" + OPENAPI_PATH, headers=HOST)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == build_openapi(app.extensions["passkey"].settings)

    wrong_domain = client.get("/auth" + OPENAPI_PATH, headers={"Host": DEFAULT_DOMAIN})
    assert_oauth_error(wrong_domain, 400, "invalid_request")
    assert client.get(OPENAPI_PATH, headers=HOST).status_code == 404


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/passkey/challenge", {"POST"}),
        ("/passkey/register", {"POST"}),
        ("/oauth/token", {"POST"}),
        ("/.well-known/jwks.json", {"GET", "HEAD"}),
        ("/.well-known/openid-configuration", {"GET", "HEAD"}),
        ("/.well-known/assetlinks.json", {"GET", "HEAD"}),
        ("/.well-known/apple-app-site-association", {"GET", "HEAD"}),
        (OPENAPI_PATH, {"GET", "HEAD"}),
        ("/userinfo", {"GET", "POST"}),
        (ACCOUNT, {"GET", "POST"}),
        (ACCOUNT + "/passkey%7Cabc", {"GET", "PATCH", "DELETE"}),
        (ACCOUNT + "/passkey%7Cnew/verify", {"POST"}),
        ("/me/v1/factors", {"GET"}),
    ],
)
def test_other_methods_get_a_json_405_listing_the_allowed_ones(
    shared_app: Flask, document: dict[str, Any], path: str, allowed: set[str]
) -> None:
    client = shared_app.test_client()
    template = re.sub(r"/passkey%7C\w+", "/{authentication_method_id}", path)
    for method in set(HTTP_METHODS) - allowed:
        response = client.open(path, method=method, headers=HOST)
        assert_oauth_error(response, 405, "invalid_request")
        assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed
        for documented in document["paths"][template].values():
            assert "405" in documented["responses"]


# -- real answers match the document -----------------------------------------------------------


def test_answers_of_every_endpoint_match_the_document(shared_app: Flask) -> None:
    document = build_openapi(shared_app.extensions["passkey"].settings)
    client = shared_app.test_client()

    def call(method: str, path: str, template: str | None = None, **kwargs: Any) -> TestResponse:
        headers = {**HOST, **kwargs.pop("headers", {})}
        response = client.open(path, method=method, headers=headers, **kwargs)
        check_response(document, template or path, method, response)
        return response

    # Discovery files (the test tenant has Android and iOS apps).
    for path in (
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/.well-known/assetlinks.json",
        "/.well-known/apple-app-site-association",
        OPENAPI_PATH,
    ):
        assert call("GET", path).status_code == 200
    links = call("GET", "/.well-known/assetlinks.json").get_json()
    assert ANDROID_PACKAGE in {s["target"]["package_name"] for s in links}
    aasa = call("GET", "/.well-known/apple-app-site-association").get_json()
    assert any(app.startswith(IOS_TEAM_ID) for app in aasa["webcredentials"]["apps"])

    # Sign-up, login, refresh: every 200 and a few errors of each endpoint.
    authenticator = SoftAuthenticator()
    scope = " ".join(("openid", "profile", "email", "offline_access", *MY_ACCOUNT_SCOPES))
    started = call(
        "POST",
        "/passkey/register",
        json={"client_id": "refreshing", "user_profile": {"email": new_email(), "name": "Ann"}},
    ).get_json()
    created = authenticator.create(
        started["authn_params_public_key"], origin=f"https://{CUSTOM_DOMAIN}"
    )
    grant = {"grant_type": "urn:okta:params:oauth:grant-type:webauthn", "client_id": "refreshing"}
    tokens = call(
        "POST",
        "/oauth/token",
        json={
            **grant,
            "auth_session": started["auth_session"],
            "authn_response": created,
            "scope": scope,
            "audience": ME,
        },
    ).get_json()
    assert tokens["refresh_token"]
    challenge = call("POST", "/passkey/challenge", json={"client_id": "refreshing"}).get_json()
    assertion = authenticator.get(
        challenge["authn_params_public_key"], origin=f"https://{CUSTOM_DOMAIN}"
    )
    form = {
        **grant,
        "auth_session": challenge["auth_session"],
        "authn_response": json.dumps(assertion),
    }
    assert call("POST", "/oauth/token", data=form).status_code == 200
    refreshed = call(
        "POST",
        "/oauth/token",
        json={
            "grant_type": REFRESH_TOKEN_GRANT,
            "client_id": "refreshing",
            "refresh_token": tokens["refresh_token"],
        },
    )
    assert refreshed.status_code == 200
    again = call(
        "POST",
        "/oauth/token",
        json={**grant, "auth_session": challenge["auth_session"], "authn_response": assertion},
    )
    assert_oauth_error(again, 400, "invalid_grant")
    assert_oauth_error(
        call("POST", "/passkey/challenge", json={"client_id": "nobody"}), 401, "invalid_client"
    )
    assert_oauth_error(
        call("POST", "/passkey/challenge", data=b"x" * 70_000, content_type="application/json"),
        413,
        "invalid_request",
    )
    assert_oauth_error(
        call("POST", "/passkey/register", json={"client_id": "spa"}), 400, "invalid_request"
    )

    # My Account API with the token: enroll, list, get, rename, delete.
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    enrollment = call("POST", ACCOUNT, json={"type": "passkey"}, headers=bearer)
    assert enrollment.status_code == 202
    options = enrollment.get_json()
    extra = SoftAuthenticator().create(
        options["authn_params_public_key"], origin=f"https://{CUSTOM_DOMAIN}"
    )
    verify_template = ACCOUNT + "/{authentication_method_id}/verify"
    verified = call(
        "POST",
        ACCOUNT + "/passkey%7Cnew/verify",
        verify_template,
        headers=bearer,
        json={"auth_session": options["auth_session"], "authn_response": extra},
    )
    assert verified.status_code == 201
    assert call("GET", "/me/v1/factors", headers=bearer).status_code == 200
    listed = call("GET", ACCOUNT, headers=bearer).get_json()["authentication_methods"]
    assert len(listed) == 2
    one = ACCOUNT + "/{authentication_method_id}"
    method_path = ACCOUNT + "/" + listed[0]["id"].replace("|", "%7C")
    assert call("GET", method_path, one, headers=bearer).status_code == 200
    renamed = call("PATCH", method_path, one, headers=bearer, json={"name": "Laptop"})
    assert renamed.get_json()["name"] == "Laptop"
    assert call("DELETE", method_path, one, headers=bearer).status_code == 204
    last = ACCOUNT + "/" + listed[1]["id"].replace("|", "%7C")
    assert call("DELETE", last, one, headers=bearer).status_code == 409
    assert call("GET", method_path, one, headers=bearer).status_code == 404
    assert call("GET", ACCOUNT).status_code == 401


def test_rate_limit_headers_and_429_match_the_document() -> None:
    app = make_app(rate_limit="2 per minute")
    document = build_openapi(app.extensions["passkey"].settings)
    client = app.test_client()
    for _ in range(2):
        response = client.post("/passkey/challenge", json={"client_id": "spa"}, headers=HOST)
        check_response(document, "/passkey/challenge", "POST", response)
        assert "X-RateLimit-Remaining" in response.headers
    limited = client.post("/passkey/challenge", json={"client_id": "spa"}, headers=HOST)
    check_response(document, "/passkey/challenge", "POST", limited)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    jwks = client.get("/.well-known/jwks.json", headers=HOST)
    check_response(document, "/.well-known/jwks.json", "GET", jwks)
    assert "X-RateLimit-Limit" not in jwks.headers


def test_passkeys_disabled_is_a_documented_404(document: dict[str, Any]) -> None:
    app = make_app(tenant={**tenant_data(), "passkeys_enabled": False})
    client = app.test_client()
    for path, method in (
        ("/passkey/challenge", "POST"),
        ("/.well-known/jwks.json", "GET"),
        (OPENAPI_PATH, "GET"),
    ):
        response = client.open(path, method=method, json={"client_id": "spa"}, headers=HOST)
        check_response(document, path, method, response)
        assert_oauth_error(response, 404, "not_found")


def test_lockout_makes_429_a_documented_answer_of_the_token_endpoint_only() -> None:
    document = build_openapi(Settings(rate_limit_enabled=False, lockout="3 per minute"))
    token = document["paths"]["/oauth/token"]["post"]["responses"]
    assert "Retry-After" in token["429"]["headers"]
    assert "X-RateLimit-Limit" not in token["429"]["headers"]
    assert "429" not in document["paths"]["/passkey/challenge"]["post"]["responses"]
    assert "3 per minute" in document["info"]["description"]


def test_locked_out_exchange_matches_the_document(shared_app: Flask) -> None:
    app = make_app(rate_limit_enabled=False, lockout="1 per minute")
    document = build_openapi(app.extensions["passkey"].settings)
    client = app.test_client()
    body = {
        "grant_type": "urn:okta:params:oauth:grant-type:webauthn",
        "client_id": "spa",
        "auth_session": "unknown",
        "authn_response": {"rawId": "AAAA"},
    }
    statuses = []
    for _ in range(3):
        response = client.post("/oauth/token", json=body, headers=HOST)
        check_response(document, "/oauth/token", "POST", response)
        statuses.append(response.status_code)
    assert statuses[0] == 400 and statuses[-1] == 429
