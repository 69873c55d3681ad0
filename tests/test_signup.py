"""Sign-up over the HTTP API: POST /passkey/register, then the webauthn grant of /oauth/token.

Every attestation is a real one from SoftAuthenticator; the rejections make it lie in one way
and check that the user store is left exactly as it was.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from typing import Any

import pytest
from flask import Flask
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, encode_cbor, parse_cbor

from flask_passkey.testing import PasskeyFlow, SoftAuthenticator, android_origin
from tests.apps import (
    ANDROID_FINGERPRINT,
    CUSTOM_DOMAIN,
    DB_CONNECTION,
    DEFAULT_DOMAIN,
    ORIGIN,
    WEB_ORIGIN,
    FakeClock,
    make_app,
    tenant_data,
)
from tests.support import (
    Snapshot,
    assert_oauth_error,
    common_lies,
    find_user,
    new_email,
    passkey_flow,
    store_snapshot,
    verify_jwt,
)

EMAIL = "ann@example.com"


def b64url_decode(value: str) -> bytes:
    assert re.fullmatch(r"[A-Za-z0-9_-]+", value), f"not unpadded base64url: {value!r}"
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def start(flow: PasskeyFlow, profile: dict[str, Any] | None = None, **body: Any) -> Any:
    """POST /passkey/register; return (auth_session, creation options)."""
    response = flow.register(profile or {"email": new_email()}, **body)
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    return data["auth_session"], data["authn_params_public_key"]


def new_username() -> str:
    return "user-" + os.urandom(6).hex()


def sessions_pending(app: Flask) -> int:
    return len(app.extensions["passkey"].sessions)


@pytest.fixture(scope="module")
def shared_app() -> Flask:
    """One app for the refusals, which must change nothing (no rate limit: many requests)."""
    return make_app(rate_limit_enabled=False)


@pytest.fixture
def before(shared_app: Flask) -> Snapshot:
    """The shared app's user store as the test starts."""
    return store_snapshot(shared_app)


# -- the creation options ---------------------------------------------------------------------


def test_register_answers_the_creation_options_of_the_spec(shared_app: Flask) -> None:
    response = passkey_flow(shared_app).register({"email": EMAIL, "name": "Ann Lee"})

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"auth_session", "authn_params_public_key"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", body["auth_session"])
    options = body["authn_params_public_key"]
    assert options["rp"] == {"id": CUSTOM_DOMAIN, "name": "Acme"}
    assert len(b64url_decode(options["user"]["id"])) >= 16
    assert options["user"]["name"] == EMAIL
    assert options["user"]["displayName"] == "Ann Lee"
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-8, -7, -257]
    assert {p["type"] for p in options["pubKeyCredParams"]} == {"public-key"}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["timeout"] == 60_000
    assert len(b64url_decode(options["challenge"])) >= 32


def test_every_register_call_gets_a_new_user_handle_and_challenge(shared_app: Flask) -> None:
    flow = passkey_flow(shared_app)
    first_session, first = start(flow)
    second_session, second = start(flow)

    assert first["user"]["id"] != second["user"]["id"]
    assert first["challenge"] != second["challenge"]
    assert first_session != second_session


@pytest.mark.parametrize(
    ("profile", "name", "display_name"),
    [
        ({"email": "Ann@Example.COM"}, "ann@example.com", "ann@example.com"),
        ({"username": "ann", "phone_number": "+15551234567"}, "+15551234567", "+15551234567"),
        ({"username": "ann.lee", "name": "Ann"}, "ann.lee", "Ann"),
    ],
)
def test_user_name_is_the_first_identifier_and_display_name_the_name(
    shared_app: Flask, profile: dict[str, str], name: str, display_name: str
) -> None:
    realm = None if "email" in profile else "partners"
    _, options = start(passkey_flow(shared_app), profile, realm=realm)

    assert options["user"]["name"] == name
    assert options["user"]["displayName"] == display_name


def test_register_writes_nothing_to_the_user_store(app: Flask) -> None:
    start(passkey_flow(app), {"email": EMAIL, "name": "Ann"})
    start(passkey_flow(app), {"username": "ann"}, realm="partners")

    assert store_snapshot(app) == []
    assert app.extensions["passkey"].users.list_users() == []


def test_user_metadata_of_ten_string_values_is_accepted(shared_app: Flask) -> None:
    metadata = {f"key{i}": f"value {i}" for i in range(10)}
    email = new_email()

    passkey_flow(shared_app).sign_up({"email": email}, user_metadata=metadata)

    assert find_user(shared_app, email).user_metadata == metadata


# -- /passkey/register refusals ----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="user_profile missing"),
        pytest.param({"user_profile": None}, id="user_profile null"),
        pytest.param({"user_profile": "ann@example.com"}, id="user_profile a string"),
        pytest.param({"user_profile": [EMAIL]}, id="user_profile a list"),
        pytest.param({"user_profile": {}}, id="user_profile empty"),
        pytest.param({"user_profile": {"email": EMAIL, "role": "admin"}}, id="unknown property"),
        pytest.param({"user_profile": {"email": "not-an-email"}}, id="bad email"),
        pytest.param({"user_profile": {"email": EMAIL, "name": ""}}, id="empty name"),
        pytest.param(
            {"user_profile": {"email": EMAIL, "phone_number": "5551234567"}}, id="phone no plus"
        ),
        pytest.param(
            {"user_profile": {"email": EMAIL, "phone_number": "+1 555 123 4567"}},
            id="phone with spaces",
        ),
        pytest.param(
            {"user_profile": {"email": EMAIL, "phone_number": "+05551234567"}},
            id="phone leading zero",
        ),
        pytest.param(
            {"user_profile": {"email": EMAIL, "picture": "http://example.com/a.png"}},
            id="picture not https",
        ),
        pytest.param({"user_profile": {"username": "ann"}}, id="default realm needs email"),
        pytest.param(
            {"user_profile": {"email": EMAIL}, "realm": "partners"}, id="partners needs username"
        ),
        pytest.param(
            {"user_profile": {"username": "ann lee"}, "realm": "partners"}, id="bad username"
        ),
        pytest.param(
            {"user_profile": {"email": EMAIL}, "user_metadata": {f"k{i}": "v" for i in range(11)}},
            id="eleven metadata entries",
        ),
        pytest.param(
            {"user_profile": {"email": EMAIL}, "user_metadata": {"plan": 3}}, id="metadata int"
        ),
        pytest.param(
            {"user_profile": {"email": EMAIL}, "user_metadata": {"plan": {"tier": "gold"}}},
            id="metadata object",
        ),
        pytest.param(
            {"user_profile": {"email": EMAIL}, "user_metadata": {"plan": ["gold"]}},
            id="metadata list",
        ),
        pytest.param(
            {"user_profile": {"email": EMAIL}, "user_metadata": {"plan": True}},
            id="metadata bool",
        ),
        pytest.param(
            {"user_profile": {"email": EMAIL}, "user_metadata": ["gold"]}, id="metadata a list"
        ),
        pytest.param({"user_profile": {"email": EMAIL}, "realm": "nope"}, id="unknown realm"),
        pytest.param(
            {"user_profile": {"email": EMAIL}, "realm": "no-passkeys"}, id="realm without passkeys"
        ),
        pytest.param(
            {"user_profile": {"email": EMAIL}, "realm": "elsewhere"}, id="realm not enabled"
        ),
        pytest.param(
            {"user_profile": {"email": EMAIL}, "organization": "org_acme"},
            id="organization on a deny client",
        ),
    ],
)
def test_invalid_sign_up_request_gets_400_invalid_request_and_stores_nothing(
    shared_app: Flask, before: Snapshot, body: dict[str, Any]
) -> None:
    pending = sessions_pending(shared_app)

    response = shared_app.test_client().post(
        "/passkey/register", json={"client_id": "spa", **body}, headers={"Host": CUSTOM_DOMAIN}
    )

    assert_oauth_error(response, 400, "invalid_request")
    assert sessions_pending(shared_app) == pending
    assert store_snapshot(shared_app) == before


@pytest.mark.parametrize(
    ("client_id", "extra", "status", "error"),
    [
        ("third-party", {}, 400, "unauthorized_client"),
        ("no-grant", {}, 400, "unauthorized_client"),
        ("legacy", {}, 400, "unauthorized_client"),
        ("nobody", {}, 401, "invalid_client"),
        ("confidential", {}, 401, "invalid_client"),
        ("confidential", {"client_secret": "wrong"}, 401, "invalid_client"),
        ("org-required", {}, 400, "invalid_request"),
        ("org-allowed", {"organization": "org_unknown"}, 400, "invalid_request"),
    ],
)
def test_register_runs_the_same_validation_steps_as_the_challenge(
    shared_app: Flask, client_id: str, extra: dict[str, Any], status: int, error: str
) -> None:
    pending = sessions_pending(shared_app)

    response = shared_app.test_client().post(
        "/passkey/register",
        json={"client_id": client_id, "user_profile": {"email": EMAIL}, **extra},
        headers={"Host": CUSTOM_DOMAIN},
    )

    assert_oauth_error(response, status, error)
    assert sessions_pending(shared_app) == pending


def test_register_on_the_default_domain_gets_400(shared_app: Flask) -> None:
    flow = passkey_flow(shared_app, host=DEFAULT_DOMAIN)

    assert_oauth_error(flow.register({"email": EMAIL}), 400, "invalid_request")


def test_register_answers_404_when_passkeys_are_disabled() -> None:
    tenant = tenant_data()
    tenant["passkeys_enabled"] = False
    app = make_app(tenant=tenant)

    assert_oauth_error(passkey_flow(app).register({"email": EMAIL}), 404, "not_found")


@pytest.mark.parametrize(
    ("existing", "again", "realm"),
    [
        ({"email": EMAIL}, {"email": EMAIL}, None),
        ({"email": EMAIL}, {"email": "ANN@example.com"}, None),
        (
            {"email": EMAIL, "phone_number": "+15551234567"},
            {"email": "bob@example.com", "phone_number": "+15551234567"},
            None,
        ),
        ({"username": "ann"}, {"username": "ann"}, "partners"),
    ],
    ids=["same email", "email differing in case", "same phone", "same username"],
)
def test_identifier_already_taken_is_refused_at_register(
    app: Flask, existing: dict[str, str], again: dict[str, str], realm: str | None
) -> None:
    passkey_flow(app).sign_up(existing, realm=realm)
    before = store_snapshot(app)

    response = passkey_flow(app).register(again, realm=realm)

    assert_oauth_error(response, 400, "invalid_request")
    assert store_snapshot(app) == before


def test_identifier_is_unique_per_connection_only(app: Flask) -> None:
    passkey_flow(app).sign_up({"email": EMAIL})

    passkey_flow(app).sign_up({"email": EMAIL, "username": "ann"}, realm="partners")

    users = app.extensions["passkey"].users.list_users()
    assert sorted(u.connection for u in users) == [DB_CONNECTION, "partners"]


# -- successful sign-up ------------------------------------------------------------------------


def test_sign_up_creates_the_user_and_the_credential_together(app: Flask) -> None:
    authenticator = SoftAuthenticator(backup_eligible=True)
    flow = passkey_flow(app, authenticator=authenticator)
    profile = {
        "email": "Ann@Example.com",
        "phone_number": "+442071234567",
        "name": "Ann Lee",
        "given_name": "Ann",
        "family_name": "Lee",
        "nickname": "annie",
        "picture": "https://example.com/ann.png",
    }
    auth_session, options = start(flow, profile, user_metadata={"plan": "gold"})
    credential = authenticator.create(options, origin=ORIGIN)

    response = flow.token(auth_session, credential)

    assert response.status_code == 200, response.get_json()
    users = app.extensions["passkey"].users
    (user,) = users.list_users()
    assert user.connection == DB_CONNECTION
    assert user.email == "ann@example.com"
    assert user.phone_number == "+442071234567"
    assert user.profile == {
        "name": "Ann Lee",
        "given_name": "Ann",
        "family_name": "Lee",
        "nickname": "annie",
        "picture": "https://example.com/ann.png",
    }
    assert user.user_metadata == {"plan": "gold"}
    assert user.user_handle == base64url_to_bytes(options["user"]["id"])
    (stored,) = users.list_credentials(user.id)
    held = authenticator.credentials[0]
    assert stored.id == held.credential_id
    assert stored.public_key == held.cose_public_key
    assert stored.sign_count == 0
    assert stored.rp_id == CUSTOM_DOMAIN
    assert stored.backup_eligible and stored.backed_up
    assert set(stored.transports) == {"internal", "hybrid"}
    claims = verify_jwt(flow.client, response.get_json()["id_token"], audience="spa")
    assert claims["sub"] == user.id


def test_sign_up_in_a_realm_creates_the_user_there(shared_app: Flask) -> None:
    username = new_username()

    passkey_flow(shared_app).sign_up({"username": username}, realm="partners")

    user = shared_app.extensions["passkey"].users.find_user(
        connection="partners", kind="username", value=username
    )
    assert (user.connection, user.username, user.email) == ("partners", username, None)


def test_sign_up_from_a_client_web_origin_works(shared_app: Flask) -> None:
    flow = passkey_flow(shared_app, origin=WEB_ORIGIN)
    email = new_email()

    tokens = flow.sign_up({"email": email})

    claims = verify_jwt(flow.client, tokens["id_token"], audience="spa")
    assert claims["sub"] == find_user(shared_app, email).id


def test_sign_up_from_an_android_app_of_the_client_works(shared_app: Flask) -> None:
    flow = passkey_flow(shared_app, "native", origin=android_origin(ANDROID_FINGERPRINT))
    email = new_email()

    tokens = flow.sign_up({"email": email})

    claims = verify_jwt(flow.client, tokens["id_token"], audience="native")
    user = find_user(shared_app, email)
    assert claims["sub"] == user.id
    # The passkey is bound to the custom domain, whichever app created it.
    (credential,) = shared_app.extensions["passkey"].users.list_credentials(user.id)
    assert credential.rp_id == CUSTOM_DOMAIN


# -- refused attestations: invalid_grant, nothing stored ---------------------------------------


def flip_packed_signature(credential: dict[str, Any]) -> dict[str, Any]:
    attestation = parse_cbor(base64url_to_bytes(credential["response"]["attestationObject"]))
    signature = bytearray(attestation["attStmt"]["sig"])
    signature[len(signature) // 2] ^= 0x01
    attestation["attStmt"]["sig"] = bytes(signature)
    response = {
        **credential["response"],
        "attestationObject": bytes_to_base64url(encode_cbor(attestation)),
    }
    return {**credential, "response": response}


@pytest.mark.parametrize(
    ("lie", "client_id", "origin"),
    [
        *common_lies(wrong_type="webauthn.get"),
        pytest.param({}, "spa", f"http://{CUSTOM_DOMAIN}", id="http origin"),
        pytest.param({"rp_id": "evil.example"}, "spa", ORIGIN, id="wrong rp id hash"),
    ],
)
def test_lying_attestation_gets_invalid_grant_and_stores_nothing(
    shared_app: Flask, before: Snapshot, lie: dict[str, Any], client_id: str, origin: str
) -> None:
    flow = passkey_flow(shared_app, client_id)
    auth_session, options = start(flow)
    credential = flow.authenticator.create(options, origin=origin, **lie)

    response = flow.token(auth_session, credential)

    assert_oauth_error(response, 400, "invalid_grant")
    assert store_snapshot(shared_app) == before


def _with_attestation(credential: dict[str, Any], value: Any) -> dict[str, Any]:
    """``credential`` with its attestationObject replaced (bytes are CBOR-encoded first)."""
    encoded = (
        value
        if isinstance(value, str)
        else bytes_to_base64url(value if isinstance(value, bytes) else encode_cbor(value))
    )
    return {**credential, "response": {**credential["response"], "attestationObject": encoded}}


def _attestation(credential: dict[str, Any]) -> dict[Any, Any]:
    decoded: dict[Any, Any] = parse_cbor(
        base64url_to_bytes(credential["response"]["attestationObject"])
    )
    return decoded


def _auth_data_with_key(cose_key: bytes) -> bytes:
    rp_hash = hashlib.sha256(CUSTOM_DOMAIN.encode()).digest()
    return (
        rp_hash
        + b"\x45"
        + bytes(4)
        + bytes(16)
        + (32).to_bytes(2, "big")
        + os.urandom(32)
        + cose_key
    )


MALFORMED_ATTESTATIONS: dict[str, Any] = {
    "empty object": lambda c: {},
    "response missing": lambda c: {k: v for k, v in c.items() if k != "response"},
    "attestationObject missing": lambda c: {
        **c,
        "response": {k: v for k, v in c["response"].items() if k != "attestationObject"},
    },
    "response a list": lambda c: {**c, "response": [c["response"]]},
    "attestationObject bad base64": lambda c: _with_attestation(c, "%%%"),
    "attestationObject not cbor": lambda c: _with_attestation(c, b"\xff\xfe\xfd"),
    "attestationObject a cbor list": lambda c: _with_attestation(c, [1, 2, 3]),
    "attestationObject a cbor number": lambda c: _with_attestation(c, 7),
    "authData missing": lambda c: _with_attestation(c, {"fmt": "none", "attStmt": {}}),
    "authData a text string": lambda c: _with_attestation(
        c, {**_attestation(c), "authData": "x" * 64}
    ),
    "authData too short": lambda c: _with_attestation(
        c, {**_attestation(c), "authData": b"\x00" * 12}
    ),
    "fmt unknown": lambda c: _with_attestation(c, {**_attestation(c), "fmt": "made-up"}),
    "fmt a number": lambda c: _with_attestation(c, {**_attestation(c), "fmt": 3}),
    "attStmt on fmt none": lambda c: _with_attestation(
        c, {**_attestation(c), "attStmt": {"sig": b"x"}}
    ),
    "packed with a garbage sig": lambda c: _with_attestation(
        c, {**_attestation(c), "fmt": "packed", "attStmt": {"alg": -7, "sig": 5}}
    ),
    "packed with a text alg": lambda c: _with_attestation(
        c, {**_attestation(c), "fmt": "packed", "attStmt": {"alg": "ES256", "sig": b"x"}}
    ),
    "credential key not cbor": lambda c: _with_attestation(
        c, {**_attestation(c), "authData": _auth_data_with_key(b"\xff\xff")}
    ),
    "credential key a cbor list": lambda c: _with_attestation(
        c, {**_attestation(c), "authData": _auth_data_with_key(encode_cbor([1, 2]))}
    ),
    "credential key of an unknown type": lambda c: _with_attestation(
        c, {**_attestation(c), "authData": _auth_data_with_key(encode_cbor({1: 99, 3: -7}))}
    ),
    "clientDataJSON not json": lambda c: {
        **c,
        "response": {**c["response"], "clientDataJSON": bytes_to_base64url(b"<xml/>")},
    },
    "rawId differs from id": lambda c: {**c, "rawId": bytes_to_base64url(os.urandom(32))},
}


@pytest.mark.parametrize(
    "mangle", MALFORMED_ATTESTATIONS.values(), ids=MALFORMED_ATTESTATIONS.keys()
)
def test_malformed_attestation_gets_400_never_500_and_stores_nothing(
    shared_app: Flask, before: Snapshot, mangle: Any
) -> None:
    flow = passkey_flow(shared_app)
    auth_session, options = start(flow)
    credential = mangle(flow.authenticator.create(options, origin=ORIGIN))

    response = flow.token(auth_session, credential)

    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] in {"invalid_grant", "invalid_request"}
    assert store_snapshot(shared_app) == before


@pytest.mark.parametrize(
    "cose_key",
    [
        {1: 2, 3: -7, -1: 1, -2: b"\x01" * 32, -3: b"\x02" * 32},
        {1: 2, 3: -7, -1: 1, -2: "x", -3: "y"},
    ],
    ids=["EC point not on P-256", "text coordinates"],
)
def test_attested_public_key_that_is_not_a_valid_key_is_refused(
    shared_app: Flask, before: Snapshot, cose_key: dict[int, Any]
) -> None:
    flow = passkey_flow(shared_app)
    auth_session, options = start(flow)
    credential = flow.authenticator.create(options, origin=ORIGIN)
    attestation = _attestation(credential)
    credential_id = flow.authenticator.credentials[0].credential_id
    # The same authenticator data with the COSE key swapped for one no signature can match.
    attestation["authData"] = (
        attestation["authData"][:37]
        + bytes(16)
        + len(credential_id).to_bytes(2, "big")
        + credential_id
        + encode_cbor(cose_key)
    )

    response = flow.token(auth_session, _with_attestation(credential, attestation))

    assert_oauth_error(response, 400, "invalid_grant")
    assert store_snapshot(shared_app) == before


def test_tampered_packed_attestation_signature_gets_invalid_grant(
    shared_app: Flask, before: Snapshot
) -> None:
    flow = passkey_flow(shared_app, authenticator=SoftAuthenticator(attestation="packed"))
    auth_session, options = start(flow)
    credential = flow.authenticator.create(options, origin=ORIGIN)

    response = flow.token(auth_session, flip_packed_signature(credential))

    assert_oauth_error(response, 400, "invalid_grant")
    assert store_snapshot(shared_app) == before


@pytest.mark.parametrize("length", [1024, 4000])
def test_credential_id_longer_than_1023_bytes_is_refused(
    shared_app: Flask, before: Snapshot, length: int
) -> None:
    # WebAuthn Level 3 §7.1 step 24: credential ids are at most 1,023 bytes.
    flow = passkey_flow(shared_app)
    auth_session, options = start(flow)
    credential = flow.authenticator.create(options, origin=ORIGIN, credential_id=os.urandom(length))

    response = flow.token(auth_session, credential)

    assert_oauth_error(response, 400, "invalid_grant")
    assert store_snapshot(shared_app) == before


def test_credential_id_of_1023_bytes_signs_up_and_in(shared_app: Flask) -> None:
    flow = passkey_flow(shared_app)
    auth_session, options = start(flow)
    credential = flow.authenticator.create(options, origin=ORIGIN, credential_id=os.urandom(1023))

    assert flow.token(auth_session, credential).status_code == 200
    assert flow.sign_in()["id_token"]


def test_redeemed_sign_up_session_cannot_be_replayed(shared_app: Flask) -> None:
    flow = passkey_flow(shared_app)
    auth_session, options = start(flow)
    credential = flow.authenticator.create(options, origin=ORIGIN)
    assert flow.token(auth_session, credential).status_code == 200
    before = store_snapshot(shared_app)

    response = flow.token(auth_session, credential)

    assert_oauth_error(response, 400, "invalid_grant")
    assert store_snapshot(shared_app) == before


def test_unknown_auth_session_gets_invalid_grant(shared_app: Flask, before: Snapshot) -> None:
    flow = passkey_flow(shared_app)
    _, options = start(flow)
    credential = flow.authenticator.create(options, origin=ORIGIN)

    assert_oauth_error(flow.token("no-such-session", credential), 400, "invalid_grant")
    assert store_snapshot(shared_app) == before


def test_sign_up_session_expires_after_the_challenge_timeout() -> None:
    clock = FakeClock(1_900_000_000.0)
    app = make_app(clock=clock, challenge_timeout=30_000)
    flow = passkey_flow(app)
    auth_session, options = start(flow)
    assert options["timeout"] == 30_000
    credential = flow.authenticator.create(options, origin=ORIGIN)
    clock.advance(30)

    assert_oauth_error(flow.token(auth_session, credential), 400, "invalid_grant")
    assert store_snapshot(app) == []


def test_sign_up_session_is_redeemable_until_just_before_its_timeout() -> None:
    clock = FakeClock(1_900_000_000.0)
    app = make_app(clock=clock, challenge_timeout=30_000)
    flow = passkey_flow(app)
    auth_session, options = start(flow)
    credential = flow.authenticator.create(options, origin=ORIGIN)
    clock.advance(29.5)

    assert flow.token(auth_session, credential).status_code == 200
    assert len(store_snapshot(app)) == 1


def test_sign_up_session_of_another_client_gets_invalid_grant(
    shared_app: Flask, before: Snapshot
) -> None:
    flow = passkey_flow(shared_app)
    auth_session, options = start(flow)
    credential = flow.authenticator.create(options, origin=ORIGIN)
    thief = passkey_flow(shared_app, "refreshing")

    assert_oauth_error(thief.token(auth_session, credential), 400, "invalid_grant")
    assert store_snapshot(shared_app) == before


@pytest.mark.parametrize(
    ("issued", "redeemed", "error"),
    [
        ({}, {"realm": "partners"}, "invalid_grant"),
        ({"realm": "partners"}, {"realm": DB_CONNECTION}, "invalid_grant"),
        ({}, {"organization": "org_acme"}, "invalid_grant"),
        # An unknown organization fails step 7 before the session is spent.
        ({"organization": "org_acme"}, {"organization": "org_other"}, "invalid_request"),
    ],
    ids=["default realm vs partners", "partners vs default", "no org vs org", "org vs unknown"],
)
def test_sign_up_session_redeemed_with_another_realm_or_organization_is_refused(
    shared_app: Flask,
    before: Snapshot,
    issued: dict[str, str],
    redeemed: dict[str, str],
    error: str,
) -> None:
    flow = passkey_flow(shared_app, "org-allowed")
    auth_session, options = start(
        flow, {"email": new_email(), "username": new_username()}, **issued
    )
    credential = flow.authenticator.create(options, origin=ORIGIN)

    response = flow.token(auth_session, credential, **redeemed)

    assert_oauth_error(response, 400, error)
    assert store_snapshot(shared_app) == before


def test_sign_up_session_redeemed_with_the_realm_it_was_issued_for_works(
    shared_app: Flask,
) -> None:
    flow = passkey_flow(shared_app)
    auth_session, options = start(flow)
    credential = flow.authenticator.create(options, origin=ORIGIN)

    response = flow.token(auth_session, credential, realm=DB_CONNECTION)

    assert response.status_code == 200, response.get_json()


def test_second_of_two_sign_ups_for_one_email_is_refused(shared_app: Flask) -> None:
    email = new_email()
    first = passkey_flow(shared_app)
    second = passkey_flow(shared_app)
    first_session, first_options = start(first, {"email": email})
    second_session, second_options = start(second, {"email": email.upper()})
    first_credential = first.authenticator.create(first_options, origin=ORIGIN)
    second_credential = second.authenticator.create(second_options, origin=ORIGIN)

    assert first.token(first_session, first_credential).status_code == 200
    response = second.token(second_session, second_credential)

    assert_oauth_error(response, 400, "invalid_request")
    user = find_user(shared_app, email)
    users = shared_app.extensions["passkey"].users
    assert [c.id for c in users.list_credentials(user.id)] == [
        first.authenticator.credentials[0].credential_id
    ]
    assert users.get_credential(second.authenticator.credentials[0].credential_id) is None


def test_sign_up_session_redeemed_with_an_assertion_gets_invalid_grant(
    shared_app: Flask,
) -> None:
    flow = passkey_flow(shared_app)
    flow.sign_up({"email": new_email()})
    before = store_snapshot(shared_app)
    auth_session, options = start(flow)
    # A correctly signed assertion of a registered passkey over the sign-up challenge.
    request_options = {"challenge": options["challenge"], "rpId": options["rp"]["id"]}
    assertion = flow.authenticator.get(request_options, origin=ORIGIN)

    response = flow.token(auth_session, assertion)

    assert_oauth_error(response, 400, "invalid_grant")
    assert store_snapshot(shared_app) == before


def test_passkey_already_registered_cannot_sign_up_another_user(
    shared_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two authenticators that (improbably) mint the same credential id for two new users.
    flow = passkey_flow(shared_app)
    auth_session, options = start(flow)
    first = passkey_flow(shared_app)
    first_session, first_options = start(first)
    with monkeypatch.context() as patch:
        patch.setattr(os, "urandom", lambda n: b"\x07" * n)
        first_credential = first.authenticator.create(first_options, origin=ORIGIN)
        credential = flow.authenticator.create(options, origin=ORIGIN)
    assert first_credential["rawId"] == credential["rawId"]
    assert first.token(first_session, first_credential).status_code == 200
    before = store_snapshot(shared_app)

    response = flow.token(auth_session, credential)

    assert_oauth_error(response, 400, "invalid_grant")
    assert store_snapshot(shared_app) == before


# -- organizations -----------------------------------------------------------------------------


@pytest.mark.parametrize("client_id", ["org-allowed", "org-required"])
def test_sign_up_with_an_organization_enrolls_the_user(shared_app: Flask, client_id: str) -> None:
    flow = passkey_flow(shared_app, client_id)
    email = new_email()

    tokens = flow.sign_up({"email": email}, organization="org_acme")

    users = shared_app.extensions["passkey"].users
    user = find_user(shared_app, email)
    assert users.is_member(organization_id="org_acme", user_id=user.id)
    claims = verify_jwt(flow.client, tokens["id_token"], audience=client_id)
    assert claims["org_id"] == "org_acme"


def test_sign_up_without_an_organization_enrolls_nowhere(shared_app: Flask) -> None:
    flow = passkey_flow(shared_app, "org-allowed")
    email = new_email()

    tokens = flow.sign_up({"email": email})

    users = shared_app.extensions["passkey"].users
    user = find_user(shared_app, email)
    assert not users.is_member(organization_id="org_acme", user_id=user.id)
    assert "org_id" not in verify_jwt(flow.client, tokens["id_token"], audience="org-allowed")


def test_unknown_audience_refuses_sign_up_with_403_and_stores_nothing(
    shared_app: Flask, before: Snapshot
) -> None:
    flow = passkey_flow(shared_app)
    auth_session, options = start(flow)
    credential = flow.authenticator.create(options, origin=ORIGIN)

    response = flow.token(auth_session, credential, audience="https://unknown.example/")

    assert_oauth_error(response, 403, "access_denied")
    assert store_snapshot(shared_app) == before


def test_token_request_on_the_default_domain_is_refused_without_burning_the_session(
    shared_app: Flask,
    before: Snapshot,
) -> None:
    flow = passkey_flow(shared_app)
    auth_session, options = start(flow)
    credential = flow.authenticator.create(options, origin=ORIGIN)
    elsewhere = passkey_flow(shared_app, host=DEFAULT_DOMAIN)

    assert_oauth_error(elsewhere.token(auth_session, credential), 400, "invalid_request")
    assert store_snapshot(shared_app) == before
    # The refused request did not burn the session.
    assert flow.token(auth_session, credential).status_code == 200
