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
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import trustme
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from tests.node_projects import npm_installed

from .conftest import launch_chromium
from .test_spa_browser import SPA, SpaPage, load_serve, new_email

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
        users = self.api.extensions["passkey"].users
        return users.find_user(
            connection="Username-Password-Authentication", kind="email", value=email
        )


def _serve(host: str, port: int, holder: dict[str, Flask], tls: ssl.SSLContext) -> BaseWSGIServer:
    return make_server(
        host,
        port,
        lambda environ, respond: holder["app"](environ, respond),
        threaded=True,
        ssl_context=tls,
    )


def _bind_https_port(holder: dict[str, Flask], tls: ssl.SSLContext) -> BaseWSGIServer:
    """Port 443 of a loopback address no one else uses (the RP ID host's default port)."""
    for _ in range(20):
        address = f"127.{random.randint(1, 254)}.{random.randint(0, 254)}.{random.randint(1, 254)}"
        try:
            return _serve(address, 443, holder, tls)
        except PermissionError:
            pytest.skip("binding port 443 needs root (or CAP_NET_BIND_SERVICE)")
        except OSError:
            continue
    pytest.skip("no free loopback address for port 443")


@pytest.fixture(scope="module")
def related_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelatedServers]:
    npm_installed(SPA, "@auth0/auth0-spa-js")
    serve = load_serve()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert(RP_ID, API_HOST, SHOP_HOST, OUTLET_HOST).configure_cert(tls)
    api: dict[str, Flask] = {}
    pages: dict[str, Flask] = {}
    servers = [_bind_https_port(api, tls), _serve("127.0.0.1", 0, pages, tls)]
    api_ip = servers[0].server_address[0]
    port = servers[1].server_port
    shop, outlet = f"https://{SHOP_HOST}:{port}", f"https://{OUTLET_HOST}:{port}"
    api["app"] = serve.create_api_app(
        api_domain=API_HOST,
        rp_id=RP_ID,
        app_origins=[shop, outlet],
        related_origins=[shop],
        instance=tmp_path_factory.mktemp("related-api"),
        rate_limit="600 per minute",
    )
    pages["app"] = serve.create_spa_app(api_domain=API_HOST)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    yield RelatedServers(api["app"], str(api_ip), API_HOST, shop, outlet)
    for server, thread in zip(servers, threads, strict=True):
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def related_browser(
    related_servers: RelatedServers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    rules = ", ".join(
        [
            *(f"MAP {host} {related_servers.api_ip}" for host in (RP_ID, API_HOST)),
            *(f"MAP {host} 127.0.0.1" for host in (SHOP_HOST, OUTLET_HOST)),
        ]
    )
    driver = launch_chromium(
        tmp_path_factory.mktemp("related-chromium"),
        f"--host-resolver-rules={rules}",
        "--ignore-certificate-errors",
    )
    try:
        yield driver
    finally:
        driver.quit()


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
