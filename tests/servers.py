"""Run WSGI test servers in daemon threads and stop them all at the end of a session."""

from __future__ import annotations

import threading

from werkzeug.serving import BaseWSGIServer


class ServerThreads:
    """The servers a session fixture started; ``stop_all`` shuts each down and joins it."""

    def __init__(self) -> None:
        self._started: list[tuple[BaseWSGIServer, threading.Thread]] = []

    def serve(self, server: BaseWSGIServer, *, name: str) -> None:
        """Serve ``server`` forever in a daemon thread called ``name``."""
        thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
        thread.start()
        self._started.append((server, thread))

    def stop_all(self) -> None:
        for server, thread in self._started:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
