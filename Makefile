# Two commands matter (see README): `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-installed
DEV_STAMP := $(VENV)/.dev-installed
NODE_STAMP := node_modules/.package-lock.json
# Browser tests drive Debian's Chromium (Playwright never downloads a browser here).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install install-dev lint worker beat clean

# torch first, pinned, so it comes from the CPU wheel and nothing later pulls a CUDA build.
$(RUN_STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q torch==2.13.0
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/python -m failures.onnx_export
	touch $@

$(DEV_STAMP): $(RUN_STAMP) requirements-dev.txt
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

install: $(RUN_STAMP) $(NODE_STAMP)

install-dev: $(DEV_STAMP) $(NODE_STAMP)

PORT ?= 8000

# Embedded PostgreSQL and Redis, migrations, the demo, a Celery worker and beat,
# and the web server on $(PORT); Ctrl-C stops all of it (hivemind_web/run.py).
run: install
	$(BIN)/python -m hivemind_web.run --port $(PORT)

# mypy loads Django settings; a DATABASE_URL keeps it from starting the embedded server.
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DATABASE_URL=postgres://mypy@127.0.0.1:1/unused $(BIN)/mypy
	$(BIN)/python manage.py makemigrations --check --dry-run

$(CHROMIUM):
	$(SUDO) apt-get install -y --no-install-recommends chromium || \
	  ($(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium)

test: lint $(CHROMIUM)
	$(BIN)/python -m pytest -n 2

worker: install
	$(BIN)/celery -A hivemind_web worker --loglevel=INFO

beat: install
	$(BIN)/celery -A hivemind_web beat --loglevel=INFO

clean:
	rm -rf $(VENV) node_modules staticfiles
