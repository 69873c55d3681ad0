"""The documentation keeps up with the code: every hook, plugin, setting and command is in docs/."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, get_args

import click
import pytest

from flask_passkey import hookspecs
from flask_passkey.cli.commands import passkey_cli
from flask_passkey.config import documented_settings
from flask_passkey.events import EventName
from flask_passkey.plugins import default_plugins
from tests import ROOT

DOCS = ROOT / "docs"
TABLE_ROW = re.compile(r"^\| `(PASSKEY_[A-Z0-9_]+)` \| `([^`]*)` \|", re.MULTILINE)


def sections(path: Path) -> dict[str, str]:
    """Each heading's text (without the #s) -> the text up to the next heading."""
    found: dict[str, str] = {}
    heading = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            found[heading] = ""
        else:
            found[heading] = found.get(heading, "") + line + "\n"
    return found


def hooks() -> dict[str, Any]:
    marker = f"{hookspecs.PROJECT}_spec"
    return {
        name: spec
        for name, spec in vars(hookspecs).items()
        if name.startswith("passkey_") and hasattr(spec, marker)
    }


def formatted(default: Any) -> str:
    """A default as the docs' tables write it: strings as JSON, anything else as repr."""
    return json.dumps(default) if isinstance(default, str) else repr(default)


def documented_defaults(path: Path) -> dict[str, str]:
    rows = TABLE_ROW.findall(path.read_text(encoding="utf-8"))
    keys = [key for key, _ in rows]
    assert len(keys) == len(set(keys)), f"a key is documented twice in {path.name}"
    return dict(rows)


# -- plugins.md ------------------------------------------------------------------------------


def test_hooks_are_found() -> None:
    assert {"passkey_get_client", "passkey_event", "passkey_check_realm"} <= set(hooks())


@pytest.mark.parametrize("name", sorted(hooks()))
def test_every_hook_is_documented_with_its_arguments(name: str) -> None:
    documented = sections(DOCS / "plugins.md")
    assert f"`{name}`" in documented, f"docs/plugins.md has no section for {name}"
    text = documented[f"`{name}`"]
    assert f"def {name}(" in text, f"docs/plugins.md does not show the signature of {name}"
    for argument in inspect.signature(hooks()[name]).parameters:
        assert re.search(rf"\b{argument}\b", text), f"{name}: argument {argument} undocumented"
    assert "@hookimpl" in text, f"docs/plugins.md has no example for {name}"


def test_plugins_md_names_only_hooks_that_exist() -> None:
    named = set(re.findall(r"`(passkey_[a-z_]+)`", (DOCS / "plugins.md").read_text()))
    assert named - set(hooks()) - set(get_args(EventName)) == set()


def test_every_built_in_plugin_is_documented_in_registration_order() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \| `passkey_", (DOCS / "plugins.md").read_text(), re.M)
    assert rows == ["tenant_config", *default_plugins()]


# -- configuration.md and the README -----------------------------------------------------------


def expected_settings() -> dict[str, str]:
    return {key: formatted(default) for key, (default, _) in documented_settings().items()}


def test_every_setting_is_documented_with_its_default() -> None:
    """The page's first part lists exactly the keys of Settings, with their defaults."""
    core = (DOCS / "configuration.md").read_text().partition("## Keys of the plugins")[0]
    assert dict(TABLE_ROW.findall(core)) == expected_settings()


def installed_plugins() -> dict[str, Any]:
    """Installed entry-point plugins by name."""
    return {ep.name: ep.load() for ep in entry_points(group=hookspecs.PROJECT)}


def test_every_installed_plugin_key_is_documented_with_its_default() -> None:
    """Each ``### ... (`entry point name`)`` section lists exactly what that plugin declares."""
    documented = sections(DOCS / "configuration.md")
    by_plugin = {
        match[1]: text
        for heading, text in documented.items()
        if (match := re.search(r"\(`([a-z_]+)`\)$", heading))
    }
    checked = 0
    for name, plugin in installed_plugins().items():
        if not hasattr(plugin, "passkey_config_defaults"):
            continue
        declared = plugin.passkey_config_defaults()
        assert name in by_plugin, f"docs/configuration.md has no section for plugin {name}"
        rows = dict(TABLE_ROW.findall(by_plugin[name]))
        assert rows == {key: formatted(default) for key, default in declared.items()}, name
        checked += 1
    if not checked:
        pytest.skip("no plugin declaring configuration keys is installed")


def test_the_readme_table_matches_the_settings() -> None:
    assert documented_defaults(ROOT / "README.md") == expected_settings()


# -- cli.md ----------------------------------------------------------------------------------


def commands(group: click.Group, prefix: str = "flask passkey") -> Iterator[tuple[str, Any]]:
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            yield from commands(command, path)
        else:
            yield path, command


def test_commands_are_found() -> None:
    assert "flask passkey clients rotate-secret" in dict(commands(passkey_cli))


@pytest.mark.parametrize(("path", "command"), sorted(commands(passkey_cli)))
def test_every_command_and_option_is_documented(path: str, command: click.Command) -> None:
    documented = sections(DOCS / "cli.md")
    assert f"`{path}`" in documented, f"docs/cli.md has no section for {path}"
    text = documented[f"`{path}`"]
    for parameter in command.params:
        if isinstance(parameter, click.Option):
            for option in parameter.opts:
                assert f"`{option}" in text, f"docs/cli.md: {path} {option} undocumented"


def test_cli_md_documents_only_commands_that_exist() -> None:
    headings = {
        heading.strip("`")
        for heading in sections(DOCS / "cli.md")
        if heading.startswith("`flask passkey")
    }
    assert headings == {path for path, _ in commands(passkey_cli)}


def test_the_readme_links_the_documentation() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in (
        "plugins.md",
        "configuration.md",
        "deployment.md",
        "cli.md",
        "logs.md",
        "resource-server.md",
    ):
        assert f"(docs/{page})" in readme
