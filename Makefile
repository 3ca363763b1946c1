# One task file; CI calls `bash scripts/test.sh`, which installs everything and runs `make check test`.
PY ?= .venv/bin/python

.PHONY: install lint typecheck check test bench-store demo

install:
	bash scripts/install.sh

lint:
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

typecheck:
	$(PY) -m mypy

check: lint typecheck

test:
	$(PY) -m pytest -q -p no:cacheprovider

bench-store:
	$(PY) benchmarks/store.py

demo:
	.venv/bin/logloupe demo
