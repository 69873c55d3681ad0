"""The My Account API's passkey operations for a signed-in user. Framework-free.

A user manages their own passkeys with an access token this server issued for the audience
``https://<custom domain>/me/`` carrying the scopes of
:data:`flask_passkey.core.audiences.MY_ACCOUNT_SCOPES`. An authentication method is one passkey,
named ``passkey|<credential id, base64url>`` and shown in the shape of Auth0's My Account API.
A user only ever sees their own passkeys: any other id is "not found", whether it exists or not.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from flask_passkey.core.access import AccessVerifier, Presented, require_scopes
from flask_passkey.core.audiences import my_account_audience
from flask_passkey.core.authenticators import AuthenticatorInfo, AuthenticatorNames
from flask_passkey.core.ceremony import Ceremonies, Challenge
from flask_passkey.core.passkey_request import PasskeyRequest
from flask_passkey.errors import (
    AttestationRefused,
    Conflict,
    EnrollmentAttestationRefused,
    InvalidGrant,
    InvalidRequest,
    InvalidToken,
    NotFound,
)
from flask_passkey.models import Client, Connection, Credential, User

PASSKEY_TYPE = "passkey"
#: The id of an enrollment in progress, in the ``Location`` of ``POST authentication-methods``;
#: clients confirm the enrollment at ``.../passkey|new/verify``.
ENROLLMENT_METHOD_ID = "passkey|new"
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def identity_user_id_of(user: User) -> str:
    """The user's id within their connection: the part of ``user.id`` after the provider."""
    return user.id.partition("|")[2] or user.id


def method_id(credential_id: bytes) -> str:
    """The authentication-method id of a passkey."""
    return f"{PASSKEY_TYPE}|{bytes_to_base64url(credential_id)}"


def credential_id_of(authentication_method_id: str) -> bytes:
    """The credential id an authentication-method id names; NotFound for anything that is not
    a passkey id in canonical form (also when sent percent-encoded once more)."""
    kind, separator, key_id = unquote(authentication_method_id).partition("|")
    if kind != PASSKEY_TYPE or not separator or not _KEY_ID.match(key_id):
        raise _not_found()
    try:
        credential_id = base64url_to_bytes(key_id)
    except ValueError:  # binascii.Error: a length no base64 text has
        raise _not_found() from None
    if bytes_to_base64url(credential_id) != key_id:
        raise _not_found()
    return credential_id


def timestamp(epoch_seconds: float) -> str:
    """ISO 8601 in UTC with milliseconds (``2025-01-15T10:30:00.000Z``), as Auth0 writes it."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def authentication_method(
    user: User, credential: Credential, provider: AuthenticatorInfo | None = None
) -> dict[str, Any]:
    """A passkey as Auth0's My Account API shows it (``type: "passkey"``).

    ``public_key`` is the COSE key in standard base64, ``key_id`` and ``user_handle``
    base64url; ``name`` is the one the user gave, else the ``provider``'s (the passkey's
    AAGUID looked up), and is left out without either, as ``last_auth_at`` is while the
    passkey has not been used.
    """
    method: dict[str, Any] = {
        "id": method_id(credential.id),
        "type": PASSKEY_TYPE,
        "created_at": timestamp(credential.created_at),
        "usage": ["primary"],
        "identity_user_id": identity_user_id_of(user),
        "key_id": bytes_to_base64url(credential.id),
        "public_key": base64.b64encode(credential.public_key).decode("ascii"),
        "user_handle": bytes_to_base64url(user.user_handle),
        "credential_device_type": credential.device_type,
        "credential_backed_up": credential.backed_up,
        "aaguid": credential.aaguid,
        "relying_party_id": credential.rp_id,
        "transports": list(credential.transports),
    }
    name = credential.name or (provider.name if provider is not None else "")
    if name:
        method["name"] = name
    if credential.last_used_at is not None:
        method["last_auth_at"] = timestamp(credential.last_used_at)
    return method


def available_factors() -> list[dict[str, Any]]:
    """The factors a user may enroll, as Auth0's ``GET /me/v1/factors`` lists them: passkeys,
    for signing in (``usage: ["primary"]``), the only kind this server offers."""
    return [{"type": PASSKEY_TYPE, "usage": ["primary"]}]


@dataclass(frozen=True)
class Caller:
    """Who an accepted access token speaks for: the user, and the client it was issued to."""

    user: User
    client_id: str
    #: The https origin of the custom domain the request came on.
    origin: str


class MyAccount:
    """Enroll, list, rename and delete the passkeys of the user an access token names."""

    def __init__(
        self,
        *,
        ceremonies: Ceremonies,
        access: AccessVerifier,
        get_client: Callable[[str], Client | None],
        get_connection: Callable[[str], Connection | None],
        allow_deleting_last_passkey: bool,
        authenticators: AuthenticatorNames | None = None,
    ) -> None:
        self.ceremonies = ceremonies
        self.users = ceremonies.users
        self.access = access
        self.get_client = get_client
        self.get_connection = get_connection
        self.allow_deleting_last_passkey = allow_deleting_last_passkey
        self.authenticators = authenticators or AuthenticatorNames()

    def authenticate(self, presented: Presented, *, request: PasskeyRequest, scope: str) -> Caller:
        """The caller of a request presenting ``presented``.

        The token must be one of our access tokens for the My Account audience of the domain
        the request came on, Bearer or DPoP-bound (see :meth:`AccessVerifier.verify`: 401
        otherwise, also when its user is gone), and carry ``scope`` (InsufficientScope, 403,
        otherwise).
        """
        issuer = f"{request.origin}/"
        access = self.access.verify(presented, issuer=issuer, audience=my_account_audience(issuer))
        require_scopes(access, [scope])
        return Caller(user=access.user, client_id=access.client_id, origin=request.origin)

    def begin_enrollment(
        self,
        caller: Caller,
        *,
        request: PasskeyRequest,
        connection: str | None,
        identity_user_id: str | None,
    ) -> Challenge:
        """A challenge for adding a passkey to the caller (creation options that exclude the
        passkeys they already have).

        ``connection`` and ``identity_user_id``, when sent, must name the caller's identity;
        its connection must still have passkeys enabled. InvalidRequest otherwise.
        """
        user = caller.user
        if connection is not None and connection != user.connection:
            raise InvalidRequest(f"connection: the user has no identity in {connection!r}.")
        if identity_user_id is not None and identity_user_id != identity_user_id_of(user):
            raise InvalidRequest("identity_user_id: not an identity of the user.")
        known = self.get_connection(user.connection)
        if known is None or not known.passkeys_enabled:
            raise InvalidRequest(f"Passkeys are not enabled for the realm {user.connection!r}.")
        return self.ceremonies.begin_enrollment(
            request=request,
            client_id=caller.client_id,
            user=user,
            exclude=self.users.list_credentials(user.id),
        )

    def finish_enrollment(
        self,
        caller: Caller,
        *,
        authentication_method_id: str,
        auth_session: str,
        authn_response: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Verify the browser's attestation for the caller's enrollment session and add the
        passkey; return it as an authentication method.

        ``authentication_method_id`` must be :data:`ENROLLMENT_METHOD_ID` (NotFound). The
        session is consumed whatever happens; it must be an enrollment session of the caller,
        issued to the token's client, unexpired, and the attestation must verify against its
        challenge, RP ID and the client's origins (InvalidRequest otherwise, storing nothing).
        """
        if unquote(authentication_method_id) != ENROLLMENT_METHOD_ID:
            raise _not_found()
        client = self.get_client(caller.client_id)
        if client is None:
            raise InvalidToken("The access token's client no longer exists.")
        try:
            session = self.ceremonies.take_session(
                auth_session, client=client, origin=caller.origin, realm=None, organization=None
            )
            credential = self.ceremonies.finish_enrollment(
                session=session, client=client, user=caller.user, response=authn_response
            )
        except AttestationRefused as refused:
            raise EnrollmentAttestationRefused(refused) from None
        except InvalidGrant as error:  # the token endpoint's code; here the body is at fault
            raise InvalidRequest(error.description) from None
        return self._method(caller.user, credential)

    def list_methods(
        self, caller: Caller, *, method_type: str | None = None
    ) -> list[dict[str, Any]]:
        """The caller's passkeys, oldest first (none when ``method_type`` names another type)."""
        if method_type not in (None, PASSKEY_TYPE):
            return []
        user = caller.user
        return [self._method(user, c) for c in self.users.list_credentials(user.id)]

    def get_method(self, caller: Caller, authentication_method_id: str) -> dict[str, Any]:
        """One of the caller's passkeys; NotFound for any id that is not one."""
        return self._method(caller.user, self._own(caller, authentication_method_id))

    def rename_method(
        self, caller: Caller, authentication_method_id: str, *, name: str
    ) -> dict[str, Any]:
        """Rename one of the caller's passkeys and return it; NotFound for any other id."""
        credential_id = credential_id_of(authentication_method_id)
        if not self.users.rename_credential(
            user_id=caller.user.id, credential_id=credential_id, name=name
        ):
            raise _not_found()
        return self.get_method(caller, authentication_method_id)

    def delete_method(self, caller: Caller, authentication_method_id: str) -> None:
        """Delete one of the caller's passkeys; NotFound for any other id.

        The last passkey is kept (Conflict) unless ``allow_deleting_last_passkey``: without a
        passkey the user can no longer sign in. The store has no conditional delete, so the
        rule is checked before deleting and again after: when two deletions race for a user's
        last two passkeys, the one that finds none left puts its passkey back and is refused.
        """
        user = caller.user
        credential_id = credential_id_of(authentication_method_id)
        owned = self.users.list_credentials(user.id)
        credential = next((c for c in owned if c.id == credential_id), None)
        if credential is None:
            raise _not_found()
        if not self.allow_deleting_last_passkey and len(owned) <= 1:
            raise _last_passkey()
        if not self.users.delete_credential(user_id=user.id, credential_id=credential.id):
            raise _not_found()
        if not self.allow_deleting_last_passkey and not self.users.list_credentials(user.id):
            self.users.add_credential(credential)
            raise _last_passkey()

    def _method(self, user: User, credential: Credential) -> dict[str, Any]:
        provider = self.authenticators.authenticator_name(credential.aaguid)
        return authentication_method(user, credential, provider)

    def _own(self, caller: Caller, authentication_method_id: str) -> Credential:
        credential = self.users.get_credential(credential_id_of(authentication_method_id))
        if credential is None or credential.user_id != caller.user.id:
            raise _not_found()
        return credential


def _not_found() -> NotFound:
    return NotFound("The authentication method does not exist.")


def _last_passkey() -> Conflict:
    return Conflict(
        "This is the user's last passkey: without it they could no longer sign in. "
        "Add another passkey first."
    )
