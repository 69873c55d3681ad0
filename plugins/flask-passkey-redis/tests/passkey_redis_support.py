"""Helpers for the plugin's tests: throwaway Redis servers and app server processes, and an
HTTP client that :class:`flask_passkey.testing.PasskeyFlow` can drive. The apps are those of
:func:`tests.apps.make_app`, over the suite's test tenant.

The module name is unique on purpose: pytest puts this directory on ``sys.path`` beside the
root ``tests/`` directory, so a plain ``helpers.py`` or ``conftest`` import could resolve to the
wrong file.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import redis
from flask import Flask
from flask.testing import FlaskClient
from tests.apps import CUSTOM_DOMAIN
from tests.databases import backend_missing
from tests.servers import free_port

from tests import ROOT

#: Where flask-passkey's limiter keeps a client's counters in Redis (``limits``' prefix
#: ``LIMITS``, flask-limiter's ``LIMITER``, the core's ``passkey``), before ``<ip>/<endpoint>/``.
LIMITER_KEYS = "LIMITS:LIMITER/passkey/"
SERVER_SCRIPT = Path(__file__).with_name("passkey_redis_server.py")
#: Upper bound for anything that waits on a process (start, stop, one HTTP request).
PROCESS_TIMEOUT = 20.0


def client_from(app: Flask, client_ip: str) -> FlaskClient:
    """A test client whose requests come from ``client_ip``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = client_ip
    return client


def free_cluster_port() -> int:
    """A free port for a cluster node, whose bus listens on port + 10000 (so below 55536)."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class RedisServer:
    """A throwaway ``redis-server`` on a loopback port that keeps nothing on disk; it can be
    killed and started again on the same port.

    ``args`` replace the default arguments (no RDB, no AOF), e.g. for a cluster node or a
    sentinel; the port, the loopback bind and the log level are always added.
    """

    DEFAULT_ARGS = ("--save", "", "--appendonly", "no")

    def __init__(self, port: int, *, args: Sequence[str] = DEFAULT_ARGS) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            backend_missing("redis-server is not installed (apt-get install redis-server)")
        self.command = [binary, *args, "--port", str(port), "--bind", "127.0.0.1"]
        self.command += ["--daemonize", "no", "--loglevel", "warning"]
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with tempfile.TemporaryFile() as output:
            self.process = subprocess.Popen(self.command, stdout=output, stderr=output)
            self._wait_ready(output)

    def _wait_ready(self, output: IO[bytes]) -> None:
        assert self.process is not None
        client = self.client()
        deadline = time.monotonic() + PROCESS_TIMEOUT
        try:
            while True:
                if self.process.poll() is not None:
                    output.seek(0)
                    raise RuntimeError(
                        f"redis-server on port {self.port} exited at start: "
                        + output.read().decode(errors="replace")
                    )
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def client(self) -> redis.Redis:
        """A plain client of this server (not cluster-aware)."""
        return redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL: no goodbye to the clients)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(PROCESS_TIMEOUT)
        self.process = None


@contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A :class:`RedisServer` of the test's own on a free port, killed on the way out."""
    server = RedisServer(free_port())
    try:
        server.start()
        yield server
    finally:
        server.kill()


def wait_until(ready: Callable[[], bool], what: str) -> None:
    """Poll ``ready`` (Redis errors count as not yet) until it is true or time runs out."""
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while True:
        try:
            if ready():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.05)


@dataclass
class HttpResponse:
    status_code: int
    headers: http.client.HTTPMessage
    body: bytes
    port: int

    def get_json(self) -> Any:
        return json.loads(self.body)


class HttpClient:
    """Posts JSON to a list of app servers in turn (request 1 to the first, 2 to the second...),
    like a load balancer; duck-types the part of Flask's test client that PasskeyFlow uses."""

    def __init__(self, ports: Sequence[int], *, forwarded_for: str | None = None) -> None:
        self.ports = list(ports)
        self.forwarded_for = forwarded_for
        self.sent = 0

    def post(self, path: str, *, json: Any, headers: dict[str, str] | None = None) -> HttpResponse:
        port = self.ports[self.sent % len(self.ports)]
        self.sent += 1
        return self.post_to(port, path, json=json, headers=headers)

    def post_to(
        self, port: int, path: str, *, json: Any, headers: dict[str, str] | None = None
    ) -> HttpResponse:
        all_headers = {"Host": CUSTOM_DOMAIN, "Content-Type": "application/json"}
        if self.forwarded_for is not None:
            all_headers["X-Forwarded-For"] = self.forwarded_for
        all_headers.update(headers or {})
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=PROCESS_TIMEOUT)
        try:
            connection.request("POST", path, body=_dumps(json), headers=all_headers)
            response = connection.getresponse()
            return HttpResponse(response.status, response.headers, response.read(), port)
        finally:
            connection.close()


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


class AppServer:
    """``passkey_redis_server.py`` in a subprocess: a real HTTP server (werkzeug, threaded) with
    the config given as JSON in the environment. ``port`` is known once it has started."""

    def __init__(self, config: dict[str, Any], log: Path) -> None:
        self.config = config
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        env = {
            **os.environ,
            "PASSKEY_REDIS_TEST_APP_CONFIG": json.dumps(self.config),
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(SERVER_SCRIPT)], stdout=subprocess.PIPE, stderr=log, env=env
            )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], PROCESS_TIMEOUT)
        line = self.process.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the app server did not start:\n{self.log.read_text()}")
        self.port = int(line)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(PROCESS_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(PROCESS_TIMEOUT)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None
