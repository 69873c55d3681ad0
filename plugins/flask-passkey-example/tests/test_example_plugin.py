"""The example plugin, loaded the way operators get it: through its entry point."""

from __future__ import annotations

import logging
import os
from importlib.metadata import entry_points

import pytest

from flask_passkey.errors import ConfigurationError
from tests.apps import make_app
from tests.support import passkey_flow

try:
    import flask_passkey_example
except ImportError:  # pragma: no cover - depends on the environment
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip(
        "flask-passkey-example is not installed: pip install -e plugins/flask-passkey-example",
        allow_module_level=True,
    )


def test_the_entry_point_registers_the_plugin() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="flask_passkey")}
    assert names.get("flask_passkey_example") == "flask_passkey_example:plugin"
    manager = make_app().extensions["passkey"].plugin_manager
    assert manager.get_plugin("flask_passkey_example") is flask_passkey_example.plugin


def test_an_app_that_sets_nothing_is_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="flask_passkey_example")
    app = make_app()
    assert app.config["PASSKEY_EXAMPLE_BLOCKED_DOMAINS"] == []
    assert app.config["PASSKEY_EXAMPLE_AUDIT_LOG"] is False
    passkey_flow(app).sign_up({"email": "ann@mailinator.com"})
    assert caplog.records == []


@pytest.mark.parametrize(
    "email", ["bot@mailinator.com", "Bot@MAILINATOR.com", "bot@eu.mailinator.com"]
)
def test_a_blocked_domain_or_subdomain_cannot_sign_up(email: str) -> None:
    app = make_app(example_blocked_domains=["Mailinator.com", "example.net"])
    answer = passkey_flow(app).register({"email": email})
    assert answer.status_code == 403
    body = answer.get_json()
    assert body.pop("request_id")
    assert body == {
        "error": "access_denied",
        "error_description": (
            f"Sign-ups with email addresses at {email.lower().rpartition('@')[2]} are not allowed."
        ),
    }
    assert app.extensions["passkey"].users.list_users() == []


@pytest.mark.parametrize("email", ["ann@example.com", "ann@notmailinator.com"])
def test_other_domains_sign_up_and_sign_in(email: str) -> None:
    app = make_app(example_blocked_domains="mailinator.com, @example.net")
    passkeys = passkey_flow(app)
    passkeys.sign_up({"email": email})
    passkeys.sign_in()  # login is never filtered: the blocklist is about sign-ups
    assert len(app.extensions["passkey"].users.list_users()) == 1


def test_the_built_in_realm_check_runs_first() -> None:
    app = make_app(example_blocked_domains=["mailinator.com"])
    answer = passkey_flow(app).register({"email": "bot@mailinator.com"}, realm="nope")
    assert answer.status_code == 400
    assert answer.get_json()["error"] == "invalid_request"


def test_the_audit_log_records_events_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="flask_passkey_example.audit")
    app = make_app(example_audit_log=True, example_blocked_domains=["mailinator.com"])
    passkeys = passkey_flow(app)
    tokens = passkeys.sign_up({"email": "ann@example.com"})
    passkeys.register({"email": "bot@mailinator.com"})

    audit = [r for r in caplog.records if r.name == "flask_passkey_example.audit"]
    lines = [record.getMessage() for record in audit]
    assert [line.split()[1] for line in lines] == [
        "challenge_issued",
        "signup_succeeded",
        "request_rejected",
    ]
    assert "client_id=spa" in lines[0] and "endpoint=" in lines[0]
    assert "user_id=passkey|" in lines[1]
    assert "error=access_denied" in lines[2]
    everything = "\n".join(lines)
    for secret in (tokens["access_token"], tokens["id_token"], tokens.get("refresh_token")):
        if secret:
            assert secret not in everything
    assert "ann@example.com" not in everything


def test_disabling_the_plugin_by_name() -> None:
    app = make_app(disabled_plugins=["flask_passkey_example"])
    assert app.extensions["passkey"].plugin_manager.get_plugin("flask_passkey_example") is None
    with pytest.raises(ConfigurationError, match="PASSKEY_EXAMPLE_BLOCKED_DOMAINS"):
        make_app(
            disabled_plugins=["flask_passkey_example"],
            example_blocked_domains=["mailinator.com"],
        )


def test_registered_by_path_without_entry_points() -> None:
    app = make_app(
        load_entry_points=False,
        plugins=["flask_passkey_example:plugin"],
        example_blocked_domains=["mailinator.com"],
    )
    assert passkey_flow(app).register({"email": "bot@mailinator.com"}).status_code == 403
