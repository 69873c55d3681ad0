"""The grants ``POST /oauth/token`` accepts: one table, read by the token view (which grant a
request selects, the schema its body must pass, its validation steps, what redeems it), the
OpenAPI document (the request body's ``oneOf``) and discovery (``grant_types_supported``).
"""

from __future__ import annotations

from dataclasses import dataclass

from marshmallow import Schema

from flask_passkey.core.grant_types import PASSKEY, REFRESH_TOKEN, GrantType
from flask_passkey.web.schemas import RefreshGrantSchema, WebAuthnGrantSchema


@dataclass(frozen=True)
class TokenGrant:
    """A grant of the token endpoint: its framework-free half and the schema of its body."""

    grant: GrantType
    #: The body of a request of this grant: the shared token request fields and its own.
    schema: type[Schema]

    @property
    def grant_type(self) -> str:
        return self.grant.grant_type


#: Every grant of the token endpoint, in the order discovery and the OpenAPI document list them.
TOKEN_GRANTS: tuple[TokenGrant, ...] = (
    TokenGrant(PASSKEY, WebAuthnGrantSchema),
    TokenGrant(REFRESH_TOKEN, RefreshGrantSchema),
)
