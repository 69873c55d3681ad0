"""Every ``PASSKEY_*`` configuration key, its default, and the :class:`Settings` built from them.

The key of a setting is ``PASSKEY_`` + its field name in upper case. ``init_app`` fills every key
missing from ``app.config`` with its default (so the effective configuration is visible there),
checks types, and refuses any ``PASSKEY_`` key that neither this module nor a plugin declares.
Each mistake is one line of the :class:`ConfigurationError`, which names the key, never its
value (it may be a secret).
"""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field, fields
from typing import Any

from flask_passkey.errors import ConfigurationError

PREFIX = "PASSKEY_"


def _setting(default: Any, types: tuple[type, ...], doc: str) -> Any:
    return field(default=default, metadata={"types": types, "doc": doc})


@dataclass(frozen=True)
class Settings:
    """The extension's configuration for one app, checked once at ``init_app``."""

    tenant: Mapping[str, Any] | None = _setting(
        None,
        (dict,),
        "Tenant data (domains, clients, connections, organizations) as a mapping.",
    )
    tenant_file: str | None = _setting(
        None,
        (str,),
        "Path of a TOML or JSON file with the tenant data; used when TENANT is unset.",
    )
    url_prefix: str = _setting("", (str,), "Prefix for every endpoint of the blueprint.")
    challenge_timeout: int = _setting(
        60_000, (int,), "Lifetime of a challenge (auth_session) in milliseconds."
    )
    rate_limit: str = _setting(
        "60 per minute",
        (str,),
        "Per-IP limit on each passkey endpoint (flask-limiter syntax).",
    )
    rate_limit_enabled: bool = _setting(True, (bool,), "Turn the per-IP rate limit on or off.")
    rate_limit_storage_uri: str | None = _setting(
        None,
        (str,),
        "flask-limiter storage URI (redis://... to share across processes); unset = what a "
        "plugin provides (passkey_rate_limit_storage), else memory:// (in-process).",
    )
    lockout: str | None = _setting(
        None,
        (str,),
        "Failed token exchanges allowed per client IP before further attempts from it get 429 "
        "until the window ends (limits syntax, e.g. '10 per 15 minutes'); unset or '' = no "
        "lockout.",
    )
    rate_limit_key_prefix: str = _setting(
        "passkey",
        (str,),
        "Prefix of the limiter's keys; give each deployment sharing one storage its own.",
    )
    rate_limit_ipv6_prefix: int = _setting(
        64,
        (int,),
        "Prefix length (1-128) of the IPv6 network whose addresses share one rate-limit and "
        "lockout bucket; IPv4 (also IPv4-mapped IPv6) counts per address.",
    )
    trusted_proxies: int = _setting(
        0,
        (int,),
        "Number of reverse proxies in front of the app whose X-Forwarded-* are trusted.",
    )
    max_body_size: int = _setting(
        64 * 1024, (int,), "Largest request body accepted, in bytes; larger gets 413."
    )
    database_url: str | None = _setting(
        None,
        (str,),
        "SQLAlchemy URL of the user and session database; unset = SQLite file in the instance "
        "folder; 'memory://' = in-process stores that forget everything on restart.",
    )
    signing_keys: tuple[Any, ...] = _setting(
        (),
        (list, tuple),
        "RSA private keys (PEM text or JWK) that sign tokens, the last one active; empty = "
        "generate one and persist it in the user store.",
    )
    access_token_lifetime: int = _setting(86_400, (int,), "Access token lifetime in seconds.")
    id_token_lifetime: int = _setting(36_000, (int,), "ID token lifetime in seconds.")
    refresh_token_lifetime: int = _setting(
        2_592_000,
        (int,),
        "Absolute refresh token lifetime in seconds: a sign-in's refresh tokens all expire this "
        "long after it (rotation keeps the first expiry).",
    )
    refresh_token_idle_lifetime: int | None = _setting(
        1_296_000,
        (int,),
        "Inactivity lifetime of a refresh token in seconds: unused this long, it expires (each "
        "rotation starts it again, never past the absolute expiry); None = no inactivity expiry.",
    )
    refresh_token_reuse_interval: int = _setting(
        0,
        (int,),
        "Seconds after a refresh token's first use during which presenting it again gets a new "
        "token of its family instead of revoking the family (for clients that retry or refresh "
        "concurrently); 0 = any reuse revokes.",
    )
    audiences: tuple[str, ...] = _setting(
        (), (list, tuple), "API identifiers accepted as `audience` besides the userinfo one."
    )
    dpop_proof_leeway: int = _setting(
        60,
        (int,),
        "Seconds a DPoP proof's iat may be off the server's clock, either way (RFC 9449).",
    )
    allow_deleting_last_passkey: bool = _setting(
        False,
        (bool,),
        "Let users delete their last passkey through the My Account API (they can then no "
        "longer sign in with one).",
    )
    mds_blob: str | None = _setting(
        None,
        (str,),
        "Path of a FIDO Metadata Service (MDS3) BLOB the operator downloaded; its roots make "
        "attestations trusted (connections' attestation.require_trusted). Relative paths are "
        "relative to app.root_path; read at start-up.",
    )
    mds_root_cert: str | None = _setting(
        None,
        (str,),
        "Path of the FIDO root certificate (PEM or DER) that signs the MDS BLOB; required "
        "with MDS_BLOB.",
    )
    authenticator_names_file: str | None = _setting(
        None,
        (str,),
        "Path of a JSON file mapping AAGUIDs to passkey provider names and icons (the format of "
        "the community passkey-authenticator-aaguids list); unset = no names.",
    )
    plugins: tuple[Any, ...] = _setting(
        (),
        (list, tuple),
        "Extra plugins: objects or dotted import paths of modules/objects.",
    )
    disabled_plugins: tuple[str, ...] = _setting(
        (), (list, tuple), "Names of plugins (built-in or third-party) not to register."
    )
    load_entry_points: bool = _setting(
        True, (bool,), "Load plugins from the 'flask_passkey' entry-point group."
    )

    @classmethod
    def from_config(cls, config: MutableMapping[str, Any]) -> Settings:
        """Fill defaults into ``config``, check the type of each key and build Settings."""
        known = {PREFIX + f.name.upper(): f for f in fields(cls)}
        values: dict[str, Any] = {}
        problems: list[str] = []
        for key, spec in known.items():
            value = config.setdefault(key, spec.default)
            problem = _type_problem(value, spec.metadata["types"])
            if problem is not None:
                problems.append(f"{key}: {problem}")
            if isinstance(value, list):
                value = tuple(value)
            values[spec.name] = value
        if problems:
            raise ConfigurationError("Invalid flask-passkey configuration:", problems)
        settings = cls(**values)
        settings._check()
        return settings

    def _check(self) -> None:
        if self.challenge_timeout < 1000:
            raise ConfigurationError("PASSKEY_CHALLENGE_TIMEOUT is in milliseconds: use >= 1000.")
        if self.trusted_proxies < 0:
            raise ConfigurationError("PASSKEY_TRUSTED_PROXIES must be 0 or more.")
        if not 1 <= self.rate_limit_ipv6_prefix <= 128:
            raise ConfigurationError("PASSKEY_RATE_LIMIT_IPV6_PREFIX must be 1 to 128.")
        if self.max_body_size < 1024:
            raise ConfigurationError("PASSKEY_MAX_BODY_SIZE must be at least 1024 bytes.")
        for name in ("access_token_lifetime", "id_token_lifetime", "refresh_token_lifetime"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"PASSKEY_{name.upper()} must be at least 1 second.")
        if self.refresh_token_idle_lifetime is not None and self.refresh_token_idle_lifetime < 1:
            raise ConfigurationError(
                "PASSKEY_REFRESH_TOKEN_IDLE_LIFETIME must be at least 1 second, or None."
            )
        if self.refresh_token_reuse_interval < 0:
            raise ConfigurationError("PASSKEY_REFRESH_TOKEN_REUSE_INTERVAL must be 0 or more.")
        if not 1 <= self.dpop_proof_leeway <= 3600:
            raise ConfigurationError("PASSKEY_DPOP_PROOF_LEEWAY must be 1 to 3600 seconds.")
        if self.url_prefix and not self.url_prefix.startswith("/"):
            raise ConfigurationError("PASSKEY_URL_PREFIX must start with '/'.")
        if (self.mds_blob is None) != (self.mds_root_cert is None):
            raise ConfigurationError(
                "PASSKEY_MDS_BLOB and PASSKEY_MDS_ROOT_CERT go together: the BLOB is only "
                "trusted once its signature verifies against the FIDO root certificate."
            )
        database_problem = _database_url_problem(self.database_url)
        if database_problem is not None:
            raise ConfigurationError(f"PASSKEY_DATABASE_URL: {database_problem}")


def _type_problem(value: Any, types: tuple[type, ...]) -> str | None:
    """What is wrong with the type of ``value``, if anything; names types, never the value."""
    if value is None or (isinstance(value, types) and (bool in types or type(value) is not bool)):
        return None
    expected = " or ".join(t.__name__ for t in types)
    hint = ' (put it in a list: ["..."])' if list in types and isinstance(value, str) else ""
    return f"must be {expected}, not {type(value).__name__}{hint}."


#: The URL the SQL store serves PostgreSQL on: psycopg 3, which the ``postgres`` extra installs.
_POSTGRES_URL = "postgresql+psycopg://user:password@host:5432/database"


def _database_url_problem(url: str | None) -> str | None:
    """Why a PostgreSQL URL cannot work before any store tries it, with the URL to write
    instead; says nothing of the URL itself, whose password is a secret."""
    scheme, separator, _ = (url or "").partition("://")
    dialect, plus, _ = scheme.lower().partition("+")
    if not separator:
        return None
    if dialect == "postgres":
        return (
            f"SQLAlchemy knows no {scheme}:// URLs (Heroku's spelling): write {_POSTGRES_URL} "
            "(psycopg 3, installed by flask-passkey[postgres])."
        )
    if dialect == "postgresql" and not plus and importlib.util.find_spec("psycopg2") is None:
        return (
            "postgresql:// names no driver, so SQLAlchemy would use psycopg2, which is not "
            f"installed: write {_POSTGRES_URL} (psycopg 3, installed by flask-passkey[postgres])."
        )
    return None


def check_unknown_keys(config: Mapping[str, Any], *, plugin_keys: Iterable[str]) -> None:
    """Refuse ``PASSKEY_*`` keys that neither Settings nor a plugin declares (likely typos)."""
    allowed = {PREFIX + f.name.upper() for f in fields(Settings)} | set(plugin_keys)
    unknown = sorted(key for key in config if key.startswith(PREFIX) and key not in allowed)
    if unknown:
        raise ConfigurationError(
            "Unknown configuration keys:",
            [f"{key}: {_unknown_key_hint(key, allowed)}" for key in unknown],
        )


def _unknown_key_hint(key: str, allowed: Iterable[str]) -> str:
    """The "did you mean" of an unknown key: the known key closest to it (compared without the
    common prefix), if any is close."""
    names = {name.removeprefix(PREFIX): name for name in allowed if name.startswith(PREFIX)}
    close = difflib.get_close_matches(key.removeprefix(PREFIX), sorted(names), n=1)
    if close:
        return f"unknown key; did you mean {names[close[0]]}?"
    return (
        "unknown key: neither flask-passkey nor a registered plugin declares it "
        "(docs/configuration.md lists the keys)."
    )


def documented_settings() -> dict[str, tuple[Any, str]]:
    """Each configuration key with its default and one-line description (for docs and tests)."""
    return {PREFIX + f.name.upper(): (f.default, f.metadata["doc"]) for f in fields(Settings)}
