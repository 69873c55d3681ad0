"""Import paths from before the layered layout still work, with a warning naming the new one."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from flask_passkey.moved import MOVED


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_module_path_is_the_module_at_its_new_path(old: str, new: str) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)


def test_from_imports_of_old_paths_work_in_a_fresh_interpreter() -> None:
    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "try:\n"
        "    from flask_passkey.context import ValidationContext\n"
        "except DeprecationWarning as warning:\n"
        "    print(warning)\n"
        "warnings.simplefilter('ignore')\n"
        "from flask_passkey.context import ValidationContext\n"
        "from flask_passkey.default_plugins.sql_store import upgrade_database\n"
        "import flask_passkey\n"
        "print(ValidationContext is flask_passkey.core.passkey_request.ValidationContext)\n"
        "print(upgrade_database.__module__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == [
        "flask_passkey.context moved to flask_passkey.core.passkey_request; import it from "
        "there (or the name from flask_passkey itself)",
        "True",
        "flask_passkey.stores.sql",
    ]


def test_an_unknown_module_is_still_not_found() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("flask_passkey.no_such_module")
