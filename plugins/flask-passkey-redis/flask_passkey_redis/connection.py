"""One ``PASSKEY_REDIS_URL``, two readers: a redis-py client and a ``limits`` storage URI.

URL forms (the ``limits`` library's, so the same string serves both):

- ``redis://[[user]:password@]host[:port][/db]`` and ``rediss://...`` (TLS): one server;
- ``unix:///path/to/redis.sock?db=N`` (or ``redis+unix://``): one server on a Unix socket;
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name``: the master
  of ``service_name`` as the sentinels report it (the password is used for the sentinels and the
  master, as ``limits`` does);
- ``redis+cluster://[[user]:password@]host:port[,host:port...]``: a Redis Cluster, found from
  these startup nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from urllib.parse import unquote, urlsplit, urlunsplit

import redis
from flask_passkey import ConfigurationError
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

#: A client the session store can send ``SET`` and ``GETDEL`` to.
RedisClient: TypeAlias = "redis.Redis | RedisCluster"

SINGLE_SERVER_SCHEMES = ("redis", "rediss", "unix", "redis+unix")
SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"
SCHEMES = (*SINGLE_SERVER_SCHEMES, SENTINEL_SCHEME, CLUSTER_SCHEME)

#: An idle pooled connection is PINGed before reuse after this many seconds (catches
#: connections a firewall or load balancer dropped silently); a busy one never is.
HEALTH_CHECK_INTERVAL = 30


@dataclass(frozen=True)
class Location:
    """What a ``PASSKEY_REDIS_URL`` names, parsed once at ``init_app``."""

    url: str = field(repr=False)
    scheme: str
    nodes: tuple[tuple[str, int], ...] = ()
    service_name: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_url(url: str) -> Location:
    """Check ``url`` and take it apart; raises ConfigurationError for a form we cannot serve."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise ValueError(f"the scheme must be one of {', '.join(s + '://' for s in SCHEMES)}")
        if scheme in SINGLE_SERVER_SCHEMES:
            # raises ValueError on a bad URL
            redis.connection.parse_url(_redis_py_url(url))  # type: ignore[no-untyped-call]
            return Location(url=url, scheme=scheme)
        nodes = tuple(_node(text) for text in parts.netloc.rpartition("@")[2].split(","))
        service_name = parts.path.strip("/") or None
        if scheme == SENTINEL_SCHEME and (service_name is None or "/" in service_name):
            raise ValueError("name the master's service: redis+sentinel://host:port/service_name")
        if scheme == CLUSTER_SCHEME and service_name is not None:
            raise ValueError("a cluster URL has no path (a cluster has only database 0)")
        return Location(
            url=url,
            scheme=scheme,
            nodes=nodes,
            service_name=service_name,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )
    except ValueError as error:
        raise ConfigurationError(f"Invalid PASSKEY_REDIS_URL {_redacted(url)!r}: {error}") from None


def client_factory(location: Location, *, socket_timeout: float) -> Callable[[], RedisClient]:
    """A function that makes the session store's client.

    Every connection gets ``socket_timeout`` for connecting and for each reply, a health check
    after :data:`HEALTH_CHECK_INTERVAL` idle seconds, and one retry on a broken connection (so
    the first command after a Redis restart reconnects instead of failing). A command that timed
    out is not retried: it may have run.
    """
    retry = Retry(ExponentialBackoff(cap=0.25, base=0.05), 1, (redis.ConnectionError,))
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "health_check_interval": HEALTH_CHECK_INTERVAL,
        "retry": retry,
        "client_name": "flask-passkey",
    }
    if location.scheme in SINGLE_SERVER_SCHEMES:
        url = _redis_py_url(location.url)
        return lambda: redis.Redis.from_url(url, **options)
    auth: dict[str, Any] = {"username": location.username, "password": location.password}
    if location.scheme == SENTINEL_SCHEME:
        assert location.service_name is not None
        service_name = location.service_name
        # Without its own retry, each sentinel client would use redis-py's default of 10.
        sentinel_options = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_timeout,
            "retry": retry,
            **auth,
        }

        def sentinel_master() -> RedisClient:
            sentinel = Sentinel(list(location.nodes), sentinel_kwargs=sentinel_options)
            master: redis.Redis = sentinel.master_for(
                service_name, redis_class=redis.Redis, **auth, **options
            )
            return master

        return sentinel_master
    # For a cluster, ``retry`` is the client's own: one more try, on a fresh slot map, after a
    # connection error, a timeout or CLUSTERDOWN.
    nodes = [
        ClusterNode(host, port)  # type: ignore[no-untyped-call]
        for host, port in location.nodes
    ]
    return lambda: RedisCluster(startup_nodes=nodes, **auth, **options)


def _redis_py_url(url: str) -> str:
    """redis-py spells the Unix-socket scheme ``unix://``; ``limits`` spells it ``redis+unix://``."""
    scheme, separator, rest = url.partition("://")
    return ("unix" if scheme.lower() == "redis+unix" else scheme) + separator + rest


def _node(text: str) -> tuple[str, int]:
    parts = urlsplit("//" + text.strip())
    if not parts.hostname or parts.port is None:
        raise ValueError(f"missing host or port in {text.strip()!r}")
    return parts.hostname, parts.port


def _redacted(url: str) -> str:
    """``url`` without its password, for error messages and logs."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
