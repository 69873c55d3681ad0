"""One pluggy PluginManager per app: built-ins, entry points, PASSKEY_PLUGINS, blocked names."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

import pluggy

from flask_passkey import hookspecs
from flask_passkey.builtins.event_log import EventLog
from flask_passkey.builtins.tenant_log import TenantLog
from flask_passkey.builtins.validation_steps import STEPS
from flask_passkey.config import Settings
from flask_passkey.errors import ConfigurationError
from flask_passkey.stores.memory import MemoryStorePlugin
from flask_passkey.stores.sql import SqlStorePlugin


def default_plugins() -> dict[str, object]:
    """Built-in plugins by the name under which they are registered (and can be blocked)."""
    # Both stores are trylast, and pluggy calls the *earlier* registered of two trylast
    # implementations first: the SQL store, which defers to memory for "memory://".
    return {
        **STEPS,
        "sql_store": SqlStorePlugin(),
        "memory_session_store": MemoryStorePlugin(),
        "event_log": EventLog(),
        "tenant_log": TenantLog(),
    }


def build_plugin_manager(
    settings: Settings, *, extra: Mapping[str, object]
) -> pluggy.PluginManager:
    """A new manager with ``extra`` (per-app built-ins such as the tenant plugin), the built-in
    plugins, entry-point plugins and ``PASSKEY_PLUGINS``, minus ``PASSKEY_DISABLED_PLUGINS``.

    Registered in that order. Built-ins are ``trylast`` and pluggy calls the earlier registered
    of two ``trylast`` implementations first, so the tenant configuration's clients win over
    the SQL store's; any other plugin's implementations run before every built-in.

    Raises ConfigurationError for a plugin that cannot be imported or a disabled name that
    matches no plugin (most likely a typo that would silently keep a step on).
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    for name in settings.disabled_plugins:
        manager.set_blocked(name)

    candidates = {**extra, **default_plugins()}
    for name, plugin in candidates.items():
        manager.register(plugin, name=name)
    if settings.load_entry_points:
        candidates.update((ep.name, ep) for ep in entry_points(group=hookspecs.PROJECT))
        try:
            manager.load_setuptools_entrypoints(hookspecs.PROJECT)
        except Exception as error:  # an installed plugin that fails to import
            raise ConfigurationError(f"Cannot load a flask_passkey plugin: {error}") from error
    for spec in settings.plugins:
        name, plugin = _resolve(spec)
        candidates[name] = plugin
        if not manager.is_blocked(name):
            manager.register(plugin, name=name)

    unknown = sorted(set(settings.disabled_plugins) - set(candidates))
    if unknown:
        raise ConfigurationError(
            f"PASSKEY_DISABLED_PLUGINS names unknown plugin(s): {', '.join(unknown)}. "
            f"Plugins: {', '.join(sorted(candidates))}."
        )
    return manager


def _resolve(spec: Any) -> tuple[str, object]:
    if not isinstance(spec, str):
        return getattr(spec, "__name__", None) or type(spec).__qualname__, spec
    module_name, _, attribute = spec.partition(":")
    try:
        plugin: object = importlib.import_module(module_name)
        for part in filter(None, attribute.split(".")):
            plugin = getattr(plugin, part)
    except (ImportError, AttributeError) as error:
        raise ConfigurationError(
            f"Cannot import plugin {spec!r} from PASSKEY_PLUGINS: {error}"
        ) from error
    return spec, plugin
