"""The npm projects the tests use (tests/sdk/node, examples/spa), installed on first use."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.databases import backend_missing


def npm_installed(project: Path, package: str) -> str:
    """The node binary, once ``project``'s locked packages are installed (``npm ci``, when
    ``node_modules`` lacks ``package``). Without node or npm the test skips; under ``CI=true``
    it fails."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        backend_missing(f"node and npm are needed for the tests that use {project.name}")
    if not (project / "node_modules" / package).is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=project,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return node
