"""The public API is ``flask_passkey.__all__`` (and ``flask_passkey.testing``): it resolves,
it holds every type a hook passes or returns, and the examples, the plugins and the docs'
snippets need nothing else."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import flask_passkey
from flask_passkey import hookspecs
from tests.test_doc_snippets import DOCUMENTS, as_hook_signature, extract

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = frozenset(flask_passkey.__all__)
#: Besides ``from flask_passkey import <public name>``, what may be imported: the test support.
PUBLIC_MODULES = ("flask_passkey.testing",)
#: The code that shows how flask-passkey is used: it must use the public API only.
SOURCES = sorted(
    [
        *(ROOT / "examples").rglob("*.py"),
        *(path for path in (ROOT / "plugins").glob("*/flask_passkey_*/**/*.py")),
    ]
)


def test_every_public_name_resolves_once() -> None:
    assert len(flask_passkey.__all__) == len(PUBLIC)
    missing = [name for name in flask_passkey.__all__ if not hasattr(flask_passkey, name)]
    assert missing == []


def test_a_star_import_gives_the_public_names() -> None:
    namespace: dict[str, Any] = {}
    exec("from flask_passkey import *", namespace)
    assert set(namespace) - {"__builtins__"} == PUBLIC


def test_importing_the_package_loads_no_test_support() -> None:
    code = (
        "import sys, flask_passkey; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pytest', 'hypothesis') or m.startswith('flask_passkey.testing')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert loaded.stdout.strip() == "[]"


# -- the types of the hooks --------------------------------------------------------------------


def hookspec_namespace() -> dict[str, Any]:
    """The hookspecs' globals with what they import only for type checking."""
    namespace = dict(vars(hookspecs))
    for node in ast.walk(ast.parse(inspect.getsource(hookspecs))):
        if isinstance(node, ast.ImportFrom) and node.module:
            module = importlib.import_module(node.module)
            namespace.update({alias.name: getattr(module, alias.name) for alias in node.names})
    return namespace


def hook_types() -> dict[str, Any]:
    """Every annotation of every hook specification, by ``hook.argument`` (``return``)."""
    namespace = hookspec_namespace()
    marker = f"{hookspecs.PROJECT}_spec"
    found: dict[str, Any] = {}
    for name, spec in vars(hookspecs).items():
        if name.startswith("passkey_") and hasattr(spec, marker):
            hints = typing.get_type_hints(spec, globalns=namespace)
            found.update({f"{name}.{argument}": hint for argument, hint in hints.items()})
    return found


def ours(hint: Any, seen: set[Any]) -> Iterator[type]:
    """The classes of flask-passkey that ``hint`` names, and those their fields, and their
    methods if they are protocols, name in turn."""
    for arg in typing.get_args(hint):
        yield from ours(arg, seen)
    if (
        not isinstance(hint, type)
        or hint in seen
        or not hint.__module__.startswith("flask_passkey")
    ):
        return
    seen.add(hint)
    yield hint
    inner: list[Any] = []
    if dataclasses.is_dataclass(hint):
        inner += typing.get_type_hints(hint).values()
    if getattr(hint, "_is_protocol", False):
        for _, method in inspect.getmembers(hint, inspect.isfunction):
            inner += typing.get_type_hints(method).values()
    for item in inner:
        yield from ours(item, seen)


def test_every_type_a_hook_passes_or_returns_is_public() -> None:
    seen: set[Any] = set()
    reachable = {cls for hint in hook_types().values() for cls in ours(hint, seen)}
    assert reachable, "no flask-passkey type found in the hook specifications"
    unexported = sorted(
        cls.__qualname__
        for cls in reachable
        if getattr(flask_passkey, cls.__name__, None) is not cls
    )
    assert unexported == []


def test_every_name_the_hookspecs_import_from_flask_passkey_is_public() -> None:
    tree = ast.parse(inspect.getsource(hookspecs))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flask_passkey")
        for alias in node.names
    }
    assert imported - PUBLIC == set()


# -- what the examples, plugins and docs import ------------------------------------------------


def private_imports(source: str, where: str, first_line: int = 0) -> list[str]:
    """The imports of flask-passkey in ``source`` that reach past the public API, as
    ``where:line`` (lines counted from ``first_line``)."""
    refused: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                module = alias.name
                if _is_ours(module) and module != "flask_passkey" and not _public_module(module):
                    refused.append(f"{where}:{first_line + node.lineno}: import {module}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_ours(node.module or ""):
            module = node.module or ""
            if _public_module(module):
                continue
            names = [alias.name for alias in node.names]
            if module != "flask_passkey" or not set(names) <= PUBLIC:
                line = first_line + node.lineno
                refused.append(f"{where}:{line}: from {module} import {', '.join(names)}")
    return refused


def _is_ours(module: str) -> bool:
    return module == "flask_passkey" or module.startswith("flask_passkey.")


def _public_module(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in PUBLIC_MODULES)


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_examples_and_plugins_import_only_the_public_api(path: Path) -> None:
    where = str(path.relative_to(ROOT))
    assert private_imports(path.read_text(encoding="utf-8"), where) == []


def test_the_examples_and_every_plugin_are_checked() -> None:
    checked = {path.relative_to(ROOT).parts[:2] for path in SOURCES}
    assert {("examples", "demo"), ("examples", "factory"), ("examples", "spa")} <= checked
    plugins = {path.name for path in (ROOT / "plugins").iterdir() if path.is_dir()}
    assert {("plugins", name) for name in plugins} <= checked


def test_doc_snippets_import_only_the_public_api() -> None:
    refused: list[str] = []
    for page in DOCUMENTS:
        for snippet in extract(page):
            if snippet.language != "python" or as_hook_signature(snippet) is not None:
                continue
            refused += private_imports(snippet.text, str(page.relative_to(ROOT)), snippet.line)
    assert refused == []


def test_the_private_import_check_refuses_what_it_must() -> None:
    source = (
        "from flask_passkey import Passkey, hookimpl\n"
        "from flask_passkey.testing import PasskeyFlow\n"
        "from flask_passkey.testing.store_contract import SessionStoreContract\n"
        "import flask_passkey\n"
        "import flask_passkey_redis\n"
        "from flask_passkey_prometheus import plugin\n"
        "from flask_passkey import get_state\n"
        "from flask_passkey.errors import AccessDenied\n"
        "import flask_passkey.extension\n"
    )
    assert private_imports(source, "x") == [
        "x:7: from flask_passkey import get_state",
        "x:8: from flask_passkey.errors import AccessDenied",
        "x:9: import flask_passkey.extension",
    ]
