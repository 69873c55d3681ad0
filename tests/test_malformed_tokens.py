"""Property-based tests for the token-lifecycle endpoints: junk refresh tokens at /oauth/token,
junk bodies at /oauth/revoke, junk ``Authorization`` and ``DPoP`` headers at /userinfo.

Whatever is sent (any JSON value in any field, JSON or form, a real token with a changed
character, any header text), the answer is a 4xx with the spec's error body (or revocation's
empty 200), never a 5xx, and a real refresh token sent alongside keeps working. Case counts are
printed in the terminal summary.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_passkey.testing import PasskeyFlow
from tests.apps import HOST, REFRESH_GRANT, make_app
from tests.case_counts import CaseCounts
from tests.support import assert_error_body, new_email, passkey_flow

SUITE = "hypothesis malformed tokens"
SETTINGS = settings(
    max_examples=150,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Any JSON value, lone surrogates included.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(st.characters(exclude_categories=())),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
#: What a header line can carry (latin-1, no line breaks).
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=300)


class Tokens:
    """An app with a signed-up user of the ``refreshing`` client and their live tokens."""

    def __init__(self) -> None:
        self.app: Flask = make_app(rate_limit_enabled=False)
        self.client = self.app.test_client()
        self.flow: PasskeyFlow = passkey_flow(self.app, "refreshing")
        signed_up = self.flow.sign_up({"email": new_email()}, scope="openid offline_access")
        self.refresh_token: str = signed_up["refresh_token"]
        self.access_token: str = signed_up["access_token"]

    def post(self, path: str, body: dict[str, Any], *, form: bool) -> Any:
        if form:
            fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
            return self.client.post(path, data=fields, headers=HOST)
        return self.client.post(path, json=body, headers=HOST)


@pytest.fixture(scope="module")
def tokens() -> Tokens:
    return Tokens()


def changed(token: str, data: st.DataObject) -> str:
    """``token`` with one character replaced, removed or appended."""
    index = data.draw(st.integers(0, len(token)))
    char = data.draw(st.sampled_from("AZaz09-_.="))
    edit = data.draw(st.sampled_from(["replace", "remove", "append"]))
    if edit == "append" or index == len(token):
        return token + char
    if edit == "remove":
        return token[:index] + token[index + 1 :]
    return token[:index] + char + token[index + 1 :] if token[index] != char else token + char


def assert_refused(response: Any) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.get_data()[:300])
    assert response.mimetype == "application/json", response.get_data()[:300]
    assert_error_body(response.get_json(), response.status_code)


def junk_or_changed(real: str, data: st.DataObject) -> Any:
    return data.draw(st.one_of(json_values, st.just(changed(real, data))))


@SETTINGS
@given(data=st.data(), form=st.booleans())
def test_junk_refresh_tokens_are_refused_and_the_real_one_still_works(
    tokens: Tokens, case_counts: CaseCounts, data: st.DataObject, form: bool
) -> None:
    body = {
        "grant_type": REFRESH_GRANT,
        "client_id": data.draw(st.sampled_from(["refreshing", "refreshing-2", "spa"])),
        "refresh_token": junk_or_changed(tokens.refresh_token, data),
    }
    if data.draw(st.booleans()):
        body[data.draw(st.sampled_from(["scope", "audience", "client_secret"]))] = data.draw(
            json_values
        )

    response = tokens.post("/oauth/token", body, form=form)

    case_counts.add(SUITE, "POST /oauth/token refresh_token", response.status_code)
    assert_refused(response)


def test_the_refresh_token_is_still_live_after_the_junk(tokens: Tokens) -> None:
    response = tokens.post(
        "/oauth/token",
        {
            "grant_type": REFRESH_GRANT,
            "client_id": "refreshing",
            "refresh_token": tokens.refresh_token,
        },
        form=False,
    )

    assert response.status_code == 200, response.get_json()
    tokens.refresh_token = response.get_json()["refresh_token"]


@SETTINGS
@given(data=st.data(), form=st.booleans())
def test_junk_revocation_requests_never_fail_on_the_server(
    tokens: Tokens, case_counts: CaseCounts, data: st.DataObject, form: bool
) -> None:
    body: dict[str, Any] = {
        "token": junk_or_changed(tokens.refresh_token, data),
        "client_id": data.draw(st.one_of(st.sampled_from(["refreshing", "spa"]), json_values)),
    }
    if data.draw(st.booleans()):
        body["token_type_hint"] = data.draw(json_values)

    response = tokens.post("/oauth/revoke", body, form=form)

    case_counts.add(SUITE, "POST /oauth/revoke", response.status_code)
    if response.status_code == 200:
        assert response.get_data() == b""
    else:
        assert_refused(response)


@SETTINGS
@given(data=st.data(), method=st.sampled_from(["GET", "POST"]))
def test_junk_userinfo_credentials_get_a_json_401_or_400(
    tokens: Tokens, case_counts: CaseCounts, data: st.DataObject, method: str
) -> None:
    scheme = data.draw(st.sampled_from(["Bearer ", "DPoP ", "bearer ", "Basic ", ""]))
    credential = data.draw(st.one_of(header_text, st.just(changed(tokens.access_token, data))))
    headers = {**HOST, "Authorization": scheme + credential}
    if data.draw(st.booleans()):
        headers["DPoP"] = data.draw(header_text)

    response = tokens.client.open("/userinfo", method=method, headers=headers)

    case_counts.add(SUITE, f"{method} /userinfo", response.status_code)
    assert_refused(response)
    if response.status_code == 401:
        assert response.headers["WWW-Authenticate"]
