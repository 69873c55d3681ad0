"""Access tokens for the My Account API: the ``/me/`` audience and its scopes at the token
endpoint, and :meth:`TokenIssuer.verify_access_token` against forged and misused tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import RSAKey

from flask_passkey.core.audiences import MY_ACCOUNT_SCOPES, SCOPE_READ, SCOPE_UPDATE
from flask_passkey.core.tokens import KeyRing, TokenIssuer, configured_signing_keys
from flask_passkey.errors import InvalidToken
from flask_passkey.testing import PasskeyFlow
from tests.apps import (
    API_AUDIENCE,
    CUSTOM_DOMAIN,
    ISSUER,
    ME,
    OTHER_DOMAIN,
    FakeClock,
    generate_rsa_pem,
    make_app,
    tenant_data,
)
from tests.support import assert_oauth_error, new_email, passkey_flow, refresh, verify_jwt


@pytest.fixture(scope="module")
def shared_app() -> Flask:
    """One app for the module (tests use their own users): an extra custom domain and API."""
    tenant = tenant_data()
    tenant["custom_domains"] = [CUSTOM_DOMAIN, OTHER_DOMAIN]
    return make_app(
        tenant=tenant,
        rate_limit_enabled=False,
        audiences=[API_AUDIENCE],
    )


def signed_up(app: Flask, client_id: str = "spa", **flow: Any) -> PasskeyFlow:
    passkey = passkey_flow(app, client_id, **flow)
    passkey.sign_up({"email": new_email()})
    return passkey


def token_response(flow: PasskeyFlow, **body: Any) -> Any:
    """The raw answer of a sign-in's token request (for failure tests)."""
    started = flow.challenge().get_json()
    assertion = flow.authenticator.get(started["authn_params_public_key"], origin=flow.origin)
    return flow.token(started["auth_session"], assertion, **body)


# -- the token endpoint -------------------------------------------------------------------------


def test_my_account_audience_is_accepted_without_configuration(shared_app: Flask) -> None:
    tokens = signed_up(shared_app).sign_in(audience=ME, scope=f"openid {SCOPE_READ}")

    claims = verify_jwt(shared_app.test_client(), tokens["access_token"], audience=ME)
    assert claims["aud"] == ME
    assert claims["scope"] == f"openid {SCOPE_READ}"
    assert tokens["scope"] == f"openid {SCOPE_READ}"


def test_my_account_scopes_are_granted_only_when_asked_and_openid_always(
    shared_app: Flask,
) -> None:
    flow = signed_up(shared_app)

    default = flow.sign_in(audience=ME)
    some = flow.sign_in(audience=ME, scope=f"{SCOPE_UPDATE} {SCOPE_READ}")
    everything = flow.sign_in(audience=ME, scope=" ".join(MY_ACCOUNT_SCOPES))

    assert default["scope"] == "openid profile email"
    assert some["scope"] == f"openid {SCOPE_UPDATE} {SCOPE_READ}"
    assert everything["scope"].split() == ["openid", *MY_ACCOUNT_SCOPES]
    claims = verify_jwt(shared_app.test_client(), some["access_token"], audience=ME)
    assert claims["scope"] == some["scope"]


@pytest.mark.parametrize("audience", [None, f"{ISSUER}userinfo", API_AUDIENCE])
def test_my_account_scopes_are_dropped_for_other_audiences(
    shared_app: Flask, audience: str | None
) -> None:
    flow = signed_up(shared_app)
    body = {"audience": audience} if audience else {}

    tokens = flow.sign_in(scope=f"openid email {' '.join(MY_ACCOUNT_SCOPES)}", **body)

    assert tokens["scope"] == "openid email"


def test_my_account_audience_keeps_the_port_of_the_request(shared_app: Flask) -> None:
    flow = signed_up(shared_app, host=f"{CUSTOM_DOMAIN}:8443")
    with_port = f"https://{CUSTOM_DOMAIN}:8443/me/"

    tokens = flow.sign_in(audience=with_port, scope=f"openid {SCOPE_READ}")
    refused = token_response(flow, audience=ME)

    claims = pyjwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["aud"] == with_port
    assert claims["iss"] == f"https://{CUSTOM_DOMAIN}:8443/"
    assert_oauth_error(refused, 403, "access_denied")


def test_my_account_audience_of_another_custom_domain_is_refused(shared_app: Flask) -> None:
    flow = signed_up(shared_app)

    response = token_response(flow, audience=f"https://{OTHER_DOMAIN}/me/")

    assert_oauth_error(response, 403, "access_denied")


def test_refreshed_tokens_keep_the_my_account_audience_and_scopes(shared_app: Flask) -> None:
    flow = signed_up(shared_app, "refreshing")
    first = flow.sign_in(audience=ME, scope=f"openid offline_access {SCOPE_READ}")

    response = refresh(shared_app.test_client(), first["refresh_token"])

    assert response.status_code == 200, response.get_json()
    refreshed = response.get_json()
    assert refreshed["scope"] == first["scope"]
    claims = verify_jwt(shared_app.test_client(), refreshed["access_token"], audience=ME)
    assert claims["scope"] == first["scope"]


# -- TokenIssuer.verify_access_token ------------------------------------------------------------

NOW = 1_700_000_000


@pytest.fixture(scope="module")
def keys(signing_key_pem: str) -> KeyRing:
    configured = configured_signing_keys([signing_key_pem])
    return KeyRing(load=lambda: configured, clock=lambda: NOW, refresh_seconds=float("inf"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def issuer(keys: KeyRing, clock: FakeClock) -> TokenIssuer:
    return TokenIssuer(keys=keys, clock=clock, access_token_lifetime=60, id_token_lifetime=60)


def access_claims(**changes: Any) -> dict[str, Any]:
    claims = {
        "iss": ISSUER,
        "sub": "passkey|ann",
        "aud": ME,
        "iat": NOW,
        "exp": NOW + 60,
        "client_id": "spa",
        "scope": f"openid {SCOPE_READ}",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def private_key(pem: str) -> RSAKey:
    """The key configured as ``pem``, as it signs (with the ``kid`` configuration gives it)."""
    (configured,) = configured_signing_keys([pem])
    return RSAKey.import_key(json.loads(configured.private_jwk))


@pytest.fixture(scope="module")
def signing_key(signing_key_pem: str) -> RSAKey:
    """The private key behind ``keys``: the tests forge tokens with it."""
    return private_key(signing_key_pem)


def signed(key: RSAKey, claims: dict[str, Any], **header: Any) -> str:
    fields = {"alg": "RS256", "kid": key.kid, "typ": "at+jwt", **header}
    return jwt.encode({k: v for k, v in fields.items() if v is not None}, claims, key)


def verify(issuer: TokenIssuer, token: str) -> dict[str, Any]:
    return issuer.verify_access_token(token, issuer=ISSUER, audience=ME)


def test_a_well_formed_access_token_is_accepted(issuer: TokenIssuer, keys: KeyRing) -> None:
    assert verify(issuer, keys.sign(access_claims(), typ="at+jwt")) == access_claims()


def test_an_audience_list_naming_the_api_is_accepted(issuer: TokenIssuer, keys: KeyRing) -> None:
    claims = access_claims(aud=[API_AUDIENCE, ME])

    assert verify(issuer, keys.sign(claims, typ="at+jwt"))["aud"] == [API_AUDIENCE, ME]


def test_expiry_is_checked_on_the_issuers_clock(
    issuer: TokenIssuer, keys: KeyRing, clock: FakeClock
) -> None:
    token = keys.sign(access_claims(), typ="at+jwt")
    clock.advance(59)
    verify(issuer, token)

    clock.advance(1)

    with pytest.raises(InvalidToken, match="expired"):
        verify(issuer, token)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unsigned(key: RSAKey) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{_b64(access_claims())}."


def _hmac_with_the_public_key(key: RSAKey) -> str:
    """The classic algorithm confusion: HS256 keyed with the (public) RSA key."""
    secret = key.as_pem(private=False)
    header = {"alg": "HS256", "kid": key.kid, "typ": "at+jwt"}
    signing_input = f"{_b64(header)}.{_b64(access_claims())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _tampered_payload(key: RSAKey) -> str:
    header, _, signature = signed(key, access_claims()).split(".")
    return f"{header}.{_b64(access_claims(sub='passkey|mallory'))}.{signature}"


def _other_key(key: RSAKey) -> str:
    return signed(private_key(generate_rsa_pem()), access_claims())


FORGERIES: list[Any] = [
    pytest.param(lambda key: "", id="empty"),
    pytest.param(lambda key: "not-a-jwt", id="garbage"),
    pytest.param(lambda key: "a.b.c", id="three-garbage-parts"),
    pytest.param(lambda key: "ü.ü.ü", id="non-ascii"),
    pytest.param(_unsigned, id="alg-none"),
    pytest.param(_hmac_with_the_public_key, id="hs256-with-the-public-key"),
    pytest.param(_tampered_payload, id="tampered-payload"),
    pytest.param(_other_key, id="another-servers-key"),
    pytest.param(lambda key: signed(key, access_claims(), kid="unknown"), id="unknown-kid"),
    pytest.param(lambda key: signed(key, access_claims(), typ="JWT"), id="id-token-typ"),
    pytest.param(lambda key: signed(key, access_claims(), typ=None), id="no-typ"),
    pytest.param(lambda key: signed(key, access_claims(aud=API_AUDIENCE)), id="other-aud"),
    pytest.param(lambda key: signed(key, access_claims(aud="spa")), id="client-aud"),
    pytest.param(lambda key: signed(key, access_claims(aud=None)), id="no-aud"),
    pytest.param(lambda key: signed(key, access_claims(iss="https://evil/")), id="other-iss"),
    pytest.param(lambda key: signed(key, access_claims(iss=None)), id="no-iss"),
    pytest.param(lambda key: signed(key, access_claims(exp=None)), id="no-exp"),
    pytest.param(lambda key: signed(key, access_claims(exp=NOW)), id="expired"),
    pytest.param(lambda key: signed(key, access_claims(exp="soon")), id="exp-not-a-number"),
    pytest.param(lambda key: signed(key, access_claims(sub=None)), id="no-sub"),
    pytest.param(lambda key: signed(key, access_claims(sub=7)), id="sub-not-a-string"),
    pytest.param(lambda key: signed(key, access_claims(client_id=None)), id="no-client-id"),
    pytest.param(lambda key: signed(key, access_claims(iat=NOW + 600)), id="iat-in-future"),
    pytest.param(lambda key: signed(key, access_claims(nbf=NOW + 600)), id="not-yet-valid"),
]


@pytest.mark.parametrize("forge", FORGERIES)
def test_forged_or_misused_tokens_are_invalid(
    issuer: TokenIssuer, signing_key: RSAKey, forge: Callable[[RSAKey], str]
) -> None:
    with pytest.raises(InvalidToken):
        verify(issuer, forge(signing_key))
