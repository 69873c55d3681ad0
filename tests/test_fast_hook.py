"""FastHook calls hooks exactly as pluggy does."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pluggy
import pytest

from flask_passkey.plugins import FastHook

spec = pluggy.HookspecMarker("fast_hook_test")
impl = pluggy.HookimplMarker("fast_hook_test")


class Specs:
    @spec(firstresult=True)
    def first(self, a: int, b: int) -> Any: ...

    @spec
    def every(self, a: int, b: int) -> Any: ...


def manager(*plugins: object) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("fast_hook_test")
    pm.add_hookspecs(Specs)
    for plugin in plugins:
        pm.register(plugin)
    return pm


class Answer:
    def __init__(self, value: Any, **marks: Any) -> None:
        self.value = value
        self.calls: list[tuple[Any, ...]] = []

        @impl(**marks)
        def first(a: int, b: int) -> Any:
            self.calls.append((a, b))
            return self.value

        @impl(**marks)
        def every(b: int) -> Any:  # fewer arguments than the spec
            self.calls.append((b,))
            return self.value

        self.first = first
        self.every = every


def both(pm: pluggy.PluginManager, name: str, **kwargs: Any) -> Any:
    expected = getattr(pm.hook, name)(**kwargs)
    assert FastHook(pm, name)(**kwargs) == expected
    return expected


def test_same_order_and_results_as_pluggy() -> None:
    plugins = [
        Answer(None),
        Answer(1, trylast=True),
        Answer(2),
        Answer(3, tryfirst=True),
        Answer(None, tryfirst=True),
    ]
    pm = manager(*plugins)
    assert both(pm, "first", a=1, b=2) == 3
    assert both(pm, "every", a=1, b=2) == [3, 2, 1]
    assert plugins[0].calls == [(2,), (2,)]  # every() ran it twice, first() never
    assert plugins[1].calls == [(2,), (2,)]


def test_no_implementation_and_no_result() -> None:
    assert both(manager(), "first", a=1, b=2) is None
    assert both(manager(), "every", a=1, b=2) == []
    assert both(manager(Answer(None)), "first", a=1, b=2) is None


def test_plugins_registered_after_the_first_call_are_called() -> None:
    pm = manager(Answer(1))
    fast = FastHook(pm, "first")
    assert fast(a=1, b=2) == 1
    later = Answer(5)
    pm.register(later)
    assert fast(a=1, b=2) == 5
    pm.unregister(later)
    assert fast(a=1, b=2) == 1


def test_wrappers_and_exceptions_are_pluggys() -> None:
    class Wrapper:
        @impl(wrapper=True)
        def first(self, a: int) -> Generator[None, Any, Any]:
            result = yield
            return result * 10

    class Failing:
        @impl
        def every(self, a: int) -> None:
            raise ValueError(a)

    pm = manager(Answer(4), Wrapper())
    assert FastHook(pm, "first")(a=1, b=2) == 40
    with pytest.raises(ValueError, match="7"):
        FastHook(manager(Failing()), "every")(a=7, b=0)


def test_traced_calls_go_through_pluggy() -> None:
    pm = manager(Answer(4))
    fast = FastHook(pm, "first")
    seen: list[str] = []
    undo = pm.add_hookcall_monitoring(lambda name, *_: seen.append(name), lambda *_: None)
    assert fast(a=1, b=2) == 4
    assert seen == ["first"]
    undo()
    assert fast(a=1, b=2) == 4
    assert seen == ["first"]
