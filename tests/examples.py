"""The example apps under examples/ as modules (examples/ is no package, and their file names,
``app.py``, ``serve.py``, would clash as top-level modules)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests import ROOT

EXAMPLES = ROOT / "examples"


def load_example(relative_path: str, name: str) -> ModuleType:
    """``examples/<relative_path>`` (a file, or a package's folder) imported once as ``name``."""
    if name not in sys.modules:
        path = EXAMPLES / relative_path
        if path.is_dir():
            spec = importlib.util.spec_from_file_location(
                name, path / "__init__.py", submodule_search_locations=[str(path)]
            )
        else:
            spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def load_demo() -> ModuleType:
    """examples/demo/app.py, the demo site (``create_app``)."""
    return load_example("demo/app.py", "flask_passkey_demo_app")


def load_spa_serve() -> ModuleType:
    """examples/spa/serve.py: the single-page app's API and page servers."""
    return load_example("spa/serve.py", "flask_passkey_spa_serve")


def load_factory() -> ModuleType:
    """examples/factory/acme, the app-factory example (a package)."""
    return load_example("factory/acme", "acme_factory_example")
