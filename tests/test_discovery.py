"""The well-known files on every custom domain: JWKS, OpenID configuration, Android asset links
and the Apple app-site association."""

from __future__ import annotations

import jwt
import pytest
from flask import Flask

from flask_passkey.models import WEBAUTHN_GRANT
from tests.apps import (
    ANDROID_FINGERPRINT,
    ANDROID_PACKAGE,
    BETA_ANDROID_FINGERPRINT,
    CUSTOM_DOMAIN,
    DEFAULT_DOMAIN,
    IOS_BUNDLE_ID,
    IOS_TEAM_ID,
    make_app,
    tenant_data,
)
from tests.support import assert_oauth_error, new_email, passkey_flow, verify_jwt

WELL_KNOWN = [
    "/.well-known/jwks.json",
    "/.well-known/openid-configuration",
    "/.well-known/assetlinks.json",
    "/.well-known/apple-app-site-association",
]
PRIVATE_RSA_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


@pytest.fixture(scope="module")
def shared_app() -> Flask:
    return make_app(rate_limit_enabled=False)


def get(app: Flask, path: str, host: str = CUSTOM_DOMAIN) -> object:
    return app.test_client().get(path, headers={"Host": host})


def test_jwks_publishes_public_rsa_signing_keys_only(shared_app: Flask) -> None:
    response = get(shared_app, "/.well-known/jwks.json")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    keys = response.get_json()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "RSA"
        assert key["kid"]
        assert key.get("use", "sig") == "sig"
        assert key.get("alg", "RS256") == "RS256"
        assert not PRIVATE_RSA_MEMBERS & set(key), "private key material published"
    assert len(jwt.PyJWKSet.from_dict(response.get_json()).keys) == len(keys)


def test_jwks_verifies_the_tokens_the_app_issues(shared_app: Flask) -> None:
    flow = passkey_flow(shared_app)
    tokens = flow.sign_up({"email": new_email()})

    assert verify_jwt(flow.client, tokens["id_token"], audience="spa")["iss"] == (
        f"https://{CUSTOM_DOMAIN}/"
    )


def test_openid_configuration_names_the_custom_domain(shared_app: Flask) -> None:
    response = get(shared_app, "/.well-known/openid-configuration")

    assert response.status_code == 200
    config = response.get_json()
    base = f"https://{CUSTOM_DOMAIN}"
    assert config["issuer"] == base + "/"
    assert config["jwks_uri"] == base + "/.well-known/jwks.json"
    assert config["token_endpoint"] == base + "/oauth/token"
    assert WEBAUTHN_GRANT in config["grant_types_supported"]
    assert "RS256" in config["id_token_signing_alg_values_supported"]
    assert set(config["token_endpoint_auth_methods_supported"]) >= {
        "none",
        "client_secret_post",
        "client_secret_basic",
    }
    assert "openid" in config["scopes_supported"]


def test_openid_configuration_follows_the_domain_and_the_url_prefix() -> None:
    tenant = tenant_data()
    tenant["custom_domains"].append("id.acme.test")
    app = make_app(tenant=tenant, url_prefix="/auth")

    config = get(app, "/.well-known/openid-configuration", host="id.acme.test").get_json()

    assert config["issuer"] == "https://id.acme.test/"
    assert config["jwks_uri"] == "https://id.acme.test/.well-known/jwks.json"
    assert config["token_endpoint"] == "https://id.acme.test/auth/oauth/token"
    # The advertised token endpoint is where tokens are actually issued.
    flow = passkey_flow(app, host="id.acme.test", path_prefix="/auth")
    tokens = flow.sign_up({"email": new_email()})
    assert (
        verify_jwt(flow.client, tokens["id_token"], audience="spa", host="id.acme.test")["iss"]
        == config["issuer"]
    )


def test_assetlinks_lists_every_android_app_with_login_and_link_relations(
    shared_app: Flask,
) -> None:
    response = get(shared_app, "/.well-known/assetlinks.json")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    statements = response.get_json()
    assert len(statements) == 2
    by_package = {s["target"]["package_name"]: s for s in statements}
    assert set(by_package) == {ANDROID_PACKAGE, "com.acme.beta"}
    for statement in statements:
        assert set(statement["relation"]) == {
            "delegate_permission/common.get_login_creds",
            "delegate_permission/common.handle_all_urls",
        }
        assert statement["target"]["namespace"] == "android_app"
    assert by_package[ANDROID_PACKAGE]["target"]["sha256_cert_fingerprints"] == [
        ANDROID_FINGERPRINT
    ]
    assert by_package["com.acme.beta"]["target"]["sha256_cert_fingerprints"] == [
        BETA_ANDROID_FINGERPRINT,
        ANDROID_FINGERPRINT,
    ]


def test_apple_app_site_association_lists_every_ios_app(shared_app: Flask) -> None:
    response = get(shared_app, "/.well-known/apple-app-site-association")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert sorted(response.get_json()["webcredentials"]["apps"]) == sorted(
        [f"{IOS_TEAM_ID}.{IOS_BUNDLE_ID}", "ZYXWV98765.com.acme.beta"]
    )


def test_app_files_are_empty_for_a_tenant_without_native_apps() -> None:
    tenant = tenant_data()
    for client in tenant["clients"]:
        client.pop("android_apps", None)
        client.pop("ios_apps", None)
    app = make_app(tenant=tenant)

    assert get(app, "/.well-known/assetlinks.json").get_json() == []
    assert get(app, "/.well-known/apple-app-site-association").get_json() == {
        "webcredentials": {"apps": []}
    }


@pytest.mark.parametrize("path", WELL_KNOWN)
@pytest.mark.parametrize("host", [DEFAULT_DOMAIN, "unknown.example", "localhost"])
def test_well_known_files_are_served_only_on_a_custom_domain(
    shared_app: Flask, path: str, host: str
) -> None:
    assert_oauth_error(get(shared_app, path, host=host), 400, "invalid_request")


@pytest.mark.parametrize("path", WELL_KNOWN)
def test_well_known_files_answer_404_when_passkeys_are_disabled(
    disabled_app: Flask, path: str
) -> None:
    assert_oauth_error(get(disabled_app, path), 404, "not_found")


@pytest.fixture(scope="module")
def disabled_app() -> Flask:
    tenant = tenant_data()
    tenant["passkeys_enabled"] = False
    return make_app(tenant=tenant)
