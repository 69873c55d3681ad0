"""Client secrets: generation, hashing for storage, and constant-time verification.

Secrets we generate carry 256 bits of entropy, so a single SHA-256 is enough to make a stored
hash useless to a thief (no dictionary to run) while costing microseconds per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

HASH_PREFIX = "sha256$"


def generate_secret() -> str:
    """A new client secret (URL-safe text, 256 bits of entropy)."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The storable form of ``secret``: ``sha256$<hex digest>``."""
    return HASH_PREFIX + hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(presented: str, *, secret: str | None, secret_hash: str | None) -> bool:
    """Whether ``presented`` equals the stored secret or matches its hash, in constant time.

    Both sides are hashed before comparing, so not even the secret's length leaks.
    """
    expected = secret_hash if secret_hash is not None else secret and hash_secret(secret)
    if expected is None:
        return False
    return hmac.compare_digest(hash_secret(presented).encode(), expected.encode())
