"""Import paths from before the modules moved into layers, kept working with a warning.

``import flask_passkey.sessions`` (or ``from flask_passkey.context import ...``) still gives the
module, now at its new path (:data:`MOVED`), and a :class:`DeprecationWarning` naming that path.
The alias is the module itself, not a copy, so patching through either name patches both. Type
checkers only know the new paths: :mod:`flask_passkey` exports what host apps and plugins need.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

#: Old module path -> where it lives now.
MOVED = {
    f"flask_passkey.{old}": f"flask_passkey.{new}"
    for old, new in {
        "access": "core.access",
        "account": "core.my_account",
        "attestation": "core.attestation",
        "authenticators": "core.authenticators",
        "ceremony": "core.ceremony",
        "client_secrets": "core.client_secrets",
        "clients": "core.clients",
        "context": "core.passkey_request",
        "dpop": "core.dpop",
        "grants": "core.grants",
        "refreshed": "core.refreshed",
        "tokens": "core.tokens",
        "validation": "core.validation",
        "sessions": "stores.sessions",
        "users": "stores.users",
        "migrations": "stores.migrations",
        "store_contract": "testing.store_contract",
        "default_plugins": "builtins",
        "default_plugins.memory_store": "stores.memory",
        "default_plugins.sql_store": "stores.sql",
        "default_plugins.sql_schema": "stores.sql_schema",
        "default_plugins.tenant_config": "builtins.tenant_config",
        "default_plugins.validation_steps": "builtins.validation_steps",
        "default_plugins.event_log": "builtins.event_log",
        "default_plugins.tenant_log": "builtins.tenant_log",
        "http": "web.blueprint",
        "views": "web.views",
        "account_views": "web.account_views",
        "discovery_views": "web.discovery_views",
        "userinfo_views": "web.userinfo_views",
        "schemas": "web.schemas",
        "openapi": "web.openapi",
        "ratelimit": "web.ratelimit",
        "lockout": "web.lockout",
        "cors": "web.cors",
        "request_ids": "web.request_ids",
        "doctor": "cli.doctor",
    }.items()
}


class _Alias(importlib.abc.Loader):
    def __init__(self, new_name: str) -> None:
        self.new_name = new_name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.new_name}; import it from there "
            "(or the name from flask_passkey itself)",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(self.new_name)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module at its new path is already loaded."""


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the old module paths of :data:`MOVED`; no module exists at any of them."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new_name = MOVED.get(fullname)
        if new_name is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(new_name))


def install() -> None:
    """Put the finder first on :data:`sys.meta_path` (once).

    First, because the path finder would otherwise load ``flask_passkey/builtins/tenant_log.py``
    a second time as ``flask_passkey.default_plugins.tenant_log`` (the old package's alias has
    the new package's ``__path__``). It answers only the names of :data:`MOVED`.
    """
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())
