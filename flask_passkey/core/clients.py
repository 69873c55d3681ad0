"""Clients kept in a store (``flask passkey clients add``): the contract and a short cache.

Clients in the tenant configuration (``PASSKEY_TENANT``/``PASSKEY_TENANT_FILE``) are read once at
``init_app``; clients in a store can change while the app runs. A request must not pay a
database round trip to find its client, so each process keeps every stored client in a
:class:`ClientCache` it re-reads at most every :data:`CLIENT_CACHE_SECONDS`: a change made in
another process (the CLI, another worker) reaches this one within that delay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from flask_passkey.core.refreshed import Refreshed
from flask_passkey.models import Client

#: How long a process serves its copy of the stored clients before reading them again: the
#: longest a new client, a rotated secret or a removed client takes to reach every worker.
CLIENT_CACHE_SECONDS = 30.0


class ClientTaken(Exception):
    """``add_client`` found a client with the same ``client_id`` already stored."""


@runtime_checkable
class ClientStore(Protocol):
    """Clients an operator registers at run time. Secrets are stored only as their hash.

    Implementations raise :class:`flask_passkey.errors.BackendUnavailable` when their backend
    cannot be reached.
    """

    def list_clients(self) -> list[Client]:
        """Every stored client, ordered by ``client_id``, read from the store (not a cache)."""

    def add_client(self, client: Client) -> None:
        """Store a new client. Raises ClientTaken when its ``client_id`` is stored already, and
        ValueError when it carries a plain ``client_secret`` (store its hash instead) or an
        ``attestation`` policy (stored clients use their connection's)."""

    def set_client_secret_hash(self, client_id: str, secret_hash: str) -> bool:
        """Replace the client's secret hash (the old secret stops working); False when no
        such client is stored."""

    def delete_client(self, client_id: str) -> bool:
        """Remove the client; False when no such client is stored."""

    def cached_clients(self) -> ClientCache:
        """This process's cache of the stored clients, which the writes above refresh."""


class ClientCache:
    """Every stored client, loaded at once and re-read at most every ``ttl`` seconds.

    Loading them all (clients are few) answers unknown ``client_id`` values from memory too, so
    a flood of made-up ids costs the database nothing.
    """

    def __init__(
        self,
        load: Callable[[], list[Client]],
        *,
        ttl: float = CLIENT_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = Refreshed(
            lambda: {client.client_id: client for client in load()}, ttl=ttl, clock=clock
        )

    def get(self, client_id: str) -> Client | None:
        """The stored client with ``client_id``, as of at most ``ttl`` seconds ago."""
        return self._clients.get().get(client_id)

    def all(self) -> list[Client]:
        """Every stored client, as of at most ``ttl`` seconds ago."""
        return list(self._clients.get().values())

    def invalidate(self) -> None:
        """Read the store again on the next lookup (after a write in this process)."""
        self._clients.invalidate()
