"""DPoP (RFC 9449): the proof checks of :mod:`flask_passkey.core.dpop`, DPoP-bound tokens at
``/oauth/token`` (both grants), and bound tokens at ``/userinfo`` and the My Account API."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from flask import Flask
from joserfc import jws
from joserfc.jwk import ECKey, OctKey

from flask_passkey.config import Settings
from flask_passkey.core.audiences import SCOPE_READ
from flask_passkey.core.dpop import DPoPVerifier, access_token_hash, normalized_url
from flask_passkey.errors import ConfigurationError, InvalidDPoPProof
from flask_passkey.hookspecs import hookimpl
from flask_passkey.stores.memory import MemorySessionStore
from flask_passkey.testing import DPoPAlgorithm, DPoPKey, PasskeyFlow
from tests.apps import BASIC_SECRET, CUSTOM_DOMAIN, ORIGIN, FakeClock, make_app
from tests.databases import PostgresSchemas, url_text
from tests.support import assert_oauth_error, new_email

TOKEN_URL = f"{ORIGIN}/oauth/token"
USERINFO_URL = f"{ORIGIN}/userinfo"
ACCOUNT_PATH = "/me/v1/authentication-methods"
NOW = 1_700_000_000.0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS made by hand, for headers joserfc refuses to sign (``alg: none``)."""
    return ".".join(
        (b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature))
    )


# -- the proof checks, without HTTP --------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def verifier(clock: FakeClock) -> DPoPVerifier:
    return DPoPVerifier(remember=MemorySessionStore().put_marker, clock=clock, leeway=60)


@pytest.fixture
def key(clock: FakeClock) -> DPoPKey:
    return DPoPKey(clock=clock)


@pytest.mark.parametrize("algorithm", ["ES256", "ES384", "PS256", "RS256", "Ed25519"])
def test_valid_proof_names_the_thumbprint_of_its_key(
    verifier: DPoPVerifier, clock: FakeClock, algorithm: DPoPAlgorithm
) -> None:
    key = DPoPKey(algorithm, clock=clock)
    jkt = verifier.verify(key.proof("POST", TOKEN_URL), method="POST", url=TOKEN_URL)
    assert jkt == key.thumbprint
    # RFC 7638: SHA-256, base64url without padding.
    assert len(jkt) == 43 and "=" not in jkt


def refused(verifier: DPoPVerifier, proof: str, *, method: str = "POST", **kwargs: Any) -> str:
    with pytest.raises(InvalidDPoPProof) as raised:
        verifier.verify(proof, method=method, url=kwargs.pop("url", TOKEN_URL), **kwargs)
    return raised.value.description


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ({"typ": "JWT"}, "typ"),
        ({"typ": None}, "typ"),
        ({"jwk": None}, "jwk"),
        ({"jwk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}}, "not signed"),
    ],
)
def test_proof_with_a_wrong_header_is_refused(
    verifier: DPoPVerifier, key: DPoPKey, header: dict[str, Any], problem: str
) -> None:
    assert problem in refused(verifier, key.proof("POST", TOKEN_URL, header=header))


def test_proof_whose_jwk_is_not_an_object_is_refused(verifier: DPoPVerifier) -> None:
    claims = {"htm": "POST", "htu": TOKEN_URL, "iat": int(NOW), "jti": "j"}
    for jwk in ("not a key", ["EC"], 7):
        proof = unsigned({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}, claims, b"sig")
        assert "jwk" in refused(verifier, proof)


def test_proof_with_an_algorithm_not_allowed_is_refused(verifier: DPoPVerifier) -> None:
    p521 = ECKey.generate_key("P-521")
    proof = jws.serialize_compact(
        {"typ": "dpop+jwt", "alg": "ES512", "jwk": p521.as_dict(private=False)},
        json.dumps({"htm": "POST", "htu": TOKEN_URL, "iat": int(NOW), "jti": "x"}),
        p521,
        algorithms=["ES512"],
    )
    assert "alg" in refused(verifier, proof)


def test_alg_none_and_hmac_proofs_are_refused(verifier: DPoPVerifier, key: DPoPKey) -> None:
    claims = {"htm": "POST", "htu": TOKEN_URL, "iat": int(NOW), "jti": "none-1"}
    none = unsigned({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk}, claims)
    assert "alg" in refused(verifier, none)

    secret = OctKey.generate_key(256)
    hmac_proof = jws.serialize_compact(
        {"typ": "dpop+jwt", "alg": "HS256", "jwk": secret.as_dict(private=False)},
        json.dumps(claims),
        secret,
        algorithms=["HS256"],
    )
    assert "alg" in refused(verifier, hmac_proof)


def test_proof_carrying_a_private_key_is_refused(verifier: DPoPVerifier, key: DPoPKey) -> None:
    private = key.key.as_dict(private=True)
    assert "public key" in refused(verifier, key.proof("POST", TOKEN_URL, header={"jwk": private}))


def test_proof_signed_by_another_key_than_its_jwk_is_refused(
    verifier: DPoPVerifier, key: DPoPKey, clock: FakeClock
) -> None:
    other = DPoPKey(clock=clock)
    forged = other.proof("POST", TOKEN_URL, header={"jwk": key.public_jwk})
    assert "not signed by the key" in refused(verifier, forged)
    # A key of another type than the algorithm is no better.
    mismatched = DPoPKey("RS256", clock=clock).proof(
        "POST", TOKEN_URL, header={"alg": "RS256", "jwk": key.public_jwk}
    )
    assert "not signed by the key" in refused(verifier, mismatched)


@pytest.mark.parametrize(
    "proof",
    [
        "",
        "abc",
        "a.b.c",
        "a.b.c.d",
        "....",
        "eyJ9.eyJ9.eyJ9",
        "é.é.é",
        "x" * 9000,
        unsigned({"typ": "dpop+jwt"}, {}),
        b64(b"[1]") + "." + b64(b"{}") + ".",
    ],
)
def test_garbage_is_refused_as_an_invalid_proof(verifier: DPoPVerifier, proof: str) -> None:
    refused(verifier, proof)


def test_payload_that_is_not_an_object_is_refused(verifier: DPoPVerifier, key: DPoPKey) -> None:
    proof = jws.serialize_compact(
        {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk}, "[1, 2]", key.key
    )
    assert "JSON object" in refused(verifier, proof)


def test_proof_for_another_method_or_url_is_refused(verifier: DPoPVerifier, key: DPoPKey) -> None:
    assert "htm" in refused(verifier, key.proof("GET", TOKEN_URL))
    assert "htm" in refused(verifier, key.proof("post", TOKEN_URL))
    for htu in (
        f"http://{CUSTOM_DOMAIN}/oauth/token",
        "https://evil.test/oauth/token",
        f"{ORIGIN}:8443/oauth/token",
        f"{ORIGIN}/oauth/token/",
        f"{ORIGIN}/userinfo",
        f"https://user@{CUSTOM_DOMAIN}/oauth/token",
        "/oauth/token",
    ):
        assert "htu" in refused(verifier, key.proof("POST", htu)), htu
    assert "htu" in refused(verifier, key.proof("POST", TOKEN_URL, claims={"htu": None}))
    assert "htu" in refused(verifier, key.proof("POST", TOKEN_URL, claims={"htu": 7}))


@pytest.mark.parametrize(
    "htu",
    [
        TOKEN_URL,
        f"HTTPS://{CUSTOM_DOMAIN.upper()}/oauth/token",
        f"{ORIGIN}:443/oauth/token",
        f"{ORIGIN}/oauth/token?x=1#frag",
        f"{ORIGIN}/%6fauth/token",
    ],
)
def test_equivalent_urls_match_per_rfc_3986(verifier: DPoPVerifier, key: DPoPKey, htu: str) -> None:
    assert verifier.verify(key.proof("POST", htu), method="POST", url=TOKEN_URL) == key.thumbprint


def test_normalized_url() -> None:
    assert (
        normalized_url("HTTPS://Login.Acme.Test:443/a%7cb?q#f") == "https://login.acme.test/a%7Cb"
    )
    assert normalized_url("https://login.acme.test/me/passkey|x") == (
        "https://login.acme.test/me/passkey%7Cx"
    )
    assert normalized_url("http://localhost:80") == "http://localhost/"
    assert normalized_url("http://[::1]:5000/x") == "http://[::1]:5000/x"
    for bad in ("ftp://x/y", "https://", "https://x:99999/", "https://a@x/", "x", ""):
        assert normalized_url(bad) is None, bad


@pytest.mark.parametrize(
    ("offset", "accepted"), [(-60, True), (60, True), (-61, False), (61, False)]
)
def test_iat_must_be_within_the_leeway(
    verifier: DPoPVerifier, key: DPoPKey, offset: int, accepted: bool
) -> None:
    proof = key.proof("POST", TOKEN_URL, claims={"iat": int(NOW) + offset})
    if accepted:
        assert verifier.verify(proof, method="POST", url=TOKEN_URL) == key.thumbprint
    else:
        assert "iat" in refused(verifier, proof)


@pytest.mark.parametrize("iat", [None, "1700000000", True, float("nan")])
def test_missing_or_non_numeric_iat_is_refused(
    verifier: DPoPVerifier, key: DPoPKey, iat: Any
) -> None:
    proof = key.proof("POST", TOKEN_URL, claims={"iat": iat})
    if iat is not None and isinstance(iat, float):
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.public_jwk}
        payload = '{"htm":"POST","htu":"' + TOKEN_URL + '","iat":NaN,"jti":"n"}'
        proof = jws.serialize_compact(header, payload, key.key)
    assert "iat" in refused(verifier, proof)


@pytest.mark.parametrize("jti", [None, "", 12, "j" * 257])
def test_missing_or_odd_jti_is_refused(verifier: DPoPVerifier, key: DPoPKey, jti: Any) -> None:
    proof = key.proof("POST", TOKEN_URL, claims={"jti": jti})
    assert "jti" in refused(verifier, proof)


def test_replayed_proof_is_refused_until_it_would_be_too_old_anyway(
    verifier: DPoPVerifier, key: DPoPKey, clock: FakeClock
) -> None:
    proof = key.proof("POST", TOKEN_URL)
    verifier.verify(proof, method="POST", url=TOKEN_URL)
    assert "used before" in refused(verifier, proof)
    clock.advance(30)
    assert "used before" in refused(verifier, proof)
    clock.advance(31)
    assert "iat" in refused(verifier, proof)
    # Another proof of the same key is fine.
    fresh = key.proof("POST", TOKEN_URL)
    assert verifier.verify(fresh, method="POST", url=TOKEN_URL) == key.thumbprint


def test_refused_proof_is_not_remembered(verifier: DPoPVerifier, key: DPoPKey) -> None:
    proof = key.proof("POST", TOKEN_URL)
    refused(verifier, proof, method="GET")
    assert verifier.verify(proof, method="POST", url=TOKEN_URL) == key.thumbprint


def test_resource_proof_must_carry_the_hash_of_the_access_token(
    verifier: DPoPVerifier, key: DPoPKey
) -> None:
    token = "eyJ.access.token"
    assert "ath" in refused(
        verifier, key.proof("GET", USERINFO_URL), method="GET", url=USERINFO_URL, access_token=token
    )
    other = key.proof("GET", USERINFO_URL, access_token="another-token")
    assert "ath" in refused(verifier, other, method="GET", url=USERINFO_URL, access_token=token)
    good = key.proof("GET", USERINFO_URL, access_token=token)
    assert good.count(".") == 2
    payload = json.loads(base64.urlsafe_b64decode(good.split(".")[1] + "=="))
    assert payload["ath"] == access_token_hash(token)
    assert verifier.verify(good, method="GET", url=USERINFO_URL, access_token=token)


def test_leeway_is_configurable() -> None:
    app = make_app(dpop_proof_leeway=5, rate_limit_enabled=False)
    assert app.extensions["passkey"].proofs.leeway == 5
    key = DPoPKey(clock=lambda: time.time() - 10)
    flow = PasskeyFlow(app.test_client(), client_id="spa", host=CUSTOM_DOMAIN, dpop=key)
    started = flow.register({"email": new_email()}).get_json()
    created = flow.authenticator.create(started["authn_params_public_key"], origin=ORIGIN)
    assert_oauth_error(flow.token(started["auth_session"], created), 400, "invalid_dpop_proof")
    for wrong in (0, 3601):
        with pytest.raises(ConfigurationError, match="DPOP_PROOF_LEEWAY"):
            Settings.from_config({"PASSKEY_DPOP_PROOF_LEEWAY": wrong})


# -- the token endpoint --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_app() -> Flask:
    return make_app(rate_limit_enabled=False)


def claims_of(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = pyjwt.decode(token, options={"verify_signature": False})
    return decoded


def test_token_request_with_a_proof_gets_tokens_bound_to_its_key(shared_app: Flask) -> None:
    key = DPoPKey()
    flow = PasskeyFlow(shared_app.test_client(), client_id="spa", host=CUSTOM_DOMAIN, dpop=key)

    tokens = flow.sign_up({"email": new_email()})

    assert tokens["token_type"] == "DPoP"
    assert claims_of(tokens["access_token"])["cnf"] == {"jkt": key.thumbprint}
    assert "cnf" not in claims_of(tokens["id_token"])
    again = flow.sign_in()
    assert again["token_type"] == "DPoP"
    assert claims_of(again["access_token"])["cnf"] == {"jkt": key.thumbprint}


def test_token_request_without_a_proof_gets_bearer_tokens(shared_app: Flask) -> None:
    flow = PasskeyFlow(shared_app.test_client(), client_id="spa", host=CUSTOM_DOMAIN)
    tokens = flow.sign_up({"email": new_email()})
    assert tokens["token_type"] == "Bearer"
    assert "cnf" not in claims_of(tokens["access_token"])


def bad_proofs(key: DPoPKey) -> Iterator[tuple[str, str]]:
    """(what is wrong, proof) for a token request to TOKEN_URL."""
    yield "wrong typ", key.proof("POST", TOKEN_URL, header={"typ": "JWT"})
    yield (
        "alg none",
        unsigned(
            {"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk},
            {"htm": "POST", "htu": TOKEN_URL, "iat": int(time.time()), "jti": "n"},
        ),
    )
    yield "private jwk", key.proof("POST", TOKEN_URL, header={"jwk": key.key.as_dict(private=True)})
    yield "bad signature", DPoPKey().proof("POST", TOKEN_URL, header={"jwk": key.public_jwk})
    yield "htm", key.proof("GET", TOKEN_URL)
    yield "htu http", key.proof("POST", f"http://{CUSTOM_DOMAIN}/oauth/token")
    yield "stale iat", key.proof("POST", TOKEN_URL, claims={"iat": int(time.time()) - 300})
    yield "future iat", key.proof("POST", TOKEN_URL, claims={"iat": int(time.time()) + 300})
    yield "no jti", key.proof("POST", TOKEN_URL, claims={"jti": None})
    yield "garbage", "not a proof"


def test_invalid_proof_at_the_token_endpoint_is_400_and_spends_nothing(shared_app: Flask) -> None:
    key = DPoPKey()
    flow = PasskeyFlow(shared_app.test_client(), client_id="spa", host=CUSTOM_DOMAIN)
    started = flow.register({"email": new_email()}).get_json()
    created = flow.authenticator.create(started["authn_params_public_key"], origin=ORIGIN)
    client = shared_app.test_client()
    body = {
        "grant_type": "urn:okta:params:oauth:grant-type:webauthn",
        "client_id": "spa",
        "auth_session": started["auth_session"],
        "authn_response": created,
    }
    for problem, proof in bad_proofs(key):
        response = client.post(
            "/oauth/token", json=body, headers={"Host": CUSTOM_DOMAIN, "DPoP": proof}
        )
        assert_oauth_error(response, 400, "invalid_dpop_proof")
        assert response.headers["Cache-Control"] == "no-store", problem

    # The challenge was not spent: the same exchange with a good proof succeeds, once.
    good = key.proof("POST", TOKEN_URL)
    response = client.post("/oauth/token", json=body, headers={"Host": CUSTOM_DOMAIN, "DPoP": good})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["token_type"] == "DPoP"
    replayed = client.post("/oauth/token", json=body, headers={"Host": CUSTOM_DOMAIN, "DPoP": good})
    assert_oauth_error(replayed, 400, "invalid_dpop_proof")


def refresh(app: Flask, refresh_token: str, *, client_id: str = "refreshing", **kwargs: Any) -> Any:
    headers = {"Host": CUSTOM_DOMAIN, **kwargs.pop("headers", {})}
    body = {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": refresh_token}
    return app.test_client().post("/oauth/token", json={**body, **kwargs}, headers=headers)


def proved(key: DPoPKey) -> dict[str, str]:
    return {"DPoP": key.proof("POST", TOKEN_URL)}


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_app(request: pytest.FixtureRequest, tmp_path: Path) -> Flask:
    """An app on the memory store, SQLite or PostgreSQL."""
    config: dict[str, Any] = {"rate_limit_enabled": False}
    if request.param == "sqlite":
        config["database_url"] = f"sqlite:///{tmp_path / 'passkey.sqlite3'}"
    elif request.param == "postgresql":
        schemas: PostgresSchemas = request.getfixturevalue("postgres_schemas")
        config["database_url"] = url_text(schemas.new_url())
    return make_app(**config)


def test_public_clients_refresh_token_is_bound_to_the_dpop_key(store_app: Flask) -> None:
    key = DPoPKey()
    flow = PasskeyFlow(
        store_app.test_client(), client_id="refreshing", host=CUSTOM_DOMAIN, dpop=key
    )
    tokens = flow.sign_up({"email": new_email()}, scope="openid offline_access")
    refresh_token = tokens["refresh_token"]

    # Without a proof, or with another key's: refused, and the token stays usable by its holder.
    assert_oauth_error(refresh(store_app, refresh_token), 400, "invalid_grant")
    assert_oauth_error(
        refresh(store_app, refresh_token, headers=proved(DPoPKey())), 400, "invalid_grant"
    )
    response = refresh(store_app, refresh_token, headers=proved(key))
    assert response.status_code == 200, response.get_json()
    renewed = response.get_json()
    assert renewed["token_type"] == "DPoP"
    assert claims_of(renewed["access_token"])["cnf"] == {"jkt": key.thumbprint}

    # The rotated refresh token is bound to the same key.
    assert_oauth_error(refresh(store_app, renewed["refresh_token"]), 400, "invalid_grant")
    again = refresh(store_app, renewed["refresh_token"], headers=proved(key))
    assert again.status_code == 200, again.get_json()


def test_replayed_proof_is_refused_on_every_store(store_app: Flask) -> None:
    key = DPoPKey()
    flow = PasskeyFlow(
        store_app.test_client(), client_id="refreshing", host=CUSTOM_DOMAIN, dpop=key
    )
    refresh_token = flow.sign_up({"email": new_email()}, scope="openid offline_access")[
        "refresh_token"
    ]
    proof = proved(key)
    first = refresh(store_app, refresh_token, headers=proof)
    assert first.status_code == 200
    replay = refresh(store_app, first.get_json()["refresh_token"], headers=proof)
    assert_oauth_error(replay, 400, "invalid_dpop_proof")


def test_unbound_refresh_token_refreshed_with_a_proof_becomes_bound(shared_app: Flask) -> None:
    flow = PasskeyFlow(shared_app.test_client(), client_id="refreshing", host=CUSTOM_DOMAIN)
    tokens = flow.sign_up({"email": new_email()}, scope="openid offline_access")
    key = DPoPKey()

    renewed = refresh(shared_app, tokens["refresh_token"], headers=proved(key)).get_json()

    assert renewed["token_type"] == "DPoP"
    assert_oauth_error(refresh(shared_app, renewed["refresh_token"]), 400, "invalid_grant")


def test_confidential_clients_refresh_token_is_not_bound(shared_app: Flask) -> None:
    key = DPoPKey()
    flow = PasskeyFlow(shared_app.test_client(), client_id="basic", host=CUSTOM_DOMAIN, dpop=key)
    basic = {
        "Authorization": "Basic " + base64.b64encode(f"basic:{BASIC_SECRET}".encode()).decode()
    }
    started = flow.client.post(
        "/passkey/register",
        json={"user_profile": {"email": new_email()}},
        headers={"Host": CUSTOM_DOMAIN, **basic},
    ).get_json()
    created = flow.authenticator.create(started["authn_params_public_key"], origin=ORIGIN)
    tokens = flow.client.post(
        "/oauth/token",
        json={
            "grant_type": "urn:okta:params:oauth:grant-type:webauthn",
            "auth_session": started["auth_session"],
            "authn_response": created,
            "scope": "openid offline_access",
        },
        headers={"Host": CUSTOM_DOMAIN, **basic, **proved(key)},
    ).get_json()
    assert tokens["token_type"] == "DPoP"

    renewed = refresh(shared_app, tokens["refresh_token"], client_id="basic", headers=basic)

    assert renewed.status_code == 200, renewed.get_json()
    assert renewed.get_json()["token_type"] == "Bearer"


# -- protected resources -------------------------------------------------------------------------


def assert_dpop_challenge(response: Any, error: str) -> None:
    assert_oauth_error(response, 401, error)
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(f'DPoP error="{error}", error_description="'), challenge
    assert challenge.endswith('algs="ES256 ES384 PS256 RS256 Ed25519"'), challenge


def get_userinfo(app: Flask, headers: dict[str, str]) -> Any:
    return app.test_client().get("/userinfo", headers={"Host": CUSTOM_DOMAIN, **headers})


@pytest.fixture
def bound(shared_app: Flask) -> tuple[DPoPKey, str]:
    key = DPoPKey()
    flow = PasskeyFlow(shared_app.test_client(), client_id="spa", host=CUSTOM_DOMAIN, dpop=key)
    return key, flow.sign_up({"email": new_email()})["access_token"]


def test_bound_token_with_a_proof_of_its_key_reads_userinfo(
    shared_app: Flask, bound: tuple[DPoPKey, str]
) -> None:
    key, token = bound
    proof = key.proof("GET", USERINFO_URL, access_token=token)
    response = get_userinfo(shared_app, {"Authorization": f"DPoP {token}", "DPoP": proof})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["sub"] == claims_of(token)["sub"]
    post_proof = key.proof("POST", USERINFO_URL, access_token=token)
    posted = shared_app.test_client().post(
        "/userinfo",
        headers={"Host": CUSTOM_DOMAIN, "Authorization": f"DPoP {token}", "DPoP": post_proof},
    )
    assert posted.status_code == 200, posted.get_json()


def test_bound_token_used_as_a_bearer_token_is_refused(
    shared_app: Flask, bound: tuple[DPoPKey, str]
) -> None:
    key, token = bound
    response = get_userinfo(shared_app, {"Authorization": f"Bearer {token}"})
    assert_dpop_challenge(response, "invalid_token")
    # Even with a proof alongside: the scheme must say DPoP.
    proof = key.proof("GET", USERINFO_URL, access_token=token)
    with_proof = get_userinfo(shared_app, {"Authorization": f"Bearer {token}", "DPoP": proof})
    assert_dpop_challenge(with_proof, "invalid_token")


def test_bound_token_needs_a_valid_proof_of_its_key(
    shared_app: Flask, bound: tuple[DPoPKey, str]
) -> None:
    key, token = bound
    scheme = {"Authorization": f"DPoP {token}"}
    cases = {
        "no proof": {},
        "no ath": {"DPoP": key.proof("GET", USERINFO_URL)},
        "wrong ath": {"DPoP": key.proof("GET", USERINFO_URL, access_token=token + "x")},
        "another key": {"DPoP": DPoPKey().proof("GET", USERINFO_URL, access_token=token)},
        "another url": {"DPoP": key.proof("GET", TOKEN_URL, access_token=token)},
        "another method": {"DPoP": key.proof("POST", USERINFO_URL, access_token=token)},
        "garbage": {"DPoP": "garbage"},
    }
    for case, proof in cases.items():
        response = get_userinfo(shared_app, {**scheme, **proof})
        assert response.status_code == 401, case
        assert_dpop_challenge(response, "invalid_dpop_proof")

    proof = {"DPoP": key.proof("GET", USERINFO_URL, access_token=token)}
    assert get_userinfo(shared_app, {**scheme, **proof}).status_code == 200
    assert_dpop_challenge(get_userinfo(shared_app, {**scheme, **proof}), "invalid_dpop_proof")


def test_unbound_token_sent_as_dpop_is_refused(shared_app: Flask) -> None:
    flow = PasskeyFlow(shared_app.test_client(), client_id="spa", host=CUSTOM_DOMAIN)
    token = flow.sign_up({"email": new_email()})["access_token"]
    proof = DPoPKey().proof("GET", USERINFO_URL, access_token=token)
    response = get_userinfo(shared_app, {"Authorization": f"DPoP {token}", "DPoP": proof})
    assert_dpop_challenge(response, "invalid_token")
    assert_dpop_challenge(get_userinfo(shared_app, {"Authorization": "DPoP"}), "invalid_token")


def test_my_account_accepts_bound_tokens_with_a_proof_only(shared_app: Flask) -> None:
    key = DPoPKey()
    flow = PasskeyFlow(shared_app.test_client(), client_id="spa", host=CUSTOM_DOMAIN, dpop=key)
    token = flow.sign_up(
        {"email": new_email()}, scope=f"openid {SCOPE_READ}", audience=f"{ORIGIN}/me/"
    )["access_token"]
    url = ORIGIN + ACCOUNT_PATH
    client = shared_app.test_client()

    def listing(headers: dict[str, str]) -> Any:
        return client.get(ACCOUNT_PATH, headers={"Host": CUSTOM_DOMAIN, **headers})

    ok = listing(
        {"Authorization": f"DPoP {token}", "DPoP": key.proof("GET", url, access_token=token)}
    )
    assert ok.status_code == 200, ok.get_json()
    assert len(ok.get_json()["authentication_methods"]) == 1

    as_bearer = listing({"Authorization": f"Bearer {token}"})
    assert_dpop_challenge(as_bearer, "invalid_token")
    stolen = listing(
        {"Authorization": f"DPoP {token}", "DPoP": DPoPKey().proof("GET", url, access_token=token)}
    )
    assert_dpop_challenge(stolen, "invalid_dpop_proof")
    # My Account errors keep their problem-details members.
    assert stolen.get_json()["status"] == 401


def test_discovery_publishes_the_proof_algorithms(shared_app: Flask) -> None:
    config = (
        shared_app.test_client()
        .get("/.well-known/openid-configuration", headers={"Host": CUSTOM_DOMAIN})
        .get_json()
    )
    assert config["dpop_signing_alg_values_supported"] == [
        "ES256",
        "ES384",
        "PS256",
        "RS256",
        "Ed25519",
    ]
    assert "none" not in config["dpop_signing_alg_values_supported"]


class StoreWithoutMarkers:
    """A session store written for the protocol before put_marker."""

    @hookimpl
    def passkey_session_store(self, app: Flask) -> Any:
        return self

    def put(self, session: Any, *, now: float) -> None:
        raise AssertionError("not called")

    def take(self, session_id: str, *, now: float) -> None:
        raise AssertionError("not called")


def test_session_store_without_put_marker_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="StoreWithoutMarkers has no put_marker"):
        make_app(plugins=[StoreWithoutMarkers()])
