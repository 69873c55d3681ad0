"""Property-based tests: /oauth/token fed malformed ``authn_response`` values, for a live login
session and a live sign-up session.

Whatever the corruption (wrong types at every level, bad base64url, truncated or oversized CBOR,
authenticator data of every length from 0 to 300, huge or broken clientDataJSON, nested junk,
one flipped byte of a real signed response), the answer is a 4xx with the spec's error body,
never a 5xx, and the user store is unchanged. Case counts are printed in the terminal summary.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import cbor2
import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, encode_cbor

from flask_passkey.models import WEBAUTHN_GRANT
from flask_passkey.testing import SoftAuthenticator, _sign
from tests.apps import HOST, ORIGIN, make_app
from tests.case_counts import CaseCounts
from tests.support import new_email, store_snapshot

MAX_BODY = 16 * 1024
SUITE = "hypothesis malformed authn_response"
SETTINGS = settings(
    max_examples=100,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CEREMONIES = ["login", "signup"]


class Server:
    """The app with one registered user (whose passkey signs login assertions) and helpers that
    open sessions and redeem them."""

    def __init__(self, **config: Any) -> None:
        self.app: Flask = make_app(
            rate_limit_enabled=False,
            max_body_size=MAX_BODY,
            **config,
        )
        self.client = self.app.test_client()
        self.login_authenticator = SoftAuthenticator(counter="increment")
        # Packed self-attestation: the attestation signature covers authData and clientDataJSON.
        self.signup_authenticator = SoftAuthenticator(attestation="packed")
        started = self._post("/passkey/register", self._register_body())
        created = self.signup_authenticator.create(
            started["authn_params_public_key"], origin=ORIGIN
        )
        self.login_authenticator.credentials.append(self.signup_authenticator.credentials.pop())
        response = self.token(started["auth_session"], created)
        assert response.status_code == 200, response.get_json()
        #: A real (packed) attestation object, decoded: the shape junk CBOR imitates.
        self.attestation_template: dict[str, Any] = cbor2.loads(
            base64url_to_bytes(created["response"]["attestationObject"])
        )

    def _register_body(self) -> dict[str, Any]:
        return {"client_id": "spa", "user_profile": {"email": new_email()}}

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(path, json=body, headers=HOST)
        assert response.status_code == 200, response.get_json()
        data: dict[str, Any] = response.get_json()
        return data

    def session(self, ceremony: str) -> tuple[str, dict[str, Any]]:
        """A live auth_session of ``ceremony`` and its options."""
        if ceremony == "login":
            data = self._post("/passkey/challenge", {"client_id": "spa"})
        else:
            data = self._post("/passkey/register", self._register_body())
        return data["auth_session"], data["authn_params_public_key"]

    def valid_response(self, ceremony: str, options: dict[str, Any]) -> dict[str, Any]:
        """What an honest authenticator answers (a new passkey for every sign-up)."""
        if ceremony == "login":
            return self.login_authenticator.get(options, origin=ORIGIN)
        authenticator = SoftAuthenticator(attestation="packed")
        return authenticator.create(options, origin=ORIGIN)

    def token(self, auth_session: str, authn_response: Any, *, form: bool = False) -> Any:
        body = {
            "grant_type": WEBAUTHN_GRANT,
            "client_id": "spa",
            "auth_session": auth_session,
            "authn_response": authn_response,
        }
        if form:
            body["authn_response"] = (
                authn_response if isinstance(authn_response, str) else json.dumps(authn_response)
            )
            return self.client.post("/oauth/token", data=body, headers=HOST)
        return self.client.post("/oauth/token", json=body, headers=HOST)

    def snapshot(self) -> list[tuple[Any, tuple[Any, ...]]]:
        return store_snapshot(self.app)


@pytest.fixture(scope="module")
def server() -> Server:
    return Server()


@pytest.fixture(scope="module")
def guarded_server() -> Server:
    """With the lockout on (never reached: it only has to count the junk)."""
    return Server(lockout="1000000 per minute")


def assert_refused(response: Any, *, statuses: range = range(400, 500)) -> None:
    """A 4xx with the spec's error body."""
    assert response.status_code in statuses, (response.status_code, response.get_data()[:500])
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert "request_id" in body, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["error_description"], str) and body["error_description"]
    # The one extra member: a changed rawId names a passkey the server does not hold.
    extra = set(body) - {"error", "error_description", "request_id"}
    assert extra <= {"unknown_credential_id"}, body


def redeem_refused(
    server: Server,
    case_counts: CaseCounts,
    ceremony: str,
    label: str,
    make: Callable[[dict[str, Any]], Any],
    *,
    form: bool = False,
    statuses: range = range(400, 500),
) -> Any:
    """Open a session, build the response with ``make(options)``, redeem it: it must be refused
    and leave the user store as it was."""
    auth_session, options = server.session(ceremony)
    authn_response = make(options)
    before = server.snapshot()
    response = server.token(auth_session, authn_response, form=form)
    case_counts.add(SUITE, f"{label} [{ceremony}{', form' if form else ''}]", response.status_code)
    assert_refused(response, statuses=statuses)
    assert server.snapshot() == before
    return response


# -- strategies ------------------------------------------------------------------------------

#: Any character JSON can carry, lone surrogates ("\\ud800") included.
json_characters = st.characters(exclude_categories=()) | st.sampled_from(["\ud800", "\udfff"])
json_text = st.text(json_characters, max_size=40)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text
)
json_junk = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(json_characters, max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
#: Strings that are not base64url: characters outside the alphabet, or a length no base64
#: string has (4n + 1).
bad_base64url = st.one_of(
    st.text(json_characters, min_size=1, max_size=60).filter(
        lambda s: any(not (c.isascii() and (c.isalnum() or c in "-_")) for c in s)
    ),
    st.integers(0, 20).flatmap(
        lambda n: st.text(
            alphabet="ABCDEFabcdef0123456789-_", min_size=4 * n + 1, max_size=4 * n + 1
        )
    ),
)
#: Members every response of the ceremony needs: breaking any of them must fail the exchange.
REQUIRED = {
    "login": [
        (),
        ("id",),
        ("rawId",),
        ("type",),
        ("response",),
        ("response", "clientDataJSON"),
        ("response", "authenticatorData"),
        ("response", "signature"),
    ],
    "signup": [
        (),
        ("id",),
        ("rawId",),
        ("type",),
        ("response",),
        ("response", "clientDataJSON"),
        ("response", "attestationObject"),
    ],
}
#: The base64url members of each ceremony's response.
BINARY = {
    "login": [
        ("id",),
        ("rawId",),
        ("response", "clientDataJSON"),
        ("response", "authenticatorData"),
        ("response", "signature"),
        ("response", "userHandle"),
    ],
    "signup": [
        ("id",),
        ("rawId",),
        ("response", "clientDataJSON"),
        ("response", "attestationObject"),
    ],
}
_DELETE = object()


def replaced(document: dict[str, Any], path: tuple[str, ...], value: Any) -> Any:
    """``document`` with the member at ``path`` replaced by ``value`` (or deleted)."""
    if not path:
        return value
    result = copy.deepcopy(document)
    node = result
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return result


def get(document: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = document
    for key in path:
        node = node[key]
    return node


# -- wrong types and values at every level -------------------------------------------------


@pytest.mark.parametrize("ceremony", CEREMONIES)
@SETTINGS
@given(data=st.data())
def test_required_members_replaced_by_junk_or_missing_are_refused(
    server: Server, case_counts: CaseCounts, ceremony: str, data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(REQUIRED[ceremony]), label="path")
    form = data.draw(st.booleans(), label="form")
    junk = data.draw((st.just(_DELETE) if path else st.nothing()) | json_junk, label="value")

    def make(options: dict[str, Any]) -> Any:
        valid = server.valid_response(ceremony, options)
        # (Drawn before the valid response exists, so that every run draws alike.)
        value = _DELETE if path and junk == get(valid, path) else junk
        return replaced(valid, path, value)

    redeem_refused(
        server, case_counts, ceremony, "required member: junk or missing", make, form=form
    )


@pytest.mark.parametrize("ceremony", CEREMONIES)
@SETTINGS
@given(
    credential_id=json_junk | bad_base64url,
    member=st.sampled_from(["rawId", "id"]),
    form=st.booleans(),
)
def test_junk_credential_ids_are_refused_with_the_lockout_on(
    guarded_server: Server,
    case_counts: CaseCounts,
    ceremony: str,
    credential_id: Any,
    member: str,
    form: bool,
) -> None:
    """With the lockout counting the failures, junk ids still get their 4xx."""
    redeem_refused(
        guarded_server,
        case_counts,
        ceremony,
        "junk credential id, lockout on",
        lambda options: replaced(
            guarded_server.valid_response(ceremony, options), (member,), credential_id
        ),
        form=form,
    )


def test_a_lone_surrogate_credential_id_is_refused_with_the_lockout_on(
    guarded_server: Server, case_counts: CaseCounts
) -> None:
    """Regression: hashing the id for the (then per-passkey) lockout counter raised
    UnicodeEncodeError (a 500) for a rawId that is not base64url and holds a lone surrogate."""
    auth_session, _ = guarded_server.session("login")
    response = guarded_server.client.post(
        "/oauth/token",
        data=json.dumps(
            {
                "grant_type": WEBAUTHN_GRANT,
                "client_id": "spa",
                "auth_session": auth_session,
                "authn_response": {"id": "\ud800", "rawId": "\ud800"},
            }
        ),
        content_type="application/json",
        headers=HOST,
    )
    case_counts.add(SUITE, "lone surrogate rawId, lockout on", response.status_code)
    assert_refused(response)


@pytest.mark.parametrize("ceremony", CEREMONIES)
@SETTINGS
@given(data=st.data())
def test_optional_members_of_any_type_never_cause_a_server_error(
    server: Server, case_counts: CaseCounts, ceremony: str, data: st.DataObject
) -> None:
    """authenticatorAttachment, clientExtensionResults, userHandle, transports and unknown
    members: junk there may be ignored, but never crashes; a refusal stores nothing."""
    optional = [
        ("authenticatorAttachment",),
        ("clientExtensionResults",),
        ("response", "transports" if ceremony == "signup" else "userHandle"),
        ("unknownMember",),
        ("response", "unknownMember"),
    ]
    path = data.draw(st.sampled_from(optional), label="path")
    auth_session, options = server.session(ceremony)
    authn_response = replaced(
        server.valid_response(ceremony, options), path, data.draw(json_junk, label="value")
    )
    before = server.snapshot()
    response = server.token(auth_session, authn_response)
    case_counts.add(SUITE, f"optional member: junk [{ceremony}]", response.status_code)
    if response.status_code != 200:
        assert_refused(response)
        assert server.snapshot() == before


@pytest.mark.parametrize("ceremony", CEREMONIES)
@SETTINGS
@given(data=st.data())
def test_bad_base64url_is_refused(
    server: Server, case_counts: CaseCounts, ceremony: str, data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(BINARY[ceremony]), label="path")
    value = data.draw(bad_base64url, label="value")
    redeem_refused(
        server,
        case_counts,
        ceremony,
        "bad base64url",
        lambda options: replaced(server.valid_response(ceremony, options), path, value),
    )


@pytest.mark.parametrize("ceremony", CEREMONIES)
@settings(SETTINGS, max_examples=25)
@given(depth=st.integers(1, 5000), form=st.booleans(), kind=st.sampled_from(["list", "dict"]))
def test_deeply_nested_junk_is_refused(
    server: Server, case_counts: CaseCounts, ceremony: str, depth: int, form: bool, kind: str
) -> None:
    """Nested far beyond what a JSON parser recurses into: as authn_response, as its response,
    and as the JSON text of clientDataJSON."""
    opening, closing = ("[", "]") if kind == "list" else ('{"a":', "}")
    text = opening * depth + "1" + closing * depth

    def make(options: dict[str, Any]) -> Any:
        valid = server.valid_response(ceremony, options)
        if depth % 3 == 0:
            valid["response"]["clientDataJSON"] = bytes_to_base64url(text.encode())
            return valid
        if depth % 3 == 1 and not form:
            return replaced(valid, ("response",), json.loads(text) if depth < 500 else text)
        return text if form else {"nested": text}

    redeem_refused(server, case_counts, ceremony, "deeply nested junk", make, form=form)


def test_json_bodies_nested_too_deeply_to_parse_are_refused(
    server: Server, case_counts: CaseCounts
) -> None:
    """Regression: a JSON body (or a form's authn_response) nested deeper than Python's JSON
    parser recurses raised RecursionError, a 500."""
    auth_session, _ = server.session("login")
    deep = "[" * 5000 + "]" * 5000
    for path in ("/passkey/challenge", "/passkey/register", "/oauth/token"):
        response = server.client.post(
            path, data=deep, content_type="application/json", headers=HOST
        )
        case_counts.add(SUITE, "body nested too deeply", response.status_code)
        assert_refused(response)
    before = server.snapshot()
    response = server.token(auth_session, deep, form=True)
    case_counts.add(SUITE, "body nested too deeply", response.status_code)
    assert_refused(response)
    assert server.snapshot() == before


# -- clientDataJSON ----------------------------------------------------------------------------


def _client_data(authn_response: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        base64url_to_bytes(authn_response["response"]["clientDataJSON"])
    )
    return data


def _with_client_data(
    server: Server, ceremony: str, valid: dict[str, Any], client_data_json: bytes
) -> dict[str, Any]:
    """``valid`` with another clientDataJSON, signed again like the authenticator would: the
    server has to refuse it for its content, not for a broken signature."""
    result = copy.deepcopy(valid)
    result["response"]["clientDataJSON"] = bytes_to_base64url(client_data_json)
    client_hash = hashlib.sha256(client_data_json).digest()
    if ceremony == "login":
        auth_data = base64url_to_bytes(valid["response"]["authenticatorData"])
        key = server.login_authenticator.credentials[0].private_key
        result["response"]["signature"] = bytes_to_base64url(_sign(key, auth_data + client_hash))
    else:
        attestation = cbor2.loads(base64url_to_bytes(valid["response"]["attestationObject"]))
        # The packed self-attestation is signed by the new credential's own key, which the
        # authenticator that made it discarded: drop to "none" (nothing signed but the data).
        attestation = {"fmt": "none", "attStmt": {}, "authData": attestation["authData"]}
        result["response"]["attestationObject"] = bytes_to_base64url(encode_cbor(attestation))
    return result


@pytest.mark.parametrize("ceremony", CEREMONIES)
@SETTINGS
@given(data=st.data())
def test_client_data_with_wrong_or_missing_members_is_refused(
    server: Server, case_counts: CaseCounts, ceremony: str, data: st.DataObject
) -> None:
    member = data.draw(st.sampled_from(["type", "challenge", "origin"]), label="member")
    junk = data.draw(st.just(_DELETE) | json_junk, label="value")

    def make(options: dict[str, Any]) -> Any:
        valid = server.valid_response(ceremony, options)
        client_data = _client_data(valid)
        value = _DELETE if junk == client_data[member] else junk
        if value is _DELETE:
            del client_data[member]
        else:
            client_data[member] = value
        return _with_client_data(server, ceremony, valid, json.dumps(client_data).encode())

    redeem_refused(server, case_counts, ceremony, "clientDataJSON member wrong or missing", make)


@pytest.mark.parametrize("ceremony", CEREMONIES)
@SETTINGS
@given(data=st.data())
def test_client_data_that_is_not_a_json_object_is_refused(
    server: Server, case_counts: CaseCounts, ceremony: str, data: st.DataObject
) -> None:
    raw = data.draw(
        st.binary(max_size=200)
        | json_junk.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode())
        | st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
        label="clientDataJSON",
    )
    redeem_refused(
        server,
        case_counts,
        ceremony,
        "clientDataJSON not a JSON object",
        lambda options: _with_client_data(
            server, ceremony, server.valid_response(ceremony, options), raw
        ),
    )


@pytest.mark.parametrize("ceremony", CEREMONIES)
@pytest.mark.parametrize("size", [1_000, 10_000, MAX_BODY // 2, MAX_BODY * 2, MAX_BODY * 8])
def test_huge_client_data_is_refused_and_beyond_the_body_limit_is_413(
    server: Server, case_counts: CaseCounts, ceremony: str, size: int
) -> None:
    def make(options: dict[str, Any]) -> Any:
        valid = server.valid_response(ceremony, options)
        client_data = {**_client_data(valid), "padding": "x" * size}
        valid["response"]["clientDataJSON"] = bytes_to_base64url(json.dumps(client_data).encode())
        return valid

    too_large = size * 4 // 3 > MAX_BODY
    for form in (False, True):
        response = redeem_refused(
            server,
            case_counts,
            ceremony,
            "huge clientDataJSON" + (" beyond the body limit" if too_large else ""),
            make,
            form=form,
            statuses=range(413, 414) if too_large else range(400, 413),
        )
        assert (response.status_code == 413) == too_large


# -- authenticator data and CBOR -------------------------------------------------------------


def _auth_data_of(ceremony: str, valid: dict[str, Any]) -> bytes:
    if ceremony == "login":
        return base64url_to_bytes(valid["response"]["authenticatorData"])
    attestation = cbor2.loads(base64url_to_bytes(valid["response"]["attestationObject"]))
    auth_data: bytes = attestation["authData"]
    return auth_data


def _with_auth_data(ceremony: str, valid: dict[str, Any], auth_data: bytes) -> dict[str, Any]:
    result = copy.deepcopy(valid)
    if ceremony == "login":
        result["response"]["authenticatorData"] = bytes_to_base64url(auth_data)
    else:
        attestation = cbor2.loads(base64url_to_bytes(valid["response"]["attestationObject"]))
        attestation["authData"] = auth_data
        result["response"]["attestationObject"] = bytes_to_base64url(encode_cbor(attestation))
    return result


@pytest.mark.parametrize("ceremony", CEREMONIES)
def test_authenticator_data_of_every_length_up_to_300_is_refused(
    server: Server, case_counts: CaseCounts, ceremony: str
) -> None:
    """The real authenticator data cut or padded to each length (never the real bytes: the
    attestation and assertion signatures cover them)."""
    for length in range(301):

        def make(options: dict[str, Any], length: int = length) -> Any:
            valid = server.valid_response(ceremony, options)
            real = _auth_data_of(ceremony, valid)
            data = (real + hashlib.sha512(length.to_bytes(2, "big")).digest() * 5)[:length]
            if data == real:
                data = data[:-1] + bytes([data[-1] ^ 1])
            return _with_auth_data(ceremony, valid, data)

        redeem_refused(server, case_counts, ceremony, "authenticatorData of length 0..300", make)


@SETTINGS
@given(data=st.data())
def test_truncated_or_oversized_attestation_objects_are_refused(
    server: Server, case_counts: CaseCounts, data: st.DataObject
) -> None:
    variant = data.draw(
        st.sampled_from(["truncated", "declared-too-long", "trailing-bytes", "junk-cbor"]),
        label="variant",
    )
    # Positions are drawn as seeds (taken modulo the length), so that every run draws alike.
    seed = data.draw(st.integers(0, 2**16), label="position seed")
    # A byte string, array, map or text announcing far more than the body can hold.
    head = data.draw(st.sampled_from([0x5B, 0x9B, 0xBB, 0x7B, 0x5A, 0x9A, 0xBA]), label="head")
    size = data.draw(st.integers(2**20, 2**63 - 1 if head & 0x1F == 27 else 2**32 - 1))
    tail = data.draw(st.binary(min_size=1, max_size=2000), label="tail")
    junk = data.draw(_attestation_junk(server.attestation_template), label="object")

    def make(options: dict[str, Any]) -> Any:
        valid = server.valid_response("signup", options)
        real = base64url_to_bytes(valid["response"]["attestationObject"])
        if variant == "truncated":
            blob = real[: seed % len(real)]
        elif variant == "declared-too-long":
            width = 8 if head & 0x1F == 27 else 4
            prefix = seed % (len(real) + 1)
            blob = real[:prefix] + bytes([head]) + size.to_bytes(width, "big") + real[prefix:]
        elif variant == "trailing-bytes":
            blob = real + tail
        else:
            blob = encode_cbor(junk)
        return replaced(valid, ("response", "attestationObject"), bytes_to_base64url(blob))

    redeem_refused(server, case_counts, "signup", f"attestationObject {variant}", make)


def _attestation_junk(original: dict[str, Any]) -> st.SearchStrategy[Any]:
    """CBOR values shaped like the attestation object ``original`` with something wrong."""
    cbor_scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**64) + 1, 2**64 - 1)
        | st.binary(max_size=80)
        | st.text(max_size=20)
    )
    cbor_junk = st.recursive(
        cbor_scalars,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=8) | st.integers(-5, 5), children, max_size=3)
        ),
        max_leaves=8,
    )

    def corrupt(key: str, value: Any) -> dict[str, Any]:
        obj = dict(original)
        if value is _DELETE:
            del obj[key]
        else:
            obj[key] = value
        return obj

    return st.one_of(
        cbor_junk,
        st.builds(
            corrupt,
            st.sampled_from(["fmt", "attStmt", "authData"]),
            st.just(_DELETE) | cbor_junk,
        ).filter(lambda obj: obj != original),
        st.builds(
            lambda junk: {**original, "attStmt": {**original["attStmt"], **junk}},
            st.dictionaries(
                st.sampled_from(["alg", "sig", "x5c", "ecdaaKeyId"]), cbor_junk, min_size=1
            ),
        ).filter(lambda obj: obj != original),
    )


ATTESTATION_FORMATS = ["packed", "tpm", "android-key", "android-safetynet", "fido-u2f", "apple"]
_STATEMENT_KEYS = ["alg", "sig", "x5c", "ver", "certInfo", "pubArea", "response", "ecdaaKeyId"]


def _with_statement(valid: dict[str, Any], fmt: str, statement: Any) -> dict[str, Any]:
    """``valid`` with its attestation statement replaced (authData and clientDataJSON intact)."""
    attestation = cbor2.loads(base64url_to_bytes(valid["response"]["attestationObject"]))
    attestation.update(fmt=fmt, attStmt=statement)
    return replaced(
        valid,
        ("response", "attestationObject"),
        bytes_to_base64url(encode_cbor(attestation)),
    )


@settings(SETTINGS, max_examples=120)
@given(
    fmt=st.sampled_from(ATTESTATION_FORMATS),
    statement=st.dictionaries(
        st.sampled_from(_STATEMENT_KEYS),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-(2**64) + 1, 2**64 - 1),
            st.binary(max_size=300),
            st.text(max_size=30),
            st.lists(st.binary(max_size=300), max_size=3),
            st.dictionaries(st.text(max_size=5), st.binary(max_size=20), max_size=3),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_junk_attestation_statements_of_every_format_are_refused(
    server: Server, case_counts: CaseCounts, fmt: str, statement: dict[str, Any]
) -> None:
    redeem_refused(
        server,
        case_counts,
        "signup",
        f"attStmt junk, fmt {fmt}",
        lambda options: _with_statement(server.valid_response("signup", options), fmt, statement),
    )


def _jws(header: bytes, payload: bytes = b"{}") -> bytes:
    return b".".join(bytes_to_base64url(part).encode() for part in (header, payload, b"signature"))


@pytest.mark.parametrize(
    "response",
    [
        ["not", "bytes"],  # AttributeError: 'list' object has no attribute 'decode'
        {"not": b"bytes"},
        _jws(b"[]"),  # AttributeError: 'list' object has no attribute 'get'
        _jws(b"{}", b"1"),
        _jws(b"[" * 2000 + b"]" * 2000),  # RecursionError in json.loads
        b"\xff\xfe.not.ascii",
    ],
)
def test_safetynet_statements_that_crashed_py_webauthn_are_refused(
    server: Server, case_counts: CaseCounts, response: Any
) -> None:
    """Regression: py_webauthn's android-safetynet verifier raised AttributeError and
    RecursionError on such statements, which escaped the ceremony's mapping (a 500)."""
    statement = {"ver": "1", "response": response}
    redeem_refused(
        server,
        case_counts,
        "signup",
        "attStmt android-safetynet regression",
        lambda options: _with_statement(
            server.valid_response("signup", options), "android-safetynet", statement
        ),
    )


def test_attestation_object_with_trailing_bytes_is_refused(
    server: Server, case_counts: CaseCounts
) -> None:
    """Regression: cbor2 decodes the first item and ignores what follows, so an attestation
    object with bytes after it signed the user up."""

    def make(options: dict[str, Any]) -> Any:
        valid = server.valid_response("signup", options)
        blob = base64url_to_bytes(valid["response"]["attestationObject"]) + b"\x00"
        return replaced(valid, ("response", "attestationObject"), bytes_to_base64url(blob))

    response = redeem_refused(server, case_counts, "signup", "attestationObject regression", make)
    assert response.get_json()["error"] == "invalid_grant"


# -- one flipped byte of a real signed response ------------------------------------------------

SIGNED = {
    "login": [
        ("response", "clientDataJSON"),
        ("response", "authenticatorData"),
        ("response", "signature"),
        ("response", "userHandle"),
        ("rawId",),
    ],
    "signup": [("response", "clientDataJSON"), ("response", "attestationObject")],
}


@pytest.mark.parametrize("ceremony", CEREMONIES)
@settings(SETTINGS, max_examples=200)
@given(data=st.data())
def test_one_changed_byte_of_a_signed_part_is_refused(
    server: Server, case_counts: CaseCounts, ceremony: str, data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(SIGNED[ceremony]), label="part")
    form = data.draw(st.booleans(), label="form")
    # The position as a seed taken modulo the length (signatures vary in length).
    seed = data.draw(st.integers(0, 2**16), label="position seed")
    xor = data.draw(st.integers(1, 255), label="xor")

    def make(options: dict[str, Any]) -> Any:
        valid = server.valid_response(ceremony, options)
        raw = bytearray(base64url_to_bytes(get(valid, path)))
        raw[seed % len(raw)] ^= xor
        mutated = replaced(valid, path, bytes_to_base64url(bytes(raw)))
        if path == ("rawId",):
            mutated["id"] = mutated["rawId"]
        return mutated

    redeem_refused(
        server, case_counts, ceremony, f"one byte changed in {path[-1]}", make, form=form
    )


def test_the_unmodified_responses_do_succeed(server: Server) -> None:
    """The control: the same helpers with nothing corrupted sign up and sign in."""
    for ceremony in CEREMONIES:
        auth_session, options = server.session(ceremony)
        response = server.token(auth_session, server.valid_response(ceremony, options))
        assert response.status_code == 200, response.get_json()
