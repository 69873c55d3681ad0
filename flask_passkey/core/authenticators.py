"""Which passkey provider made a passkey: its AAGUID mapped to a name ("iCloud Keychain",
"Google Password Manager", "1Password") and, where known, light and dark icons.

:class:`AuthenticatorNames` asks a chain of :class:`AuthenticatorSource` objects in order and
answers the first hit. The built-in source is :class:`AaguidFile`, a file in the format of the
community-maintained list github.com/passkeydeveloper/passkey-authenticator-aaguids
(``aaguid.json`` / ``combined_aaguid.json``) that the operator downloads and names with
``PASSKEY_AUTHENTICATOR_NAMES_FILE``; that list has no licence, so none of it ships here. A
FIDO Metadata Service (MDS3) source plugs in with :meth:`AuthenticatorNames.add_source`
(``first=True`` to take precedence over the file).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from flask_passkey.errors import ConfigurationError

#: The AAGUID of authenticators that do not tell (e.g. "none" attestation): no provider.
UNKNOWN_AAGUID = "00000000-0000-0000-0000-000000000000"
_AAGUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
#: Icons are ``data:`` URIs of images only (the list's SVGs): never a URL a page would fetch.
_ICON = re.compile(r"data:image/[a-z0-9.+-]+(;[a-z0-9=.+-]+)*;base64,[A-Za-z0-9+/=]+\Z")


@dataclass(frozen=True)
class AuthenticatorInfo:
    """A passkey provider: its display name and optional icons as ``data:image/...`` URIs."""

    name: str
    #: For light backgrounds.
    icon_light: str | None = None
    #: For dark backgrounds.
    icon_dark: str | None = None


class AuthenticatorSource(Protocol):
    """Anything that may know the provider of an AAGUID (lower-case, hyphenated)."""

    def authenticator(self, aaguid: str) -> AuthenticatorInfo | None: ...


class AuthenticatorNames:
    """The chain of sources, asked in order; an unknown or all-zero AAGUID has no provider."""

    def __init__(self, sources: list[AuthenticatorSource] | None = None) -> None:
        self.sources: list[AuthenticatorSource] = list(sources or ())

    def add_source(self, source: AuthenticatorSource, *, first: bool = False) -> None:
        """Ask ``source`` too: before the others with ``first`` (an authoritative MDS BLOB),
        else after them."""
        if first:
            self.sources.insert(0, source)
        else:
            self.sources.append(source)

    def authenticator_name(self, aaguid: str) -> AuthenticatorInfo | None:
        """The provider of ``aaguid`` according to the first source that knows it."""
        key = aaguid.lower()
        if key == UNKNOWN_AAGUID or not _AAGUID.match(key):
            return None
        for source in self.sources:
            found = source.authenticator(key)
            if found is not None:
                return found
        return None


class AaguidFile:
    """A JSON object ``{aaguid: {"name", "icon_light"?, "icon_dark"?}}`` read once.

    Entries without a usable name are skipped; an icon that is not a ``data:image`` URI is
    dropped. An empty object (how the community list announces its retirement) is valid.
    """

    def __init__(self, entries: Mapping[str, AuthenticatorInfo]) -> None:
        self.entries = dict(entries)

    @classmethod
    def load(cls, path: Path) -> AaguidFile:
        """Read ``path``; raises ConfigurationError when it is unreadable or not an object."""
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            reason = error.strerror or type(error).__name__
        except ValueError as error:
            reason = str(error)
        else:
            if isinstance(data, Mapping):
                return cls(dict(_entries(data)))
            reason = "its top level must be an object"
        raise ConfigurationError(f"PASSKEY_AUTHENTICATOR_NAMES_FILE: cannot read {path}: {reason}.")

    def authenticator(self, aaguid: str) -> AuthenticatorInfo | None:
        return self.entries.get(aaguid)


def _entries(data: Mapping[str, Any]) -> Iterator[tuple[str, AuthenticatorInfo]]:
    for aaguid, entry in data.items():
        if not isinstance(entry, Mapping):
            continue
        name = entry.get("name")
        if not isinstance(aaguid, str) or not isinstance(name, str) or not name.strip():
            continue
        yield (
            aaguid.lower(),
            AuthenticatorInfo(
                name=name.strip(),
                icon_light=data_image(entry.get("icon_light")),
                icon_dark=data_image(entry.get("icon_dark")),
            ),
        )


def data_image(value: Any) -> str | None:
    """``value`` if it is a ``data:image/...;base64`` URI, else None (an icon is never fetched)."""
    return value if isinstance(value, str) and _ICON.match(value) else None


def authenticator_names(*, names_file: str | None, root_path: str) -> AuthenticatorNames:
    """The chain for an app: the operator's file (relative to ``root_path``) when set."""
    if names_file is None:
        return AuthenticatorNames()
    return AuthenticatorNames([AaguidFile.load(Path(root_path, names_file))])
