"""auth0-server-python (Auth0's server-side Python SDK) against a running flask-passkey server.

Each test is one flow a web app built on the SDK goes through, asserted the way its user would
notice it: signed up, signed in again, still signed in after the access token expired, managing
their passkeys with a My Account token, and so on. The SDK has no userinfo or revocation
method, so those two flows use the SDK's tokens with plain HTTP requests to the endpoints the
server's discovery document names.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import jwt
import pytest
from auth0_server_python.auth_server import ServerClient
from auth0_server_python.auth_types import (
    EnrollAuthenticationMethodRequest,
    PasskeyUserProfile,
    VerifyAuthenticationMethodRequest,
)
from auth0_server_python.error import ApiError, MyAccountApiError
from jwcrypto import jwk

from flask_passkey.testing import SoftAuthenticator
from tests.apps import OFFLINE
from tests.sdk.conftest import (
    SDK_CLIENT_ID,
    SDK_CLIENT_SECRET,
    SdkServer,
    ServerFactory,
    browser_credential,
    my_account_client,
    server_client,
)
from tests.support import find_user, new_email

pytestmark = [
    pytest.mark.sdk,
    pytest.mark.anyio,
    # The SDK's own use of APIs pydantic deprecated (class Config, .dict()).
    pytest.mark.filterwarnings("ignore::DeprecationWarning:auth0_server_python"),
]

READ_PASSKEYS = "read:me:authentication_methods"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def sign_up(
    sdk: ServerClient[Any], server: SdkServer, passkey: SoftAuthenticator, email: str
) -> dict[str, Any]:
    """Sign up through the SDK with a new passkey of ``passkey``; the SDK session's user."""
    challenge = await sdk.passkey_signup_challenge(
        user_profile=PasskeyUserProfile(email=email, name="Ann Example")
    )
    options = challenge.authn_params_public_key.model_dump(by_alias=True, exclude_none=True)
    credential = passkey.create(options, origin=server.origin)
    await sdk.signin_with_passkey(
        challenge.auth_session, browser_credential(credential), scope=OFFLINE
    )
    user = await sdk.get_user()
    assert user is not None
    return user


async def sign_in(
    sdk: ServerClient[Any], server: SdkServer, passkey: SoftAuthenticator, **token_fields: Any
) -> dict[str, Any]:
    """Sign in through the SDK with ``passkey``'s passkey; ``signin_with_passkey``'s state."""
    challenge = await sdk.passkey_login_challenge()
    options = challenge.authn_params_public_key.model_dump(by_alias=True, exclude_none=True)
    assertion = passkey.get(options, origin=server.origin)
    result = await sdk.signin_with_passkey(
        challenge.auth_session, browser_credential(assertion), **token_fields
    )
    return result.state_data


async def get_json(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


async def discovery(server: SdkServer) -> dict[str, Any]:
    return await get_json(f"{server.origin}/.well-known/openid-configuration")


async def access_token_claims(
    server: SdkServer, token: str, *, audience: str, leeway: float = 0
) -> dict[str, Any]:
    """``token`` verified against the keys the server publishes, as an API would (``leeway``
    seconds past its expiry)."""
    keys = jwt.PyJWKSet.from_dict(await get_json((await discovery(server))["jwks_uri"]))
    key = next(k for k in keys.keys if k.key_id == jwt.get_unverified_header(token)["kid"])
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience=audience,
        issuer=f"{server.origin}/",
        leeway=leeway,
    )
    return claims


async def test_sign_up_creates_the_user_and_starts_a_session(sdk_server: SdkServer) -> None:
    sdk, passkey, email = server_client(sdk_server), SoftAuthenticator(), new_email()

    user = await sign_up(sdk, sdk_server, passkey, email)

    # The SDK accepted the ID token: signature by a key of the JWKS it found through discovery,
    # aud = the client, iss = the issuer of the discovery document.
    assert user["email"] == email
    stored = find_user(sdk_server.app, email)
    assert stored is not None and user["sub"] == stored.id
    credentials = sdk_server.app.extensions["passkey"].users.list_credentials(stored.id)
    assert [c.id for c in credentials] == [passkey.credentials[0].credential_id]
    session = await sdk.get_session()
    assert session is not None and session["refresh_token"]


async def test_login_with_the_passkey_signs_the_same_user_in(sdk_server: SdkServer) -> None:
    passkey = SoftAuthenticator()
    signed_up = await sign_up(server_client(sdk_server), sdk_server, passkey, new_email())
    later = server_client(sdk_server)  # another visit: a new, empty session

    await sign_in(later, sdk_server, passkey)

    user = await later.get_user()
    assert user is not None
    assert (user["sub"], user["email"]) == (signed_up["sub"], signed_up["email"])


@pytest.mark.parametrize("organization", ["Acme", "org_acme"])
async def test_sign_up_and_in_to_an_organization_by_name_or_id(
    sdk_server: SdkServer, organization: str
) -> None:
    # The SDK checks the ID token's org_name (case-insensitively) when given a name, its
    # org_id when given an id ("org_..."), and refuses the sign-in on a mismatch.
    passkey, email = SoftAuthenticator(), new_email()
    sdk = server_client(sdk_server)
    challenge = await sdk.passkey_signup_challenge(
        user_profile=PasskeyUserProfile(email=email), organization=organization
    )
    options = challenge.authn_params_public_key.model_dump(by_alias=True, exclude_none=True)
    credential = passkey.create(options, origin=sdk_server.origin)
    await sdk.signin_with_passkey(
        challenge.auth_session, browser_credential(credential), organization=organization
    )

    signed_up = await sdk.get_user()
    assert signed_up is not None
    assert (signed_up["org_id"], signed_up["org_name"]) == ("org_acme", "acme")
    again = server_client(sdk_server)
    login = await again.passkey_login_challenge(organization=organization)
    options = login.authn_params_public_key.model_dump(by_alias=True, exclude_none=True)
    assertion = passkey.get(options, origin=sdk_server.origin)
    await again.signin_with_passkey(
        login.auth_session, browser_credential(assertion), organization=organization
    )
    signed_in = await again.get_user()
    assert signed_in is not None and signed_in["sub"] == signed_up["sub"]


async def test_expired_access_token_is_refreshed_without_signing_in_again(
    sdk_server_factory: ServerFactory,
) -> None:
    server = sdk_server_factory(access_token_lifetime=1)
    sdk, passkey = server_client(server), SoftAuthenticator()
    user = await sign_up(sdk, server, passkey, new_email())
    session = await sdk.get_session()
    assert session is not None
    first_token, first_refresh = session["token_sets"][0]["access_token"], session["refresh_token"]
    expires_at = session["token_sets"][0]["expires_at"]

    await anyio.sleep(max(0.0, expires_at - time.time()) + 0.05)
    token = await sdk.get_access_token()

    assert token != first_token
    # The server issues one-second tokens here: this one may expire while it is checked.
    claims = await access_token_claims(
        server, token, audience=f"{server.origin}/userinfo", leeway=5
    )
    assert claims["sub"] == user["sub"]
    session = await sdk.get_session()
    assert session is not None and session["refresh_token"] not in (None, first_refresh)
    # Rotation: the refresh token the SDK just spent cannot be spent again.
    with pytest.raises(ApiError) as replayed:
        await sdk.get_token_by_refresh_token({"refresh_token": first_refresh})
    assert replayed.value.code == "invalid_grant"


async def test_refresh_to_the_my_account_api_then_list_passkeys(
    sdk_server_factory: ServerFactory,
) -> None:
    server = sdk_server_factory(my_account_refresh=True)
    sdk, passkey = server_client(server), SoftAuthenticator()
    await sign_up(sdk, server, passkey, new_email())

    # No token for the My Account API in the session: the SDK refreshes for one (MRRT).
    token = await sdk.get_access_token(audience=server.my_account_audience, scope=READ_PASSKEYS)
    listed = await my_account_client(server).list_authentication_methods(token)

    credential_id = passkey.credentials[0].credential_id
    assert [(m.type, m.key_id) for m in listed.authentication_methods] == [
        ("passkey", jwt.utils.base64url_encode(credential_id).decode())
    ]


async def test_userinfo_answers_for_the_sdk_access_token(sdk_server: SdkServer) -> None:
    sdk, email = server_client(sdk_server), new_email()
    user = await sign_up(sdk, sdk_server, SoftAuthenticator(), email)
    token = await sdk.get_access_token()

    async with httpx.AsyncClient() as http:
        response = await http.get(
            (await discovery(sdk_server))["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {token}"},
        )

    assert response.status_code == 200, response.text
    assert {k: response.json()[k] for k in ("sub", "email")} == {"sub": user["sub"], "email": email}


async def test_revoked_refresh_token_no_longer_refreshes(sdk_server: SdkServer) -> None:
    sdk = server_client(sdk_server)
    await sign_up(sdk, sdk_server, SoftAuthenticator(), new_email())
    session = await sdk.get_session()
    assert session is not None
    refresh_token = session["refresh_token"]

    async with httpx.AsyncClient() as http:
        revoked = await http.post(
            (await discovery(sdk_server))["revocation_endpoint"],
            data={
                "token": refresh_token,
                "token_type_hint": "refresh_token",
                "client_id": SDK_CLIENT_ID,
                "client_secret": SDK_CLIENT_SECRET,
            },
        )

    assert revoked.status_code == 200, revoked.text
    with pytest.raises(ApiError) as refused:
        await sdk.get_token_by_refresh_token({"refresh_token": refresh_token})
    assert refused.value.code == "invalid_grant"


async def test_dpop_bound_login_token_works_only_with_its_key(sdk_server: SdkServer) -> None:
    passkey = SoftAuthenticator()
    await sign_up(server_client(sdk_server), sdk_server, passkey, new_email())
    dpop_key = jwk.JWK.generate(kty="EC", crv="P-256")
    sdk = server_client(sdk_server)

    # The SDK itself refuses a token the server did not bind (token_type other than DPoP).
    state = await sign_in(
        sdk,
        sdk_server,
        passkey,
        audience=sdk_server.my_account_audience,
        scope=f"openid {READ_PASSKEYS}",
        dpop_key=dpop_key,
    )
    token = state["token_sets"][0]["access_token"]
    my_account = my_account_client(sdk_server)

    listed = await my_account.list_authentication_methods(token, dpop_key=dpop_key)
    assert len(listed.authentication_methods) == 1
    claims = await access_token_claims(sdk_server, token, audience=sdk_server.my_account_audience)
    assert claims["cnf"] == {"jkt": dpop_key.thumbprint()}
    # A stolen copy of the token, presented without the key, is refused.
    with pytest.raises(MyAccountApiError) as stolen:
        await my_account.list_authentication_methods(token)
    assert stolen.value.status == 401


async def test_enroll_a_second_passkey_through_my_account(sdk_server: SdkServer) -> None:
    phone, laptop = SoftAuthenticator(), SoftAuthenticator()
    await sign_up(server_client(sdk_server), sdk_server, phone, new_email())
    state = await sign_in(
        server_client(sdk_server),
        sdk_server,
        phone,
        audience=sdk_server.my_account_audience,
        scope="openid create:me:authentication_methods read:me:authentication_methods"
        " read:me:factors",
    )
    token = state["token_sets"][0]["access_token"]
    my_account = my_account_client(sdk_server)
    factors = await my_account.get_factors(token)
    assert [f.type for f in factors.factors] == ["passkey"]

    enrollment = await my_account.enroll_authentication_method(
        token, EnrollAuthenticationMethodRequest(type="passkey")
    )
    assert enrollment.authn_params_public_key is not None
    options = enrollment.authn_params_public_key.model_dump(by_alias=True, exclude_none=True)
    credential = laptop.create(options, origin=sdk_server.origin)
    added = await my_account.verify_authentication_method(
        token,
        enrollment.authentication_method_id,
        VerifyAuthenticationMethodRequest(
            auth_session=enrollment.auth_session, authn_response=browser_credential(credential)
        ),
    )

    listed = await my_account.list_authentication_methods(token)
    assert added.id in {m.id for m in listed.authentication_methods}
    assert len(listed.authentication_methods) == 2
