"""Begin and finish passkey ceremonies over py_webauthn. Framework-free; keyword-only; typed.

Every WebAuthn check (challenge, origin, RP ID hash, flags, signature, algorithm, counter) is
py_webauthn's; this module decides what to expect, and what to store once it has verified.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from webauthn import verify_authentication_response, verify_registration_response
from webauthn.helpers import (
    bytes_to_base64url,
    decode_credential_public_key,
    decoded_public_key_to_cryptography,
    generate_challenge,
    generate_user_handle,
    options_to_json_dict,
    parse_authentication_credential_json,
    parse_authenticator_data,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)
from webauthn.registration.generate_registration_options import generate_registration_options

from .context import ValidationContext
from .errors import AccessDenied, InvalidGrant, InvalidRequest
from .models import Client, Credential, Identifier, User
from .sessions import AuthSession, SessionStore
from .users import CredentialTaken, IdentifierTaken, UserStore

USER_VERIFICATION = "preferred"
#: EdDSA, ES256, RS256: the algorithms the spec offers, in order of preference.
ALGORITHMS = [
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
_IDENTIFIER_ORDER: tuple[Identifier, ...] = ("email", "phone_number", "username")
# py_webauthn raises WebAuthnException for what it checks, but corrupt input can surface as
# KeyError/ValueError/TypeError from its parsers (CBOR, base64url, JSON): all of it is the
# client's fault.
_BAD_RESPONSE = (WebAuthnException, KeyError, ValueError, TypeError, IndexError)


@dataclass(frozen=True)
class Challenge:
    """What a challenge endpoint answers: the session id and the WebAuthn options."""

    auth_session: str
    authn_params_public_key: dict[str, Any]


@dataclass(frozen=True)
class SignIn:
    """A verified ceremony: who signed in, with which credential, and the session it used."""

    user: User
    credential: Credential
    session: AuthSession
    user_verified: bool


def new_session_id() -> str:
    """An opaque ``auth_session``: 256 bits from :mod:`secrets`, URL-safe."""
    return secrets.token_urlsafe(32)


def allowed_origins(session: AuthSession, client: Client) -> list[str]:
    """Origins accepted for a session: its custom domain, the client's web and Android origins."""
    return [
        session.origin,
        *client.web_origins,
        *(origin for app in client.android_apps for origin in app.origins),
    ]


class Ceremonies:
    """Issues challenges into a session store and redeems them against the user store."""

    def __init__(
        self,
        *,
        sessions: SessionStore,
        users: UserStore,
        timeout_ms: int,
        clock: Callable[[], float],
    ) -> None:
        self.sessions = sessions
        self.users = users
        self.timeout_ms = timeout_ms
        self.clock = clock

    # -- begin ---------------------------------------------------------------------------

    def begin_login(self, *, context: ValidationContext) -> Challenge:
        """Store a new login session for ``context`` and return its request options."""
        session = self._new_session(context, operation="login")
        return Challenge(
            auth_session=session.id,
            authn_params_public_key={
                "challenge": bytes_to_base64url(session.challenge),
                "timeout": self.timeout_ms,
                "rpId": session.rp_id,
                "userVerification": USER_VERIFICATION,
            },
        )

    def begin_signup(
        self,
        *,
        context: ValidationContext,
        user_profile: Mapping[str, str],
        user_metadata: Mapping[str, str],
    ) -> Challenge:
        """Store a new sign-up session and return its creation options.

        ``user_profile`` must already be validated (formats, required identifiers). Raises
        InvalidRequest when one of its identifiers is taken in the connection. Writes nothing
        to the user store.
        """
        assert context.connection is not None, "validation guarantees a connection"
        connection = context.connection.name
        missing = sorted(context.connection.required_identifiers - user_profile.keys())
        if missing:
            raise InvalidRequest(
                f"user_profile: {', '.join(missing)} required by the connection {connection!r}."
            )
        if not any(user_profile.get(kind) for kind in _IDENTIFIER_ORDER):
            raise InvalidRequest("user_profile: an email, phone_number or username is required.")
        for kind in _IDENTIFIER_ORDER:
            value = user_profile.get(kind)
            if value is not None and self.users.find_user(
                connection=connection, kind=kind, value=value
            ):
                raise InvalidRequest(f"A user with this {kind} already exists.")
        session = self._new_session(
            context,
            operation="signup",
            user_handle=generate_user_handle(),
            user_profile=dict(user_profile),
            user_metadata=dict(user_metadata),
        )
        user_name = next(user_profile[k] for k in _IDENTIFIER_ORDER if user_profile.get(k))
        options = generate_registration_options(
            rp_id=session.rp_id,
            rp_name=context.request.tenant.rp_name,
            user_name=user_name,
            user_id=session.user_handle,
            user_display_name=user_profile.get("name") or user_name,
            challenge=session.challenge,
            timeout=self.timeout_ms,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                require_resident_key=True,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            supported_pub_key_algs=ALGORITHMS,
        )
        return Challenge(
            auth_session=session.id, authn_params_public_key=options_to_json_dict(options)
        )

    def _new_session(self, context: ValidationContext, **fields: Any) -> AuthSession:
        request = context.request
        now = self.clock()
        session = AuthSession(
            id=new_session_id(),
            challenge=generate_challenge(),
            client_id=context.client.client_id,
            connection=_connection_name(context),
            organization_id=context.organization_id,
            rp_id=request.tenant.rp_id_for(request.host),
            origin=request.origin,
            expires_at=now + self.timeout_ms / 1000,
            **fields,
        )
        self.sessions.put(session, now=now)
        return session

    # -- finish --------------------------------------------------------------------------

    def take_session(
        self, auth_session: str, *, client: Client, realm: str | None, organization: str | None
    ) -> AuthSession:
        """Consume the session (single use, whatever happens next) and check who redeems it."""
        session = self.sessions.take(auth_session, now=self.clock())
        if session is None:
            raise InvalidGrant("The auth_session is invalid, expired or already used.")
        if session.client_id != client.client_id:
            raise InvalidGrant("The auth_session was issued to another client.")
        if realm is not None and realm != session.connection:
            raise InvalidGrant("The auth_session was issued for another realm.")
        if organization is not None and organization != session.organization_id:
            raise InvalidGrant("The auth_session was issued for another organization.")
        return session

    def finish_login(
        self, *, session: AuthSession, client: Client, response: Mapping[str, Any]
    ) -> SignIn:
        """Verify an assertion for a login session; store the new counter and last use."""
        if session.operation != "login":
            raise InvalidGrant("The auth_session is not a login session.")
        try:
            parsed = parse_authentication_credential_json(dict(response))
        except _BAD_RESPONSE as error:
            raise InvalidGrant(f"authn_response is malformed: {error}") from None
        credential = self.users.get_credential(parsed.raw_id)
        if credential is None:
            raise InvalidGrant("Unknown credential.")
        user = self.users.get_user(credential.user_id)
        if user is None or user.connection != session.connection:
            raise InvalidGrant("Unknown credential.")
        if (
            parsed.response.user_handle is not None
            and parsed.response.user_handle != user.user_handle
        ):
            raise InvalidGrant("The userHandle does not belong to the credential's user.")
        try:
            verified = verify_authentication_response(
                credential=parsed,
                expected_challenge=session.challenge,
                expected_rp_id=session.rp_id,
                expected_origin=allowed_origins(session, client),
                credential_public_key=credential.public_key,
                credential_current_sign_count=_comparable_sign_count(parsed, credential),
            )
        except _BAD_RESPONSE as error:
            raise InvalidGrant(f"The passkey assertion could not be verified: {error}") from None
        self._check_membership(session, user)
        now = self.clock()
        if not self.users.record_login(
            credential.id,
            expected_sign_count=credential.sign_count,
            sign_count=verified.new_sign_count,
            backed_up=verified.credential_backed_up,
            used_at=now,
        ):
            raise InvalidGrant("The credential was used concurrently; try again.")
        return SignIn(user, credential, session, verified.user_verified)

    def finish_signup(
        self, *, session: AuthSession, client: Client, response: Mapping[str, Any]
    ) -> SignIn:
        """Verify an attestation for a sign-up session; create the user and credential together."""
        if session.operation != "signup" or session.user_handle is None:
            raise InvalidGrant("The auth_session is not a sign-up session.")
        try:
            parsed = parse_registration_credential_json(dict(response))
            verified = verify_registration_response(
                credential=parsed,
                expected_challenge=session.challenge,
                expected_rp_id=session.rp_id,
                expected_origin=allowed_origins(session, client),
                supported_pub_key_algs=ALGORITHMS,
            )
            # With "none" attestation nothing has used the key yet: make sure it is one, or the
            # user would be created with a passkey that can never sign in.
            decoded_public_key_to_cryptography(
                decode_credential_public_key(verified.credential_public_key)
            )
        except _BAD_RESPONSE as error:
            raise InvalidGrant(f"The passkey attestation could not be verified: {error}") from None
        now = self.clock()
        profile = dict(session.user_profile)
        user = User(
            id=f"passkey|{secrets.token_hex(12)}",
            connection=session.connection,
            user_handle=session.user_handle,
            created_at=now,
            email=profile.pop("email", None),
            phone_number=profile.pop("phone_number", None),
            username=profile.pop("username", None),
            profile=profile,
            user_metadata=dict(session.user_metadata),
        )
        credential = Credential(
            id=verified.credential_id,
            user_id=user.id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            rp_id=session.rp_id,
            created_at=now,
            backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
            backed_up=verified.credential_backed_up,
            transports=tuple(t.value for t in parsed.response.transports or ()),
            aaguid=verified.aaguid,
            last_used_at=now,
        )
        try:
            self.users.create_user(user, credential, organization_id=session.organization_id)
        except IdentifierTaken as taken:
            raise InvalidRequest(f"A user with this {taken.kind} already exists.") from None
        except CredentialTaken:
            raise InvalidGrant("This passkey is already registered.") from None
        return SignIn(user, credential, session, verified.user_verified)

    def _check_membership(self, session: AuthSession, user: User) -> None:
        org = session.organization_id
        if org is not None and not self.users.is_member(organization_id=org, user_id=user.id):
            raise AccessDenied("The user is not a member of the organization.")


def _comparable_sign_count(parsed: AuthenticationCredential, credential: Credential) -> int:
    """The stored count py_webauthn should compare against.

    A counter only proves cloning when it goes backwards while both counts are non-zero; an
    authenticator that starts reporting 0 (it stopped counting, e.g. once synced) is not
    refused, and its 0 is stored.
    """
    reported = parse_authenticator_data(parsed.response.authenticator_data).sign_count
    return 0 if reported == 0 else credential.sign_count


def _connection_name(context: ValidationContext) -> str:
    assert context.connection is not None, "validation guarantees a connection"
    return context.connection.name
