# MotCua Edge. A newcomer runs two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: demo test test-fast lint schema venv bench clean audio models-check vpi

$(STAMP): pyproject.toml
	@scripts/system-packages.sh demo
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[kiosk,gateway,provision,dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

## make demo: embedded broker + SQLite gateway + 6 simulated kiosks in 2 offices; map on http://127.0.0.1:8000/map
demo: venv
	$(PY) -m demo.run $(DEMO_ARGS)

## make test: system packages (apt, if missing), lint, contract check, the whole test suite
test: venv
	@scripts/system-packages.sh test
	$(VENV)/bin/ruff check .
	$(PY) -m contract.export --check
	$(PY) -m pytest $(PYTEST_ARGS)

## make test-fast: the developer's loop (under two minutes): lint, contract check, the tests not marked slow
## (tests/conftest.py says which are slow and why); `make test` still runs everything, as CI does
test-fast: venv
	$(VENV)/bin/ruff check .
	$(PY) -m contract.export --check
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .

schema: venv
	$(PY) -m contract.export

bench: venv
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) build .pytest_cache

## make vpi: the virtual Raspberry Pi (arm64 Debian image built once and cached, qemu TCG, needs root):
## provision + flash + first boot + buttons + faults + signed code update; prints a verdict table
vpi: venv
	@scripts/system-packages.sh vpi
	$(PY) -m hil.vpi.run $(VPI_ARGS)
