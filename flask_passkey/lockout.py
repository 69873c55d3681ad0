"""Lockout after repeated failed token exchanges, per client IP and per credential id.

``PASSKEY_LOCKOUT`` (``"10 per 15 minutes"``, the ``limits`` syntax) is how many *failed*
exchanges at ``/oauth/token`` a client IP, and a credential (the ``rawId`` of
``authn_response``), may have per window. Once either has used them up, every further exchange
naming it is refused with 429 ``too_many_attempts`` (Auth0's code for its brute-force
protection; the per-IP rate limit answers ``too_many_requests``) and ``Retry-After``, before
any verification work (client secret, ``auth_session``, signature), until the window ends. A
successful exchange costs nothing.

The counters are the ``limits`` library's fixed windows on the per-IP limiter's storage, so with a
shared storage (Redis) the lockout holds across processes and hosts. Credential ids are hashed
before they become part of a key.
"""

from __future__ import annotations

import binascii
import hashlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import g
from limits import RateLimitItem
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from webauthn.helpers import base64url_to_bytes

from .errors import ConfigurationError, LockedOut, PasskeyError
from .ratelimit import check_limit

logger = logging.getLogger(__name__)

#: First part of every lockout counter's key (after the storage's own prefix).
KEY_PREFIX = "passkey-lockout"
_ATTEMPT = "passkey_lockout_attempt"  # flask.g attribute: the exchange being guarded
_NAMES = {"ip": "client IP", "credential": "passkey"}


@dataclass(frozen=True)
class Attempt:
    """What one token exchange is counted against."""

    client_ip: str
    #: SHA-256 (hex) of the credential id the exchange presents, if it presents one.
    credential: str | None = None

    def subjects(self) -> list[tuple[str, str]]:
        """``(kind, value)`` of each counter: the client IP, then the credential."""
        found = [("ip", self.client_ip)]
        if self.credential is not None:
            found.append(("credential", self.credential))
        return found


class Lockout:
    """Counts failed exchanges per subject and refuses subjects that used up their allowance."""

    def __init__(self, limits: Sequence[RateLimitItem], storage: Storage) -> None:
        self.limits = tuple(limits)
        self._windows = FixedWindowRateLimiter(storage)

    def check(self, attempt: Attempt) -> None:
        """Raise LockedOut (with the seconds until the latest window ends) if any subject of
        ``attempt`` is locked out."""
        resets = [
            self._windows.get_window_stats(item, *_key(subject)).reset_time
            for subject in attempt.subjects()
            for item in self.limits
            if not self._windows.test(item, *_key(subject))
        ]
        if resets:
            retry_after = max(1, math.ceil(max(resets) - time.time()))
            raise LockedOut(retry_after=retry_after)

    def failed(self, attempt: Attempt) -> list[str]:
        """Count a failed exchange against each subject; describe each lockout it started."""
        started = []
        for subject in attempt.subjects():
            for item in self.limits:
                within = self._windows.hit(item, *_key(subject))
                if within and not self._windows.test(item, *_key(subject)):
                    started.append(
                        f"Lockout of this {_NAMES[subject[0]]} started: {item.amount} failed "
                        f"token exchanges (limit {item})."
                    )
        return started


def create_lockout(
    limit: str | None, *, storage: Storage | None, storage_uri: str
) -> Lockout | None:
    """The lockout for ``PASSKEY_LOCKOUT`` (None when unset or empty), counting in ``storage``
    (the per-IP limiter's), else in a storage of its own at ``storage_uri``.

    Raises ConfigurationError for a limit string ``limits`` cannot parse.
    """
    if not limit:
        return None
    items = check_limit(limit, key="PASSKEY_LOCKOUT")
    if storage is None:
        own = storage_from_string(storage_uri, wrap_exceptions=True)
        if not isinstance(own, Storage):
            raise ConfigurationError(f"The lockout needs a synchronous storage, not {own!r}.")
        storage = own
    return Lockout(items, storage)


def guard_exchange(lockout: Lockout | None, *, client_ip: str, authn_response: Any) -> None:
    """Refuse a locked-out token exchange (LockedOut), and remember it for :func:`count_failure`.

    Call it once the body is read and before any verification work.
    """
    if lockout is None:
        return
    attempt = Attempt(client_ip, credential_key(authn_response))
    setattr(g, _ATTEMPT, attempt)
    lockout.check(attempt)


def count_failure(lockout: Lockout | None, error: PasskeyError) -> list[str]:
    """Count ``error`` against the exchange :func:`guard_exchange` let through, if it is the
    client's failure (4xx, but not 429); describe each lockout this starts.

    A storage that cannot be reached is logged and otherwise ignored: the client still gets
    the answer its request earned (and the next guard answers 503 while it lasts).
    """
    attempt: Attempt | None = g.pop(_ATTEMPT, None)
    if lockout is None or attempt is None or not 400 <= error.status < 500 or error.status == 429:
        return []
    try:
        return lockout.failed(attempt)
    except StorageError as storage_error:
        logger.warning("A failed token exchange could not be counted: %s", storage_error)
        return []


def credential_key(authn_response: Any) -> str | None:
    """SHA-256 (hex) of the credential id in ``authn_response`` (``rawId``, else ``id``).

    The id is decoded first, so that spellings of one id base64url decoding accepts alike
    (padding, stray characters) share one counter.
    """
    if not isinstance(authn_response, Mapping):
        return None
    raw_id = authn_response.get("rawId") or authn_response.get("id")
    if not isinstance(raw_id, str) or not raw_id:
        return None
    try:
        data = base64url_to_bytes(raw_id)
    except (binascii.Error, ValueError):
        data = raw_id.encode("utf-8", "surrogatepass")  # JSON allows lone surrogates
    return hashlib.sha256(data).hexdigest()


def _key(subject: tuple[str, str]) -> tuple[str, str, str]:
    return (KEY_PREFIX, *subject)
