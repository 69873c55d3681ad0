"""The package and its plugins use their dependencies through public APIs only: no code of
theirs writes another object's private state.

Read from the source (not run): every assignment, augmented assignment, ``del``, ``setattr`` and
``object.__setattr__`` whose target is an attribute starting with ``_`` (dunders aside) of
anything but ``self``/``cls``; and any write through, or mutating call on, an attribute that a
dependency keeps to itself without an underscore (:data:`DEPENDENCY_PRIVATE`), ``self``
included: a subclass changing its base class's fields is what this guards against too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    [
        *(ROOT / "flask_passkey").rglob("*.py"),
        *(ROOT / "plugins").glob("*/flask_passkey_*/**/*.py"),
    ]
)
#: Objects whose attributes are this code's to set: its own instance and class, and
#: :data:`flask.g`, the namespace Flask gives an app for exactly that.
OWN = frozenset({"self", "cls", "g"})
#: Attributes of dependencies' objects that are private without an underscore: flask-limiter's
#: request context (``Limiter.context``, ``:meta private:``) and its fields, and the fields of
#: ``limits``' ``MemoryStorage``.
DEPENDENCY_PRIVATE = frozenset(
    {"context", "view_rate_limit", "view_rate_limits", "expirations", "locks"}
)
#: Known violations ("path:line: what") that another change is clearing; empty once it lands.
KNOWN: frozenset[str] = frozenset()


def _root_name(node: ast.expr) -> str | None:
    """The name an attribute/subscript chain starts from (``a`` of ``a.b[c].d``)."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _chain(node: ast.expr) -> Iterator[str]:
    """Every attribute name along an attribute/subscript chain, outermost first."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        if isinstance(node, ast.Attribute):
            yield node.attr
        node = node.value


def _private(attr: str) -> bool:
    return attr.startswith("_") and not (attr.startswith("__") and attr.endswith("__"))


def _written(target: ast.expr) -> str | None:
    """What is wrong with writing to ``target``, or None."""
    if isinstance(target, ast.Tuple | ast.List | ast.Starred):
        elements = target.elts if not isinstance(target, ast.Starred) else [target.value]
        return next((found for e in elements if (found := _written(e)) is not None), None)
    if not isinstance(target, ast.Attribute | ast.Subscript):
        return None
    names = list(_chain(target))
    shared = DEPENDENCY_PRIVATE.intersection(names)
    if shared:
        return f"writes through {sorted(shared)[0]!r}, private to a dependency"
    root = _root_name(target)
    if root in OWN:
        return None
    if isinstance(target, ast.Attribute) and _private(target.attr):
        return f"sets {target.attr!r} of {ast.unparse(target.value)!r}"
    if "__dict__" in names:
        return f"writes into the __dict__ of {ast.unparse(target.value)!r}"
    return None


def _setattr_call(call: ast.Call) -> str | None:
    """What is wrong with a ``setattr(obj, "_name", ...)`` or ``object.__setattr__`` call."""
    func = call.func
    is_setattr = isinstance(func, ast.Name) and func.id in {"setattr", "delattr"}
    is_dunder = isinstance(func, ast.Attribute) and func.attr in {"__setattr__", "__delattr__"}
    if not (is_setattr or is_dunder) or len(call.args) < 2:
        return None
    obj, name = call.args[0], call.args[1]
    if not isinstance(name, ast.Constant) or not isinstance(name.value, str):
        return None
    if isinstance(obj, ast.Name) and obj.id in OWN:
        return None
    if _private(name.value) or name.value in DEPENDENCY_PRIVATE:
        return f"sets {name.value!r} of {ast.unparse(obj)!r} with {ast.unparse(func)}"
    return None


#: Methods that change the container they are called on.
MUTATORS = frozenset(
    {"pop", "popitem", "clear", "update", "setdefault", "append", "extend", "insert", "remove"}
)


def _mutating_call(call: ast.Call) -> str | None:
    """What is wrong with ``x.expirations.pop(...)`` and the like, or None."""
    func = call.func
    if not isinstance(func, ast.Attribute) or func.attr not in MUTATORS:
        return None
    shared = DEPENDENCY_PRIVATE.intersection(_chain(func.value))
    if shared:
        return f"changes {ast.unparse(func.value)!r}, private to a dependency"
    return None


def violations(source: str, path: str) -> list[str]:
    """Each write to another object's private state in ``source``, as ``path:line: what``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        problems = [_written(target) for target in targets]
        if isinstance(node, ast.Call):
            problems += [_setattr_call(node), _mutating_call(node)]
        found += [f"{path}:{node.lineno}: {problem}" for problem in problems if problem]
    return found


def all_violations() -> list[str]:
    return [
        found
        for path in SOURCES
        for found in violations(path.read_text(), str(path.relative_to(ROOT)))
    ]


def test_the_sources_are_found() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in SOURCES}
    assert "flask_passkey/web/ratelimit.py" in names
    assert "plugins/flask-passkey-redis/flask_passkey_redis/plugin.py" in names


def test_no_code_writes_another_objects_private_state() -> None:
    found = set(all_violations())
    assert sorted(found - KNOWN) == [], "writes to private state of another object"


def test_the_known_violations_are_still_there() -> None:
    """A violation cleared must leave :data:`KNOWN` too, so that it cannot come back."""
    assert sorted(KNOWN - set(all_violations())) == []


@pytest.mark.parametrize(
    ("code", "what"),
    [
        ("limiter._storage = None", "sets '_storage' of 'limiter'"),
        ("limiter.context.view_rate_limit = None", "writes through 'context'"),
        ("self.expirations[key] = 1.0", "writes through 'expirations'"),
        ("state.limiter._key_prefix += 'x'", "sets '_key_prefix' of 'state.limiter'"),
        ("del response._cache", "sets '_cache' of 'response'"),
        ("a, other._b = 1, 2", "sets '_b' of 'other'"),
        ("setattr(storage, '_window', None)", "sets '_window' of 'storage' with setattr"),
        (
            "object.__setattr__(token, '_claims', {})",
            "sets '_claims' of 'token' with object.__setattr__",
        ),
        ("vars_of.__dict__['x'] = 1", "writes into the __dict__ of"),
        ("self.locks.pop(key, None)", "changes 'self.locks'"),
        ("limiter.context.view_rate_limits.clear()", "changes 'limiter.context.view_rate_limits'"),
    ],
)
def test_the_check_finds_writes_to_private_state(code: str, what: str) -> None:
    (found,) = violations(code, "example.py")
    assert found.startswith("example.py:1: " + what)


@pytest.mark.parametrize(
    "code",
    [
        "self._cache = {}",
        "cls._instances = []",
        "g._passkey_attempt = '192.0.2.1'",
        "setattr(g, '_seen', {})",
        "wrapper.__name__ = 'view'",
        "response.headers['Retry-After'] = '1'",
        "_private = 1",
        "limiter.storage.reset()",
        "request.url_rule = rule",
    ],
)
def test_the_check_leaves_own_and_public_writes_alone(code: str) -> None:
    assert violations(code, "example.py") == []
