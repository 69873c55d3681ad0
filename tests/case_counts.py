"""How many cases the generated tests (schemathesis, hypothesis) ran, for the run's summary.

Kept in the pytest config's stash (not a module global), so the count survives however this
module gets imported; ``tests/conftest.py`` writes the summary whether output is captured or not.
"""

from __future__ import annotations

import pytest


class CaseCounts:
    """How many generated cases each suite ran, per label, with their outcomes."""

    def __init__(self) -> None:
        self.suites: dict[str, dict[str, dict[str, int]]] = {}

    def add(self, suite: str, label: str, outcome: object) -> None:
        outcomes = self.suites.setdefault(suite, {}).setdefault(label, {})
        outcomes[str(outcome)] = outcomes.get(str(outcome), 0) + 1

    def total(self, suite: str) -> int:
        return sum(sum(o.values()) for o in self.suites.get(suite, {}).values())


CASE_COUNTS = pytest.StashKey[CaseCounts]()
