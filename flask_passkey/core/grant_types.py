"""The token endpoint's grants as data: what selects each, which validation steps its requests
pass, and what redeems them. Framework-free.

A :class:`GrantType` is the core half of a grant; the web layer pairs each with the schema of
its body (:mod:`flask_passkey.web.grants`), and that one table drives the token endpoint's
dispatch, its OpenAPI description and discovery's ``grant_types_supported``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask_passkey.core.grants import Grants, TokenRequest, TokenResult
from flask_passkey.core.passkey_request import ValidationContext
from flask_passkey.models import REFRESH_TOKEN_GRANT, WEBAUTHN_GRANT

#: Redeems a request of one grant: the token service, the parts every grant shares, the body
#: as the grant's schema loaded it, and the context its validation steps checked.
Redeem = Callable[[Grants, TokenRequest, Mapping[str, Any], ValidationContext], TokenResult]


@dataclass(frozen=True)
class GrantType:
    """One grant of ``POST /oauth/token``.

    ``steps`` and ``steps_if_named`` name validation hooks of
    :data:`flask_passkey.core.validation.ALL_CLIENT_STEPS`; whichever of them a request needs
    run in that tuple's fixed order, before ``redeem``.
    """

    #: The ``grant_type`` value that selects the grant.
    grant_type: str
    #: The validation hooks every request of the grant passes.
    steps: tuple[str, ...]
    #: ``(body field, hook)``: hooks that run only when the request names that field.
    steps_if_named: tuple[tuple[str, str], ...]
    redeem: Redeem

    def steps_for(self, body: Mapping[str, Any]) -> tuple[str, ...]:
        """The validation hooks a request of this grant with ``body`` passes."""
        named = tuple(step for name, step in self.steps_if_named if body.get(name) is not None)
        return self.steps + named


def _redeem_passkey(
    grants: Grants, request: TokenRequest, body: Mapping[str, Any], context: ValidationContext
) -> TokenResult:
    return grants.webauthn(
        request,
        auth_session=body["auth_session"],
        authn_response=body["authn_response"],
        realm=body["realm"],
        organization=context.organization_id,
    )


def _redeem_refresh_token(
    grants: Grants, request: TokenRequest, body: Mapping[str, Any], context: ValidationContext
) -> TokenResult:
    return grants.refresh(request, refresh_token=body["refresh_token"])


#: A passkey response for the ``auth_session`` of a challenge: sign-in or sign-up. The session
#: fixed the realm and organization; those the request names are checked (steps 6 and 7) before
#: the session is spent, and must then match it.
PASSKEY = GrantType(
    grant_type=WEBAUTHN_GRANT,
    steps=(
        "passkey_authenticate_client",
        "passkey_check_first_party",
        "passkey_check_grant_type",
        "passkey_check_oidc_conformance",
    ),
    steps_if_named=(
        ("realm", "passkey_check_realm"),
        ("organization", "passkey_check_organization"),
    ),
    redeem=_redeem_passkey,
)

#: A refresh token for new tokens (rotation). The client must still be a first-party, OIDC
#: conformant one; :meth:`Grants.refresh` checks that it has the ``refresh_token`` grant type
#: (``passkey_check_grant_type`` is about the passkey grant).
REFRESH_TOKEN = GrantType(
    grant_type=REFRESH_TOKEN_GRANT,
    steps=(
        "passkey_authenticate_client",
        "passkey_check_first_party",
        "passkey_check_oidc_conformance",
    ),
    steps_if_named=(),
    redeem=_redeem_refresh_token,
)
