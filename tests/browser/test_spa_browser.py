"""examples/spa in Chromium: a single-page app on its own origin, over HTTPS, calling the API on
another through Auth0's auth0-spa-js (the version of examples/spa/package-lock.json).

The API runs on ``https://login.acme.test:<port>`` and the app on ``https://app.acme.test:<port>``
(tenant RP ID ``acme.test``), with certificates of a throwaway CA (trustme); Chromium maps the
names to 127.0.0.1 (``--host-resolver-rules``) and ignores certificate errors. The same page
served on ``https://evil.acme.test:<port>``, an origin no client allows, shows what a page there
gets: the browser refuses every answer.

A failing test leaves a screenshot and the page in ``test-artifacts/``; every run leaves a
screenshot of the signed-in app in ``test-artifacts/spa/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import trustme
from flask import Flask
from webauthn.helpers import bytes_to_base64url

from flask_passkey.core.audiences import MY_ACCOUNT_SCOPES
from tests.examples import EXAMPLES, load_spa_serve
from tests.node_projects import npm_installed
from tests.servers import ServerThreads, server_tls
from tests.support import find_user, new_email

from .conftest import ARTIFACTS, RECORD_SIGNALS, chromium, save_artifacts
from .helpers import add_virtual_authenticator

pytestmark = pytest.mark.browser

SPA = EXAMPLES / "spa"
API_HOST, APP_HOST, STRANGER_HOST = "login.acme.test", "app.acme.test", "evil.acme.test"


@dataclass
class Servers:
    api: Flask
    api_domain: str
    app_origin: str
    stranger_origin: str

    def find_user(self, email: str) -> Any:
        return find_user(self.api, email)


@pytest.fixture(scope="session")
def spa_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """The API, the app on its allowed origin and the same app on an origin no client allows."""
    npm_installed(SPA, "@auth0/auth0-spa-js")
    serve = load_spa_serve()
    tls = server_tls(trustme.CA(), API_HOST, APP_HOST, STRANGER_HOST)
    threads = ServerThreads()
    # Bind first (port 0: the OS picks), then build the apps for the ports they got.
    api, app, stranger = (threads.bind("127.0.0.1", ssl_context=tls) for _ in range(3))
    api_domain = f"{API_HOST}:{api.port}"
    app_origin = f"https://{APP_HOST}:{app.port}"
    stranger_origin = f"https://{STRANGER_HOST}:{stranger.port}"
    api_app = serve.create_api_app(
        api_domain=api_domain,
        rp_id="acme.test",
        app_origins=[app_origin],
        instance=tmp_path_factory.mktemp("spa-api"),
        rate_limit="600 per minute",
    )
    pages = serve.create_spa_app(api_domain=api_domain)
    threads.serve(api, api_app, name=api_domain)
    threads.serve(app, pages, name=app_origin)
    threads.serve(stranger, pages, name=stranger_origin)
    yield Servers(api_app, api_domain, app_origin, stranger_origin)
    threads.stop_all()


@pytest.fixture(scope="session")
def spa_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Chromium that finds the test's names on 127.0.0.1 and takes the test CA's certificates."""
    hosts = dict.fromkeys((API_HOST, APP_HOST, STRANGER_HOST), "127.0.0.1")
    with chromium(tmp_path_factory.mktemp("spa-chromium"), hosts) as driver:
        yield driver


class SpaPage:
    """The app in the browser: its states, buttons and the virtual authenticator."""

    def __init__(self, driver: Any, servers: Servers) -> None:
        self.driver = driver
        self.servers = servers

    def add_authenticator(self) -> None:
        add_virtual_authenticator(self.driver)

    def swap_authenticator(self) -> None:
        """Another device: the passkeys made so far are out of reach."""
        self.driver.remove_virtual_authenticator()
        self.add_authenticator()

    def open(self, origin: str | None = None) -> None:
        self.driver.get((origin or self.servers.app_origin) + "/")
        self.wait_idle()

    def wait(self, condition: Callable[[Any], Any], timeout: float = 15) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(condition)

    def wait_idle(self) -> None:
        self.wait(
            lambda d: d.execute_script(
                "return document.body.dataset.ready === 'true'"
                " && document.body.dataset.busy !== 'true'"
            )
        )

    def state(self) -> str:
        state: str = self.driver.execute_script("return document.body.dataset.state")
        return state

    def find(self, element_id: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, element_id)

    def text(self, element_id: str) -> str:
        text: str = self.find(element_id).text
        return text

    def click(self, element_id: str) -> None:
        self.find(element_id).click()
        self.wait_idle()

    def error(self) -> str:
        """The error the page shows ('' for none)."""
        box = self.find("message")
        return str(box.text) if box.is_displayed() else ""

    def passkeys(self) -> list[Any]:
        return list(self.driver.find_elements("css selector", "#passkeys .passkey"))

    def sign_up(self, email: str, name: str = "") -> None:
        self.find("email").send_keys(email)
        if name:
            self.find("name").send_keys(name)
        self.click("signup-button")
        assert self.state() == "signed-in", self.error()

    def sign_in(self) -> None:
        self.click("signin-button")
        assert self.state() == "signed-in", self.error()

    def finish(self, request: pytest.FixtureRequest) -> None:
        """After a test: keep its artifacts if it failed, then drop the virtual authenticator."""
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            save_artifacts(self.driver, request.node.nodeid)
        if self.driver.virtual_authenticator_id is not None:
            self.driver.remove_virtual_authenticator()

    def screenshot(self, name: str) -> None:
        folder = ARTIFACTS / "spa"
        folder.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(folder / f"{name}.png"))


@pytest.fixture
def spa(
    spa_browser: Any, spa_servers: Servers, request: pytest.FixtureRequest
) -> Iterator[SpaPage]:
    """The app on its own origin, signed out, with a fresh virtual authenticator."""
    page = SpaPage(spa_browser, spa_servers)
    page.add_authenticator()
    page.open()
    try:
        yield page
    finally:
        page.finish(request)
        for origin in (spa_servers.app_origin, spa_servers.stranger_origin):
            spa_browser.execute_cdp_cmd(
                "Storage.clearDataForOrigin", {"origin": origin, "storageTypes": "all"}
            )
        spa_browser.get("about:blank")


def test_sign_up_sign_out_and_sign_in_again(spa: SpaPage) -> None:
    email = new_email("spa")
    assert spa.state() == "signed-out"

    spa.sign_up(email, "Ann Example")

    assert spa.text("greeting") == "Hello, Ann Example"
    assert spa.text("claim-email") == email
    sub = spa.text("claim-sub")
    assert spa.servers.find_user(email).id == sub
    assert len(spa.passkeys()) == 1  # listed through the My Account API, cross-origin
    spa.screenshot("signed-in")

    spa.click("signout-button")
    assert spa.state() == "signed-out"
    spa.open()  # the tokens are gone with the sign-out
    assert spa.state() == "signed-out"

    spa.sign_in()
    assert spa.text("claim-sub") == sub


def test_silent_refresh_and_a_my_account_token_from_the_refresh_token(spa: SpaPage) -> None:
    spa.sign_up(new_email("refresh"))
    sub, signed_in_token = spa.text("claim-sub"), spa.text("token-id")

    spa.click("refresh-button")
    assert spa.text("refresh-count") == "1", spa.error()
    refreshed_token = spa.text("token-id")
    assert refreshed_token != signed_in_token

    spa.open()  # a reload: the session comes back from the SDK's cache, no prompt
    assert spa.state() == "signed-in", spa.error()
    assert spa.text("claim-sub") == sub
    spa.click("refresh-button")  # with the refresh token the last rotation gave
    assert spa.error() == ""
    assert spa.text("token-id") not in (signed_in_token, refreshed_token)

    spa.click("myaccount-button")
    assert spa.error() == ""
    assert spa.text("myaccount-audience") == f"https://{spa.servers.api_domain}/me/"
    assert set(MY_ACCOUNT_SCOPES) <= set(spa.text("myaccount-scope").split())


def test_rename_add_and_delete_passkeys(spa: SpaPage) -> None:
    email = new_email("passkeys")
    spa.sign_up(email)
    sub = spa.text("claim-sub")
    [first] = spa.passkeys()
    first_id = first.get_attribute("data-id")

    name_box = first.find_element("css selector", ".passkey-name")
    name_box.clear()
    name_box.send_keys("Work laptop")
    first.find_element("css selector", ".rename").click()
    spa.wait_idle()
    assert spa.error() == ""
    [renamed] = spa.passkeys()
    assert renamed.find_element("css selector", ".passkey-name").get_attribute("value") == (
        "Work laptop"
    )
    [stored] = spa.servers.api.extensions["passkey"].users.list_credentials(sub)
    assert stored.name == "Work laptop"

    spa.swap_authenticator()  # a second device
    spa.click("add-passkey-button")
    assert spa.error() == ""
    assert len(spa.passkeys()) == 2

    first = next(row for row in spa.passkeys() if row.get_attribute("data-id") == first_id)
    first.find_element("css selector", ".delete").click()
    spa.wait_idle()
    assert spa.error() == ""
    assert [row.get_attribute("data-id") for row in spa.passkeys()] != [first_id]
    assert len(spa.passkeys()) == 1

    spa.click("signout-button")
    spa.sign_in()  # with the passkey added from the app
    assert spa.text("claim-sub") == sub


def test_a_page_on_an_origin_no_client_allows_cannot_call_the_api(spa: SpaPage) -> None:
    spa.open(spa.servers.stranger_origin)
    assert spa.state() == "signed-out"

    spa.click("signin-button")

    assert spa.state() == "signed-out"
    assert spa.find("message").get_attribute("data-error-name") == "TypeError"
    assert "cannot be reached from this page" in spa.error()


# -- the WebAuthn Signal API ----------------------------------------------------------------


@pytest.fixture
def recorded(spa: SpaPage) -> Iterator[SpaPage]:
    """The app, reloaded with the signal recorder in place."""
    answer = spa.driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_SIGNALS}
    )
    spa.open()
    try:
        yield spa
    finally:
        spa.driver.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": answer["identifier"]}
        )


def signals(page: SpaPage, name: str) -> list[dict[str, Any]]:
    calls = page.driver.execute_script("return window.__signals")
    return [options for called, options in calls if called == name]


def test_a_passkey_the_server_does_not_know_is_signalled_unknown(recorded: SpaPage) -> None:
    recorded.sign_up(new_email("gone"))
    sub = recorded.text("claim-sub")
    recorded.click("signout-button")
    users = recorded.servers.api.extensions["passkey"].users
    [credential] = users.list_credentials(sub)
    assert users.delete_credential(user_id=sub, credential_id=credential.id)

    recorded.click("signin-button")

    assert recorded.state() == "signed-out"
    assert "Unknown credential." in recorded.error()
    assert signals(recorded, "signalUnknownCredential") == [
        {"rpId": "acme.test", "credentialId": bytes_to_base64url(credential.id)}
    ]
    recorded.wait(lambda d: not d.get_credentials(), timeout=5)  # Chromium dropped it


def test_listing_and_deleting_passkeys_signal_the_accepted_ones(recorded: SpaPage) -> None:
    email = new_email("signals")
    recorded.sign_up(email, "Ann Example")
    user = recorded.servers.find_user(email)
    user_id = bytes_to_base64url(user.user_handle)
    [first] = recorded.servers.api.extensions["passkey"].users.list_credentials(user.id)
    first_id = bytes_to_base64url(first.id)

    accepted = signals(recorded, "signalAllAcceptedCredentials")
    assert accepted[-1] == {
        "rpId": "acme.test",
        "userId": user_id,
        "allAcceptedCredentialIds": [first_id],
    }
    assert signals(recorded, "signalCurrentUserDetails") == [
        {"rpId": "acme.test", "userId": user_id, "name": email, "displayName": "Ann Example"}
    ]

    recorded.swap_authenticator()
    recorded.click("add-passkey-button")
    assert (
        len(signals(recorded, "signalAllAcceptedCredentials")[-1]["allAcceptedCredentialIds"]) == 2
    )

    row = next(
        r for r in recorded.passkeys() if r.get_attribute("data-id") == f"passkey|{first_id}"
    )
    row.find_element("css selector", ".delete").click()
    recorded.wait_idle()
    assert recorded.error() == ""
    [second] = recorded.servers.api.extensions["passkey"].users.list_credentials(user.id)
    assert signals(recorded, "signalAllAcceptedCredentials")[-1]["allAcceptedCredentialIds"] == [
        bytes_to_base64url(second.id)
    ]
