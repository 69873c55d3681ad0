# Two commands for a fresh machine (Python 3.11+):
#   make demo   - run the demo site on http://localhost:5000 (SQLite, in-memory rate limits)
#   make test   - run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/installed: pyproject.toml plugins/flask-passkey-redis/pyproject.toml plugins/flask-passkey-example/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,postgres,redis]'
	$(PY) -m pip install --quiet -e plugins/flask-passkey-redis
	$(PY) -m pip install --quiet -e plugins/flask-passkey-example
	touch $@

.PHONY: install demo test lint
install: $(VENV)/installed

demo: install
	@echo "flask-passkey demo: open http://localhost:5000 (tenant: $${PASSKEY_DEMO_TENANT:-examples/demo/tenant.toml})"
	$(VENV)/bin/flask --app examples/demo/app.py run --host localhost --port 5000

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy --strict flask_passkey
	$(VENV)/bin/mypy --strict plugins/flask-passkey-redis/flask_passkey_redis plugins/flask-passkey-example/flask_passkey_example
