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

.PHONY: install demo test lint bench bench-check bench-credentials bench-micro bench-profile
install: $(VENV)/installed

$(VENV)/bench-installed: $(VENV)/installed
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $@

demo: install
	@echo "flask-passkey demo: open http://localhost:5000 (tenant: $${PASSKEY_DEMO_TENANT:-examples/demo/tenant.toml})"
	$(VENV)/bin/flask --app examples/demo/app.py run --host localhost --port 5000

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy --strict flask_passkey
	$(VENV)/bin/mypy --strict plugins/flask-passkey-redis/flask_passkey_redis plugins/flask-passkey-example/flask_passkey_example

# Load benchmark (needs wrk: apt-get install wrk, PostgreSQL and Redis as for the tests).
# Each load benchmark ends with bench.check: a regression against bench/baseline.json fails it.
bench: $(VENV)/bench-installed
	$(PY) -m bench.run
	$(PY) -m bench.check bench/results/latest.json

bench-check: $(VENV)/bench-installed
	$(PY) -m bench.check bench/results/latest.json

bench-credentials: $(VENV)/bench-installed
	$(PY) -m bench.credentials
	$(PY) -m bench.check bench/results/latest-credentials.json

bench-micro: $(VENV)/bench-installed
	$(PY) -m pytest bench/test_micro.py -p no:cacheprovider --benchmark-sort=name

bench-profile: $(VENV)/bench-installed
	$(PY) -m bench.profile_challenge memory
	$(PY) -m bench.profile_challenge redis

