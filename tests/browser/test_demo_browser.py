"""The demo site end to end: Chromium, its WebAuthn virtual authenticator, the real API."""

from __future__ import annotations

import pytest

from tests.support import new_email

from .conftest import NO_JSON_HELPERS, Page, ServerFactory

pytestmark = pytest.mark.browser


def signed_in_sub(page: Page) -> str:
    page.wait_for_path("/account")
    return page.text("claim-sub")


def test_sign_up_sign_out_and_sign_in_again_as_the_same_user(page: Page) -> None:
    email = new_email("ann")
    page.sign_up(email, "Ann Example")

    sub = signed_in_sub(page)
    assert page.text("claim-email") == email
    assert page.text("greeting") == "Hello, Ann Example"
    stored = page.server.find_user(email)
    assert stored is not None and stored.id == sub
    passkeys = page.driver.find_elements("css selector", "#passkeys .passkey")
    assert len(passkeys) == 1
    assert "Device-bound" in passkeys[0].text  # the virtual authenticator is not backed up
    assert "Used for this sign-in" in passkeys[0].text

    page.sign_out()
    assert page.find("username").get_attribute("autocomplete") == "username webauthn"
    assert "signed out" in page.driver.find_element("css selector", ".notice.info").text
    page.open("/account")  # the session is gone: back to sign-in
    page.wait_for_path("/")

    page.find("signin-button").click()
    assert signed_in_sub(page) == sub
    assert page.text("claim-email") == email


def test_autofill_offers_the_passkey_on_the_sign_in_page(page: Page) -> None:
    email = new_email("autofill")
    page.sign_up(email)
    sub = signed_in_sub(page)
    page.remove_injected_scripts()  # autofill (conditional mediation) on from now
    page.clear_cookies()

    # The sign-in page starts a conditional request as it loads; Chromium's virtual
    # authenticator answers it at once, where a person would pick the passkey in the
    # suggestions of the email field.
    page.driver.get(page.server.url + "/")
    assert signed_in_sub(page) == sub
    assert page.text("claim-email") == email


def test_a_cancelled_prompt_is_explained_and_stores_nothing(page: Page) -> None:
    email = new_email("cancel")
    page.driver.set_user_verified(False)  # the authenticator refuses: NotAllowedError
    page.sign_up(email)

    message = page.wait_for_message()
    assert "cancelled" in message and "no account was created" in message
    assert page.driver.current_url == page.server.url + "/signup"
    assert page.server.find_user(email) is None

    page.driver.set_user_verified(True)
    page.find("signup-button").click()  # the form keeps what was typed: try again
    sub = signed_in_sub(page)
    page.sign_out()

    page.driver.set_user_verified(False)
    page.find("signin-button").click()
    assert "you're not signed in" in page.wait_for_message()
    assert page.driver.current_url == page.server.url + "/"
    assert page.server.find_user(email).id == sub


def test_a_second_sign_up_with_the_same_email_is_refused(page: Page) -> None:
    email = new_email("twice")
    page.sign_up(email)
    first = signed_in_sub(page)
    page.sign_out()

    page.sign_up(email.upper(), "Someone Else")
    message = page.wait_for_message()
    assert "already exists" in message
    link = page.find("message").find_element("css selector", "a")
    assert link.text == "Sign in with its passkey"
    assert page.driver.current_url == page.server.url + "/signup"
    assert page.server.find_user(email).id == first
    assert len(page.server.users.list_credentials(first)) == 1


def test_a_passkey_the_site_no_longer_knows_is_explained(page: Page) -> None:
    email = new_email("gone")
    page.sign_up(email)
    sub = signed_in_sub(page)
    page.sign_out()
    users = page.server.users
    (credential,) = users.list_credentials(sub)
    assert users.delete_credential(user_id=sub, credential_id=credential.id)

    page.find("signin-button").click()
    assert "isn't registered here" in page.wait_for_message()
    assert page.driver.current_url == page.server.url + "/"


def test_browsers_without_the_json_helpers_use_the_by_hand_encoding(page: Page) -> None:
    page.inject(NO_JSON_HELPERS)
    page.open("/signup")
    assert page.driver.execute_script(
        "return [typeof PublicKeyCredential.parseCreationOptionsFromJSON,"
        " typeof PublicKeyCredential.prototype.toJSON]"
    ) == ["undefined", "undefined"]
    email = new_email("legacy")
    page.sign_up(email)
    sub = signed_in_sub(page)
    page.sign_out()
    page.find("signin-button").click()
    assert signed_in_sub(page) == sub


def test_rate_limited_requests_are_explained(
    page: Page, demo_server_factory: ServerFactory
) -> None:
    limited = demo_server_factory(PASSKEY_RATE_LIMIT="1 per minute")
    page.server = limited
    page.driver.set_user_verified(False)
    page.sign_up(new_email("busy"))
    assert "cancelled" in page.wait_for_message()  # the one request allowed

    page.find("signup-button").click()
    message = page.wait_for_message()
    assert "Too many attempts" in message and "seconds" in message
    assert limited.users.list_users() == []


#: Holds the authenticator's answer back for 1.5 s, past a 1 s challenge lifetime.
SLOW_AUTHENTICATOR = """
if (navigator.credentials) {
  const create = navigator.credentials.create.bind(navigator.credentials);
  navigator.credentials.create = async (options) => {
    const credential = await create(options);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    return credential;
  };
}
"""


def test_an_expired_challenge_is_explained(page: Page, demo_server_factory: ServerFactory) -> None:
    page.server = demo_server_factory(PASSKEY_CHALLENGE_TIMEOUT=1000)
    page.inject(SLOW_AUTHENTICATOR)
    email = new_email("slow")
    page.sign_up(email)
    assert "took too long or was already used" in page.wait_for_message()
    assert page.server.find_user(email) is None
