"""The My Account API's passkey endpoints (``/me/v1/authentication-methods``), end to end with
real WebAuthn crypto: enrollment, list, get, rename, delete; bearer tokens and scopes; one user
never sees nor touches another's passkeys."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import jwt as pyjwt
import pytest
from flask import Flask
from webauthn.helpers import bytes_to_base64url

from flask_passkey.core.audiences import (
    MY_ACCOUNT_SCOPES,
    SCOPE_CREATE,
    SCOPE_DELETE,
    SCOPE_READ,
    SCOPE_READ_FACTORS,
    SCOPE_UPDATE,
)
from flask_passkey.hookspecs import hookimpl
from flask_passkey.models import Connection, Credential
from flask_passkey.testing import PasskeyFlow, SoftAuthenticator
from flask_passkey.web.schemas import (
    AuthenticationMethodListSchema,
    AuthenticationMethodSchema,
    EnrollmentChallengeResponseSchema,
)
from tests.apps import (
    API_AUDIENCE,
    CUSTOM_DOMAIN,
    DB_CONNECTION,
    DEFAULT_DOMAIN,
    ME,
    ORIGIN,
    FakeClock,
    generate_rsa_pem,
    make_app,
    tenant_data,
)
from tests.events import Recorder
from tests.support import (
    assert_error_body,
    assert_oauth_error,
    new_email,
    stable_error,
    store_snapshot,
)

BASE = "/me/v1/authentication-methods"
NEW = "/passkey%7Cnew"
ALL_SCOPES = ("openid", *MY_ACCOUNT_SCOPES)
ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module")
def shared_app() -> Flask:
    """One app for the module (each test signs up its own users); no rate limit."""
    return make_app(rate_limit_enabled=False, audiences=[API_AUDIENCE])


@dataclass
class Account:
    """A signed-up user with their authenticator, and a My Account token with every scope."""

    app: Flask
    flow: PasskeyFlow
    token: str
    user_id: str
    host: str = CUSTOM_DOMAIN
    prefix: str = ""

    def call(self, method: str, path: str = "", *, token: str | None = None, **kwargs: Any) -> Any:
        """``method`` on ``/me/v1/authentication-methods`` + ``path``, with a bearer token."""
        headers = {"Host": self.host, "Authorization": f"Bearer {token or self.token}"}
        headers.update(kwargs.pop("headers", {}))
        url = self.prefix + BASE + path
        return self.app.test_client().open(url, method=method, headers=headers, **kwargs)

    def token_with(self, *scopes: str, audience: str = ME) -> str:
        """A new access token (signing in again) with exactly these scopes asked for."""
        return str(self.flow.sign_in(scope=" ".join(scopes), audience=audience)["access_token"])

    def credentials(self) -> list[Credential]:
        return list(self.app.extensions["passkey"].users.list_credentials(self.user_id))

    def method_ids(self) -> list[str]:
        return [f"passkey|{bytes_to_base64url(c.id)}" for c in self.credentials()]

    def enroll(self, authenticator: SoftAuthenticator | None = None) -> Any:
        """Add a passkey on a new (or the given) authenticator; the verify response."""
        authenticator = authenticator or SoftAuthenticator()
        started = self.call("POST", json={"type": "passkey"})
        assert started.status_code == 202, started.get_json()
        data = started.get_json()
        origin = f"https://{self.host}"
        created = authenticator.create(data["authn_params_public_key"], origin=origin)
        return self.call(
            "POST",
            NEW + "/verify",
            json={"auth_session": data["auth_session"], "authn_response": created},
        )


def sign_up(
    app: Flask, *, scopes: tuple[str, ...] = ALL_SCOPES, host: str = CUSTOM_DOMAIN, prefix: str = ""
) -> Account:
    """A new user of ``app`` (client ``spa``, on ``host``) with a My Account token."""
    flow = PasskeyFlow(app.test_client(), client_id="spa", host=host, path_prefix=prefix)
    audience = f"https://{host}/me/"
    tokens = flow.sign_up({"email": new_email()}, scope=" ".join(scopes), audience=audience)
    claims = pyjwt.decode(tokens["access_token"], options={"verify_signature": False})
    return Account(app, flow, tokens["access_token"], claims["sub"], host=host, prefix=prefix)


def sub_of(tokens: dict[str, Any]) -> str:
    return str(pyjwt.decode(tokens["id_token"], options={"verify_signature": False})["sub"])


def start_enrollment(account: Account) -> dict[str, Any]:
    response = account.call("POST", json={"type": "passkey"})
    assert response.status_code == 202, response.get_json()
    data: dict[str, Any] = response.get_json()
    return data


def attestation(options: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return SoftAuthenticator().create(options, origin=ORIGIN, **overrides)


@pytest.fixture
def ann(shared_app: Flask) -> Account:
    return sign_up(shared_app)


@pytest.fixture
def bob(shared_app: Flask) -> Account:
    return sign_up(shared_app)


# -- enrollment -------------------------------------------------------------------------------


def test_enrollment_challenge_is_202_with_location_and_options_for_the_existing_user(
    ann: Account,
) -> None:
    user = ann.app.extensions["passkey"].users.get_user(ann.user_id)

    response = ann.call("POST", json={"type": "passkey"})

    assert response.status_code == 202, response.get_json()
    assert response.headers["Location"] == f"{ORIGIN}{BASE}{NEW}"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert EnrollmentChallengeResponseSchema().validate(body) == {}
    options = body["authn_params_public_key"]
    assert options["user"]["id"] == bytes_to_base64url(user.user_handle)
    assert options["user"]["name"] == user.email
    assert options["rp"] == {"id": CUSTOM_DOMAIN, "name": "Acme"}
    assert [c["id"] for c in options["excludeCredentials"]] == [
        m.partition("|")[2] for m in ann.method_ids()
    ]
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-8, -7, -257]


def test_enrollment_adds_a_passkey_that_signs_in_as_the_same_user(ann: Account) -> None:
    before = ann.method_ids()
    phone = SoftAuthenticator(algorithm="EdDSA", backup_eligible=False)

    response = ann.enroll(phone)

    assert response.status_code == 201, response.get_json()
    method = response.get_json()
    assert AuthenticationMethodSchema().validate(method) == {}
    new_id = f"passkey|{bytes_to_base64url(phone.credentials[0].credential_id)}"
    assert method["id"] == new_id
    location = response.headers["Location"]
    assert location == f"{ORIGIN}{BASE}/{quote(new_id, safe='')}"
    assert ann.call("GET", urlsplit(location).path.removeprefix(BASE)).get_json() == method
    assert method["credential_device_type"] == "single_device"
    assert "last_auth_at" not in method  # enrolled, not yet used
    assert ann.method_ids() == [*before, new_id]
    tokens = PasskeyFlow(
        ann.app.test_client(), client_id="spa", host=CUSTOM_DOMAIN, authenticator=phone
    ).sign_in()
    assert sub_of(tokens) == ann.user_id
    used = ann.call("GET", "/" + new_id).get_json()
    assert ISO_MILLIS.match(used["last_auth_at"])


def test_an_authenticator_already_holding_a_passkey_of_the_user_refuses(ann: Account) -> None:
    data = start_enrollment(ann)

    with pytest.raises(ValueError, match="excludeCredentials"):
        ann.flow.authenticator.create(data["authn_params_public_key"], origin=ORIGIN)


@pytest.mark.parametrize(
    "verify_path",
    [
        pytest.param(lambda location: urlsplit(location).path + "/verify", id="spa-js"),
        pytest.param(
            lambda location: f"{BASE}/{quote(location.rsplit('/', 1)[1], safe='')}/verify",
            id="server-python",
        ),
        pytest.param(lambda location: f"{BASE}/passkey|new/verify", id="decoded"),
    ],
)
def test_the_location_works_the_way_each_sdk_uses_it(
    ann: Account, verify_path: Callable[[str], str]
) -> None:
    started = ann.call("POST", json={"type": "passkey"})
    data = started.get_json()
    created = attestation(data["authn_params_public_key"])

    response = ann.app.test_client().post(
        verify_path(started.headers["Location"]),
        json={"auth_session": data["auth_session"], "authn_response": created},
        headers={"Host": CUSTOM_DOMAIN, "Authorization": f"Bearer {ann.token}"},
    )

    assert response.status_code == 201, response.get_json()


def test_connection_and_identity_user_id_of_the_caller_are_accepted(ann: Account) -> None:
    identity = ann.user_id.partition("|")[2]

    response = ann.call(
        "POST",
        json={"type": "passkey", "connection": DB_CONNECTION, "identity_user_id": identity},
    )
    listed = ann.call("GET").get_json()["authentication_methods"]

    assert response.status_code == 202, response.get_json()
    assert {m["identity_user_id"] for m in listed} == {identity}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-type"),
        pytest.param({"type": "totp"}, id="other-type"),
        pytest.param({"type": 1}, id="type-not-a-string"),
        pytest.param({"type": "passkey", "connection": "partners"}, id="other-connection"),
        pytest.param({"type": "passkey", "connection": ""}, id="empty-connection"),
        pytest.param({"type": "passkey", "identity_user_id": "someone"}, id="other-identity"),
        pytest.param([], id="array"),
        pytest.param("passkey", id="string"),
    ],
)
def test_bad_enrollment_requests_are_400_and_issue_no_challenge(ann: Account, body: Any) -> None:
    sessions = ann.app.extensions["passkey"].sessions
    pending = len(sessions)

    response = ann.call("POST", json=body)

    assert_oauth_error(response, 400, "invalid_request")
    assert len(sessions) == pending


def test_enrollment_body_must_be_json(ann: Account) -> None:
    response = ann.call("POST", data="type=passkey", content_type="text/plain")

    assert_oauth_error(response, 400, "invalid_request")


def test_enrollment_is_refused_when_the_realm_no_longer_has_passkeys() -> None:
    class Switch:
        off = False

        @hookimpl
        def passkey_get_connection(self, name: str) -> Connection | None:
            return Connection(name, passkeys_enabled=False) if self.off else None

    switch = Switch()
    account = sign_up(make_app(rate_limit_enabled=False, plugins=[switch]))
    switch.off = True

    response = account.call("POST", json={"type": "passkey"})

    assert_oauth_error(response, 400, "invalid_request")


def test_an_enrollment_session_is_single_use(ann: Account) -> None:
    data = start_enrollment(ann)
    body = {
        "auth_session": data["auth_session"],
        "authn_response": attestation(data["authn_params_public_key"]),
    }
    assert ann.call("POST", NEW + "/verify", json=body).status_code == 201
    count = len(ann.credentials())

    replayed = ann.call("POST", NEW + "/verify", json=body)

    assert_oauth_error(replayed, 400, "invalid_request")
    assert len(ann.credentials()) == count


def test_another_users_enrollment_session_is_refused(ann: Account, bob: Account) -> None:
    data = start_enrollment(bob)
    body = {
        "auth_session": data["auth_session"],
        "authn_response": attestation(data["authn_params_public_key"]),
    }
    before = store_snapshot(ann.app)

    response = ann.call("POST", NEW + "/verify", json=body)

    assert_oauth_error(response, 400, "invalid_request")
    assert store_snapshot(ann.app) == before


def test_an_enrollment_session_of_another_client_is_refused() -> None:
    app = make_app(rate_limit_enabled=False)
    account = sign_up(app)
    data = start_enrollment(account)
    other_client = PasskeyFlow(
        app.test_client(),
        client_id="refreshing",
        host=CUSTOM_DOMAIN,
        authenticator=account.flow.authenticator,
    )
    token = other_client.sign_in(scope=" ".join(ALL_SCOPES), audience=ME)["access_token"]
    body = {
        "auth_session": data["auth_session"],
        "authn_response": attestation(data["authn_params_public_key"]),
    }

    response = account.call("POST", NEW + "/verify", token=token, json=body)

    assert_oauth_error(response, 400, "invalid_request")
    assert len(account.credentials()) == 1


def test_sign_up_and_login_sessions_do_not_enroll(ann: Account) -> None:
    flow = PasskeyFlow(ann.app.test_client(), client_id="spa", host=CUSTOM_DOMAIN)
    register = flow.register({"email": new_email()}).get_json()
    login = flow.challenge().get_json()
    before = store_snapshot(ann.app)

    for started, answer in (
        (register, attestation(register["authn_params_public_key"])),
        (login, ann.flow.authenticator.get(login["authn_params_public_key"], origin=ORIGIN)),
    ):
        body = {"auth_session": started["auth_session"], "authn_response": answer}
        assert_oauth_error(ann.call("POST", NEW + "/verify", json=body), 400, "invalid_request")
    assert store_snapshot(ann.app) == before


def test_an_enrollment_session_cannot_be_redeemed_for_tokens(ann: Account) -> None:
    data = start_enrollment(ann)
    before = store_snapshot(ann.app)

    response = ann.flow.token(data["auth_session"], attestation(data["authn_params_public_key"]))

    assert_oauth_error(response, 400, "invalid_grant")
    assert store_snapshot(ann.app) == before


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"challenge": bytes_to_base64url(b"x" * 32)}, id="other-challenge"),
        pytest.param({"rp_id": "evil.test"}, id="other-rp-id"),
        pytest.param({"user_present": False}, id="no-user-presence"),
        pytest.param({"client_data_type": "webauthn.get"}, id="assertion-type"),
    ],
)
def test_an_attestation_that_does_not_verify_is_refused(
    ann: Account, overrides: dict[str, Any]
) -> None:
    data = start_enrollment(ann)
    before = store_snapshot(ann.app)
    body = {
        "auth_session": data["auth_session"],
        "authn_response": attestation(data["authn_params_public_key"], **overrides),
    }

    response = ann.call("POST", NEW + "/verify", json=body)

    assert_oauth_error(response, 400, "invalid_request")
    assert store_snapshot(ann.app) == before


def test_an_attestation_from_another_origin_is_refused(ann: Account) -> None:
    data = start_enrollment(ann)
    created = SoftAuthenticator().create(
        data["authn_params_public_key"], origin="https://evil.test"
    )
    body = {"auth_session": data["auth_session"], "authn_response": created}

    response = ann.call("POST", NEW + "/verify", json=body)

    assert_oauth_error(response, 400, "invalid_request")
    assert len(ann.credentials()) == 1


def test_an_expired_enrollment_session_is_refused() -> None:
    clock = FakeClock()
    account = sign_up(make_app(clock=clock, rate_limit_enabled=False))
    data = start_enrollment(account)
    clock.advance(60)  # PASSKEY_CHALLENGE_TIMEOUT: 60 000 ms
    body = {
        "auth_session": data["auth_session"],
        "authn_response": attestation(data["authn_params_public_key"]),
    }

    response = account.call("POST", NEW + "/verify", json=body)

    assert_oauth_error(response, 400, "invalid_request")
    assert len(account.credentials()) == 1


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"authn_response": {}}, id="no-auth-session"),
        pytest.param({"auth_session": "x"}, id="no-authn-response"),
        pytest.param({"auth_session": "x", "authn_response": "x"}, id="response-not-object"),
        pytest.param({"auth_session": 1, "authn_response": {}}, id="session-not-string"),
        pytest.param({"auth_session": "unknown", "authn_response": {}}, id="unknown-session"),
        pytest.param([], id="array"),
    ],
)
def test_bad_verify_requests_are_400(ann: Account, body: Any) -> None:
    response = ann.call("POST", NEW + "/verify", json=body)

    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "authn_response",
    [
        pytest.param({}, id="empty"),
        pytest.param({"id": 1, "rawId": [], "response": "x"}, id="wrong-types"),
        pytest.param({"id": "AA", "rawId": "AA", "response": {}}, id="no-attestation"),
    ],
)
def test_a_malformed_attestation_consumes_the_session_and_stores_nothing(
    ann: Account, authn_response: dict[str, Any]
) -> None:
    data = start_enrollment(ann)
    before = store_snapshot(ann.app)

    response = ann.call(
        "POST",
        NEW + "/verify",
        json={"auth_session": data["auth_session"], "authn_response": authn_response},
    )
    retried = ann.call(
        "POST",
        NEW + "/verify",
        json={
            "auth_session": data["auth_session"],
            "authn_response": attestation(data["authn_params_public_key"]),
        },
    )

    assert_oauth_error(response, 400, "invalid_request")
    assert_oauth_error(retried, 400, "invalid_request")
    assert store_snapshot(ann.app) == before


@pytest.mark.parametrize("method_id", ["passkey|old", "passkey%7Cabc", "totp|new", "new"])
def test_verifying_anything_but_the_new_passkey_is_404(ann: Account, method_id: str) -> None:
    data = start_enrollment(ann)
    body = {
        "auth_session": data["auth_session"],
        "authn_response": attestation(data["authn_params_public_key"]),
    }

    response = ann.call("POST", f"/{method_id}/verify", json=body)

    assert_oauth_error(response, 404, "not_found")


# -- list, get, rename, delete ----------------------------------------------------------------


def test_list_shows_the_users_passkeys_in_auth0s_shape(ann: Account, bob: Account) -> None:
    ann.enroll()

    response = ann.call("GET")

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert AuthenticationMethodListSchema().validate(body) == {}
    user = ann.app.extensions["passkey"].users.get_user(ann.user_id)
    methods = body["authentication_methods"]
    assert [m["id"] for m in methods] == ann.method_ids()
    for method, credential in zip(methods, ann.credentials(), strict=True):
        assert method == {
            "id": f"passkey|{bytes_to_base64url(credential.id)}",
            "type": "passkey",
            "created_at": method["created_at"],
            **({"last_auth_at": method["last_auth_at"]} if credential.last_used_at else {}),
            "usage": ["primary"],
            "identity_user_id": ann.user_id.partition("|")[2],
            "key_id": bytes_to_base64url(credential.id),
            "public_key": base64.b64encode(credential.public_key).decode(),
            "user_handle": bytes_to_base64url(user.user_handle),
            "credential_device_type": "multi_device",
            "credential_backed_up": True,
            "aaguid": "00000000-0000-0000-0000-000000000000",
            "relying_party_id": CUSTOM_DOMAIN,
            "transports": ["internal", "hybrid"],
        }
        assert ISO_MILLIS.match(method["created_at"])
    assert not set(bob.method_ids()) & {m["id"] for m in methods}


def test_list_filters_by_type(ann: Account) -> None:
    passkeys = ann.call("GET", query_string={"type": "passkey"}).get_json()
    totp = ann.call("GET", query_string={"type": "totp"}).get_json()

    assert [m["id"] for m in passkeys["authentication_methods"]] == ann.method_ids()
    assert totp == {"authentication_methods": []}


def test_get_returns_one_passkey(ann: Account) -> None:
    method_id = ann.method_ids()[0]

    response = ann.call("GET", "/" + method_id)
    encoded = ann.call("GET", "/" + quote(method_id, safe=""))

    assert response.status_code == 200
    assert response.get_json() == ann.call("GET").get_json()["authentication_methods"][0]
    assert encoded.get_json() == response.get_json()


def test_rename_is_visible_in_get_and_list(ann: Account) -> None:
    ann.enroll()
    first, second = ann.method_ids()

    response = ann.call("PATCH", "/" + second, json={"name": "Work laptop"})

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["name"] == "Work laptop"
    assert ann.call("GET", "/" + second).get_json()["name"] == "Work laptop"
    listed = {m["id"]: m for m in ann.call("GET").get_json()["authentication_methods"]}
    assert listed[second]["name"] == "Work laptop"
    assert "name" not in listed[first]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-name"),
        pytest.param({"name": ""}, id="empty"),
        pytest.param({"name": "   "}, id="blank"),
        pytest.param({"name": "x" * 256}, id="too-long"),
        pytest.param({"name": 7}, id="not-a-string"),
        pytest.param(["name"], id="array"),
    ],
)
def test_bad_rename_requests_are_400_and_change_nothing(ann: Account, body: Any) -> None:
    before = store_snapshot(ann.app)

    response = ann.call("PATCH", "/" + ann.method_ids()[0], json=body)

    assert_oauth_error(response, 400, "invalid_request")
    assert store_snapshot(ann.app) == before


def test_a_deleted_passkey_is_gone_and_can_no_longer_sign_in(ann: Account) -> None:
    ann.enroll()
    first, second = ann.method_ids()

    response = ann.call("DELETE", "/" + first)

    assert response.status_code == 204
    assert response.data == b""
    assert ann.method_ids() == [second]
    assert_oauth_error(ann.call("GET", "/" + first), 404, "not_found")
    started = ann.flow.challenge().get_json()
    assertion = ann.flow.authenticator.get(started["authn_params_public_key"], origin=ORIGIN)
    assert_oauth_error(ann.flow.token(started["auth_session"], assertion), 400, "invalid_grant")


def test_deleting_the_last_passkey_is_refused_with_409(ann: Account) -> None:
    before = store_snapshot(ann.app)

    response = ann.call("DELETE", "/" + ann.method_ids()[0])

    assert_oauth_error(response, 409, "conflict")
    assert store_snapshot(ann.app) == before
    ann.flow.sign_in()  # still works


def test_deleting_the_last_passkey_is_allowed_when_configured() -> None:
    account = sign_up(make_app(rate_limit_enabled=False, allow_deleting_last_passkey=True))

    response = account.call("DELETE", "/" + account.method_ids()[0])

    assert response.status_code == 204
    assert account.credentials() == []


def test_racing_deletions_of_the_last_two_passkeys_keep_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The other request deletes passkey B between this request's check and its delete of A:
    A is put back and this request is refused."""
    account = sign_up(make_app(rate_limit_enabled=False))
    account.enroll()
    users = account.app.extensions["passkey"].users
    first, second = account.credentials()
    delete = users.delete_credential

    def other_request_first(*, user_id: str, credential_id: bytes) -> bool:
        monkeypatch.setattr(users, "delete_credential", delete)
        assert delete(user_id=user_id, credential_id=second.id)
        return delete(user_id=user_id, credential_id=credential_id)

    monkeypatch.setattr(users, "delete_credential", other_request_first)

    response = account.call("DELETE", f"/passkey|{bytes_to_base64url(first.id)}")

    assert_oauth_error(response, 409, "conflict")
    assert account.credentials() == [first]


def test_the_whole_lifecycle_works_on_the_sql_store(tmp_path: Any) -> None:
    app = make_app(
        rate_limit_enabled=False, database_url=f"sqlite:///{tmp_path / 'passkey.sqlite3'}"
    )
    account = sign_up(app)

    assert account.enroll().status_code == 201
    first, second = account.method_ids()
    renamed = account.call("PATCH", "/" + second, json={"name": "Phone"})
    deleted = account.call("DELETE", "/" + first)
    refused = account.call("DELETE", "/" + second)

    assert renamed.get_json()["name"] == "Phone"
    assert deleted.status_code == 204
    assert_oauth_error(refused, 409, "conflict")
    listed = account.call("GET").get_json()["authentication_methods"]
    assert [(m["id"], m["name"]) for m in listed] == [(second, "Phone")]


# -- one user, another user's passkeys ---------------------------------------------------------

PER_ID = [
    pytest.param("GET", None, id="get"),
    pytest.param("PATCH", {"name": "mine now"}, id="rename"),
    pytest.param("DELETE", None, id="delete"),
]


@pytest.mark.parametrize(("method", "body"), PER_ID)
def test_another_users_passkey_is_404_like_a_missing_one_and_stays_untouched(
    ann: Account, bob: Account, method: str, body: Any
) -> None:
    bob.enroll()  # so that deleting is not refused for being Bob's last passkey
    before = store_snapshot(ann.app)
    missing = f"passkey|{bytes_to_base64url(b'no such credential')}"

    response = ann.call(method, "/" + bob.method_ids()[0], json=body)
    reference = ann.call(method, "/" + missing, json=body)

    assert_oauth_error(response, 404, "not_found")
    assert stable_error(response) == stable_error(reference)
    assert store_snapshot(ann.app) == before


@pytest.mark.parametrize(("method", "body"), PER_ID)
@pytest.mark.parametrize(
    "method_id",
    [
        "passkey|",
        "passkey|!!",
        "passkey|new",
        "totp|dev_1",
        "passkey",
        "passkey|AAAAAA==",
        "passkey|AAAAAB",  # not canonical: the last character carries unused bits
        "passkey|A",  # a length no base64 text has
        "passkey|AAAAA",
        "passkey%257C" + bytes_to_base64url(b"x"),
    ],
)
def test_ids_that_name_no_passkey_are_404(
    ann: Account, method: str, body: Any, method_id: str
) -> None:
    before = store_snapshot(ann.app)

    response = ann.call(method, "/" + method_id, json=body)

    assert_oauth_error(response, 404, "not_found")
    assert store_snapshot(ann.app) == before


def test_users_only_list_their_own_passkeys(ann: Account, bob: Account) -> None:
    bob.enroll()

    ann_ids = {m["id"] for m in ann.call("GET").get_json()["authentication_methods"]}
    bob_ids = {m["id"] for m in bob.call("GET").get_json()["authentication_methods"]}

    assert ann_ids == set(ann.method_ids())
    assert bob_ids == set(bob.method_ids())
    assert not ann_ids & bob_ids


# -- factors ----------------------------------------------------------------------------------

FACTORS = "/me/v1/factors"


def get_factors(account: Account, token: str | None) -> Any:
    headers = {"Host": CUSTOM_DOMAIN}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return account.app.test_client().get(FACTORS, headers=headers)


def test_factors_list_passkey_as_the_factor_to_enroll(ann: Account) -> None:
    response = get_factors(ann, ann.token_with("openid", SCOPE_READ_FACTORS))

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"factors": [{"type": "passkey", "usage": ["primary"]}]}
    assert response.headers["Cache-Control"] == "no-store"


def test_factors_need_the_read_factors_scope(ann: Account) -> None:
    lacking = ann.token_with(*(s for s in ALL_SCOPES if s != SCOPE_READ_FACTORS))

    refused = get_factors(ann, lacking)

    assert_oauth_error(refused, 403, "insufficient_scope")
    assert refused.headers["WWW-Authenticate"] == (
        f'Bearer error="insufficient_scope", scope="{SCOPE_READ_FACTORS}"'
    )


def test_factors_without_a_token_are_401(ann: Account) -> None:
    assert_oauth_error(get_factors(ann, None), 401, "invalid_token")


def test_factors_answer_only_get(ann: Account) -> None:
    headers = {"Host": CUSTOM_DOMAIN, "Authorization": f"Bearer {ann.token}"}

    response = ann.app.test_client().post(FACTORS, headers=headers)

    assert_oauth_error(response, 405, "invalid_request")
    assert response.headers["Allow"] == "GET"


# -- bearer tokens and scopes -------------------------------------------------------------------


def _enroll(account: Account) -> tuple[str, str, Any, int]:
    return "POST", "", {"type": "passkey"}, 202


def _verify(account: Account) -> tuple[str, str, Any, int]:
    data = start_enrollment(account)
    created = attestation(data["authn_params_public_key"])
    body = {"auth_session": data["auth_session"], "authn_response": created}
    return "POST", NEW + "/verify", body, 201


def _list(account: Account) -> tuple[str, str, Any, int]:
    return "GET", "", None, 200


def _get(account: Account) -> tuple[str, str, Any, int]:
    return "GET", "/" + account.method_ids()[0], None, 200


def _rename(account: Account) -> tuple[str, str, Any, int]:
    return "PATCH", "/" + account.method_ids()[0], {"name": "Renamed"}, 200


def _delete(account: Account) -> tuple[str, str, Any, int]:
    account.enroll()
    return "DELETE", "/" + account.method_ids()[0], None, 204


ENDPOINTS = [
    pytest.param(SCOPE_CREATE, _enroll, id="enroll"),
    pytest.param(SCOPE_CREATE, _verify, id="verify"),
    pytest.param(SCOPE_READ, _list, id="list"),
    pytest.param(SCOPE_READ, _get, id="get"),
    pytest.param(SCOPE_UPDATE, _rename, id="rename"),
    pytest.param(SCOPE_DELETE, _delete, id="delete"),
]
Build = Callable[[Account], tuple[str, str, Any, int]]


@pytest.mark.parametrize(("scope", "build"), ENDPOINTS)
def test_each_endpoint_needs_its_own_scope(ann: Account, scope: str, build: Build) -> None:
    method, path, body, status = build(ann)
    lacking = ann.token_with(*(s for s in ALL_SCOPES if s != scope))
    only = ann.token_with("openid", scope)
    before = store_snapshot(ann.app)

    refused = ann.call(method, path, token=lacking, json=body)

    assert_oauth_error(refused, 403, "insufficient_scope")
    assert refused.headers["WWW-Authenticate"] == (
        f'Bearer error="insufficient_scope", scope="{scope}"'
    )
    assert store_snapshot(ann.app) == before
    accepted = ann.call(method, path, token=only, json=body)
    assert accepted.status_code == status, accepted.get_json()


@pytest.mark.parametrize(("scope", "build"), ENDPOINTS)
@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("Bearer", id="bearer-without-token"),
        pytest.param("Bearer a b", id="two-tokens"),
        pytest.param("Basic c3BhOg==", id="basic"),
        pytest.param("Bearer not-a-jwt", id="garbage"),
    ],
)
def test_a_missing_or_malformed_token_is_401_invalid_token(
    ann: Account, scope: str, build: Build, authorization: str | None
) -> None:
    method, path, body, _ = build(ann)
    headers = {"Host": CUSTOM_DOMAIN}
    if authorization is not None:
        headers["Authorization"] = authorization
    before = store_snapshot(ann.app)

    response = ann.app.test_client().open(BASE + path, method=method, headers=headers, json=body)

    assert_oauth_error(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert store_snapshot(ann.app) == before


def test_an_expired_token_is_401() -> None:
    clock = FakeClock()
    account = sign_up(make_app(clock=clock, rate_limit_enabled=False))
    clock.advance(86_400 - 1)  # PASSKEY_ACCESS_TOKEN_LIFETIME
    assert account.call("GET").status_code == 200

    clock.advance(1)
    response = account.call("GET")

    assert_oauth_error(response, 401, "invalid_token")
    assert "expired" in response.get_json()["error_description"]


@pytest.mark.parametrize(
    "audience", [None, API_AUDIENCE, f"https://{CUSTOM_DOMAIN}/userinfo"], ids=str
)
def test_a_token_for_another_audience_is_401(ann: Account, audience: str | None) -> None:
    body = {"audience": audience} if audience else {}
    tokens = ann.flow.sign_in(scope=" ".join(ALL_SCOPES), **body)

    response = ann.call("GET", token=tokens["access_token"])

    assert_oauth_error(response, 401, "invalid_token")


def test_an_id_token_is_not_an_access_token(ann: Account) -> None:
    tokens = ann.flow.sign_in(scope=" ".join(ALL_SCOPES), audience=ME)

    response = ann.call("GET", token=tokens["id_token"])

    assert_oauth_error(response, 401, "invalid_token")


def test_a_token_of_another_server_is_401(ann: Account) -> None:
    elsewhere = sign_up(make_app(rate_limit_enabled=False, signing_keys=[generate_rsa_pem()]))

    response = ann.call("GET", token=elsewhere.token)

    assert_oauth_error(response, 401, "invalid_token")


def test_a_token_issued_on_another_custom_domain_is_401() -> None:
    tenant = tenant_data()
    tenant["custom_domains"] = [CUSTOM_DOMAIN, "id.acme.test"]
    app = make_app(tenant=tenant, rate_limit_enabled=False)
    there = sign_up(app, host="id.acme.test")
    assert there.call("GET").status_code == 200

    response = there.call("GET", headers={"Host": CUSTOM_DOMAIN})

    assert_oauth_error(response, 401, "invalid_token")


# -- domains, prefix, ports, methods, limits, events ---------------------------------------------


def test_requests_off_the_custom_domain_are_400(ann: Account) -> None:
    response = ann.call("GET", headers={"Host": DEFAULT_DOMAIN})

    assert_oauth_error(response, 400, "invalid_request")


def test_every_endpoint_is_404_when_passkeys_are_disabled(ann: Account) -> None:
    tenant = tenant_data()
    tenant["passkeys_enabled"] = False
    disabled = make_app(tenant=tenant, rate_limit_enabled=False)
    headers = {"Host": CUSTOM_DOMAIN, "Authorization": f"Bearer {ann.token}"}

    for method, path in (("POST", ""), ("POST", NEW + "/verify"), ("GET", ""), ("GET", "/x")):
        response = disabled.test_client().open(BASE + path, method=method, headers=headers)
        assert_oauth_error(response, 404, "not_found")


def test_the_url_prefix_applies_and_the_location_follows_it() -> None:
    app = make_app(rate_limit_enabled=False, url_prefix="/auth")
    account = sign_up(app, prefix="/auth")

    started = account.call("POST", json={"type": "passkey"})
    verified = account.enroll()

    assert started.headers["Location"] == f"{ORIGIN}/auth{BASE}{NEW}"
    assert verified.status_code == 201, verified.get_json()
    assert verified.headers["Location"].startswith(f"{ORIGIN}/auth{BASE}/passkey%7C")


def test_the_port_of_the_request_is_kept() -> None:
    host = f"{CUSTOM_DOMAIN}:8443"
    account = sign_up(make_app(rate_limit_enabled=False), host=host)

    started = account.call("POST", json={"type": "passkey"})
    verified = account.enroll()

    assert started.headers["Location"] == f"https://{host}{BASE}{NEW}"
    assert verified.status_code == 201, verified.get_json()
    assert verified.headers["Location"].startswith(f"https://{host}{BASE}/passkey%7C")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "", "GET, POST"),
        ("DELETE", "", "GET, POST"),
        ("POST", "/passkey|x", "GET, PATCH, DELETE"),
        ("PUT", "/passkey|x", "GET, PATCH, DELETE"),
        ("GET", NEW + "/verify", "POST"),
        ("DELETE", NEW + "/verify", "POST"),
    ],
)
def test_other_methods_get_a_json_405_with_allow(
    ann: Account, method: str, path: str, allow: str
) -> None:
    response = ann.call(method, path)

    assert_oauth_error(response, 405, "invalid_request")
    assert response.headers["Allow"] == allow


def test_the_endpoints_are_rate_limited_per_ip() -> None:
    account = sign_up(make_app(rate_limit="2 per minute"))

    first, second, third = (account.call("GET") for _ in range(3))

    assert first.status_code == second.status_code == 200
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert_oauth_error(third, 429, "too_many_requests")
    assert "Retry-After" in third.headers


@pytest.fixture
def recorded() -> Iterator[tuple[Account, Recorder]]:
    recorder = Recorder()
    account = sign_up(make_app(rate_limit_enabled=False, plugins=[recorder]))
    recorder.events.clear()
    yield account, recorder


def test_changes_and_rejections_are_events_without_secrets(
    recorded: tuple[Account, Recorder],
) -> None:
    account, recorder = recorded
    account.enroll()
    account.call("PATCH", "/" + account.method_ids()[1], json={"name": "Phone"})
    account.call("DELETE", "/" + account.method_ids()[1])
    account.call("GET", token="garbage")

    assert [(e.name, e.endpoint) for e in recorder.events] == [
        ("challenge_issued", "enroll"),
        ("passkey_enrolled", "verify"),
        ("passkey_renamed", "rename_method"),
        ("passkey_deleted", "delete_method"),
        ("request_rejected", "list_methods"),
    ]
    for event in recorder.events[:4]:
        assert (event.user_id, event.client_id, event.connection) == (
            account.user_id,
            "spa",
            DB_CONNECTION,
        )
    assert recorder.events[4].error == "invalid_token"
    assert account.token not in repr(recorder.events)


# -- never a 500 --------------------------------------------------------------------------------

JUNK: list[Any] = [None, [], "x", 0, {"type": None}, {"name": None}, {"auth_session": None}]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", ""), ("POST", NEW + "/verify"), ("PATCH", "/passkey|AA"), ("GET", "/%00")],
)
@pytest.mark.parametrize("body", JUNK, ids=repr)
def test_junk_never_gets_a_server_error(ann: Account, method: str, path: str, body: Any) -> None:
    response = ann.call(method, path, data=repr(body), content_type="application/json")
    as_json = ann.call(method, path, json=body)

    for answer in (response, as_json):
        assert 400 <= answer.status_code < 500, answer.get_data(as_text=True)
        assert_error_body(answer.get_json(), answer.status_code)


def test_a_body_too_large_is_413(ann: Account) -> None:
    response = ann.call("POST", json={"type": "passkey", "pad": "x" * 70_000})

    assert response.status_code == 413
    assert_error_body(response.get_json(), 413)


def test_errors_carry_problem_details_for_auth0_my_account_clients(ann: Account) -> None:
    response = ann.call("GET", "/passkey|AA")

    body = response.get_json()
    assert response.status_code == 404
    assert body["error"] == "not_found"
    assert body["status"] == 404
    assert body["title"] == "Not Found"
    assert body["detail"] == body["error_description"]
    assert body["type"] == "urn:flask-passkey:error:not_found"
