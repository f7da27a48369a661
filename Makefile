# evalkit — two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# one stamp per set-up level: the runtime (what `make demo` needs) and, on top of it, the test and
# peer libraries (what `make test` needs); a fresh clone's `make test` builds both in turn
STAMP_RUN  := $(VENV)/.installed-runtime
STAMP_TEST := $(VENV)/.installed-test
SIZE   ?= small
SEED   ?= 42
# evaluations run at the same time by `make demo` (worker processes; BLAS threads split between them)
JOBS   ?= 2
# the demo world has its own warehouse; data/warehouse.duckdb is for ingested (real) data
WAREHOUSE ?= data/demo/warehouse.duckdb

.PHONY: setup setup-test demo test test-all test-fast lint lab clean-outputs

setup: $(STAMP_RUN)

setup-test: $(STAMP_TEST)

$(STAMP_RUN): pyproject.toml scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	MPLBACKEND=Agg $(PY) -c "import evalkit.viz.style as p; print('CJK font:', p.use_cjk_font())"
	touch $(STAMP_RUN)

$(STAMP_TEST): $(STAMP_RUN) pyproject.toml
	$(PY) -m pip install -q -e ".[dev,peers]"
	touch $(STAMP_TEST)

demo: setup
	$(VENV)/bin/evalkit demo-data --size $(SIZE) --seed $(SEED) --out data/demo --warehouse $(WAREHOUSE)
	$(VENV)/bin/evalkit run params/*.yaml --warehouse $(WAREHOUSE) --jobs $(JOBS)
	@echo ""
	@echo "Briefs:"
	@ls -1 outputs/*/brief.pdf outputs/*/brief.html

# what CI runs: lint and every test but the slow suites (end-to-end runs, notebooks, batches; ~40 tests)
test: setup-test
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q -m "not slow"

# lint and the whole suite, slow suites included (run it before a release)
test-all: setup-test
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q

test-fast: setup-test
	$(PY) -m pytest -q -m "not e2e and not slow"

lint: setup-test
	$(VENV)/bin/ruff check src tests benchmarks

lab: setup
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root)

clean-outputs:
	rm -rf outputs/*/
