"""Each validation step is a named plugin: it can be blocked, and operators can add their own."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

import flask_passkey
from flask_passkey import PasskeyError
from flask_passkey.builtins.validation_steps import STEPS
from tests.apps import CUSTOM_DOMAIN, DEFAULT_DOMAIN, make_app, tenant_data
from tests.support import post_challenge, stable_error


class OperatorRejected(PasskeyError):
    """An operator's own error: its code and status are not among the built-in ones."""

    error = "operator_rejected"
    status = 403


#: The two steps that run before the body is read see the request, not a context.
REQUEST_HOOKS = ("passkey_check_passkeys_enabled", "passkey_check_custom_domain")


def rejecting_plugin(hook: str) -> object:
    """A plugin whose implementation of ``hook`` rejects every request."""
    if hook in REQUEST_HOOKS:

        def impl(self: object, request: Any) -> None:
            raise OperatorRejected(f"{hook} says no to {request.host}")

    else:

        def impl(self: object, context: Any) -> None:
            raise OperatorRejected(f"{hook} says no to {context.client_id}")

    return type("Rejecting", (), {hook: flask_passkey.hookimpl(impl)})()


def operator_module_source(hooks: list[str]) -> str:
    """Source of a module for PASSKEY_PLUGINS dotted paths: a rejecting plugin per hook."""
    parts = [
        "import flask_passkey",
        "",
        "class OperatorRejected(flask_passkey.PasskeyError):",
        '    error = "operator_rejected"',
        "    status = 403",
    ]
    for hook in hooks:
        arg, subject = (
            ("request", "request.host")
            if hook in REQUEST_HOOKS
            else ("context", "context.client_id")
        )
        parts += [
            "",
            f"class _{hook}:",
            "    @flask_passkey.hookimpl",
            f"    def {hook}(self, {arg}):",
            f'        raise OperatorRejected(f"{hook} says no to {{{subject}}}")',
            "",
            f"{hook} = _{hook}()",
        ]
    return "\n".join(parts) + "\n"


#: Built-in step name -> (its hook, a request only that step rejects, tenant change, answer).
STEP_CASES: dict[str, tuple[str, dict[str, Any], dict[str, Any], int, str]] = {
    "passkeys_enabled": (
        "passkey_check_passkeys_enabled",
        {},
        {"passkeys_enabled": False},
        404,
        "not_found",
    ),
    "custom_domain": (
        "passkey_check_custom_domain",
        {"host": DEFAULT_DOMAIN},
        {},
        400,
        "invalid_request",
    ),
    "client_authentication": (
        "passkey_authenticate_client",
        {"body": {"client_id": "confidential"}},
        {},
        401,
        "invalid_client",
    ),
    "first_party": (
        "passkey_check_first_party",
        {"body": {"client_id": "third-party"}},
        {},
        400,
        "unauthorized_client",
    ),
    "grant_type": (
        "passkey_check_grant_type",
        {"body": {"client_id": "no-grant"}},
        {},
        400,
        "unauthorized_client",
    ),
    "oidc_conformance": (
        "passkey_check_oidc_conformance",
        {"body": {"client_id": "legacy"}},
        {},
        400,
        "unauthorized_client",
    ),
    "realm": (
        "passkey_check_realm",
        {"body": {"client_id": "spa", "realm": "elsewhere"}},
        {},
        400,
        "invalid_request",
    ),
    "organization": (
        "passkey_check_organization",
        {"body": {"client_id": "org-required"}},
        {},
        400,
        "invalid_request",
    ),
}

HOOKS_IN_ORDER = [case[0] for case in STEP_CASES.values()]


def tenant_with(changes: dict[str, Any]) -> dict[str, Any]:
    tenant = tenant_data()
    tenant.update(changes)
    return tenant


def test_the_cases_cover_every_built_in_step_in_order() -> None:
    assert list(STEP_CASES) == list(STEPS)


@pytest.fixture(scope="module")
def guarded() -> dict[bool, FlaskClient]:
    """Apps with every built-in step, by whether the tenant has passkeys enabled."""
    return {
        enabled: make_app(
            tenant=tenant_with({"passkeys_enabled": enabled}), rate_limit_enabled=False
        ).test_client()
        for enabled in (True, False)
    }


@pytest.mark.parametrize("step", list(STEP_CASES))
def test_built_in_step_rejects_and_blocking_it_lets_the_request_through(
    step: str, guarded: dict[bool, FlaskClient]
) -> None:
    _, request_args, tenant_changes, status, error = STEP_CASES[step]
    tenant = tenant_with(tenant_changes)
    unguarded = make_app(
        tenant=tenant, rate_limit_enabled=False, disabled_plugins=[step]
    ).test_client()

    rejected = post_challenge(guarded[tenant.get("passkeys_enabled", True)], **request_args)
    accepted = post_challenge(unguarded, **request_args)

    assert (rejected.status_code, rejected.get_json()["error"]) == (status, error)
    assert accepted.status_code == 200, accepted.get_json()
    assert set(accepted.get_json()) == {"auth_session", "authn_params_public_key"}


def test_blocked_realm_step_still_cannot_issue_for_an_unknown_realm() -> None:
    client = make_app(rate_limit_enabled=False, disabled_plugins=["realm"]).test_client()

    response = post_challenge(client, {"client_id": "spa", "realm": "nope"})

    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_blocked_realm_step_accepts_a_realm_without_passkeys() -> None:
    # Without the built-in step the operator owns the realm policy entirely.
    client = make_app(rate_limit_enabled=False, disabled_plugins=["realm"]).test_client()

    response = post_challenge(client, {"client_id": "spa", "realm": "no-passkeys"})

    assert response.status_code == 200


def test_blocking_two_steps_lets_the_request_reach_the_next_one() -> None:
    tenant = tenant_data()
    tenant["clients"].append(
        {"client_id": "odd", "is_first_party": False, "oidc_conformant": False}
    )
    client = make_app(
        tenant=tenant,
        rate_limit_enabled=False,
        disabled_plugins=["first_party", "oidc_conformance"],
    ).test_client()

    response = post_challenge(client, {"client_id": "odd", "realm": "partners"})

    # Past both lifted checks, the realm step (still there) refuses: the client has no
    # connections. With either check in place the answer would be unauthorized_client.
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


# -- operator plugins --------------------------------------------------------------------------


@pytest.fixture
def operator_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable module with a rejecting plugin per hook, named after the hook."""
    name = f"operator_steps_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(operator_module_source(HOOKS_IN_ORDER))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


PluginSource = Callable[[str], object]


@pytest.fixture(params=["object", "dotted-path"])
def plugin_for(request: pytest.FixtureRequest) -> PluginSource:
    """How the operator names their plugin in PASSKEY_PLUGINS: the object or 'module:attr'."""
    if request.param == "object":
        return rejecting_plugin
    module = request.getfixturevalue("operator_module")
    return lambda hook: f"{module}:{hook}"


@pytest.mark.parametrize("hook", HOOKS_IN_ORDER)
def test_operator_step_rejection_reaches_the_client_unchanged(
    hook: str, plugin_for: PluginSource
) -> None:
    client = make_app(rate_limit_enabled=False, plugins=[plugin_for(hook)]).test_client()

    response = post_challenge(client)

    assert response.status_code == 403
    expected_subject = CUSTOM_DOMAIN if hook in REQUEST_HOOKS else "spa"
    assert stable_error(response) == {
        "error": "operator_rejected",
        "error_description": f"{hook} says no to {expected_subject}",
    }


def test_operator_step_does_not_replace_the_built_in_one() -> None:
    class AcceptEverything:
        @flask_passkey.hookimpl
        def passkey_check_first_party(self, context: Any) -> None:
            return None

    client = make_app(rate_limit_enabled=False, plugins=[AcceptEverything()]).test_client()

    response = post_challenge(client, {"client_id": "third-party"})

    assert response.get_json()["error"] == "unauthorized_client"


def test_operator_step_replaces_a_blocked_built_in_one() -> None:
    class OnlyPartnersMayBeThirdParty:
        @flask_passkey.hookimpl
        def passkey_check_first_party(self, context: Any) -> None:
            if not context.client.is_first_party and context.connection_name != "partners":
                raise OperatorRejected("Third parties only sign in to partners.")

    client = make_app(
        rate_limit_enabled=False,
        plugins=[OnlyPartnersMayBeThirdParty()],
        disabled_plugins=["first_party"],
    ).test_client()

    refused = post_challenge(client, {"client_id": "third-party"})
    allowed = post_challenge(client, {"client_id": "third-party", "realm": "partners"})

    assert refused.status_code == 403
    assert refused.get_json()["error"] == "operator_rejected"
    assert allowed.status_code == 200


def test_steps_run_in_the_documented_order() -> None:
    calls: list[str] = []

    class Recorder:
        @flask_passkey.hookimpl
        def passkey_check_passkeys_enabled(self, request: Any) -> None:
            calls.append("passkey_check_passkeys_enabled")

        @flask_passkey.hookimpl
        def passkey_check_custom_domain(self, request: Any) -> None:
            calls.append("passkey_check_custom_domain")

        @flask_passkey.hookimpl
        def passkey_authenticate_client(self, context: Any) -> None:
            calls.append("passkey_authenticate_client")

        @flask_passkey.hookimpl
        def passkey_check_first_party(self, context: Any) -> None:
            calls.append("passkey_check_first_party")

        @flask_passkey.hookimpl
        def passkey_check_grant_type(self, context: Any) -> None:
            calls.append("passkey_check_grant_type")

        @flask_passkey.hookimpl
        def passkey_check_oidc_conformance(self, context: Any) -> None:
            calls.append("passkey_check_oidc_conformance")

        @flask_passkey.hookimpl
        def passkey_check_realm(self, context: Any) -> None:
            calls.append("passkey_check_realm")

        @flask_passkey.hookimpl
        def passkey_check_organization(self, context: Any) -> None:
            calls.append("passkey_check_organization")

    client = make_app(rate_limit_enabled=False, plugins=[Recorder()]).test_client()

    assert post_challenge(client).status_code == 200
    assert calls == HOOKS_IN_ORDER


def test_rejecting_step_stops_the_steps_after_it() -> None:
    seen: list[str] = []

    class Watcher:
        @flask_passkey.hookimpl
        def passkey_check_realm(self, context: Any) -> None:
            seen.append(context.client_id)

    client = make_app(rate_limit_enabled=False, plugins=[Watcher()]).test_client()

    post_challenge(client, {"client_id": "third-party"})
    post_challenge(client, {"client_id": "spa"})

    assert seen == ["spa"]
