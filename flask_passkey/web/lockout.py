"""Lockout after repeated failed token exchanges from one client IP (or IPv6 network).

``PASSKEY_LOCKOUT`` (``"10 per 15 minutes"``, the ``limits`` syntax) is how many *failed*
exchanges at ``/oauth/token`` a client may have per window. The client is its rate-limit bucket
(:func:`~flask_passkey.web.proxy.client_bucket`: an IPv4 address, or the
``PASSKEY_RATE_LIMIT_IPV6_PREFIX`` network of an IPv6 one). Once it has used them up, every
further exchange from it is refused with 429 ``too_many_attempts`` (Auth0's code for its
brute-force protection; the per-IP rate limit answers ``too_many_requests``) and ``Retry-After``,
before any verification work (client secret, ``auth_session``, signature), until the window
ends. A successful exchange costs nothing.

What it protects against: guessing what *can* be guessed at the token endpoint (``auth_session``
ids, refresh tokens, client secrets) and probing for credential ids, from one address. There is
deliberately no counter per passkey: a passkey's signature cannot be guessed, so such a counter
would stop no attack, while anyone who knows a credential id (it is not a secret) could spend
its allowance from many addresses and lock its owner out. Only a client's own failures count
against it, so an attacker can lock out no address but their own (and those sharing it: a NAT,
or the IPv6 network).

The counters are the ``limits`` library's fixed windows on the per-IP limiter's storage, under
``PASSKEY_RATE_LIMIT_KEY_PREFIX``, so with a shared storage (Redis) the lockout holds across
processes and hosts, and deployments sharing one storage keep theirs apart.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

from flask import g
from limits import RateLimitItem
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from flask_passkey.errors import ConfigurationError, LockedOut, PasskeyError
from flask_passkey.web.proxy import client_bucket
from flask_passkey.web.ratelimit import check_limit

logger = logging.getLogger(__name__)

#: Part of every lockout counter's key (after the storage's and the configured prefix).
KEY_PREFIX = "passkey-lockout"
_ATTEMPT = "passkey_lockout_attempt"  # flask.g attribute: the client IP of the guarded exchange


class Lockout:
    """Counts failed exchanges per client bucket and refuses buckets that used up their
    allowance."""

    def __init__(
        self,
        limits: Sequence[RateLimitItem],
        storage: Storage,
        *,
        key_prefix: str,
        ipv6_prefix: int,
    ) -> None:
        self.limits = tuple(limits)
        self._windows = FixedWindowRateLimiter(storage)
        self._key_prefix = key_prefix
        self._ipv6_prefix = ipv6_prefix

    def check(self, client_ip: str) -> None:
        """Raise LockedOut (with the seconds until the latest window ends) if the bucket of
        ``client_ip`` is locked out."""
        key = self._key(client_ip)
        resets = [
            self._windows.get_window_stats(item, *key).reset_time
            for item in self.limits
            if not self._windows.test(item, *key)
        ]
        if resets:
            retry_after = max(1, math.ceil(max(resets) - time.time()))
            raise LockedOut(retry_after=retry_after)

    def failed(self, client_ip: str) -> list[str]:
        """Count a failed exchange from ``client_ip``; describe each lockout it started."""
        key = self._key(client_ip)
        started = []
        for item in self.limits:
            within = self._windows.hit(item, *key)
            if within and not self._windows.test(item, *key):
                started.append(
                    f"Lockout of this client IP started: {item.amount} failed token exchanges "
                    f"(limit {item})."
                )
        return started

    def _key(self, client_ip: str) -> tuple[str, str, str]:
        return (self._key_prefix, KEY_PREFIX, client_bucket(client_ip, self._ipv6_prefix))


def create_lockout(
    limit: str | None,
    *,
    storage: Storage | None,
    storage_uri: str,
    key_prefix: str,
    ipv6_prefix: int,
) -> Lockout | None:
    """The lockout for ``PASSKEY_LOCKOUT`` (None when unset or empty), counting in ``storage``
    (the per-IP limiter's), else in a storage of its own at ``storage_uri``, under
    ``key_prefix`` (``PASSKEY_RATE_LIMIT_KEY_PREFIX``).

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
    return Lockout(items, storage, key_prefix=key_prefix, ipv6_prefix=ipv6_prefix)


def guard_exchange(lockout: Lockout | None, *, client_ip: str) -> None:
    """Refuse a locked-out token exchange (LockedOut), and remember it for :func:`count_failure`.

    Call it once the body is read and before any verification work.
    """
    if lockout is None:
        return
    setattr(g, _ATTEMPT, client_ip)
    lockout.check(client_ip)


def count_failure(lockout: Lockout | None, error: PasskeyError) -> list[str]:
    """Count ``error`` against the exchange :func:`guard_exchange` let through, if it is the
    client's failure (4xx, but not 429); describe each lockout this starts.

    A storage that cannot be reached is logged and otherwise ignored: the client still gets
    the answer its request earned (and the next guard answers 503 while it lasts).
    """
    client_ip: str | None = g.pop(_ATTEMPT, None)
    if lockout is None or client_ip is None or not 400 <= error.status < 500 or error.status == 429:
        return []
    try:
        return lockout.failed(client_ip)
    except StorageError as storage_error:
        logger.warning("A failed token exchange could not be counted: %s", storage_error)
        return []
