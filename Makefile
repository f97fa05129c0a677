# chatsite: `make run` to serve, `make test` to test. Needs only python3 and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run dev test lint format chromium fake-upstream clean

run: $(VENV)/.runtime .env ## Set everything up and serve on http://127.0.0.1:8000
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py ensure_admin
	@echo "chatsite is serving on http://$(HOST):$(PORT)/  (Ctrl+C stops it)"
	HOST=$(HOST) PORT=$(PORT) $(VENV)/bin/gunicorn chatsite.wsgi --config gunicorn.conf.py

dev: $(VENV)/.runtime .env ## Django's auto-reloading development server with DEBUG=1
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_admin
	DEBUG=1 $(PY) manage.py runserver $(HOST):$(PORT)

test: $(VENV)/.dev chromium ## The whole test suite, browser tests included
	$(PY) -m pytest

lint: $(VENV)/.dev ## ruff: lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

fake-upstream: $(VENV)/.runtime ## An OpenAI-compatible echo server on 127.0.0.1:8001, for trying chatsite without a key
	$(PY) -m tests.fake_upstream --port 8001

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

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# A first .env with a fresh random SECRET_KEY; an existing .env is never touched.
.env:
	@$(PYTHON) -c "import pathlib, re, secrets; \
		text = pathlib.Path('.env.example').read_text(); \
		pathlib.Path('.env').write_text(re.sub(r'(?m)^SECRET_KEY=$$', 'SECRET_KEY=' + secrets.token_urlsafe(50), text))"
	@echo "Wrote .env with a new random SECRET_KEY. Add AIMLAPI_API_KEY there to chat with the AI/ML API."

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
