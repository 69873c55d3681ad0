"""Passkey provider names by AAGUID (flask_passkey.core.authenticators): the operator's file in the
community list's format, the chain of sources, and where the names show (My Account, CLI)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from flask import Flask

from flask_passkey.core.audiences import MY_ACCOUNT_SCOPES
from flask_passkey.core.authenticators import (
    AaguidFile,
    AuthenticatorInfo,
    AuthenticatorNames,
)
from flask_passkey.errors import ConfigurationError
from flask_passkey.testing import PasskeyFlow, SoftAuthenticator
from tests.apps import CUSTOM_DOMAIN, ME, make_app
from tests.support import new_email

KEYCHAIN = "fbfc3007-154e-4ecc-8c0b-6e020557d7bd"
UNLISTED = "0ea242b4-43c4-4a1b-8b17-dd6d0b6baec6"
LIGHT = "data:image/svg+xml;base64," + base64.b64encode(b"<svg fill='black'/>").decode()
DARK = "data:image/svg+xml;base64," + base64.b64encode(b"<svg fill='white'/>").decode()


def names_file(tmp_path: Path, data: Any) -> str:
    path = tmp_path / "aaguid.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture
def named_app(tmp_path: Path) -> Flask:
    listed = {KEYCHAIN: {"name": "iCloud Keychain", "icon_light": LIGHT, "icon_dark": DARK}}
    return make_app(authenticator_names_file=names_file(tmp_path, listed))


def sign_up(app: Flask, aaguid: str) -> tuple[PasskeyFlow, dict[str, Any]]:
    """A new user whose passkey has ``aaguid``; the token response carries My Account scopes."""
    authenticator = SoftAuthenticator(aaguid=uuid.UUID(aaguid).bytes)
    flow = PasskeyFlow(
        app.test_client(), client_id="spa", host=CUSTOM_DOMAIN, authenticator=authenticator
    )
    scope = " ".join(("openid", *MY_ACCOUNT_SCOPES))
    return flow, flow.sign_up({"email": new_email()}, scope=scope, audience=ME)


def my_passkeys(app: Flask, tokens: dict[str, Any]) -> list[dict[str, Any]]:
    response = app.test_client().get(
        "/me/v1/authentication-methods",
        headers={"Host": CUSTOM_DOMAIN, "Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert response.status_code == 200, response.get_json()
    methods: list[dict[str, Any]] = response.get_json()["authentication_methods"]
    return methods


# -- the lookup -------------------------------------------------------------------------------


def test_the_file_gives_names_and_data_uri_icons(tmp_path: Path) -> None:
    path = names_file(
        tmp_path,
        {
            KEYCHAIN.upper(): {"name": " iCloud Keychain ", "icon_light": LIGHT, "icon_dark": DARK},
            UNLISTED: {"name": "Tracker", "icon_light": "https://evil.example/pixel.svg"},
            "11111111-2222-3333-4444-555555555555": {"icon_light": LIGHT},  # no name: skipped
        },
    )
    names = AuthenticatorNames([AaguidFile.load(Path(path))])

    assert names.authenticator_name(KEYCHAIN) == AuthenticatorInfo("iCloud Keychain", LIGHT, DARK)
    assert names.authenticator_name(UNLISTED) == AuthenticatorInfo("Tracker", None, None)
    assert names.authenticator_name("11111111-2222-3333-4444-555555555555") is None
    assert names.authenticator_name("00000000-0000-0000-0000-000000000000") is None
    assert names.authenticator_name("not an aaguid") is None


def test_the_first_source_that_knows_an_aaguid_wins() -> None:
    community = AaguidFile({KEYCHAIN: AuthenticatorInfo("from the list")})
    metadata = AaguidFile({KEYCHAIN: AuthenticatorInfo("from MDS")})
    names = AuthenticatorNames([community])

    names.add_source(AaguidFile({UNLISTED: AuthenticatorInfo("later")}))
    assert names.authenticator_name(KEYCHAIN) == AuthenticatorInfo("from the list")
    assert names.authenticator_name(UNLISTED) == AuthenticatorInfo("later")

    names.add_source(metadata, first=True)
    assert names.authenticator_name(KEYCHAIN) == AuthenticatorInfo("from MDS")


def test_an_empty_list_is_valid_and_names_nothing(tmp_path: Path) -> None:
    """The community list announces its retirement by becoming ``{}``."""
    names = AuthenticatorNames([AaguidFile.load(Path(names_file(tmp_path, {})))])
    assert names.authenticator_name(KEYCHAIN) is None


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "No such file"), ("{not json", "Expecting property name"), ("[]", "an object")],
)
def test_an_unusable_file_stops_the_app_at_start_up(
    tmp_path: Path, content: str | None, reason: str
) -> None:
    path = tmp_path / "aaguid.json"
    if content is not None:
        path.write_text(content)

    with pytest.raises(ConfigurationError, match="PASSKEY_AUTHENTICATOR_NAMES_FILE") as raised:
        make_app(authenticator_names_file=str(path))
    assert reason in str(raised.value)


# -- where the names show -----------------------------------------------------------------------


def test_my_account_names_a_passkey_after_its_provider_until_the_user_renames_it(
    named_app: Flask,
) -> None:
    _, tokens = sign_up(named_app, KEYCHAIN)
    [method] = my_passkeys(named_app, tokens)
    assert method["name"] == "iCloud Keychain"
    assert method["aaguid"] == KEYCHAIN
    # Auth0's passkey object has no icon member: the icons stay out of the API.
    assert not {"icon_light", "icon_dark"} & set(method)

    renamed = named_app.test_client().patch(
        f"/me/v1/authentication-methods/{method['id'].replace('|', '%7C')}",
        json={"name": "Work phone"},
        headers={"Host": CUSTOM_DOMAIN, "Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert renamed.status_code == 200, renamed.get_json()
    [method] = my_passkeys(named_app, tokens)
    assert method["name"] == "Work phone"


def test_a_passkey_of_an_unlisted_provider_has_no_name(named_app: Flask) -> None:
    _, tokens = sign_up(named_app, UNLISTED)
    [method] = my_passkeys(named_app, tokens)
    assert "name" not in method


def test_the_cli_lists_the_provider_name(named_app: Flask) -> None:
    _, tokens = sign_up(named_app, KEYCHAIN)
    sub = jwt.decode(tokens["id_token"], options={"verify_signature": False})["sub"]

    result = named_app.test_cli_runner().invoke(args=["passkey", "users", "passkeys", sub])

    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()
    assert header.split()[:2] == ["CREDENTIAL_ID", "NAME"]
    assert "iCloud Keychain" in row
