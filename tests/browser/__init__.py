"""A package, so its conftest is imported as browser.conftest and never shadows tests/conftest.py
(which the modules in tests/ import as ``conftest``)."""
