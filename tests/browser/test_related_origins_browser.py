"""WebAuthn Related Origin Requests in Chromium: examples/spa on a second registrable domain
(``https://shop.example.test``) makes and uses passkeys for the RP ID ``acme.test``, because
``https://acme.test/.well-known/webauthn`` lists its origin; the same page on another domain the
file does not list is refused by the browser.

Chromium fetches the file from the RP ID's host on the default port, so the API (custom domains
``login.acme.test`` and ``acme.test``) listens on port 443 of a loopback address of its own
(``127.x.y.z``: tests need root for that, or they skip); the pages are on free ports of
127.0.0.1. Names map to the addresses with ``--host-resolver-rules``; certificates come from a
throwaway CA (trustme) and Chromium ignores certificate errors.
"""

from __future__ import annotations

import random
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import trustme
from flask import Flask

from tests.examples import load_spa_serve
from tests.node_projects import npm_installed
from tests.servers import BoundServer, ServerThreads, server_tls
from tests.support import find_user, new_email

from .conftest import chromium
from .test_spa_browser import SPA, SpaPage

pytestmark = pytest.mark.browser

RP_ID, API_HOST = "acme.test", "login.acme.test"
SHOP_HOST, OUTLET_HOST = "shop.example.test", "outlet.example.net"


@dataclass
class RelatedServers:
    api: Flask
    api_ip: str
    api_domain: str
    app_origin: str  # the shop: listed in related_origins
    stranger_origin: str  # the outlet: a client origin, not a related origin

    def find_user(self, email: str) -> Any:
        return find_user(self.api, email)


def _bind_https_port(threads: ServerThreads, tls: ssl.SSLContext) -> BoundServer:
    """Port 443 of a loopback address no one else uses (the RP ID host's default port)."""
    for _ in range(20):
        address = f"127.{random.randint(1, 254)}.{random.randint(0, 254)}.{random.randint(1, 254)}"
        try:
            return threads.bind(address, 443, ssl_context=tls)
        except PermissionError:
            pytest.skip("binding port 443 needs root (or CAP_NET_BIND_SERVICE)")
        except OSError:
            continue
    pytest.skip("no free loopback address for port 443")


@pytest.fixture(scope="module")
def related_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelatedServers]:
    npm_installed(SPA, "@auth0/auth0-spa-js")
    serve = load_spa_serve()
    tls = server_tls(trustme.CA(), RP_ID, API_HOST, SHOP_HOST, OUTLET_HOST)
    threads = ServerThreads()
    api, pages = _bind_https_port(threads, tls), threads.bind("127.0.0.1", ssl_context=tls)
    shop, outlet = f"https://{SHOP_HOST}:{pages.port}", f"https://{OUTLET_HOST}:{pages.port}"
    api_app = serve.create_api_app(
        api_domain=API_HOST,
        rp_id=RP_ID,
        app_origins=[shop, outlet],
        related_origins=[shop],
        instance=tmp_path_factory.mktemp("related-api"),
        rate_limit="600 per minute",
    )
    threads.serve(api, api_app, name=f"{API_HOST}@{api.host}")
    threads.serve(pages, serve.create_spa_app(api_domain=API_HOST), name=shop)
    yield RelatedServers(api_app, api.host, API_HOST, shop, outlet)
    threads.stop_all()


@pytest.fixture(scope="module")
def related_browser(
    related_servers: RelatedServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    hosts = {
        **dict.fromkeys((RP_ID, API_HOST), related_servers.api_ip),
        **dict.fromkeys((SHOP_HOST, OUTLET_HOST), "127.0.0.1"),
    }
    with chromium(tmp_path_factory.mktemp("related-chromium"), hosts) as driver:
        yield driver


@pytest.fixture
def shop(
    related_browser: Any, related_servers: RelatedServers, request: pytest.FixtureRequest
) -> Iterator[SpaPage]:
    page = SpaPage(related_browser, related_servers)  # type: ignore[arg-type]
    page.add_authenticator()
    try:
        yield page
    finally:
        page.finish(request)
        related_browser.get("about:blank")


def test_a_page_on_a_related_origin_signs_up_and_in_with_the_rp_id(shop: SpaPage) -> None:
    servers: RelatedServers = shop.servers  # type: ignore[assignment]
    shop.open(servers.app_origin)
    email = new_email("related")

    shop.sign_up(email)
    sub = shop.text("claim-sub")
    shop.click("signout-button")
    shop.sign_in()

    assert shop.text("claim-sub") == sub == servers.find_user(email).id
    [credential] = shop.driver.get_credentials()
    assert credential.rp_id == RP_ID
    [stored] = servers.api.extensions["passkey"].users.list_credentials(sub)
    assert stored.rp_id == RP_ID


def test_a_page_the_well_known_file_does_not_list_cannot_use_the_rp_id(shop: SpaPage) -> None:
    servers: RelatedServers = shop.servers  # type: ignore[assignment]
    shop.open(servers.stranger_origin)
    email = new_email("unrelated")

    shop.find("email").send_keys(email)
    shop.click("signup-button")

    assert shop.state() == "signed-out"
    assert shop.find("message").get_attribute("data-error-name") == "SecurityError"
    assert shop.driver.get_credentials() == []
    assert servers.find_user(email) is None
