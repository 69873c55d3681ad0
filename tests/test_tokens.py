"""The issued ID and access tokens, checked with PyJWT (an independent JOSE library): claims,
lifetimes, and the signing keys behind them (configured PEM/JWK, or generated and persisted)."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from flask import Flask
from webauthn.helpers import bytes_to_base64url

from flask_passkey.core.tokens import UNKNOWN_KID_REREAD_SECONDS, KeyRing, configured_signing_keys
from flask_passkey.hookspecs import hookimpl
from flask_passkey.stores.memory import MemoryUserStore
from flask_passkey.testing import PasskeyFlow, SoftAuthenticator
from tests.apps import (
    CUSTOM_DOMAIN,
    ISSUER,
    USERINFO,
    FakeClock,
    generate_rsa_pem,
    make_app,
    shared_signing_key,
    tenant_data,
)
from tests.support import find_user, new_email, passkey_flow, refresh, verify_jwt

PROFILE = {
    "name": "Ann Lee",
    "given_name": "Ann",
    "family_name": "Lee",
    "nickname": "annie",
    "picture": "https://example.com/ann.png",
}


@pytest.fixture(scope="module")
def shared_app() -> Flask:
    return make_app(rate_limit_enabled=False)


def new_phone() -> str:
    return "+1555" + str(secrets.randbelow(10**7)).zfill(7)


def signed_up(app: Flask, profile: dict[str, str], **kwargs: Any) -> tuple[PasskeyFlow, Any]:
    authenticator = kwargs.pop("authenticator", None)
    flow = passkey_flow(app, kwargs.pop("client_id", "spa"), authenticator=authenticator)
    return flow, flow.sign_up(profile, **kwargs)


def rfc7638_thumbprint(public_key: Any) -> str:
    numbers = public_key.public_numbers()

    def b64_int(value: int) -> str:
        return bytes_to_base64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

    canonical = json.dumps(
        {"e": b64_int(numbers.e), "kty": "RSA", "n": b64_int(numbers.n)},
        separators=(",", ":"),
        sort_keys=True,
    )
    return bytes_to_base64url(hashlib.sha256(canonical.encode()).digest())


def public_key_of(pem: str) -> Any:
    return serialization.load_pem_private_key(pem.encode(), password=None).public_key()


# -- claims ------------------------------------------------------------------------------------


def test_id_token_carries_the_oidc_claims_for_openid_profile_email(shared_app: Flask) -> None:
    email = new_email()
    flow, tokens = signed_up(
        shared_app,
        {"email": email.upper(), "phone_number": new_phone(), **PROFILE},
        scope="openid profile email",
    )

    claims = verify_jwt(flow.client, tokens["id_token"], audience="spa")

    user = find_user(shared_app, email)
    assert claims["iss"] == ISSUER
    assert claims["aud"] == "spa"
    assert claims["sub"] == user.id
    assert claims["exp"] - claims["iat"] == 36_000
    assert claims["auth_time"] == claims["iat"]
    assert claims["email"] == email  # lower-cased
    assert claims["email_verified"] is False
    for name, value in PROFILE.items():
        assert claims[name] == value
    assert "phone_number" not in claims  # phone was not asked for
    assert "org_id" not in claims
    assert "user_metadata" not in claims


def test_id_token_releases_only_the_claims_of_the_granted_scopes(shared_app: Flask) -> None:
    phone_number = new_phone()
    flow, _ = signed_up(shared_app, {"email": new_email(), "phone_number": phone_number, **PROFILE})

    only_openid = verify_jwt(flow.client, flow.sign_in(scope="openid")["id_token"], audience="spa")
    phone = verify_jwt(flow.client, flow.sign_in(scope="openid phone")["id_token"], audience="spa")

    profile_claims = {
        *PROFILE,
        "email",
        "email_verified",
        "phone_number",
        "phone_number_verified",
        "preferred_username",
    }
    assert not profile_claims & set(only_openid)
    assert phone["phone_number"] == phone_number
    assert phone["phone_number_verified"] is False
    assert not {*PROFILE, "email"} & set(phone)


def test_username_is_released_as_preferred_username(shared_app: Flask) -> None:
    username = "ann." + new_email()[5:17]
    flow, tokens = signed_up(shared_app, {"username": username}, realm="partners")

    claims = verify_jwt(flow.client, tokens["id_token"], audience="spa")

    assert claims["preferred_username"] == username
    assert "email" not in claims


def test_access_token_is_a_jwt_for_the_userinfo_audience(shared_app: Flask) -> None:
    flow, tokens = signed_up(shared_app, {"email": new_email(), **PROFILE})

    claims = verify_jwt(flow.client, tokens["access_token"], audience=USERINFO)

    assert jwt.get_unverified_header(tokens["access_token"])["typ"] == "at+jwt"
    id_claims = verify_jwt(flow.client, tokens["id_token"], audience="spa")
    assert claims["sub"] == id_claims["sub"]
    assert claims["client_id"] == "spa"
    assert claims["scope"] == "openid profile email"
    assert claims["exp"] - claims["iat"] == tokens["expires_in"] == 86_400
    assert claims["jti"]
    assert not {*PROFILE, "email"} & set(claims)  # personal data stays in the ID token


@pytest.mark.parametrize(
    "authenticator",
    [
        SoftAuthenticator(backup_eligible=True, user_verified=True),
        SoftAuthenticator(backup_eligible=False, user_verified=True),
        SoftAuthenticator(backup_eligible=False, user_verified=False),
    ],
    ids=["synced, verified", "device-bound, verified", "device-bound, not verified"],
)
def test_amr_claims_only_the_proof_of_possession_the_server_verified(
    shared_app: Flask, authenticator: SoftAuthenticator
) -> None:
    # With "none" attestation the BE and UV flags are the authenticator's own word: neither
    # "hwk"/"swk" nor "mfa" is known to the server, only that the registered key signed.
    flow, tokens = signed_up(shared_app, {"email": new_email()}, authenticator=authenticator)

    assert verify_jwt(flow.client, tokens["id_token"], audience="spa")["amr"] == ["pop"]
    signed_in = flow.sign_in()
    assert verify_jwt(flow.client, signed_in["id_token"], audience="spa")["amr"] == ["pop"]


def test_org_id_is_in_both_tokens_when_an_organization_applies(shared_app: Flask) -> None:
    flow, tokens = signed_up(
        shared_app, {"email": new_email()}, client_id="org-required", organization="org_acme"
    )

    again = flow.sign_in(organization="org_acme")

    for issued in (tokens, again):
        assert (
            verify_jwt(flow.client, issued["id_token"], audience="org-required")["org_id"]
            == "org_acme"
        )
        assert (
            verify_jwt(flow.client, issued["access_token"], audience=USERINFO)["org_id"]
            == "org_acme"
        )


def test_token_lifetimes_follow_the_configuration() -> None:
    app = make_app(id_token_lifetime=600, access_token_lifetime=300)
    flow, tokens = signed_up(app, {"email": new_email()})

    id_claims = verify_jwt(flow.client, tokens["id_token"], audience="spa")
    access = verify_jwt(flow.client, tokens["access_token"], audience=USERINFO)

    assert id_claims["exp"] - id_claims["iat"] == 600
    assert access["exp"] - access["iat"] == 300 == tokens["expires_in"]


def test_tokens_issued_on_another_custom_domain_name_that_domain() -> None:
    tenant = tenant_data()
    tenant["custom_domains"].append("id.acme.test")
    app = make_app(tenant=tenant)
    flow = passkey_flow(app, host="id.acme.test")

    tokens = flow.sign_up({"email": new_email()})

    claims = verify_jwt(flow.client, tokens["id_token"], audience="spa", host="id.acme.test")
    assert claims["iss"] == "https://id.acme.test/"
    with pytest.raises(jwt.InvalidIssuerError):
        verify_jwt(flow.client, tokens["id_token"], audience="spa")


# -- signing keys ------------------------------------------------------------------------------


def test_configured_signing_key_signs_the_tokens(signing_key_pem: str) -> None:
    app = make_app(signing_keys=[signing_key_pem])
    flow, tokens = signed_up(app, {"email": new_email()})
    public_key = public_key_of(signing_key_pem)

    subjects = set()
    for token, audience in ((tokens["id_token"], "spa"), (tokens["access_token"], USERINFO)):
        assert jwt.get_unverified_header(token)["kid"] == rfc7638_thumbprint(public_key)
        claims = jwt.decode(
            token, public_key, algorithms=["RS256"], audience=audience, issuer=ISSUER
        )
        subjects.add(claims["sub"])
    assert subjects == {user.id for user in app.extensions["passkey"].users.list_users()}
    jwks = flow.client.get("/.well-known/jwks.json", headers={"Host": CUSTOM_DOMAIN}).get_json()
    assert [k["kid"] for k in jwks["keys"]] == [rfc7638_thumbprint(public_key)]
    (published,) = jwt.PyJWKSet.from_dict(jwks).keys
    assert published.key.public_numbers() == public_key.public_numbers()


def test_last_configured_key_signs_and_every_configured_key_is_published(
    signing_key_pem: str, second_key_pem: str
) -> None:
    app = make_app(signing_keys=[signing_key_pem, second_key_pem])
    flow, tokens = signed_up(app, {"email": new_email()})
    old, new = public_key_of(signing_key_pem), public_key_of(second_key_pem)

    assert jwt.get_unverified_header(tokens["id_token"])["kid"] == rfc7638_thumbprint(new)
    jwt.decode(tokens["id_token"], new, algorithms=["RS256"], audience="spa")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tokens["id_token"], old, algorithms=["RS256"], audience="spa")
    jwks = flow.client.get("/.well-known/jwks.json", headers={"Host": CUSTOM_DOMAIN}).get_json()
    assert {k["kid"] for k in jwks["keys"]} == {rfc7638_thumbprint(old), rfc7638_thumbprint(new)}


def test_configured_jwk_keeps_its_own_kid(second_key_pem: str) -> None:
    jwk = json.loads(
        jwt.algorithms.RSAAlgorithm.to_jwk(
            serialization.load_pem_private_key(second_key_pem.encode(), password=None)
        )
    )
    jwk["kid"] = "acme-2026"
    app = make_app(signing_keys=[json.dumps(jwk)])

    flow, tokens = signed_up(app, {"email": new_email()})

    assert jwt.get_unverified_header(tokens["id_token"])["kid"] == "acme-2026"
    assert verify_jwt(flow.client, tokens["id_token"], audience="spa")


@pytest.fixture(scope="module")
def second_key_pem() -> str:
    return generate_rsa_pem()


class SharedUserStore:
    """A plugin handing every app the same user store (as a shared database would)."""

    def __init__(self, store: MemoryUserStore) -> None:
        self.store = store

    @hookimpl
    def passkey_user_store(self, app: Flask) -> MemoryUserStore:
        return self.store


def test_without_configured_keys_a_key_is_generated_and_persisted_in_the_user_store() -> None:
    store = MemoryUserStore()
    app = make_app(signing_keys=[], plugins=[SharedUserStore(store)])

    assert store.signing_keys() == []  # nothing is read or generated before it is needed
    flow, tokens = signed_up(app, {"email": new_email()})
    (stored,) = store.signing_keys()

    assert jwt.get_unverified_header(tokens["id_token"])["kid"] == stored.kid
    claims = verify_jwt(flow.client, tokens["id_token"], audience="spa")
    assert claims["sub"] == store.get_user(claims["sub"]).id


def test_apps_sharing_a_user_store_publish_the_same_keys_and_accept_each_others_tokens() -> None:
    store = MemoryUserStore()
    first = make_app(signing_keys=[], plugins=[SharedUserStore(store)])
    second = make_app(signing_keys=[], plugins=[SharedUserStore(store)])
    flow, tokens = signed_up(first, {"email": new_email()})

    jwks = [
        app.test_client().get("/.well-known/jwks.json", headers={"Host": CUSTOM_DOMAIN}).get_json()
        for app in (first, second)
    ]

    assert jwks[0] == jwks[1]
    assert len(jwks[0]["keys"]) == len(store.signing_keys()) == 1
    claims = verify_jwt(second.test_client(), tokens["id_token"], audience="spa")
    # The second app knows the user too: the passkey signs in there.
    again = passkey_flow(second, authenticator=flow.authenticator).sign_in()
    assert (
        verify_jwt(second.test_client(), again["id_token"], audience="spa")["sub"]
        == (claims["sub"])
    )


def test_apps_with_their_own_stores_do_not_accept_each_others_tokens() -> None:
    first = make_app(signing_keys=[])
    second = make_app(signing_keys=[])
    _, tokens = signed_up(first, {"email": new_email()})

    with pytest.raises(AssertionError, match="not in the JWKS"):
        verify_jwt(second.test_client(), tokens["id_token"], audience="spa")


def test_refreshed_id_token_keeps_the_time_the_user_authenticated() -> None:
    clock = FakeClock(time.time() - 3600)
    app = make_app(clock=clock)
    flow = passkey_flow(app, "refreshing")
    tokens = flow.sign_up({"email": new_email()}, scope="openid offline_access")
    signed_up_at = verify_jwt(flow.client, tokens["id_token"], audience="refreshing")["auth_time"]
    clock.advance(1800)

    response = refresh(flow.client, tokens["refresh_token"])

    assert response.status_code == 200, response.get_json()
    refreshed = verify_jwt(flow.client, response.get_json()["id_token"], audience="refreshing")
    assert refreshed["iat"] == signed_up_at + 1800
    assert refreshed["auth_time"] == signed_up_at


def test_tokens_naming_made_up_kids_reread_the_keys_at_most_once_a_second() -> None:
    clock = FakeClock()
    reads: list[float] = []

    def load() -> list[Any]:
        reads.append(clock())
        return configured_signing_keys([shared_signing_key()])

    ring = KeyRing(load=load, clock=clock)
    (known,) = [key["kid"] for key in ring.jwks()["keys"]]
    for n in range(5):
        ring.key_set(f"made-up-{n}")
    ring.key_set(known)
    assert len(reads) == 2  # the first read, and one re-read for the unknown kids

    clock.advance(UNKNOWN_KID_REREAD_SECONDS)
    ring.key_set("made-up-again")

    assert len(reads) == 3


@pytest.mark.parametrize("typ", ["JWT", "at+jwt"])
def test_the_key_ring_signs_with_its_published_key(typ: str) -> None:
    """What the ring signs names its newest published key and verifies with it alone; the
    header is exactly ``typ``, ``alg``, ``kid``, and the claims come back as given."""
    old, new = generate_rsa_pem(), generate_rsa_pem()
    ring = KeyRing(load=lambda: configured_signing_keys([old, new]), clock=lambda: 0.0)
    claims = {"sub": "passkey|abc", "name": "Zoë Ünïcode ✓", "nested": {"a": [1, 2.5, True]}}

    token = ring.sign(claims, typ=typ)

    newest = ring.jwks()["keys"][-1]
    assert jwt.get_unverified_header(token) == {"typ": typ, "alg": "RS256", "kid": newest["kid"]}
    public_key = jwt.PyJWK(newest).key
    assert jwt.decode(token, public_key, algorithms=["RS256"]) == claims
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, jwt.PyJWK(ring.jwks()["keys"][0]).key, algorithms=["RS256"])
