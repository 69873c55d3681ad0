"""Test servers: free ports, TLS from a throwaway CA, and WSGI servers in daemon threads that
a session or module fixture stops together at its end."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

if TYPE_CHECKING:
    import trustme


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port of ``host`` that nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def server_tls(ca: trustme.CA, *hosts: str) -> ssl.SSLContext:
    """A server's TLS context with a certificate of ``ca`` for ``hosts``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*hosts).configure_cert(context)
    return context


class BoundServer:
    """A threaded WSGI server bound before its app exists, so that the app can be built for
    the port the OS picked (an origin, a tenant's domain naming it)."""

    def __init__(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> None:
        self.app: Flask | None = None
        self.server: BaseWSGIServer = make_server(
            host, port, self._call, threaded=True, ssl_context=ssl_context
        )

    @property
    def host(self) -> str:
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        return self.server.server_port

    def _call(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self.app is not None, "a request came before the app was set"
        return self.app(environ, start_response)


class ServerThreads:
    """The servers a fixture bound; ``stop_all`` shuts down the serving ones and closes all."""

    def __init__(self) -> None:
        self._bound: list[BoundServer] = []
        self._serving: list[tuple[BoundServer, threading.Thread]] = []

    def bind(
        self, host: str, port: int = 0, *, ssl_context: ssl.SSLContext | None = None
    ) -> BoundServer:
        """A server on ``host``:``port`` (0: a free one), not serving yet."""
        bound = BoundServer(host, port, ssl_context)
        self._bound.append(bound)
        return bound

    def serve(self, bound: BoundServer, app: Flask, *, name: str) -> None:
        """Serve ``app`` on ``bound`` forever, in a daemon thread called ``name``."""
        bound.app = app
        thread = threading.Thread(target=bound.server.serve_forever, name=name, daemon=True)
        thread.start()
        self._serving.append((bound, thread))

    def stop_all(self) -> None:
        for bound, thread in self._serving:
            bound.server.shutdown()
            thread.join(timeout=5)
        for bound in self._bound:
            bound.server.server_close()
        self._bound.clear()
        self._serving.clear()
