"""Who and where a request comes from behind reverse proxies: the client address (and the bucket
it counts in for the rate limit and the lockout) and the host name.

``X-Forwarded-For`` and ``X-Forwarded-Host`` are read only with ``PASSKEY_TRUSTED_PROXIES`` above
zero, and then only the entry the outermost trusted proxy wrote.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable

from flask import request

from flask_passkey.errors import InvalidRequest

#: The error description of a Host (or X-Forwarded-Host) that is not ``name[:port]``.
MALFORMED_HOST = "The Host header is malformed."
#: A Host value: a DNS name or IPv4 address (or a bracketed IPv6 one), and an optional port.
_HOST = re.compile(
    r"(?P<name>[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{1,5}))?", re.ASCII | re.IGNORECASE
)
#: RFC 1035 §2.3.4: a label is at most 63 octets, a name at most 253 written out.
_MAX_LABEL, _MAX_NAME = 63, 253


def forwarded_value(header: str | None, trusted_hops: int) -> str | None:
    """The value the outermost trusted proxy saw in an ``X-Forwarded-*`` header.

    Each proxy appends what it received, so with ``trusted_hops`` proxies the trustworthy
    entry is the ``trusted_hops``-th from the right; anything left of it is client-supplied.
    """
    if not header or trusted_hops <= 0:
        return None
    values = [value.strip() for value in header.split(",")]
    if len(values) < trusted_hops:
        return None
    return values[-trusted_hops] or None


def client_address_func(trusted_proxies: int) -> Callable[[], str]:
    """A flask-limiter key function: the client IP, from X-Forwarded-For only behind proxies."""
    if trusted_proxies <= 0:

        def remote_address() -> str:
            return request.remote_addr or "unknown"

        return remote_address

    def client_address() -> str:
        forwarded = forwarded_value(request.headers.get("X-Forwarded-For"), trusted_proxies)
        return forwarded or request.remote_addr or "unknown"

    return client_address


@functools.lru_cache(maxsize=4096)  # parsing an address costs more than the limiter's hit
def client_bucket(address: str, ipv6_prefix: int) -> str:
    """The bucket a client address counts in for the rate limit and the lockout.

    An IPv4 address is its own bucket, also when written IPv4-mapped (``::ffff:a.b.c.d``); an
    IPv6 address counts in its ``/ipv6_prefix`` network (one /64 is one subscriber, who
    otherwise gets 2^64 buckets); anything else (``"unknown"``) as given.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    host_bits = 128 - ipv6_prefix
    return str(ipaddress.IPv6Network((int(ip) >> host_bits << host_bits, ipv6_prefix)))


def client_bucket_func(trusted_proxies: int, ipv6_prefix: int) -> Callable[[], str]:
    """A flask-limiter key function: the client's :func:`client_bucket`."""
    address = client_address_func(trusted_proxies)

    def bucket() -> str:
        return client_bucket(address(), ipv6_prefix)

    return bucket


def request_host(trusted_proxies: int) -> tuple[str, int | None]:
    """The request's host name (lower case, one trailing dot dropped) and port.

    Anything but ``name[:port]`` is refused, whether from Host or X-Forwarded-Host: user info,
    a path, a second port, non-ASCII look-alikes, an empty or out-of-range port.
    """
    forwarded = (
        forwarded_value(request.headers.get("X-Forwarded-Host"), trusted_proxies)
        if trusted_proxies > 0
        else None
    )
    raw = forwarded or request.host
    if not raw:
        raise InvalidRequest("The Host header is missing.")
    match = _HOST.fullmatch(raw)
    port = int(match["port"]) if match and match["port"] else None
    if match is None or (port is not None and not 0 < port < 65536):
        raise InvalidRequest(MALFORMED_HOST)
    name = match["name"].lower().removesuffix(".")
    if len(name) > _MAX_NAME or any(len(label) > _MAX_LABEL for label in name.split(".")):
        raise InvalidRequest(MALFORMED_HOST)
    return name, port
