"""Sign-in over the HTTP API: POST /passkey/challenge, then the webauthn grant of /oauth/token.

Assertions are real ones from SoftAuthenticator; the rejections make it lie in one way and
check that the stored credential (counter, backup state, last use) is left as it was.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import pytest
from flask import Flask
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from flask_passkey.models import WEBAUTHN_GRANT
from flask_passkey.testing import PasskeyFlow, SoftAuthenticator, android_origin
from tests.apps import (
    ANDROID_FINGERPRINT,
    CONFIDENTIAL_SECRET,
    CUSTOM_DOMAIN,
    DB_CONNECTION,
    ORIGIN,
    USERINFO,
    WEB_ORIGIN,
    FakeClock,
    make_app,
)
from tests.events import Recorder
from tests.support import (
    assert_oauth_error,
    common_lies,
    new_email,
    passkey_flow,
    store_snapshot,
    verify_jwt,
)


def start(flow: PasskeyFlow, **body: Any) -> tuple[str, dict[str, Any]]:
    """POST /passkey/challenge; return (auth_session, request options)."""
    response = flow.challenge(**body)
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    return data["auth_session"], data["authn_params_public_key"]


def b64_flip(value: str, index: int) -> str:
    raw = bytearray(base64url_to_bytes(value))
    raw[index] ^= 0x01
    return bytes_to_base64url(bytes(raw))


def with_response(assertion: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """``assertion`` with members of its ``response`` replaced (None removes one)."""
    response = {**assertion["response"], **fields}
    return {**assertion, "response": {k: v for k, v in response.items() if v is not None}}


def user_of(app: Flask, flow: PasskeyFlow) -> Any:
    """The stored user owning the newest passkey of the flow's authenticator."""
    users = app.extensions["passkey"].users
    return users.get_user(
        users.get_credential(flow.authenticator.credentials[-1].credential_id).user_id
    )


def stored_credential(app: Flask, flow: PasskeyFlow) -> Any:
    return app.extensions["passkey"].users.get_credential(
        flow.authenticator.credentials[-1].credential_id
    )


# -- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("attestation", ["none", "packed"])
@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA", "RS256"])
def test_sign_in_after_sign_up_gives_tokens_for_the_same_subject(
    shared_app: Flask, algorithm: Any, attestation: Any
) -> None:
    authenticator = SoftAuthenticator(algorithm=algorithm, attestation=attestation)
    flow = passkey_flow(shared_app, authenticator=authenticator)

    signed_up = flow.sign_up({"email": new_email()})
    signed_in = flow.sign_in()

    user = user_of(shared_app, flow)
    for tokens in (signed_up, signed_in):
        assert verify_jwt(flow.client, tokens["id_token"], audience="spa")["sub"] == user.id
        assert verify_jwt(flow.client, tokens["access_token"], audience=USERINFO)["sub"] == user.id


def test_sign_in_stores_the_new_counter_backup_state_and_last_use() -> None:
    clock = FakeClock(1_900_000_000.0)
    app = make_app(clock=clock)
    authenticator = SoftAuthenticator(counter="increment", backup_eligible=True, backed_up=False)
    flow = passkey_flow(app, authenticator=authenticator)
    flow.sign_up({"email": new_email()})
    registered = stored_credential(app, flow)
    assert (registered.sign_count, registered.backed_up) == (0, False)
    assert registered.last_used_at == clock.now

    clock.advance(3600)
    authenticator.backed_up = True
    flow.sign_in()

    after = stored_credential(app, flow)
    assert (after.sign_count, after.backed_up, after.last_used_at) == (1, True, clock.now)
    clock.advance(60)
    flow.sign_in()
    assert stored_credential(app, flow).sign_count == 2


def test_synced_passkey_reporting_zero_counters_signs_in_repeatedly(shared_app: Flask) -> None:
    flow = passkey_flow(shared_app, authenticator=SoftAuthenticator(counter="zero"))
    flow.sign_up({"email": new_email()})

    subjects = {
        verify_jwt(flow.client, flow.sign_in()["id_token"], audience="spa")["sub"] for _ in range(3)
    }

    assert subjects == {user_of(shared_app, flow).id}
    assert stored_credential(shared_app, flow).sign_count == 0


def test_assertion_without_user_handle_signs_in(shared_app: Flask) -> None:
    flow = passkey_flow(shared_app)
    flow.sign_up({"email": new_email()})
    auth_session, options = start(flow)
    assertion = flow.authenticator.get(options, origin=ORIGIN, user_handle=None)

    response = flow.token(auth_session, assertion)

    assert response.status_code == 200, response.get_json()


def test_the_passkey_picked_decides_who_signs_in(shared_app: Flask) -> None:
    authenticator = SoftAuthenticator()
    ann = passkey_flow(shared_app, authenticator=authenticator)
    ann_sub = verify_jwt(
        ann.client, ann.sign_up({"email": new_email()})["id_token"], audience="spa"
    )["sub"]
    bob_sub = verify_jwt(
        ann.client, ann.sign_up({"email": new_email()})["id_token"], audience="spa"
    )["sub"]
    ann_credential, bob_credential = (c.credential_id for c in authenticator.credentials)

    as_ann = ann.sign_in(credential_id=ann_credential)
    as_bob = ann.sign_in(credential_id=bob_credential)

    assert verify_jwt(ann.client, as_ann["id_token"], audience="spa")["sub"] == ann_sub
    assert verify_jwt(ann.client, as_bob["id_token"], audience="spa")["sub"] == bob_sub
    assert ann_sub != bob_sub


def test_sign_in_from_a_client_web_origin_works(shared_app: Flask) -> None:
    passkey = SoftAuthenticator()
    passkey_flow(shared_app, authenticator=passkey).sign_up({"email": new_email()})
    web = passkey_flow(shared_app, authenticator=passkey, origin=WEB_ORIGIN)

    assert web.sign_in()["id_token"]


def test_passkey_created_on_the_web_signs_in_from_the_android_app(shared_app: Flask) -> None:
    passkey = SoftAuthenticator()
    web = passkey_flow(shared_app, "native", authenticator=passkey)
    signed_up = web.sign_up({"email": new_email()})
    android = passkey_flow(
        shared_app, "native", authenticator=passkey, origin=android_origin(ANDROID_FINGERPRINT)
    )

    signed_in = android.sign_in()

    first = verify_jwt(web.client, signed_up["id_token"], audience="native")
    again = verify_jwt(android.client, signed_in["id_token"], audience="native")
    assert again["sub"] == first["sub"]


def test_confidential_client_signs_in_with_its_secret(shared_app: Flask) -> None:
    flow = passkey_flow(shared_app, "confidential")
    assert flow.client_secret == CONFIDENTIAL_SECRET
    flow.sign_up({"email": new_email()})

    assert flow.sign_in()["access_token"]


# -- refused assertions on a shared app: invalid_grant, nothing changes ------------------------


@pytest.fixture(scope="module")
def shared() -> tuple[Flask, SoftAuthenticator, SoftAuthenticator]:
    """One app with two signed-up users (Ann's and Bob's passkeys); no rate limit."""
    app = make_app(rate_limit_enabled=False)
    ann, bob = SoftAuthenticator(), SoftAuthenticator()
    passkey_flow(app, authenticator=ann).sign_up({"email": new_email()})
    passkey_flow(app, authenticator=bob).sign_up({"email": new_email()})
    return app, ann, bob


@pytest.fixture
def shared_app(shared: tuple[Flask, SoftAuthenticator, SoftAuthenticator]) -> Flask:
    return shared[0]


@pytest.fixture
def ann(shared: tuple[Flask, SoftAuthenticator, SoftAuthenticator]) -> SoftAuthenticator:
    return shared[1]


@pytest.fixture
def bob(shared: tuple[Flask, SoftAuthenticator, SoftAuthenticator]) -> SoftAuthenticator:
    return shared[2]


def refused(app: Flask, flow: PasskeyFlow, auth_session: str, assertion: Any, **body: Any) -> Any:
    """Redeem and return the response, checking the user store did not change."""
    before = store_snapshot(app)
    response = flow.token(auth_session, assertion, **body)
    assert store_snapshot(app) == before
    return response


def test_honest_assertion_on_the_shared_app_signs_in(
    shared_app: Flask, ann: SoftAuthenticator
) -> None:
    # The control for the refusals below: the same set-up, telling the truth.
    assert passkey_flow(shared_app, authenticator=ann).sign_in()["id_token"]


@pytest.mark.parametrize(
    ("lie", "client_id", "origin"),
    [
        *common_lies(wrong_type="webauthn.create"),
        pytest.param({}, "spa", f"https://{CUSTOM_DOMAIN}:8443", id="wrong port"),
        pytest.param({"rp_id": "acme.test"}, "spa", ORIGIN, id="wrong rp id hash"),
    ],
)
def test_lying_assertion_gets_invalid_grant_and_changes_nothing(
    shared_app: Flask, ann: SoftAuthenticator, lie: dict[str, Any], client_id: str, origin: str
) -> None:
    flow = passkey_flow(shared_app, client_id, authenticator=ann)
    auth_session, options = start(flow)
    assertion = ann.get(options, origin=origin, **lie)

    assert_oauth_error(refused(shared_app, flow, auth_session, assertion), 400, "invalid_grant")


@pytest.mark.parametrize("field", ["signature", "authenticatorData", "clientDataJSON"])
def test_tampered_assertion_gets_invalid_grant(
    shared_app: Flask, ann: SoftAuthenticator, field: str
) -> None:
    flow = passkey_flow(shared_app, authenticator=ann)
    auth_session, options = start(flow)
    assertion = ann.get(options, origin=ORIGIN)
    # Byte 10 of the signature is inside r; of authenticatorData inside the RP ID hash; of
    # clientDataJSON inside '"type"' (which stays valid JSON).
    tampered = with_response(assertion, **{field: b64_flip(assertion["response"][field], 10)})

    assert_oauth_error(refused(shared_app, flow, auth_session, tampered), 400, "invalid_grant")


def test_flipped_signature_is_refused_even_with_a_correct_challenge(
    shared_app: Flask, ann: SoftAuthenticator
) -> None:
    flow = passkey_flow(shared_app, authenticator=ann)
    auth_session, options = start(flow)
    assertion = ann.get(options, origin=ORIGIN)
    signature = assertion["response"]["signature"]
    tampered = with_response(
        assertion, signature=b64_flip(signature, len(base64url_to_bytes(signature)) - 1)
    )

    assert_oauth_error(refused(shared_app, flow, auth_session, tampered), 400, "invalid_grant")


def test_user_handle_of_another_user_gets_invalid_grant(
    shared_app: Flask, ann: SoftAuthenticator, bob: SoftAuthenticator
) -> None:
    flow = passkey_flow(shared_app, authenticator=ann)
    auth_session, options = start(flow)
    assertion = ann.get(options, origin=ORIGIN, user_handle=bob.credentials[0].user_handle)

    assert_oauth_error(refused(shared_app, flow, auth_session, assertion), 400, "invalid_grant")


def test_unknown_credential_gets_invalid_grant(shared_app: Flask) -> None:
    stranger = SoftAuthenticator()
    # A passkey for the right RP that was never registered here.
    stranger.create(
        {
            "challenge": bytes_to_base64url(os.urandom(32)),
            "rp": {"id": CUSTOM_DOMAIN},
            "user": {"id": bytes_to_base64url(os.urandom(16))},
        },
        origin=ORIGIN,
    )
    flow = passkey_flow(shared_app, authenticator=stranger)
    auth_session, options = start(flow)
    assertion = stranger.get(options, origin=ORIGIN)

    assert_oauth_error(refused(shared_app, flow, auth_session, assertion), 400, "invalid_grant")
    assert (
        shared_app.extensions["passkey"].users.get_credential(stranger.credentials[0].credential_id)
        is None
    )


def test_passkey_of_another_realm_gets_invalid_grant(
    shared_app: Flask, ann: SoftAuthenticator
) -> None:
    flow = passkey_flow(shared_app, authenticator=ann)
    auth_session, options = start(flow, realm="partners")
    assertion = ann.get(options, origin=ORIGIN)

    assert_oauth_error(refused(shared_app, flow, auth_session, assertion), 400, "invalid_grant")


def test_redeemed_login_session_cannot_be_replayed(
    shared_app: Flask, ann: SoftAuthenticator
) -> None:
    flow = passkey_flow(shared_app, authenticator=ann)
    auth_session, options = start(flow)
    assertion = ann.get(options, origin=ORIGIN)
    assert flow.token(auth_session, assertion).status_code == 200

    assert_oauth_error(refused(shared_app, flow, auth_session, assertion), 400, "invalid_grant")


def test_login_session_of_another_client_gets_invalid_grant(
    shared_app: Flask, ann: SoftAuthenticator
) -> None:
    flow = passkey_flow(shared_app, authenticator=ann)
    auth_session, options = start(flow)
    assertion = ann.get(options, origin=ORIGIN)
    thief = passkey_flow(shared_app, "refreshing")

    assert_oauth_error(refused(shared_app, thief, auth_session, assertion), 400, "invalid_grant")


@pytest.mark.parametrize(
    ("client_id", "issued", "redeemed", "error"),
    [
        ("spa", {}, {"realm": "partners"}, "invalid_grant"),
        ("spa", {"realm": DB_CONNECTION}, {"realm": "partners"}, "invalid_grant"),
        # Steps 6 and 7 run on what the token request names, before the session is spent:
        ("spa", {}, {"organization": "org_acme"}, "invalid_request"),  # spa denies orgs
        (
            "org-allowed",
            {"organization": "org_acme"},
            {"organization": "org_other"},
            "invalid_request",
        ),
    ],
    ids=["default realm vs partners", "realm vs partners", "no org vs org", "org vs unknown"],
)
def test_login_session_redeemed_with_another_realm_or_organization_is_refused(
    shared_app: Flask,
    ann: SoftAuthenticator,
    client_id: str,
    issued: dict[str, str],
    redeemed: dict[str, str],
    error: str,
) -> None:
    flow = passkey_flow(shared_app, client_id, authenticator=ann)
    auth_session, options = start(flow, **issued)
    assertion = ann.get(options, origin=ORIGIN)

    response = refused(shared_app, flow, auth_session, assertion, **redeemed)

    assert_oauth_error(response, 400, error)


def test_login_session_redeemed_with_an_attestation_gets_invalid_grant(
    shared_app: Flask,
) -> None:
    newcomer = SoftAuthenticator()
    flow = passkey_flow(shared_app, authenticator=newcomer)
    auth_session, options = start(flow)
    # A real attestation over the login challenge, as if the client ran a sign-up.
    credential = newcomer.create(
        {
            "challenge": options["challenge"],
            "rp": {"id": options["rpId"], "name": "Acme"},
            "user": {"id": bytes_to_base64url(os.urandom(16)), "name": "eve", "displayName": "Eve"},
        },
        origin=ORIGIN,
    )

    assert_oauth_error(refused(shared_app, flow, auth_session, credential), 400, "invalid_grant")
    assert (
        shared_app.extensions["passkey"].users.get_credential(newcomer.credentials[0].credential_id)
        is None
    )


def _b64(data: bytes) -> str:
    return bytes_to_base64url(data)


def _client_data(**overrides: Any) -> str:
    data = {
        "type": "webauthn.get",
        "challenge": _b64(os.urandom(32)),
        "origin": ORIGIN,
        **overrides,
    }
    return _b64(json.dumps(data).encode())


MALFORMED_RESPONSES: dict[str, Any] = {
    "empty object": lambda a: {},
    "response missing": lambda a: {k: v for k, v in a.items() if k != "response"},
    "rawId missing": lambda a: {k: v for k, v in a.items() if k != "rawId"},
    "response a string": lambda a: {**a, "response": "signed"},
    "response a list": lambda a: {**a, "response": [a["response"]]},
    "type wrong": lambda a: {**a, "type": "password"},
    "id differs from rawId": lambda a: {**a, "id": _b64(os.urandom(32))},
    "clientDataJSON missing": lambda a: with_response(a, clientDataJSON=None),
    "authenticatorData missing": lambda a: with_response(a, authenticatorData=None),
    "signature missing": lambda a: with_response(a, signature=None),
    "signature empty": lambda a: with_response(a, signature=""),
    "signature a number": lambda a: with_response(a, signature=12345),
    "rawId bad base64": lambda a: {**a, "rawId": "!!not base64!!"},
    "rawId not ascii": lambda a: {**a, "rawId": "clé"},
    "clientDataJSON bad base64": lambda a: with_response(a, clientDataJSON="%%%"),
    "signature bad base64": lambda a: with_response(a, signature="***"),
    "authenticatorData bad base64": lambda a: with_response(a, authenticatorData="@@@@"),
    "userHandle bad base64": lambda a: with_response(a, userHandle="###"),
    "userHandle a number": lambda a: with_response(a, userHandle=7),
    "clientDataJSON not json": lambda a: with_response(a, clientDataJSON=_b64(b"not json")),
    "clientDataJSON not utf-8": lambda a: with_response(a, clientDataJSON=_b64(b"\xff\xfe{")),
    "clientDataJSON a list": lambda a: with_response(
        a, clientDataJSON=_b64(b'["type", "challenge", "origin"]')
    ),
    "clientDataJSON empty object": lambda a: with_response(a, clientDataJSON=_b64(b"{}")),
    "clientDataJSON numeric challenge": lambda a: with_response(
        a, clientDataJSON=_client_data(challenge=5)
    ),
    "clientDataJSON object challenge": lambda a: with_response(
        a, clientDataJSON=_client_data(challenge={"a": 1})
    ),
    "clientDataJSON list origin": lambda a: with_response(
        a, clientDataJSON=_client_data(origin=[ORIGIN])
    ),
    "clientDataJSON odd tokenBinding": lambda a: with_response(
        a, clientDataJSON=_client_data(tokenBinding={"status": 5, "id": []})
    ),
    "authenticatorData too short": lambda a: with_response(a, authenticatorData=_b64(b"\x00" * 10)),
    "authenticatorData extension garbage": lambda a: with_response(
        a, authenticatorData=_b64(os.urandom(32) + b"\x85" + b"\x00\x00\x00\x01" + b"\xff\xff")
    ),
    "authenticatorData attested garbage": lambda a: with_response(
        a, authenticatorData=_b64(os.urandom(32) + b"\x45" + b"\x00\x00\x00\x01" + b"\x01")
    ),
}


@pytest.mark.parametrize("mangle", MALFORMED_RESPONSES.values(), ids=MALFORMED_RESPONSES.keys())
def test_malformed_assertion_gets_400_never_500(
    shared_app: Flask, ann: SoftAuthenticator, mangle: Any
) -> None:
    flow = passkey_flow(shared_app, authenticator=ann)
    auth_session, options = start(flow)
    assertion = mangle(ann.get(options, origin=ORIGIN))

    response = refused(shared_app, flow, auth_session, assertion)

    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] in {"invalid_grant", "invalid_request"}


@pytest.mark.parametrize(
    "authn_response",
    [None, "a string", "{not json", 42, [1, 2], True],
    ids=["null", "string", "broken json text", "number", "list", "boolean"],
)
def test_authn_response_that_is_not_an_object_gets_invalid_request(
    shared_app: Flask, ann: SoftAuthenticator, authn_response: Any
) -> None:
    flow = passkey_flow(shared_app, authenticator=ann)
    auth_session, _ = start(flow)
    before = store_snapshot(shared_app)

    response = flow.client.post(
        "/oauth/token",
        json={
            "grant_type": WEBAUTHN_GRANT,
            "client_id": "spa",
            "auth_session": auth_session,
            "authn_response": authn_response,
        },
        headers={"Host": CUSTOM_DOMAIN},
    )

    assert_oauth_error(response, 400, "invalid_request")
    assert store_snapshot(shared_app) == before


# -- refusals that need their own app ----------------------------------------------------------


def test_login_session_expires_after_the_challenge_timeout() -> None:
    clock = FakeClock(1_900_000_000.0)
    app = make_app(clock=clock)
    flow = passkey_flow(app)
    flow.sign_up({"email": new_email()})
    auth_session, options = start(flow)
    assertion = flow.authenticator.get(options, origin=ORIGIN)
    clock.advance(options["timeout"] / 1000)

    assert_oauth_error(refused(app, flow, auth_session, assertion), 400, "invalid_grant")


def test_counter_going_backwards_gets_invalid_grant_and_keeps_the_stored_count() -> None:
    clock = FakeClock(1_900_000_000.0)
    app = make_app(clock=clock)
    flow = passkey_flow(app, authenticator=SoftAuthenticator(counter="increment"))
    flow.sign_up({"email": new_email()})
    flow.sign_in()
    flow.sign_in()
    assert stored_credential(app, flow).sign_count == 2
    clock.advance(10)

    auth_session, options = start(flow)
    assertion = flow.authenticator.get(options, origin=ORIGIN, sign_count=1)
    assert_oauth_error(refused(app, flow, auth_session, assertion), 400, "invalid_grant")

    assert stored_credential(app, flow).sign_count == 2
    assert flow.sign_in()  # the real authenticator, now at 3, still works


@pytest.mark.parametrize("reported", [0, 5], ids=["drops-to-zero", "repeats-the-count"])
def test_counter_not_above_a_non_zero_stored_count_is_a_possible_clone(reported: int) -> None:
    # WebAuthn Level 3 §7.2 step 22: once either count is non-zero, a count that does not
    # grow signals a cloned authenticator, even when the new one is 0.
    recorder = Recorder()
    clock = FakeClock(1_900_000_000.0)
    app = make_app(clock=clock, plugins=[recorder])
    flow = passkey_flow(app, authenticator=SoftAuthenticator(counter="increment"))
    flow.sign_up({"email": new_email()})
    for _ in range(5):
        flow.sign_in()
    assert stored_credential(app, flow).sign_count == 5
    clock.advance(10)
    auth_session, options = start(flow)
    assertion = flow.authenticator.get(options, origin=ORIGIN, sign_count=reported)

    assert_oauth_error(refused(app, flow, auth_session, assertion), 400, "invalid_grant")

    assert stored_credential(app, flow).sign_count == 5
    clone = [event for event in recorder.events if event.name == "possible_clone"]
    assert [(e.endpoint, e.user_id, e.error) for e in clone] == [
        ("token", user_of(app, flow).id, "invalid_grant")
    ]


def test_older_assertion_replayed_on_a_new_session_gets_invalid_grant(
    shared_app: Flask,
) -> None:
    flow = passkey_flow(shared_app, authenticator=SoftAuthenticator(counter="increment"))
    flow.sign_up({"email": new_email()})
    old_session, options = start(flow)
    old_assertion = flow.authenticator.get(options, origin=ORIGIN)
    assert flow.token(old_session, old_assertion).status_code == 200
    new_session, _ = start(flow)

    response = refused(shared_app, flow, new_session, old_assertion)

    assert_oauth_error(response, 400, "invalid_grant")


# -- organizations -----------------------------------------------------------------------------


def test_member_signs_in_with_the_organization_and_gets_org_id(shared_app: Flask) -> None:
    flow = passkey_flow(shared_app, "org-allowed")
    flow.sign_up({"email": new_email()}, organization="org_acme")

    tokens = flow.sign_in(organization="org_acme")

    claims = verify_jwt(flow.client, tokens["id_token"], audience="org-allowed")
    access = verify_jwt(flow.client, tokens["access_token"], audience=USERINFO)
    assert claims["org_id"] == access["org_id"] == "org_acme"
    assert claims["sub"] == user_of(shared_app, flow).id


def test_non_member_signing_in_with_the_organization_gets_403_and_changes_nothing() -> None:
    clock = FakeClock(1_900_000_000.0)
    app = make_app(clock=clock)
    flow = passkey_flow(app, "org-allowed", authenticator=SoftAuthenticator(counter="increment"))
    flow.sign_up({"email": new_email()})
    clock.advance(60)
    auth_session, options = start(flow, organization="org_acme")
    assertion = flow.authenticator.get(options, origin=ORIGIN)

    response = refused(app, flow, auth_session, assertion)

    assert_oauth_error(response, 403, "access_denied")
    assert stored_credential(app, flow).sign_count == 0


def test_member_of_an_organization_signs_in_without_it_and_gets_no_org_id(
    shared_app: Flask,
) -> None:
    flow = passkey_flow(shared_app, "org-allowed")
    flow.sign_up({"email": new_email()}, organization="org_acme")

    tokens = flow.sign_in()

    assert "org_id" not in verify_jwt(flow.client, tokens["id_token"], audience="org-allowed")


# -- concurrency -------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["login", "signup"])
def test_twenty_concurrent_redemptions_of_one_session_let_exactly_one_through(
    shared_app: Flask, operation: str
) -> None:
    flow = passkey_flow(shared_app)
    if operation == "login":
        flow.sign_up({"email": new_email()})
        auth_session, options = start(flow)
        authn_response = flow.authenticator.get(options, origin=ORIGIN)
    else:
        registered = flow.register({"email": new_email()}).get_json()
        auth_session = registered["auth_session"]
        authn_response = flow.authenticator.create(
            registered["authn_params_public_key"], origin=ORIGIN
        )
    body = {
        "grant_type": WEBAUTHN_GRANT,
        "client_id": "spa",
        "auth_session": auth_session,
        "authn_response": authn_response,
    }
    barrier = threading.Barrier(20)
    results: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def redeem() -> None:
        client = shared_app.test_client()
        barrier.wait()
        response = client.post("/oauth/token", json=body, headers={"Host": CUSTOM_DOMAIN})
        with lock:
            results.append((response.status_code, response.get_json().get("error")))

    threads = [threading.Thread(target=redeem) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results, key=lambda r: r[0]) == [(200, None)] + [(400, "invalid_grant")] * 19
    user = user_of(shared_app, flow)
    assert len(shared_app.extensions["passkey"].users.list_credentials(user.id)) == 1
