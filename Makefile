# Two entry points: `make demo` (train + evaluate on the synthetic set) and `make test`.
# Both create or reuse the virtual environment $(VENV) first.
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
export VENV

.PHONY: env demo test test-fast test-all lint benchmark

env:
	@bash tools/setup_env.sh

demo: env
	$(PY) tools/run_demo.py

# `make test` (CI): unit and integration tests (multi-process, training and CLI runs);
# `make test-fast`: the unit tests alone. pytest exits 5 when it collected no test: that is a
# broken suite, not a pass.
test: env
	$(PY) -m ruff check .
	$(PY) -m pytest -m "not slow"; status=$$?; \
	[ $$status -ne 5 ] || echo "pytest collected no tests"; [ $$status -eq 0 ]

test-fast: env
	$(PY) -m pytest -m "not slow and not integration"; status=$$?; \
	[ $$status -ne 5 ] || echo "pytest collected no tests"; [ $$status -eq 0 ]

test-all: env
	$(PY) -m ruff check .
	$(PY) -m pytest -m "slow or not slow"

lint: env
	$(PY) -m ruff check .

benchmark: env
	$(PY) tools/benchmark.py
