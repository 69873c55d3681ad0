"""Plugin loading (PASSKEY_PLUGINS, entry points, blocking), config defaults, and events."""

from __future__ import annotations

import dataclasses
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, current_app, request

import flask_passkey
from flask_passkey import ConfigurationError, PasskeyError
from tests.apps import CONFIDENTIAL_SECRET, DB_CONNECTION, make_app
from tests.events import Recorder as EventRecorder
from tests.support import post_challenge, stable_error

REFUSING_MODULE = """
import flask_passkey

class Refused(flask_passkey.PasskeyError):
    error = "{code}"
    status = 403

class Plugin:
    @flask_passkey.hookimpl
    def passkey_check_first_party(self, context):
        raise Refused("{code}")

plugin = Plugin()

@flask_passkey.hookimpl
def passkey_check_grant_type(context):
    raise Refused("{code} (module)")
"""

BROKEN_MODULE = "raise ImportError('this plugin is broken')\n"


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Write an importable module with the given source; returns its (unique) name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names: list[str] = []

    def write(source: str) -> str:
        name = f"passkey_test_plugin_{uuid.uuid4().hex}"
        (tmp_path / f"{name}.py").write_text(source)
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


@pytest.fixture
def fake_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], None]]:
    """Install (on sys.path) a distribution 'fakeplugin' with an entry point in 'flask_passkey'.

    Call it with the source of the module the entry point names.
    """
    site = tmp_path / "site"
    site.mkdir()
    module = f"fakeplugin_{uuid.uuid4().hex}"

    def install(source: str) -> None:
        dist_info = site / "fakeplugin-1.0.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: fakeplugin\nVersion: 1.0\n"
        )
        (dist_info / "entry_points.txt").write_text(
            f"[flask_passkey]\nfakeplugin = {module}:plugin\n"
        )
        (site / f"{module}.py").write_text(source)
        monkeypatch.syspath_prepend(str(site))

    yield install
    sys.modules.pop(module, None)


# -- PASSKEY_PLUGINS ---------------------------------------------------------------------------


def test_plugin_named_by_module_and_attribute_is_loaded(
    write_module: Callable[[str], str],
) -> None:
    name = write_module(REFUSING_MODULE.format(code="dotted_attr"))
    client = make_app(plugins=[f"{name}:plugin"]).test_client()

    response = post_challenge(client)

    assert response.status_code == 403
    assert stable_error(response) == {"error": "dotted_attr", "error_description": "dotted_attr"}


def test_plugin_named_by_module_alone_uses_its_module_level_hooks(
    write_module: Callable[[str], str],
) -> None:
    name = write_module(REFUSING_MODULE.format(code="whole_module"))
    client = make_app(plugins=[name]).test_client()

    response = post_challenge(client)

    assert response.status_code == 403
    assert response.get_json()["error_description"] == "whole_module (module)"


def test_plugin_named_by_dotted_path_can_be_blocked_by_that_path(
    write_module: Callable[[str], str],
) -> None:
    name = write_module(REFUSING_MODULE.format(code="blocked"))
    spec = f"{name}:plugin"

    client = make_app(plugins=[spec], disabled_plugins=[spec]).test_client()

    assert post_challenge(client).status_code == 200


@pytest.mark.parametrize(
    "spec",
    ["no_such_module_for_passkey_tests:plugin", "flask_passkey:no_such_attribute"],
)
def test_plugin_path_that_cannot_be_imported_is_a_configuration_error(spec: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(spec)):
        make_app(plugins=[spec])


def test_plugin_module_that_fails_to_import_is_a_configuration_error(
    write_module: Callable[[str], str],
) -> None:
    name = write_module(BROKEN_MODULE)

    with pytest.raises(ConfigurationError, match="this plugin is broken"):
        make_app(plugins=[name])


# -- entry points ------------------------------------------------------------------------------


def test_entry_point_plugin_is_loaded(fake_distribution: Callable[[str], None]) -> None:
    fake_distribution(REFUSING_MODULE.format(code="from_entry_point"))

    response = post_challenge(make_app().test_client())

    assert response.status_code == 403
    assert response.get_json()["error"] == "from_entry_point"


def test_entry_point_plugin_can_be_blocked_by_its_name(
    fake_distribution: Callable[[str], None],
) -> None:
    fake_distribution(REFUSING_MODULE.format(code="from_entry_point"))

    client = make_app(disabled_plugins=["fakeplugin"]).test_client()

    assert post_challenge(client).status_code == 200


def test_entry_points_are_skipped_when_loading_them_is_off(
    fake_distribution: Callable[[str], None],
) -> None:
    fake_distribution(REFUSING_MODULE.format(code="from_entry_point"))

    client = make_app(load_entry_points=False).test_client()

    assert post_challenge(client).status_code == 200


def test_entry_point_that_fails_to_import_is_a_configuration_error(
    fake_distribution: Callable[[str], None],
) -> None:
    fake_distribution(BROKEN_MODULE)

    with pytest.raises(ConfigurationError, match="this plugin is broken"):
        make_app()


def test_broken_entry_point_can_be_blocked_by_its_name(
    fake_distribution: Callable[[str], None],
) -> None:
    fake_distribution(BROKEN_MODULE)

    client = make_app(disabled_plugins=["fakeplugin"]).test_client()

    assert post_challenge(client).status_code == 200


# -- PASSKEY_DISABLED_PLUGINS ------------------------------------------------------------------


@pytest.mark.parametrize("typo", ["first-party", "firstparty", "First_Party", "realms"])
def test_misspelled_disabled_plugin_is_a_configuration_error(typo: str) -> None:
    with pytest.raises(ConfigurationError, match=typo):
        make_app(disabled_plugins=[typo])


def test_blocking_the_session_store_without_replacement_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="store"):
        make_app(disabled_plugins=["memory_session_store"])


# -- passkey_config_defaults -------------------------------------------------------------------


class AuditPlugin:
    """Declares PASSKEY_AUDIT_TAG and refuses clients listed in PASSKEY_AUDIT_BLOCKED."""

    @flask_passkey.hookimpl
    def passkey_config_defaults(self) -> dict[str, Any]:
        return {"PASSKEY_AUDIT_TAG": "default-tag", "PASSKEY_AUDIT_BLOCKED": []}

    @flask_passkey.hookimpl
    def passkey_check_first_party(self, context: Any) -> None:
        if context.client_id in current_app.config["PASSKEY_AUDIT_BLOCKED"]:
            raise PasskeyError("blocked by the audit plugin")


def test_plugin_config_defaults_are_set_in_app_config() -> None:
    app = make_app(plugins=[AuditPlugin()])

    assert app.config["PASSKEY_AUDIT_TAG"] == "default-tag"
    assert app.config["PASSKEY_AUDIT_BLOCKED"] == []


def test_plugin_declared_key_set_by_the_operator_is_accepted_and_kept() -> None:
    app = make_app(plugins=[AuditPlugin()], audit_blocked=["spa"])

    assert app.config["PASSKEY_AUDIT_BLOCKED"] == ["spa"]
    assert post_challenge(app.test_client()).status_code == 400
    assert post_challenge(app.test_client(), {"client_id": "org-allowed"}).status_code == 200


def test_plugin_key_without_the_plugin_is_an_unknown_key() -> None:
    with pytest.raises(ConfigurationError, match="PASSKEY_AUDIT_BLOCKED"):
        make_app(audit_blocked=["spa"])


# -- passkey_init_app --------------------------------------------------------------------------


class RequestCounter:
    """Serves /requests: how many requests each of flask-passkey's blueprints has answered."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    @flask_passkey.hookimpl
    def passkey_init_app(self, app: Flask, blueprints: tuple[str, ...]) -> None:
        assert "passkey" in app.extensions  # the state is there already

        @app.after_request
        def count(response: Response) -> Response:
            if request.blueprint in blueprints:
                self.counts[request.blueprint] = self.counts.get(request.blueprint, 0) + 1
            return response

        app.add_url_rule("/requests", "requests", lambda: self.counts)


def test_a_plugin_adds_to_the_app_and_tells_passkey_requests_from_the_app_s() -> None:
    counter = RequestCounter()
    app = make_app(plugins=[counter])
    app.add_url_rule("/home", "home", lambda: "home")
    client = app.test_client()

    post_challenge(client)
    post_challenge(client, {"client_id": "nobody"})
    client.get("/home")

    assert client.get("/requests").get_json() == {"passkey": 2}


# -- passkey_event -----------------------------------------------------------------------------


@pytest.fixture
def recorder() -> EventRecorder:
    return EventRecorder()


def test_issued_challenge_is_reported(recorder: EventRecorder) -> None:
    client = make_app(plugins=[recorder]).test_client()

    post_challenge(client, {"client_id": "confidential", "client_secret": CONFIDENTIAL_SECRET})

    assert recorder.names() == ["challenge_issued"]
    event = recorder.events[0]
    assert (event.client_id, event.connection, event.organization_id) == (
        "confidential",
        DB_CONNECTION,
        None,
    )
    assert event.client_ip == "127.0.0.1"


def test_rejected_request_is_reported_with_its_error_code(recorder: EventRecorder) -> None:
    client = make_app(plugins=[recorder]).test_client()

    post_challenge(client, {"client_id": "confidential", "client_secret": "wrong-secret-42"})
    post_challenge(client, {"client_id": "third-party"})

    assert recorder.names() == ["request_rejected", "request_rejected"]
    assert [event.error for event in recorder.events] == ["invalid_client", "unauthorized_client"]


def test_rate_limited_request_is_reported(recorder: EventRecorder) -> None:
    client = make_app(plugins=[recorder], rate_limit="1 per hour").test_client()

    post_challenge(client)
    post_challenge(client)

    assert recorder.names() == ["challenge_issued", "rate_limited"]
    assert recorder.events[1].error == "too_many_requests"


def test_events_never_carry_the_client_secret(recorder: EventRecorder) -> None:
    client = make_app(plugins=[recorder], rate_limit="3 per hour").test_client()
    good = {"client_id": "confidential", "client_secret": CONFIDENTIAL_SECRET}
    wrong = {"client_id": "confidential", "client_secret": "wrong-secret-42"}
    too_long = {"client_id": "confidential", "client_secret": "L" * 2000}

    for body in (good, wrong, too_long, good):
        post_challenge(client, body)

    assert recorder.names() == [
        "challenge_issued",
        "request_rejected",
        "request_rejected",
        "rate_limited",
    ]
    dumped = repr([dataclasses.asdict(event) for event in recorder.events])
    for secret in (CONFIDENTIAL_SECRET, "wrong-secret-42", "L" * 100):
        assert secret not in dumped


def test_events_name_the_same_endpoint_whatever_the_outcome(recorder: EventRecorder) -> None:
    client = make_app(plugins=[recorder]).test_client()

    post_challenge(client)
    post_challenge(client, {"client_id": "third-party"})

    assert recorder.names() == ["challenge_issued", "request_rejected"]
    assert recorder.events[0].endpoint == recorder.events[1].endpoint
