# Two commands do all set-up on a fresh machine: `make run` and `make test`.
# Each creates .venv when it is missing or older than pyproject.toml.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	&& { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Two processes (pytest-xdist): most tests wait on sockets, timers and browsers, so two share two
# cores well; the CPU-heavy load tests are one xdist group (never two at once). PYTEST_ARGS= runs
# the suite in one process.
PYTEST_ARGS ?= -n 2 --dist loadgroup

.PHONY: run demo test lint format bench clean web web-if-node screenshots

WEB := gateway/web
HAVE_NODE := $(shell command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && echo yes)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python >= 3.11 is required (python3.11 or newer on PATH)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e '.[test,dev,apps]'
	@touch $(STAMP)

# The web client (gateway/web/dist): npm installs the exact Socket.IO client from the lock file,
# build.mjs copies src/ and the vendored files. `make run` and `make test` build it when Node is
# present; without Node the API runs and the page at / says how to build it.
WEB_DEPS := $(WEB)/node_modules/.installed

$(WEB_DEPS): $(WEB)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "Node.js and npm are needed to build the web client (apt-get install nodejs npm), then run: make web"; exit 1; }
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

web: $(WEB_DEPS)
	cd $(WEB) && node build.mjs

web-if-node:
ifeq ($(HAVE_NODE),yes)
	@$(MAKE) --no-print-directory web || echo "warning: the web client was not built (see above); the API still runs"
else
	@echo "Node.js not found: skipping the web client build (the API still runs; install nodejs npm and run make web)"
endif

run: $(STAMP) web-if-node
	AETHERIAL_ENV=$${AETHERIAL_ENV:-development} $(BIN)/python run.py

# Demo people, a group with the built-in apps and their sample data (gateway/demo.py).
demo: $(STAMP) web-if-node
	AETHERIAL_ENV=$${AETHERIAL_ENV:-development} $(BIN)/python run.py seed-demo

test: $(STAMP) web-if-node
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Drives Chromium through the main screens and saves PNGs under docs/screenshots/.
screenshots: $(STAMP) web
	$(BIN)/python docs/screenshots/make_screenshots.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	@for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info $(WEB)/dist $(WEB)/node_modules
