"""Begin and finish passkey ceremonies over py_webauthn. Framework-free; keyword-only; typed.

Every WebAuthn check (challenge, origin, RP ID hash, flags, signature, algorithm, counter) is
py_webauthn's; this module decides what to expect, and what to store once it has verified.
"""

from __future__ import annotations

import io
import json
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import cbor2
from webauthn import (
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    bytes_to_base64url,
    decode_credential_public_key,
    decoded_public_key_to_cryptography,
    generate_challenge,
    generate_user_handle,
    options_to_json_dict,
    parse_attestation_object,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from flask_passkey.core.attestation import AttestationGate
from flask_passkey.core.passkey_request import PasskeyRequest, ValidationContext
from flask_passkey.errors import (
    AccessDenied,
    AttestationRefused,
    InvalidGrant,
    InvalidRequest,
    PossibleClone,
)
from flask_passkey.models import IDENTIFIERS, AttestationPolicy, Client, Credential, User
from flask_passkey.stores.sessions import AuthSession, SessionStore
from flask_passkey.stores.users import (
    CredentialTaken,
    CredentialWithUserStore,
    IdentifierTaken,
    UserStore,
)

USER_VERIFICATION = "preferred"
#: EdDSA, ES256, RS256: the algorithms the spec offers, in order of preference.
ALGORITHMS = [
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
_TRANSPORTS = frozenset(t.value for t in AuthenticatorTransport)
#: WebAuthn Level 3 §7.1 step 24: a credential id is at most 1,023 bytes.
MAX_CREDENTIAL_ID_LENGTH = 1023
# py_webauthn raises WebAuthnException for what it checks, but corrupt input can surface as
# KeyError/ValueError/TypeError from its parsers (CBOR, base64url, JSON), AttributeError from
# its attestation-format verifiers (android-safetynet calls .decode()/.get() on whatever the
# statement holds) and RecursionError from JSON nested too deeply: all of it is the client's
# fault.
_BAD_RESPONSE = (
    WebAuthnException,
    KeyError,
    ValueError,
    TypeError,
    IndexError,
    AttributeError,
    RecursionError,
)


class _VerifiedAttestation(Protocol):
    """What :func:`webauthn.verify_registration_response` returns, as far as this module reads
    it: py_webauthn exports the function, not the class of its result."""

    @property
    def credential_id(self) -> bytes: ...
    @property
    def credential_public_key(self) -> bytes: ...
    @property
    def sign_count(self) -> int: ...
    @property
    def aaguid(self) -> str: ...
    @property
    def credential_device_type(self) -> CredentialDeviceType: ...
    @property
    def credential_backed_up(self) -> bool: ...


#: The ``error_description`` of a sign-in with a passkey the server does not know (deleted, or
#: never registered here): pages match it to call ``PublicKeyCredential.signalUnknownCredential``.
UNKNOWN_CREDENTIAL = "Unknown credential."


class UnknownCredential(InvalidGrant):
    """``invalid_grant`` for a passkey the user store does not hold. Its body also carries
    ``unknown_credential_id`` (the base64url id the request sent), for clients whose SDK keeps
    extra members. Raised only once a valid ``auth_session`` has been consumed, so only a
    caller who started a ceremony learns it."""

    def __init__(self, credential_id: bytes) -> None:
        super().__init__(UNKNOWN_CREDENTIAL, detail="No such credential.")
        self.credential_id = credential_id

    def to_dict(self) -> dict[str, str]:
        return {
            **super().to_dict(),
            "unknown_credential_id": bytes_to_base64url(self.credential_id),
        }


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


def new_session_id() -> str:
    """An opaque ``auth_session``: 256 bits from :mod:`secrets`, URL-safe."""
    return secrets.token_urlsafe(32)


def allowed_origins(session: AuthSession, client: Client, related: Sequence[str] = ()) -> list[str]:
    """Origins accepted for a session: its custom domain, the client's web and Android origins,
    and the tenant's ``related`` origins (Related Origin Requests)."""
    return [
        session.origin,
        *client.web_origins,
        *(origin for app in client.android_apps for origin in app.origins),
        *related,
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
        attestation: AttestationGate | None = None,
        related_origins: Callable[[], Sequence[str]] = tuple,
    ) -> None:
        self.sessions = sessions
        self.users = users
        self.timeout_ms = timeout_ms
        self.clock = clock
        #: Which authenticators may register; by default any, with "none" attestation.
        self.attestation = attestation or AttestationGate(
            get_client=lambda _: None, get_connection=lambda _: None, metadata=None
        )
        #: The tenant's related origins, read at each verification (tenant plugins may change).
        self.related_origins = related_origins
        #: The store's one-read credential-and-owner lookup, when it has one.
        self._joined = (
            cast(CredentialWithUserStore, users)
            if callable(getattr(users, "get_credential_with_user", None))
            else None
        )

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
        InvalidRequest when one of its identifiers is taken in the connection, AccessDenied
        when it names an organization that takes no members at sign-up. Writes nothing to the
        user store.
        """
        assert context.connection is not None, "validation guarantees a connection"
        if (
            context.organization is not None
            and not context.organization.assign_membership_on_signup
        ):
            raise AccessDenied("This organization does not take new members at sign-up.")
        connection = context.connection.name
        missing = sorted(context.connection.required_identifiers - user_profile.keys())
        if missing:
            raise InvalidRequest(
                f"user_profile: {', '.join(missing)} required by the connection {connection!r}."
            )
        if not any(user_profile.get(kind) for kind in IDENTIFIERS):
            raise InvalidRequest("user_profile: an email, phone_number or username is required.")
        for kind in IDENTIFIERS:
            value = user_profile.get(kind)
            if value is not None and self.users.find_user(
                connection=connection, kind=kind, value=value
            ):
                raise InvalidRequest(f"A user with this {kind} already exists.")
        user_handle = generate_user_handle()
        session = self._new_session(
            context,
            operation="signup",
            user_handle=user_handle,
            user_profile=dict(user_profile),
            user_metadata=dict(user_metadata),
        )
        user_name = next(user_profile[k] for k in IDENTIFIERS if user_profile.get(k))
        return self._creation_challenge(
            session,
            rp_name=context.request.tenant.rp_name,
            user_handle=user_handle,
            user_name=user_name,
            display_name=user_profile.get("name") or user_name,
            exclude=(),
        )

    def begin_enrollment(
        self,
        *,
        request: PasskeyRequest,
        client_id: str,
        user: User,
        exclude: Sequence[Credential],
    ) -> Challenge:
        """Store an enrollment session for ``user`` (adding a passkey) and return its creation
        options: ``user.id`` is the user's stored handle, ``excludeCredentials`` lists
        ``exclude`` (the passkeys the user already has), so an authenticator holding one of
        them refuses to create a second."""
        session = self._store_session(
            request,
            operation="enroll",
            client_id=client_id,
            connection=user.connection,
            organization_id=None,
            user_id=user.id,
        )
        user_name = next(
            (value for kind in IDENTIFIERS if (value := user.identifier(kind))), user.id
        )
        return self._creation_challenge(
            session,
            rp_name=request.tenant.rp_name,
            user_handle=user.user_handle,
            user_name=user_name,
            display_name=user.profile.get("name") or user_name,
            exclude=exclude,
        )

    def _creation_challenge(
        self,
        session: AuthSession,
        *,
        rp_name: str,
        user_handle: bytes,
        user_name: str,
        display_name: str,
        exclude: Sequence[Credential],
    ) -> Challenge:
        """PublicKeyCredentialCreationOptions for ``session``: a discoverable credential
        (residentKey required), user verification preferred, our algorithms, the attestation
        conveyance of the session's policy."""
        policy = self._policy(session)
        options = generate_registration_options(
            attestation=AttestationConveyancePreference(policy.conveyance),
            rp_id=session.rp_id,
            rp_name=rp_name,
            user_name=user_name,
            user_id=user_handle,
            user_display_name=display_name,
            challenge=session.challenge,
            timeout=self.timeout_ms,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                require_resident_key=True,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[
                PublicKeyCredentialDescriptor(
                    id=credential.id,
                    transports=[
                        AuthenticatorTransport(t) for t in credential.transports if t in _TRANSPORTS
                    ],
                )
                for credential in exclude
            ],
            supported_pub_key_algs=ALGORITHMS,
        )
        return Challenge(
            auth_session=session.id, authn_params_public_key=options_to_json_dict(options)
        )

    def _new_session(self, context: ValidationContext, **fields: Any) -> AuthSession:
        return self._store_session(
            context.request,
            client_id=context.client.client_id,
            connection=_connection_name(context),
            organization_id=context.organization_id,
            **fields,
        )

    def _store_session(self, request: PasskeyRequest, **fields: Any) -> AuthSession:
        """A new session with a fresh challenge for the domain ``request`` came on, stored."""
        now = self.clock()
        session = AuthSession(
            id=new_session_id(),
            challenge=generate_challenge(),
            rp_id=request.tenant.rp_id_for(request.host),
            origin=request.origin,
            expires_at=now + self.timeout_ms / 1000,
            **fields,
        )
        self.sessions.put(session, now=now)
        return session

    # -- finish --------------------------------------------------------------------------

    def take_session(
        self,
        auth_session: str,
        *,
        client: Client,
        origin: str,
        realm: str | None,
        organization: str | None,
    ) -> AuthSession:
        """Consume the session (single use, whatever happens next) and check who redeems it:
        the same client, on the same custom domain (``origin``), for the realm and organization
        when the request names them."""
        session = self.sessions.take(auth_session, now=self.clock())
        if session is None:
            raise InvalidGrant("The auth_session is invalid, expired or already used.")
        if session.client_id != client.client_id:
            raise InvalidGrant("The auth_session was issued to another client.")
        if session.origin != origin:
            raise InvalidGrant("The auth_session was issued on another domain.")
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
            raise _unverified(f"authn_response is malformed: {error}") from None
        _check_credential_id(parsed.raw_id)
        credential, user = self.credential_and_user(parsed.raw_id)
        if credential is None or user is None:
            raise UnknownCredential(parsed.raw_id)
        if user.connection != session.connection:
            # The passkey is real (connections share the RP ID): not one to signal as unknown.
            raise _unverified("The credential's user is in another connection.")
        if (
            parsed.response.user_handle is not None
            and parsed.response.user_handle != user.user_handle
        ):
            raise _unverified("The userHandle does not belong to the credential's user.")
        try:
            verified = verify_authentication_response(
                credential=parsed,
                expected_challenge=session.challenge,
                expected_rp_id=session.rp_id,
                expected_origin=allowed_origins(session, client, self.related_origins()),
                credential_public_key=credential.public_key,
                # The counter is compared below, once the signature has proved the
                # assertion is the credential's: only then is a stale count news of a clone.
                credential_current_sign_count=0,
            )
        except _BAD_RESPONSE as error:
            raise _unverified(f"The assertion does not verify: {error}") from None
        _check_top_origin(parsed.response.client_data_json, client)
        if _possibly_cloned(stored=credential.sign_count, reported=verified.new_sign_count):
            raise PossibleClone(user_id=user.id)
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
        return SignIn(user, credential, session)

    def credential_and_user(self, credential_id: bytes) -> tuple[Credential | None, User | None]:
        """The credential and its owner: in one read where the store offers it."""
        if self._joined is not None:
            found = self._joined.get_credential_with_user(credential_id)
            return found if found is not None else (None, None)
        credential = self.users.get_credential(credential_id)
        if credential is None:
            return None, None
        return credential, self.users.get_user(credential.user_id)

    def finish_signup(
        self, *, session: AuthSession, client: Client, response: Mapping[str, Any]
    ) -> SignIn:
        """Verify an attestation for a sign-up session; create the user and credential together."""
        if session.operation != "signup" or session.user_handle is None:
            raise InvalidGrant("The auth_session is not a sign-up session.")
        parsed, verified, hardware_attested = self._verify_attestation(session, client, response)
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
        # Signing up signs the user in: the new passkey has been used.
        credential = _new_credential(
            parsed,
            verified,
            session,
            user_id=user.id,
            now=now,
            last_used_at=now,
            hardware_attested=hardware_attested,
        )
        try:
            self.users.create_user(user, credential, organization_id=session.organization_id)
        except IdentifierTaken as taken:
            raise InvalidRequest(f"A user with this {taken.kind} already exists.") from None
        except CredentialTaken:
            raise InvalidGrant("This passkey is already registered.") from None
        return SignIn(user, credential, session)

    def finish_enrollment(
        self, *, session: AuthSession, client: Client, user: User, response: Mapping[str, Any]
    ) -> Credential:
        """Verify an attestation for ``user``'s enrollment session and add the passkey to them.

        Raises InvalidGrant when the session is not an enrollment session of ``user`` or the
        attestation does not verify, and InvalidRequest when the passkey is already
        registered (to anyone); nothing is stored then.
        """
        if session.operation != "enroll" or session.user_id != user.id:
            raise InvalidGrant("The auth_session is not an enrollment session of this user.")
        parsed, verified, hardware_attested = self._verify_attestation(session, client, response)
        # Enrolling does not sign in with the new passkey: it has not been used yet.
        credential = _new_credential(
            parsed,
            verified,
            session,
            user_id=user.id,
            now=self.clock(),
            last_used_at=None,
            hardware_attested=hardware_attested,
        )
        try:
            self.users.add_credential(credential)
        except CredentialTaken:
            raise InvalidRequest("This passkey is already registered.") from None
        return credential

    def _verify_attestation(
        self, session: AuthSession, client: Client, response: Mapping[str, Any]
    ) -> tuple[RegistrationCredential, _VerifiedAttestation, bool]:
        """py_webauthn's verification of a ``navigator.credentials.create()`` answer for
        ``session``, under the session's attestation policy, and whether it proves a hardware
        key (see :attr:`Credential.hardware_attested`).

        Raises AttestationRefused when the policy refuses the authenticator or its attestation
        chain, InvalidGrant for any other failure."""
        try:
            parsed = parse_registration_credential_json(dict(response))
            _check_single_cbor_item(parsed.response.attestation_object)
            attestation = parse_attestation_object(parsed.response.attestation_object)
            attested = attestation.auth_data.attested_credential_data
            if attested is None:
                raise ValueError("authData has no attested credential data.")
        except _BAD_RESPONSE as error:
            raise _unverified(f"attestationObject is malformed: {error}") from None
        policy = self._policy(session)
        aaguid = str(uuid.UUID(bytes=attested.aaguid))
        roots = self.attestation.roots(policy, aaguid=aaguid)

        def verify(roots: list[bytes]) -> _VerifiedAttestation:
            return verify_registration_response(
                credential=parsed,
                expected_challenge=session.challenge,
                expected_rp_id=session.rp_id,
                expected_origin=allowed_origins(session, client, self.related_origins()),
                supported_pub_key_algs=ALGORITHMS,
                pem_root_certs_bytes_by_fmt={attestation.fmt: roots} if roots else None,
            )

        try:
            verified = verify(roots)
        except _BAD_RESPONSE as error:
            if roots and _verifies(lambda: verify([])):
                raise AttestationRefused(
                    "The attestation's certificate chain does not lead to a root the metadata "
                    "service lists for the authenticator."
                ) from None
            raise _unverified(f"The attestation does not verify: {error}") from None
        _check_credential_id(verified.credential_id)
        _check_top_origin(parsed.response.client_data_json, client)
        # With "none" attestation nothing has used the key yet: make sure it is one, or the user
        # would get a passkey that can never sign in. (py_webauthn's error quotes the key: the
        # description, which events and logs carry, does not.)
        try:
            decoded_public_key_to_cryptography(
                decode_credential_public_key(verified.credential_public_key)
            )
        except _BAD_RESPONSE:
            raise InvalidGrant("The passkey's public key is not a usable key.") from None
        hardware = self.attestation.admit(
            policy,
            aaguid=aaguid,
            fmt=attestation.fmt if isinstance(attestation.fmt, str) else "",
            x5c=attestation.att_stmt.x5c or (),
        )
        return (
            parsed,
            verified,
            hardware and verified.credential_device_type == CredentialDeviceType.SINGLE_DEVICE,
        )

    def _policy(self, session: AuthSession) -> AttestationPolicy:
        return self.attestation.policy(client_id=session.client_id, connection=session.connection)

    def _check_membership(self, session: AuthSession, user: User) -> None:
        org = session.organization_id
        if org is not None and not self.users.is_member(organization_id=org, user_id=user.id):
            raise AccessDenied("The user is not a member of the organization.")


def _verifies(verify: Callable[[], object]) -> bool:
    """Whether ``verify`` returns rather than raising a verification failure."""
    try:
        verify()
    except _BAD_RESPONSE:
        return False
    return True


def _check_single_cbor_item(data: bytes) -> None:
    """Raise ValueError unless ``data`` is one CBOR item and nothing more: py_webauthn (cbor2)
    decodes the first item of an attestationObject and ignores whatever follows it."""
    stream = io.BytesIO(data)
    try:
        cbor2.CBORDecoder(stream).decode()
    except cbor2.CBORError as error:
        raise ValueError(f"attestationObject is not valid CBOR: {error}") from None
    if stream.tell() != len(data):
        raise ValueError(f"attestationObject has {len(data) - stream.tell()} trailing bytes.")


def _unverified(detail: str) -> InvalidGrant:
    """The one refusal a caller reads for any passkey response that does not verify, whatever
    failed: it tells no one which origins are expected, what py_webauthn said or whether a
    credential exists. ``detail`` says what failed, for the log."""
    return InvalidGrant("The passkey could not be verified.", detail=detail)


def _check_top_origin(client_data_json: bytes, client: Client) -> None:
    """WebAuthn Level 3 §7.1 step 11, §7.2 step 15: a ceremony run in a cross-origin iframe
    counts only when the client lists the page around it (``topOrigin``) in
    ``allowed_top_origins``. Call it on verified client data (valid JSON)."""
    if not parse_client_data_json(client_data_json).cross_origin:
        return
    # py_webauthn 3 parses crossOrigin but not topOrigin: that one member is read here.
    top_origin = json.loads(client_data_json).get("topOrigin")
    if top_origin not in client.allowed_top_origins:
        raise _unverified(
            f"A cross-origin ceremony in a page of {top_origin!r}, "
            "which is not in the client's allowed_top_origins."
        )


def _check_credential_id(credential_id: bytes) -> None:
    if len(credential_id) > MAX_CREDENTIAL_ID_LENGTH:
        raise _unverified(f"The credential id is longer than {MAX_CREDENTIAL_ID_LENGTH} bytes.")


def _possibly_cloned(*, stored: int, reported: int) -> bool:
    """WebAuthn Level 3 §7.2 step 22: when either count is non-zero, a reported count not
    greater than the stored one signals a possible clone. Both zero is an authenticator that
    does not count (synced passkeys)."""
    return (stored > 0 or reported > 0) and reported <= stored


def _new_credential(
    parsed: RegistrationCredential,
    verified: _VerifiedAttestation,
    session: AuthSession,
    *,
    user_id: str,
    now: float,
    last_used_at: float | None,
    hardware_attested: bool,
) -> Credential:
    """The credential a verified attestation registers for ``user_id``, created ``now``."""
    return Credential(
        id=verified.credential_id,
        user_id=user_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        rp_id=session.rp_id,
        created_at=now,
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        backed_up=verified.credential_backed_up,
        transports=tuple(t.value for t in parsed.response.transports or ()),
        aaguid=verified.aaguid,
        last_used_at=last_used_at,
        hardware_attested=hardware_attested,
    )


def _connection_name(context: ValidationContext) -> str:
    assert context.connection is not None, "validation guarantees a connection"
    return context.connection.name
