# One venv at .venv/, created on demand; every target goes through it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# constraints.txt pins scikit-learn to the version the shipped sample pickle was built with.
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: demo test test-slow check lint typecheck format bench bench-explain bench-serve models clean fuzz sweep coverage docs docs-reference bytecode

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e ".[sql]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e ".[dev,docs,dask,convert,xgboost,lightgbm,s3,sql,explain,bench]"
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	$(BIN)/modelrouter predict sample_data/wine.parquet -o sample_data/wine.predictions.parquet -k id
	$(BIN)/modelrouter predict-proba sample_data/wine.csv --model-type onnx -o - -k id --no-stats | head -n 6

# Tests marked `slow` (Dask on the local S3 server, the estimator sweep subset, the bench
# smoke run, most booster oracle combinations, the other cells of end-to-end matrices:
# tests/tiers.py) keep `make test` within its
# 6-minute budget on 2 cores; `make test-slow` runs them, a bare `pytest` runs everything.
# One pytest worker more than cores: an end-to-end test waits on its subprocess (start-up,
# a server's readiness, a signal), and the extra worker fills those gaps (5:54 -> 5:37 on 2 cores).
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))

# The project's own modules compiled once, before the tests start ~1,000 `modelrouter`
# processes: an editable install has no bytecode of them, and where PYTHONDONTWRITEBYTECODE
# is set (CI's environment) every process would compile them again (0.08-0.13 s each).
bytecode: $(VENV)/.installed-dev
	$(BIN)/python -m compileall -q -j 0 router cli tests benchmarks >/dev/null

test: bytecode
	$(BIN)/python -m pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadfile --durations=10

test-slow: bytecode
	$(BIN)/python -m pytest -q -m "slow and not soak" -n $(TEST_WORKERS) --dist loadfile --durations=10

# The long fuzzing budget (make test runs a few derandomized examples of the same tests):
# FUZZ_EXAMPLES examples per test, random, against the real command (the dataset walker's
# property: 10x as many random trees in-process), then the random soak tests (marked soak).
# About 15 minutes.
FUZZ_EXAMPLES ?= 100
fuzz: bytecode
	MODELROUTER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/batch/test_fuzz.py \
		tests/batch/test_dataset_walker.py -k "subprocess or property" -q -p no:cacheprovider \
		--timeout 0 --hypothesis-show-statistics
	$(BIN)/python -m pytest -q -p no:cacheprovider -m soak tests/

lint: $(VENV)/.installed-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(VENV)/.installed-dev
	rm -rf build/typecheck && mkdir -p build/typecheck/modelrouter
	for f in router/*; do [ "$$f" = router/__pycache__ ] || ln -s "$(CURDIR)/$$f" build/typecheck/modelrouter/; done
	ln -s "$(CURDIR)/cli" build/typecheck/modelrouter/cli
	$(BIN)/mypy

# Every scikit-learn classifier/regressor through the CLI, pickle and ONNX (~15 min on 2 cores);
# writes sweep-report.json with the counts.
sweep: $(VENV)/.installed-dev
	SWEEP=1 $(BIN)/python -m pytest -m sweep tests/batch/test_sweep.py -q -s -p no:cacheprovider --timeout 3600

# The whole gate, as CI runs it: formatting, lint (with the complexity cap), types, the docs
# site built strictly, and the tests under coverage with its floor.
check: lint typecheck docs coverage

# Line coverage of router/ and cli/, the end-to-end tests' subprocesses included (coverage's
# subprocess and os._exit patches). Fails below the floor in pyproject.toml (fail_under).
coverage: bytecode
	rm -f .coverage .coverage.*
	$(BIN)/python -m coverage run -m pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadfile -p no:cacheprovider
	$(BIN)/python -m coverage combine -q
	$(BIN)/python -m coverage report

docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The command reference page is generated from the app; tests/docs fails when it is stale.
docs-reference: $(VENV)/.installed-dev
	$(BIN)/python -m modelrouter.cli.reference > docs/reference/cli.md

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

models: $(VENV)/.installed-dev
	$(BIN)/python models/build_models.py

# Rewrites docs/performance.md from the run's JSON (benchmarks/report.py; tests/docs checks it).
bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.run
	mkdir -p docs/benchmarks && cp benchmarks/results/latest.json docs/benchmarks/latest.json
	$(BIN)/python -m benchmarks.report docs/benchmarks/latest.json > docs/performance.md

# HTTP load on `modelrouter serve` and, side by side in the same run, MLServer's scikit-learn
# runtime: installed on first use into its own venv (not a project dependency), with the
# scikit-learn version the shipped pickle was built with. MLSERVER=/path/to/mlserver uses another.
MLSERVER_VENV := build/mlserver-venv
MLSERVER ?= $(MLSERVER_VENV)/bin/mlserver

$(MLSERVER_VENV)/bin/mlserver:
	$(PYTHON) -m venv $(MLSERVER_VENV)
	$(MLSERVER_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt \
		"mlserver==1.7.1" "mlserver-sklearn==1.7.1" scikit-learn

# make bench's predict --explain groups alone (5,000 rows: the forest against the naive shap script,
# XGBoost and LightGBM against their own contribution calls).
bench-explain: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.explain

bench-serve: $(VENV)/.installed-dev $(MLSERVER)
	$(BIN)/python -m benchmarks.serve --mlserver $(MLSERVER)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis site .coverage .coverage.*
