# Two commands for a fresh machine (Python 3.11+):
#   make demo   - run the demo site on http://localhost:5000 (SQLite, in-memory rate limits)
#   make test   - run the test suite
#   make spa    - run examples/spa: a single-page app on https://acme.localhost:5444 calling the
#                 API on https://login.acme.localhost:5443 (needs node and npm)
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := requirements/lock.txt
# Everything `make` and .ci/run install: the project with its extras and both plugin distributions.
PROJECT := -e '.[dev,postgres,redis]' -e plugins/flask-passkey-redis -e plugins/flask-passkey-example \
	-e plugins/flask-passkey-prometheus
PYPROJECTS := pyproject.toml plugins/flask-passkey-redis/pyproject.toml plugins/flask-passkey-example/pyproject.toml \
	plugins/flask-passkey-prometheus/pyproject.toml

# Installs from the lock only: pip and setuptools first, then the project without build
# isolation, so that not even a build backend floats.
$(VENV)/installed: $(PYPROJECTS) $(LOCK)
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -c $(LOCK) pip setuptools
	$(PY) -m pip install --quiet --no-build-isolation -c $(LOCK) $(PROJECT)
	touch $@

.PHONY: install lock test-latest test-lowest demo spa test lint bench bench-check bench-credentials bench-micro bench-profile
install: $(VENV)/installed

$(VENV)/bench-installed: $(VENV)/installed
	$(PY) -m pip install --quiet --no-build-isolation -c $(LOCK) -e '.[bench]'
	touch $@

# Rewrites the lock with the newest versions the metadata allows (then run `make test`).
lock:
	rm -rf .venv-lock && python3 -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip setuptools
	.venv-lock/bin/python -m pip install --quiet --no-build-isolation $(PROJECT) -e '.[bench]'
	{ echo "# Every version that make and .ci/run install. Written by 'make lock'; do not edit."; \
	  .venv-lock/bin/python -m pip freeze --all --exclude-editable; } > $(LOCK)
	rm -rf .venv-lock

# The newest versions the metadata allows, ignoring the lock: drift shows here before CI.
test-latest:
	rm -rf .venv-latest && python3 -m venv .venv-latest
	.venv-latest/bin/python -m pip install --quiet --upgrade pip setuptools
	.venv-latest/bin/python -m pip install --quiet --no-build-isolation $(PROJECT)
	.venv-latest/bin/python -m pytest

# The lowest versions the metadata allows: requirements/lowest.txt pins each direct runtime
# dependency at its lower bound (tests/test_packaging.py keeps it in step with the pyproject
# files); pip and setuptools come from the lock, everything else is the newest that fits.
test-lowest:
	rm -rf .venv-lowest && python3 -m venv .venv-lowest
	.venv-lowest/bin/python -m pip install --quiet -c $(LOCK) pip setuptools
	.venv-lowest/bin/python -m pip install --quiet --no-build-isolation -c requirements/lowest.txt $(PROJECT)
	.venv-lowest/bin/python -m pytest

demo: install
	@echo "flask-passkey demo: open http://localhost:5000 (tenant: $${PASSKEY_DEMO_TENANT:-examples/demo/tenant.toml})"
	$(VENV)/bin/flask --app examples/demo/app.py run --host localhost --port 5000

examples/spa/node_modules/.package-lock.json: examples/spa/package-lock.json
	cd examples/spa && npm ci --no-audit --no-fund

spa: install examples/spa/node_modules/.package-lock.json
	$(PY) examples/spa/serve.py

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy --strict flask_passkey
	$(VENV)/bin/mypy --strict plugins/flask-passkey-redis/flask_passkey_redis plugins/flask-passkey-example/flask_passkey_example \
		plugins/flask-passkey-prometheus/flask_passkey_prometheus

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

