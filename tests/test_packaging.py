"""The distributions as a user gets them, and the dependency bounds they declare.

``python -m build`` makes an sdist and a wheel that ``twine check --strict`` accepts; the wheel
carries every file of the package (the Alembic migrations and ``py.typed`` included). Installed
alone into a new virtual environment (with requirements/lock.txt as constraints, so pip's cache
serves it), the wheel migrates a SQLite file and serves ``POST /passkey/challenge``: the
migrations ship, and nothing needs the source tree.

The build runs on a copy of the files git tracks or would track (modified and new ones as they
are on disk), so it neither dirties the checkout nor sees what ``.gitignore`` leaves out.

And requirements/lowest.txt, which ``make test-lowest`` installs, pins exactly the lower bound of
every runtime dependency the pyproject.toml files declare.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from flask_passkey.stores.migrations import HEAD
from tests import ROOT

PYPROJECTS = [
    ROOT / "pyproject.toml",
    ROOT / "plugins/flask-passkey-redis/pyproject.toml",
    ROOT / "plugins/flask-passkey-example/pyproject.toml",
    ROOT / "plugins/flask-passkey-prometheus/pyproject.toml",
]
#: The extras a deployment installs (dev and bench are tools, not runtime dependencies).
RUNTIME_EXTRAS = ("postgres", "redis")
TIMEOUT = 120

#: Run by the new environment's interpreter from a directory outside the source tree. Arguments:
#: a SQLite file path. Prints what it found as JSON; the test asserts on it.
CHECK_INSTALL = """
import json
import sys
from importlib.metadata import entry_points

import sqlalchemy as sa
from flask import Flask

import flask_passkey
from flask_passkey import Passkey
from flask_passkey.stores.sql import upgrade_database

url = f"sqlite:///{sys.argv[1]}"
migrated = upgrade_database(url)
with sa.create_engine(url).connect() as connection:
    revision = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

app = Flask(__name__)
app.config.update(
    PASSKEY_DATABASE_URL=url,
    PASSKEY_TENANT={
        "default_domain": "acme.auth0.com",
        "custom_domains": ["login.acme.test"],
        "rp_name": "Acme",
        "default_connection": "Username-Password-Authentication",
        "connections": [
            {"name": "Username-Password-Authentication", "required_identifiers": ["email"]}
        ],
        "clients": [
            {
                "client_id": "my-spa",
                "connections": ["Username-Password-Authentication"],
                "web_origins": ["https://app.acme.test"],
            }
        ],
    },
)
Passkey(app)
response = app.test_client().post(
    "/passkey/challenge", json={"client_id": "my-spa"}, headers={"Host": "login.acme.test"}
)
print(json.dumps({
    "module": flask_passkey.__file__,
    "migrated": migrated,
    "revision": revision,
    "flask_commands": sorted(ep.name for ep in entry_points(group="flask.commands")),
    "status": response.status_code,
    "body": response.get_json(),
}))
"""


@dataclass(frozen=True)
class Built:
    source: Path  # the copy it was built from
    sdist: Path
    wheel: Path


def run(*command: str | Path, cwd: Path) -> str:
    """Run ``command`` in ``cwd`` without PYTHONPATH; its stdout, or a failure showing both."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def copy_of_checkout(target: Path) -> Path:
    """The files of this checkout that git tracks or would track, copied to ``target``."""
    if not (ROOT / ".git").exists():
        pytest.skip("the build copies the files of a git checkout; this is not one")
    listed = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():  # a tracked file deleted in the work tree is not listed
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    source = copy_of_checkout(tmp_path_factory.mktemp("source"))
    dist = tmp_path_factory.mktemp("dist")
    # No build isolation: the build backend is the locked setuptools, and no network is needed.
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, source, cwd=source)
    [sdist] = dist.glob("*.tar.gz")
    [wheel] = dist.glob("*.whl")
    return Built(source, sdist, wheel)


def package_files(source: Path) -> set[str]:
    """Every file of the flask_passkey package in ``source``, as a path inside a wheel."""
    package = source / "flask_passkey"
    return {path.relative_to(source).as_posix() for path in package.rglob("*") if path.is_file()}


@pytest.mark.slow
def test_twine_accepts_the_sdist_and_the_wheel(built: Built) -> None:
    twine = (sys.executable, "-m", "twine", "check", "--strict")
    out = run(*twine, built.sdist, built.wheel, cwd=built.source)
    assert out.count("PASSED") == 2, out


@pytest.mark.slow
def test_the_wheel_carries_every_package_file_and_the_migrations(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        shipped = {name for name in wheel.namelist() if name.startswith("flask_passkey/")}
    assert shipped == package_files(built.source)
    assert {
        "flask_passkey/py.typed",
        "flask_passkey/stores/migrations/env.py",
        "flask_passkey/stores/migrations/script.py.mako",
    } <= shipped
    newest = re.compile(rf"flask_passkey/stores/migrations/versions/{HEAD}_\w+\.py")
    assert [name for name in shipped if newest.fullmatch(name)]


@pytest.mark.slow
def test_the_sdist_has_the_package_and_its_metadata_but_not_the_tests(built: Built) -> None:
    with tarfile.open(built.sdist) as sdist:
        top, *_ = sdist.getnames()
        names = {name.removeprefix(f"{top}/") for name in sdist.getnames()}
    assert {"PKG-INFO", "pyproject.toml", "README.md"} <= names
    assert package_files(built.source) <= names
    assert not [name for name in names if name.startswith("tests")]


@pytest.mark.slow
def test_the_installed_wheel_migrates_and_serves_a_challenge(built: Built, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    lock = ROOT / "requirements" / "lock.txt"
    # This interpreter's pip installs into the new environment (no pip of its own to set up).
    pip = (sys.executable, "-m", "pip", "--python", python, "install", "--quiet")
    run(*pip, "-c", lock, built.wheel, cwd=tmp_path)
    script = tmp_path / "check_install.py"
    script.write_text(CHECK_INSTALL)

    out = run(python, script, tmp_path / "passkey.sqlite3", cwd=tmp_path)
    found: dict[str, Any] = json.loads(out)

    assert Path(found["module"]).is_relative_to(venv), "imported from outside the new environment"
    assert found["migrated"] is True
    assert found["revision"] == HEAD
    assert "passkey" in found["flask_commands"]
    assert found["status"] == 200, found["body"]
    assert found["body"]["auth_session"]
    assert found["body"]["authn_params_public_key"]["challenge"]


def declared_lower_bounds() -> dict[str, Version]:
    """Each runtime dependency of the pyproject.toml files and its ``>=`` bound."""
    bounds: dict[str, Version] = {}
    for path in PYPROJECTS:
        project = tomllib.loads(path.read_text())["project"]
        extras = project.get("optional-dependencies", {})
        extra_requirements = [text for extra in RUNTIME_EXTRAS for text in extras.get(extra, [])]
        for text in [*project["dependencies"], *extra_requirements]:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            if name.startswith("flask-passkey"):
                continue  # the project's own distributions
            lower = next((s.version for s in requirement.specifier if s.operator == ">="), None)
            assert lower is not None, f"{path.name}: {text} has no lower bound"
            bound = Version(lower)
            assert bounds.setdefault(name, bound) == bound, f"{name}: two lower bounds"
    return bounds


def test_lowest_txt_pins_exactly_the_declared_lower_bounds() -> None:
    text = (ROOT / "requirements" / "lowest.txt").read_text()
    pins = {
        canonicalize_name(match[1]): Version(match[2])
        for match in re.finditer(r"^([A-Za-z0-9._-]+)==(\S+)$", text, re.MULTILINE)
    }
    assert pins == declared_lower_bounds()
