"""The error family: every wire error code and its HTTP status live here and nowhere else.

A :class:`PasskeyError` renders itself as the body ``{"error", "error_description"}`` and names
the headers it needs (:meth:`PasskeyError.headers`); the blueprint turns any of them into a
JSON response with :attr:`PasskeyError.status`, adding the request id. Descriptions are short
and stable; anything more goes in ``detail``, which only the log sees. Plugins reject a request
by raising one of these (or a subclass of their own).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar, Literal


class ConfigurationError(Exception):
    """A deployment mistake found at ``init_app`` (never at the first request).

    ``problems`` holds one line per mistake, each starting with where it is (a key such as
    ``PASSKEY_RATE_LIMIT``, or a path in the tenant data such as
    ``clients[0].web_origins[1]``); without any, the summary is the only problem. ``str()`` is
    the summary, then the problems one per indented line: what a traceback ends with, and what
    ``flask passkey doctor`` prints line by line. No message may contain the value of a
    setting, which can be a secret (a signing key, a client secret, a database password).
    """

    def __init__(self, summary: str, problems: Iterable[str] = ()) -> None:
        self.summary = summary
        self.problems: tuple[str, ...] = tuple(problems) or (summary,)
        super().__init__(summary)

    def __str__(self) -> str:
        if self.problems == (self.summary,):
            return self.summary
        return "\n".join([self.summary, *(f"  {problem}" for problem in self.problems)])


class TenantConfigurationError(ConfigurationError):
    """The tenant data (``PASSKEY_TENANT``/``PASSKEY_TENANT_FILE``) is invalid: each problem is
    a path in it and what is wrong there."""


class PasskeyError(Exception):
    """A request the API refuses, with its OAuth-style wire code and HTTP status."""

    error: ClassVar[str] = "invalid_request"
    status: ClassVar[int] = 400
    default_description: ClassVar[str] = "The request is invalid."

    def __init__(self, description: str | None = None, *, detail: str | None = None) -> None:
        self.description = description or self.default_description
        #: What the operator should know and the caller must not (which origin was expected,
        #: what the WebAuthn library said): logged with the request id, never sent.
        self.detail = detail
        super().__init__(self.description)

    def to_dict(self) -> dict[str, str]:
        """The JSON body sent to the client."""
        return {"error": self.error, "error_description": self.description}

    def headers(self, *, authorization_header: bool = False) -> dict[str, str]:
        """The response headers this error needs (``Retry-After``, ``Allow``,
        ``WWW-Authenticate``...), beyond those every error response carries. Subclasses with
        headers of their own override it.

        ``authorization_header``: the request sent an ``Authorization`` header (a client that
        authenticated with HTTP Basic gets a ``Basic`` challenge back).
        """
        return {}


class InvalidRequest(PasskeyError):
    error = "invalid_request"
    status = 400


class PayloadTooLarge(PasskeyError):
    error = "invalid_request"
    status = 413
    default_description = "The request body is too large."


class UnauthorizedClient(PasskeyError):
    error = "unauthorized_client"
    status = 400
    default_description = "The client is not allowed to use passkeys."


class InvalidGrant(PasskeyError):
    error = "invalid_grant"
    status = 400
    default_description = "The grant is invalid, expired or already used."


class AttestationRefused(InvalidGrant):
    """An authenticator or attestation the ceremony's policy refuses
    (:mod:`flask_passkey.core.attestation`): reported to ``passkey_event`` as ``event``
    (``attestation_refused`` or ``aaguid_denied``)."""

    default_description = "The authenticator's attestation is not accepted."

    def __init__(
        self,
        description: str | None = None,
        *,
        event: Literal["attestation_refused", "aaguid_denied"] = "attestation_refused",
    ) -> None:
        self.event: Literal["attestation_refused", "aaguid_denied"] = event
        super().__init__(description)


class EnrollmentAttestationRefused(InvalidRequest):
    """:class:`AttestationRefused` in the My Account API, whose code for a bad body is
    ``invalid_request``; reported under the same event."""

    def __init__(self, refused: AttestationRefused) -> None:
        self.event = refused.event
        super().__init__(refused.description)


class PossibleClone(InvalidGrant):
    """A verified assertion whose signature counter did not grow past a non-zero stored one
    (WebAuthn Level 3 §7.2 step 22): the passkey may have been cloned. Reported to
    ``passkey_event`` as ``possible_clone`` with the credential's owner."""

    default_description = "The passkey's signature counter did not increase."

    def __init__(self, *, user_id: str) -> None:
        #: The owner of the credential that may have been cloned.
        self.user_id = user_id
        super().__init__()


class InvalidScope(PasskeyError):
    error = "invalid_scope"
    status = 400
    default_description = "The requested scope exceeds the granted scope."


class UnsupportedGrantType(PasskeyError):
    error = "unsupported_grant_type"
    status = 400
    default_description = "The grant type is not supported."


class InvalidClient(PasskeyError):
    error = "invalid_client"
    status = 401
    default_description = "Client authentication failed."

    def headers(self, *, authorization_header: bool = False) -> dict[str, str]:
        """RFC 6749 §5.2: a client that tried the ``Authorization`` header gets a challenge."""
        return {"WWW-Authenticate": 'Basic realm="passkey"'} if authorization_header else {}


class InvalidToken(PasskeyError):
    """RFC 6750: the bearer access token is missing, malformed, expired, revoked or for another
    audience.

    With ``dpop_algs`` (the request used the ``DPoP`` scheme, or the token is DPoP-bound) the
    challenge is RFC 9449's ``DPoP`` one, naming the proof algorithms accepted.
    """

    error = "invalid_token"
    status = 401
    default_description = "The access token is missing, invalid or expired."

    def __init__(
        self, description: str | None = None, *, dpop_algs: Sequence[str] | None = None
    ) -> None:
        self.dpop_algs = tuple(dpop_algs) if dpop_algs is not None else None
        super().__init__(description)

    def headers(self, *, authorization_header: bool = False) -> dict[str, str]:
        """The ``Bearer`` challenge (RFC 6750 §3), or the ``DPoP`` one (RFC 9449 §7.1)."""
        described = f'error="{self.error}", error_description="{_quoted(self.description)}"'
        if self.dpop_algs is None:
            return {"WWW-Authenticate": f"Bearer {described}"}
        return {"WWW-Authenticate": f'DPoP {described}, algs="{" ".join(self.dpop_algs)}"'}


class InvalidDPoPProof(PasskeyError):
    """RFC 9449: the ``DPoP`` proof of a token request is missing a part, malformed, wrongly
    signed, for another request, stale or replayed."""

    error = "invalid_dpop_proof"
    status = 400
    default_description = "The DPoP proof is invalid."


class InvalidResourceDPoPProof(InvalidToken):
    """RFC 9449 §7.1: the same, on a request to a protected resource (``/userinfo``, My
    Account): 401 with a ``DPoP`` challenge."""

    error = "invalid_dpop_proof"
    default_description = "The DPoP proof is invalid."


class InsufficientScope(PasskeyError):
    """RFC 6750: the access token is valid but lacks the scope the request needs."""

    error = "insufficient_scope"
    status = 403
    default_description = "The access token lacks the scope this request needs."

    def __init__(self, scope: str, description: str | None = None) -> None:
        self.scope = scope
        super().__init__(description or f"The access token lacks the scope {scope}.")

    def headers(self, *, authorization_header: bool = False) -> dict[str, str]:
        """The ``Bearer`` challenge naming the scope the request needs (RFC 6750 §3.1)."""
        return {"WWW-Authenticate": f'Bearer error="{self.error}", scope="{_quoted(self.scope)}"'}


class AccessDenied(PasskeyError):
    error = "access_denied"
    status = 403
    default_description = "Access denied."


class NotFound(PasskeyError):
    error = "not_found"
    status = 404
    default_description = "Passkeys are not enabled for this tenant."


class MethodNotAllowed(PasskeyError):
    error = "invalid_request"
    status = 405
    default_description = "The HTTP method is not allowed on this endpoint."

    def __init__(self, description: str | None = None, *, allow: Sequence[str] = ("POST",)) -> None:
        #: The methods the endpoint does answer (the ``Allow`` header).
        self.allow = tuple(allow)
        super().__init__(description)

    def headers(self, *, authorization_header: bool = False) -> dict[str, str]:
        return {"Allow": ", ".join(self.allow)}


class Conflict(PasskeyError):
    """The request contradicts the resource's current state (e.g. deleting the last passkey)."""

    error = "conflict"
    status = 409
    default_description = "The request conflicts with the current state of the resource."


class TooManyRequests(PasskeyError):
    error = "too_many_requests"
    status = 429
    default_description = "Too many requests. Try again later."


class LockedOut(TooManyRequests):
    """Too many failed token exchanges from this client IP (lockout);
    Auth0's code for its brute-force protection."""

    error = "too_many_attempts"
    default_description = "Too many failed attempts. Try again later."

    def __init__(self, description: str | None = None, *, retry_after: int) -> None:
        #: Seconds until the lockout ends (the ``Retry-After`` header).
        self.retry_after = retry_after
        super().__init__(description)

    def headers(self, *, authorization_header: bool = False) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RefreshTokenReused(InvalidGrant):
    """A spent refresh token came back (outside the reuse interval): its family is revoked.
    Reported to ``passkey_event`` as ``refresh_token_reused``; the client sees the
    ``invalid_grant`` of any dead refresh token."""


class ServerError(PasskeyError):
    """A failure of ours, not the request's (Flask logs the exception behind it)."""

    error = "server_error"
    status = 500
    default_description = "Internal server error."


class TemporarilyUnavailable(PasskeyError):
    error = "temporarily_unavailable"
    status = 503
    default_description = "The service is temporarily unavailable. Try again later."


def _quoted(text: str) -> str:
    """``text`` on one line, as the inside of an RFC 9110 quoted-string (a header parameter)."""
    return " ".join(text.split()).replace("\\", "\\\\").replace('"', '\\"')


class BackendUnavailable(Exception):
    """Raised by a store whose backend cannot be reached; rendered as 503.

    Stores wrap their driver's connection errors in this so the Flask layer needs to know no
    driver.
    """
