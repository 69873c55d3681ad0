"""Starting the app: with its database down, and several workers at once on a new database.

The outages are real: PostgreSQL is reached through a forwarder the test controls (refusing
connections, then forwarding to the real server), a SQLite file sits in a folder that is not
there yet. Workers are real processes, each building the app, all released at the same instant.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import URL

from flask_passkey.core.tokens import generate_signing_key
from flask_passkey.stores.migrations import HEAD
from flask_passkey.stores.sql import database_revision, upgrade_database
from tests import ROOT
from tests.apps import CUSTOM_DOMAIN, USERINFO, make_app
from tests.databases import PostgresSchemas, url_text
from tests.support import assert_oauth_error, new_email, passkey_flow, post_challenge, verify_jwt
from tests.tcp_proxy import TcpProxy

JWKS = f"https://{CUSTOM_DOMAIN}/.well-known/jwks.json"


# -- the database down at start ---------------------------------------------------------------


def assert_unavailable_then_serving(
    app: Flask, bring_the_database_up: Callable[[], object]
) -> None:
    """Requests get 503 JSON while the database is down; after ``bring_the_database_up()``
    the same app (no restart) publishes its keys and signs a user up and in."""
    client = app.test_client()
    assert_oauth_error(client.get(JWKS), 503, "temporarily_unavailable")  # the keys need it
    assert_oauth_error(post_challenge(client), 503, "temporarily_unavailable")

    bring_the_database_up()

    response = client.get(JWKS)
    assert response.status_code == 200, response.get_data(as_text=True)
    [key] = response.get_json()["keys"]  # generated now, on first use
    flow = passkey_flow(app)
    tokens = flow.sign_up({"email": new_email()})
    assert verify_jwt(flow.client, tokens["id_token"], audience="spa")["sub"]
    assert flow.sign_in()["access_token"]
    assert key["kid"] in {k["kid"] for k in client.get(JWKS).get_json()["keys"]}


@pytest.mark.postgres
def test_an_app_started_while_postgresql_is_down_serves_once_it_is_up(
    postgres_schemas: PostgresSchemas, caplog: pytest.LogCaptureFixture
) -> None:
    url = postgres_schemas.new_url()
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)  # refusing: not started
    through_proxy = url_text(url.set(host="127.0.0.1", port=proxy.port))

    app = make_app(database_url=through_proxy, signing_keys=[])  # generated keys: the default

    assert "the schema will be brought up to date on first use" in caplog.text
    assert database_revision(url) is None
    try:
        assert_unavailable_then_serving(app, proxy.start)
        assert database_revision(url) == HEAD
    finally:
        proxy.stop()
        app.extensions["passkey"].users.close()


def test_an_app_started_before_its_sqlite_folder_exists_serves_once_it_does(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "volume"  # not mounted yet
    database = folder / "passkey.sqlite3"

    app = make_app(database_url=f"sqlite:///{database}", signing_keys=[])

    assert_unavailable_then_serving(app, folder.mkdir)
    assert database_revision(f"sqlite:///{database}") == HEAD
    app.extensions["passkey"].users.close()


# -- several workers starting at once ---------------------------------------------------------

#: One worker: imports everything, says it is ready, waits for the go, builds the app (which
#: migrates) and serves the JWKS (which generates a first key if none is there), logging INFO.
WORKER = """
import logging, os, sys, time
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
from tests.apps import CUSTOM_DOMAIN, make_app
url, ready, go = sys.argv[1:4]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
app = make_app(database_url=url, signing_keys=[])
response = app.test_client().get("/.well-known/jwks.json", base_url=f"https://{CUSTOM_DOMAIN}")
print(response.status_code)
"""
WORKERS = 4
PATIENCE = 60.0


def start_workers(
    url: str, folder: Path, count: int, worker: str = WORKER
) -> list[subprocess.CompletedProcess[str]]:
    """``count`` worker processes running ``worker`` on ``url``, released together."""
    go = folder / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", worker, url, str(folder / f"ready-{n}"), str(go)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(count)
    ]
    deadline = time.monotonic() + PATIENCE
    while not all((folder / f"ready-{n}").exists() for n in range(count)):
        assert time.monotonic() < deadline, "the workers did not get ready"
        assert all(p.poll() is None for p in processes), [p.communicate() for p in processes]
        time.sleep(0.01)
    go.touch()
    finished = []
    for process in processes:
        out, err = process.communicate(timeout=PATIENCE)
        finished.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return finished


def version_rows(url: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        rows = list(connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())
    engine.dispose()
    return rows


def assert_migrated_once_then_silent(url: str, folder: Path) -> None:
    workers = start_workers(url, folder, WORKERS)

    for worker in workers:
        assert worker.returncode == 0, worker.stderr
        assert worker.stdout == "200\n", worker.stdout + worker.stderr
        for word in ("Traceback", "ERROR", "WARNING"):
            assert word not in worker.stderr, worker.stderr
    migrated = [w for w in workers if "Upgraded the database schema" in w.stderr]
    assert len(migrated) == 1, [w.stderr for w in workers]
    assert f"from revision none to {HEAD}." in migrated[0].stderr
    # Those that found the work done did not even import Alembic.
    assert ["alembic" in w.stderr for w in workers].count(True) == 1
    assert version_rows(url) == [HEAD]

    (restart,) = start_workers(url, folder / "restart", 1)
    assert restart.returncode == 0 and restart.stdout == "200\n", restart.stderr
    assert restart.stderr == ""  # nothing to migrate: not a line logged, Alembic's or ours


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_starting_at_once_on_a_new_postgresql_schema_migrate_it_once(
    postgres_schemas: PostgresSchemas, tmp_path: Path
) -> None:
    url: URL = postgres_schemas.new_url()
    (tmp_path / "restart").mkdir()
    assert_migrated_once_then_silent(url_text(url), tmp_path)


@pytest.mark.slow
def test_workers_starting_at_once_on_a_new_sqlite_file_migrate_it_once(tmp_path: Path) -> None:
    (tmp_path / "restart").mkdir()
    url = f"sqlite:///{tmp_path / 'passkey.sqlite3'}"
    assert_migrated_once_then_silent(url, tmp_path)


# -- several workers needing the first signing key at once -----------------------------------

#: One worker: builds the app on a migrated database, says it is ready, waits for the go, then
#: serves the JWKS (which needs a signing key: none is stored yet) and prints its kids.
KEY_WORKER = """
import json, os, sys, time
from tests.apps import CUSTOM_DOMAIN, make_app
url, ready, go = sys.argv[1:4]
client = make_app(database_url=url, signing_keys=[]).test_client()
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
response = client.get("/.well-known/jwks.json", base_url=f"https://{CUSTOM_DOMAIN}")
print(response.status_code, json.dumps([key["kid"] for key in response.get_json()["keys"]]))
"""


def assert_one_signing_key_created(url: str, folder: Path) -> None:
    upgrade_database(url)

    workers = start_workers(url, folder, WORKERS, KEY_WORKER)

    for worker in workers:
        assert worker.returncode == 0, worker.stderr
        assert "Traceback" not in worker.stderr, worker.stderr
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        stored = list(connection.exec_driver_sql("SELECT kid FROM signing_keys").scalars())
    engine.dispose()
    assert len(stored) == 1, stored
    assert {worker.stdout for worker in workers} == {f'200 ["{stored[0]}"]\n'}


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_needing_the_first_key_at_once_on_postgresql_create_one(
    postgres_schemas: PostgresSchemas, tmp_path: Path
) -> None:
    assert_one_signing_key_created(url_text(postgres_schemas.new_url()), tmp_path)


@pytest.mark.slow
def test_workers_needing_the_first_key_at_once_on_sqlite_create_one(tmp_path: Path) -> None:
    assert_one_signing_key_created(f"sqlite:///{tmp_path / 'passkey.sqlite3'}", tmp_path)


def test_a_token_signed_with_a_key_another_worker_just_added_verifies_here(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'passkey.sqlite3'}"
    here, there = (make_app(database_url=url, signing_keys=[]) for _ in range(2))
    assert here.test_client().get(JWKS).status_code == 200  # its key ring is read: one key
    there.extensions["passkey"].users.add_signing_key(generate_signing_key(now=time.time()))
    tokens = passkey_flow(there).sign_up({"email": new_email()}, audience=USERINFO)

    response = here.test_client().get(
        "/userinfo",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        base_url=f"https://{CUSTOM_DOMAIN}",
    )

    assert response.status_code == 200, response.get_json()
    assert len(here.test_client().get(JWKS).get_json()["keys"]) == 2
