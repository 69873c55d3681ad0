"""The demo site (examples/demo) in a real browser, and its server side without one.

Browser tests drive /usr/bin/chromium through /usr/bin/chromedriver (Selenium), with Chromium's
WebAuthn virtual authenticator standing in for the platform passkey prompt. The demo runs in a
server thread on a free localhost port, with its own tenant file naming that port's origin, so
a test can look at the app's user store directly.

Without Chromium, chromedriver or Selenium the browser tests skip, saying what is missing;
under ``CI=true`` they fail instead. Set ``PASSKEY_TEST_CHROMIUM`` / ``PASSKEY_TEST_CHROMEDRIVER``
to use other binaries. A failing browser test leaves a screenshot and the page source in
``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask

from tests import ROOT
from tests.apps import DB_CONNECTION
from tests.examples import load_demo
from tests.servers import ServerThreads
from tests.support import find_user

from .helpers import add_virtual_authenticator

ARTIFACTS = ROOT / "test-artifacts"

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)

TENANT_TOML = """\
default_domain = "demo.auth0.example"
custom_domains = ["localhost"]
rp_name = "flask-passkey demo"
default_connection = "{connection}"

[[connections]]
name = "{connection}"
required_identifiers = ["email"]

[[clients]]
client_id = "demo-spa"
name = "Demo single-page app"
app_type = "spa"
token_endpoint_auth_method = "none"
grant_types = ["urn:okta:params:oauth:grant-type:webauthn", "refresh_token"]
connections = ["{connection}"]
web_origins = ["{origin}"]
"""


# -- the demo module and servers ------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_module() -> ModuleType:
    return load_demo()


@dataclass
class DemoServer:
    app: Flask
    url: str

    @property
    def users(self) -> Any:
        """The demo's user store, as the extension built it."""
        return self.app.extensions["passkey"].users

    def find_user(self, email: str) -> Any:
        return find_user(self.app, email)


ServerFactory = Callable[..., DemoServer]


@pytest.fixture(scope="session")
def demo_server_factory(
    demo_module: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerFactory]:
    """Start the demo on a free port: tenant TOML with that origin, SQLite file, own secret."""
    threads = ServerThreads()

    def start(**config: Any) -> DemoServer:
        # Bind first (port 0: the OS picks), then build the app for the port it got.
        server = threads.bind("localhost")
        origin = f"http://localhost:{server.port}"
        folder = tmp_path_factory.mktemp("demo")
        tenant = folder / "tenant.toml"
        tenant.write_text(TENANT_TOML.format(origin=origin, connection=DB_CONNECTION))
        app = demo_module.create_app(
            {
                "PASSKEY_TENANT_FILE": str(tenant),
                "PASSKEY_DATABASE_URL": f"sqlite:///{folder / 'passkey.sqlite3'}",
                "PASSKEY_RATE_LIMIT": "600 per minute",
                "SECRET_KEY": os.urandom(16).hex(),
                **config,
            },
            instance_path=folder / "instance",
        )
        threads.serve(server, app, name=origin)
        return DemoServer(app=app, url=origin)

    yield start
    threads.stop_all()


@pytest.fixture(scope="session")
def demo_server(demo_server_factory: ServerFactory) -> DemoServer:
    """One demo server for the session's browser tests (each test uses its own emails)."""
    return demo_server_factory()


# -- the browser ----------------------------------------------------------------------------


def _unavailable(reason: str) -> None:
    """Skip, or fail under CI=true, where the browser tests must run."""
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{reason} (CI=true: browser tests must run)", pytrace=False)
    pytest.skip(reason)


def _binary(env: str, *names: str) -> str | None:
    if os.environ.get(env):
        return shutil.which(os.environ[env])
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the session."""
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


@contextmanager
def chromium(profile: Path, hosts: Mapping[str, str] | None = None) -> Iterator[Any]:
    """A headless Chromium (CHROMIUM_FLAGS) with its profile in ``profile``, quit on the way
    out; skips (or fails under CI=true) without Chromium, chromedriver or Selenium.

    ``hosts`` maps names to the addresses of test servers, whose certificates come from a
    throwaway CA: Chromium resolves them so and ignores certificate errors.
    """
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed: pip install -e '.[dev]'")
    chromium = _binary("PASSKEY_TEST_CHROMIUM", "chromium", "chromium-browser")
    chromedriver = _binary("PASSKEY_TEST_CHROMEDRIVER", "chromedriver")
    missing = [
        name
        for name, path in (("chromium", chromium), ("chromedriver", chromedriver))
        if path is None
    ]
    if missing:
        _unavailable(
            f"{' and '.join(missing)} not found: apt-get install chromium chromium-driver "
            "to run the browser tests"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium  # type: ignore[assignment]
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    if hosts:
        rules = ", ".join(f"MAP {host} {address}" for host, address in hosts.items())
        options.add_argument(f"--host-resolver-rules={rules}")
        options.add_argument("--ignore-certificate-errors")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    try:
        driver.set_page_load_timeout(20)
        yield driver
    finally:
        driver.quit()


#: Injected before any page script: hides autofill (conditional mediation) so the explicit
#: button is what signs in. Chromium's virtual authenticator answers a conditional request at
#: once, without the user picking anything, which would sign in on page load.
NO_AUTOFILL = """
if (window.PublicKeyCredential) {
  Object.defineProperty(PublicKeyCredential, "isConditionalMediationAvailable", {
    value: async () => false, configurable: true,
  });
}
"""
#: Injected before a page's scripts: records each WebAuthn Signal API call in
#: ``window.__signals`` as ``[name, options]``, then makes it.
RECORD_SIGNALS = """
window.__signals = [];
for (const name of ["signalUnknownCredential", "signalAllAcceptedCredentials",
                    "signalCurrentUserDetails"]) {
  const original = window.PublicKeyCredential && PublicKeyCredential[name];
  if (typeof original !== "function") continue;
  Object.defineProperty(PublicKeyCredential, name, {
    configurable: true,
    value(options) {
      window.__signals.push([name, options]);
      return original.call(PublicKeyCredential, options);
    },
  });
}
"""

#: Injected to exercise the demo's by-hand base64url path of older browsers.
NO_JSON_HELPERS = """
if (window.PublicKeyCredential) {
  delete PublicKeyCredential.parseCreationOptionsFromJSON;
  delete PublicKeyCredential.parseRequestOptionsFromJSON;
  delete PublicKeyCredential.prototype.toJSON;
}
"""


class Page:
    """A test's view of the browser: the demo's URL, a virtual authenticator, helpers."""

    def __init__(self, driver: Any, server: DemoServer) -> None:
        self.driver = driver
        self.server = server
        self._scripts: list[str] = []

    # setup
    def add_authenticator(self, *, user_verified: bool = True) -> None:
        add_virtual_authenticator(self.driver, user_verified=user_verified)

    def inject(self, source: str) -> None:
        """Run ``source`` in every page from now on, before the page's own scripts."""
        answer = self.driver.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument", {"source": source}
        )
        self._scripts.append(answer["identifier"])

    def remove_injected_scripts(self) -> None:
        for identifier in self._scripts:
            self.driver.execute_cdp_cmd(
                "Page.removeScriptToEvaluateOnNewDocument", {"identifier": identifier}
            )
        self._scripts.clear()

    def clear_cookies(self) -> None:
        self.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})

    def cleanup(self) -> None:
        self.remove_injected_scripts()
        if self.driver.virtual_authenticator_id is not None:
            self.driver.remove_virtual_authenticator()
        self.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
        self.driver.get("about:blank")

    # navigation and reading
    def open(self, path: str) -> None:
        """Load a demo page and wait until its script has wired the buttons."""
        self.driver.get(self.server.url + path)
        self.wait_ready()

    def wait_ready(self) -> None:
        self.wait(
            lambda d: d.execute_script(
                "const page = document.body.dataset;"
                "return document.readyState === 'complete' &&"
                " (page.ready === 'true' || page.page === 'account')"
            )
        )

    def wait(self, condition: Callable[[Any], Any], timeout: float = 10) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(condition)

    def wait_for_path(self, path: str, timeout: float = 10) -> None:
        self.wait(lambda d: d.current_url.split("?")[0] == self.server.url + path, timeout)
        self.wait_ready()

    def find(self, element_id: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, element_id)

    def text(self, element_id: str) -> str:
        text: str = self.find(element_id).text
        return text

    def wait_for_message(self, timeout: float = 10) -> str:
        """The text of the page's error/notice box once it shows."""
        self.wait(lambda d: self.find("message").is_displayed(), timeout)
        return self.text("message")

    # flows
    def sign_up(self, email: str, name: str | None = None) -> None:
        self.open("/signup")
        self.find("email").send_keys(email)
        if name:
            self.find("name").send_keys(name)
        self.find("signup-button").click()

    def sign_out(self) -> None:
        self.find("signout-button").click()
        self.wait_for_path("/")


@pytest.fixture
def page(browser: Any, demo_server: DemoServer, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A clean browser (no cookies) with a fresh virtual authenticator, autofill hidden."""
    view = Page(browser, demo_server)
    view.add_authenticator()
    view.inject(NO_AUTOFILL)
    try:
        yield view
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            save_artifacts(browser, request.node.nodeid)
        view.cleanup()


def save_artifacts(driver: Any, nodeid: str) -> None:
    """A screenshot and the page source of a failed test, in test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")
    try:
        driver.save_screenshot(str(ARTIFACTS / f"{stem}.png"))
        (ARTIFACTS / f"{stem}.html").write_text(
            f"<!-- {driver.current_url} -->\n{driver.page_source}"
        )
    except Exception as error:  # the browser itself may be what failed
        (ARTIFACTS / f"{stem}.txt").write_text(f"could not capture the page: {error!r}\n")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, for the artifact capture above."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
