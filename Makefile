# cnnlab — everyday commands. `make run` and `make test` install first: the virtualenv, and the
# Debian packages they need (as root; otherwise one line says what to install).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: install run test test-fast lint typecheck check bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall whenever pyproject.toml changes. torch/torchvision are pinned for this platform in
# requirements-platform.txt; pyproject keeps open ranges for users elsewhere.
$(STAMP): pyproject.toml requirements-platform.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-platform.txt
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages: Fashion-MNIST, the real data of the README's service examples and `make bench`,
# and for the tests also docker-compose (validates docker-compose.yml) and chromium (the
# dashboard's browser tests). Costs one dpkg-query when they are all there.
DATA_DEBS := dataset-fashion-mnist
TEST_DEBS := $(DATA_DEBS) docker-compose chromium
SYSTEM_PACKAGES := scripts/system-packages --stamp $(VENV)/.system-packages-unavailable
# The tests run in pytest-xdist workers (tests/conftest.py says which tests share one); TEST_WORKERS=0
# runs them all in one process.
TEST_WORKERS ?= 2
# Python may write bytecode here, whatever the environment says: without it every test process
# (and each `cnnlab` process a test starts) compiles the project again, and pytest rewrites the
# assertions of its plugins' modules again, about 1.5 s of CPU time per test process.
unexport PYTHONDONTWRITEBYTECODE
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

run: install
	@$(SYSTEM_PACKAGES) $(DATA_DEBS)
	$(BIN)/cnnlab serve --port $(PORT)

# pytest exits 5 when PYTEST_ARGS select no test: nothing failed, so neither does make.
test: install
	@$(SYSTEM_PACKAGES) $(TEST_DEBS)
	$(PYTEST) $(PYTEST_ARGS) || [ $$? -eq 5 ]

# Without the tests marked slow: those that start processes or a browser, or train on real data.
test-fast: install
	@$(SYSTEM_PACKAGES) $(TEST_DEBS)
	$(PYTEST) -m "not slow" $(PYTEST_ARGS) || [ $$? -eq 5 ]

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy cnnlab api worker bench

check: lint typecheck test

bench: install
	@$(SYSTEM_PACKAGES) $(DATA_DEBS)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
