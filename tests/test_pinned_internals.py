"""Modules that rely on a dependency beyond its documented API are pinned to the major version
they were written for: these tests fail on any other, so an upgrade is reviewed, not silent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flask_passkey.web import flask_limiter_4

ROOT = Path(__file__).resolve().parent.parent


def test_the_installed_flask_limiter_is_the_major_the_pinned_module_was_written_for() -> None:
    installed = flask_limiter_4.installed_version()
    assert flask_limiter_4.is_supported(installed), (
        f"flask-limiter {installed} is not major {flask_limiter_4.SUPPORTED_MAJOR}: check what "
        "its init_app reads and writes in app.config, then update flask_passkey/web/"
        "flask_limiter_4.py and its cap in pyproject.toml"
    )


@pytest.mark.parametrize("faked", ["5.0.0", "3.12", "40.1.0", "10"])
def test_a_faked_other_major_fails_the_pin(monkeypatch: pytest.MonkeyPatch, faked: str) -> None:
    monkeypatch.setattr(flask_limiter_4, "installed_version", lambda: faked)
    with pytest.raises(AssertionError, match=f"flask-limiter {re.escape(faked)} is not major 4"):
        test_the_installed_flask_limiter_is_the_major_the_pinned_module_was_written_for()


def test_the_dependency_is_capped_below_the_next_major() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    cap = f"<{flask_limiter_4.SUPPORTED_MAJOR + 1}"
    assert re.search(rf'"flask-limiter>=[\d.]+,{cap}"', pyproject)
