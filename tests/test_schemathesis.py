"""Schemathesis against the running app, loaded from the document it serves.

Stateless: for every operation, positive cases (bodies the document allows, often with a real
client or a real bearer token so that requests get past authentication) and negative cases
(bodies it forbids), on the custom domain (with and without a port) and on the default domain.
Stateful: challenge -> token and register -> token through the document's links, so the token
endpoint gets live ``auth_session`` values. Every response must be documented: no 5xx, a
documented status, content type and headers, a body matching the schema; bodies the document
forbids must be refused with a 4xx. Case counts are printed in the terminal summary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import jwt
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema
from webauthn.helpers import bytes_to_base64url

from flask_passkey.core.audiences import MY_ACCOUNT_SCOPES
from flask_passkey.testing import PasskeyFlow
from flask_passkey.web.openapi import OPENAPI_PATH, OPERATIONS
from tests.apps import CONFIDENTIAL_SECRET, CUSTOM_DOMAIN, DEFAULT_DOMAIN, make_app
from tests.case_counts import CaseCounts
from tests.support import new_email

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
#: A negative case may be a body over PASSKEY_MAX_BODY_SIZE: its documented 413 refuses it as
#: surely as a 400 does (schemathesis's default refusals leave 413 out).
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                # Schemathesis's documented default list, plus 413.
                "expected-statuses": [
                    *("400", "401", "403", "404", "405", "406", "409", "413", "415", "422"),
                    *("428", "429", "5xx"),
                ]
            }
        }
    }
)
#: Where cases are sent: mostly the custom domain, also with a port, and the default domain.
HOSTS = [CUSTOM_DOMAIN, CUSTOM_DOMAIN, f"{CUSTOM_DOMAIN}:8443", DEFAULT_DOMAIN]
#: Clients of tenant_data() a positive case may use instead of a generated client_id.
CLIENTS = [
    "spa",
    "spa",
    "confidential",
    "native",
    "basic",
    "refreshing",
    "third-party",
    "no-grant",
    "legacy",
    "org-required",
    "org-allowed",
]
SECRETS = {"confidential": CONFIDENTIAL_SECRET}
POSITIVE_EXAMPLES = 150
NEGATIVE_EXAMPLES = 100
STATEFUL_EXAMPLES = 80
SETTINGS = {
    "deadline": 2000,  # ms per case; a case is a few requests in-process
    "database": None,
    "suppress_health_check": list(HealthCheck),
}
#: Every documented operation, and whether it has inputs a negative case can break.
LABELS = [
    (f"{op.method.upper()} {op.path}", bool(op.request or op.parameters))
    for op in OPERATIONS
    if op.path != OPENAPI_PATH
]


class Fixture:
    """The app under test, the schema it serves, and a signed-up user with a My Account token."""

    def __init__(self) -> None:
        self.app: Flask = make_app(rate_limit_enabled=False)
        self.schema: OpenApiSchema = schemathesis.openapi.from_wsgi(
            OPENAPI_PATH, self.app, config=CONFIG, headers={"Host": CUSTOM_DOMAIN}
        )
        flow = PasskeyFlow(self.app.test_client(), client_id="spa", host=CUSTOM_DOMAIN)
        tokens = flow.sign_up(
            {"email": new_email()},
            scope=" ".join(("openid", *MY_ACCOUNT_SCOPES)),
            audience=f"https://{CUSTOM_DOMAIN}/me/",
        )
        self.token: str = tokens["access_token"]
        #: A token for the userinfo audience (the default one).
        self.userinfo_token: str = flow.sign_in()["access_token"]
        self.refreshing = PasskeyFlow(
            self.app.test_client(), client_id="refreshing", host=CUSTOM_DOMAIN
        )
        self.refreshing.sign_up({"email": new_email()})
        user_id = jwt.decode(self.token, options={"verify_signature": False})["sub"]
        users = self.app.extensions["passkey"].users
        (credential,) = users.list_credentials(user_id)
        self.method_id = f"passkey|{bytes_to_base64url(credential.id)}"

    def refresh_token(self) -> str:
        """A new live refresh token of the ``refreshing`` client (one sign-in each)."""
        token: str = self.refreshing.sign_in(scope="openid offline_access")["refresh_token"]
        return token


@pytest.fixture(scope="module")
def target() -> Fixture:
    return Fixture()


def _use_real_credentials(case: Case, draw: Callable[..., Any], target: Fixture) -> None:
    """Make a positive case likely to get past authentication: a real client (with its secret)
    for the passkey endpoints, a live refresh token for revocation, a real bearer token for
    userinfo, and a real bearer token and passkey id for the My Account API."""
    path = case.operation.path
    if path == "/userinfo":
        if draw(st.booleans()):
            bearer = f"Bearer {target.userinfo_token}"
            case.headers = {**(case.headers or {}), "Authorization": bearer}
            if isinstance(case.body, dict):
                case.body.pop("access_token", None)
        return
    if path.startswith("/me/"):
        if draw(st.booleans()):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {target.token}"}
        if case.path_parameters and draw(st.booleans()):
            case.path_parameters["authentication_method_id"] = draw(
                st.sampled_from([target.method_id, quote(target.method_id, safe=""), "passkey|new"])
            )
        return
    if path == "/oauth/revoke" and isinstance(case.body, dict) and draw(st.booleans()):
        # A live refresh token of the client revoking it: the case revokes a real family.
        case.body.update(client_id="refreshing", token=target.refresh_token())
        case.body.pop("client_secret", None)
        return
    if isinstance(case.body, dict) and draw(st.integers(0, 2)):
        client_id = draw(st.sampled_from(CLIENTS))
        case.body["client_id"] = client_id
        if client_id in SECRETS:
            case.body["client_secret"] = SECRETS[client_id]
        else:
            case.body.pop("client_secret", None)
        if draw(st.booleans()):
            case.body.pop("realm", None)
            case.body.pop("organization", None)


def _call(case: Case, host: str) -> Any:
    base_url = f"https://{host}"
    response = case.call(base_url=base_url)
    case.validate_response(response, checks=CHECKS, transport_kwargs={"base_url": base_url})
    return response


@pytest.mark.parametrize(
    ("label", "mode"),
    [
        pytest.param(label, mode, id=f"{label} {mode.value}")
        for label, has_inputs in LABELS
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if has_inputs or mode is GenerationMode.POSITIVE
    ],
)
def test_stateless(
    target: Fixture, case_counts: CaseCounts, label: str, mode: GenerationMode
) -> None:
    operation = target.schema.find_operation_by_label(label)
    assert operation is not None, label
    positive = mode is GenerationMode.POSITIVE
    examples = POSITIVE_EXAMPLES if positive else NEGATIVE_EXAMPLES

    @settings(max_examples=examples, **SETTINGS)  # type: ignore[arg-type]
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case: Case, data: st.DataObject) -> None:
        if positive:
            _use_real_credentials(case, data.draw, target)
        elif case.operation.path.startswith("/me/") and data.draw(st.booleans()):
            # A real token, so that the body and parameters are what gets refused.
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {target.token}"}
        host = data.draw(st.sampled_from(HOSTS))
        response = _call(case, host)
        domain = "default domain" if host == DEFAULT_DOMAIN else "custom domain"
        case_counts.add(
            "schemathesis stateless", f"{label} [{mode.value}, {domain}]", response.status_code
        )

    run()


def test_stateful_challenge_then_token(target: Fixture, case_counts: CaseCounts) -> None:
    schema = target.schema.include(path_regex="^/(passkey|oauth)/")
    base_url = f"https://{CUSTOM_DOMAIN}"

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Case) -> None:
            # A real public client, so that challenges succeed and the links carry live
            # auth_session values to the token endpoint (negative cases stay as generated).
            if isinstance(case.body, dict) and not _is_negative(case):
                case.body["client_id"] = "spa"
                for name in ("client_secret", "realm", "organization"):
                    case.body.pop(name, None)

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"base_url": base_url}

        def validate_response(
            self, response: Any, case: Case, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)
            live = case.operation.path == "/oauth/token" and _session_is_live(case)
            label = case.operation.label + (" (linked auth_session)" if live else "")
            label += " [negative]" if _is_negative(case) else " [positive]"
            case_counts.add("schemathesis stateful", label, response.status_code)

    Machine.run(
        settings=settings(max_examples=STATEFUL_EXAMPLES, stateful_step_count=6, **SETTINGS)  # type: ignore[arg-type]
    )
    linked = case_counts.suites["schemathesis stateful"]
    assert any("linked" in label for label in linked), linked


def _session_is_live(case: Case) -> bool:
    """The token request carries an auth_session a challenge issued (43 URL-safe characters)."""
    session = case.body.get("auth_session") if isinstance(case.body, dict) else None
    return isinstance(session, str) and len(session) == 43


def _is_negative(case: Case) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_negative
