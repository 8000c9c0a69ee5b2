# Quick start: `make simulate` runs the main job (the market simulator) on SQLite; `make test` runs
# lint gates and the test suite. `make demo` is the smaller servicing demo.
# Both create .venv and install the project on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: simulate demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

simulate: $(STAMP)
	$(BIN)/lendstack simulate

demo: $(STAMP)
	$(BIN)/lendstack demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -n 2 --dist loadgroup

bench: $(STAMP)
	$(BIN)/python -m benchmarks.bench_servicing
	$(BIN)/python -m benchmarks.bench_scoring
	$(BIN)/python -m benchmarks.bench_rules
	$(BIN)/python -m benchmarks.bench_applicants
	$(BIN)/python -m benchmarks.bench_underwriting
	$(BIN)/python -m benchmarks.bench_http --scenario healthz --scenario loan --scenario application

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache lendstack.db

# The shipped default credit model: synthetic applicants (seed 7) -> training table -> model,
# with the feature map copied in so the model directory says how to build its rows.
DEFAULT_MODEL := src/lendstack/underwriting/default_model
APPLICANTS := build/applicants

.PHONY: default-model
default-model: $(STAMP)
	$(BIN)/lendstack applicants generate --n 20000 --seed 7 --start 2025-10-01 --out $(APPLICANTS) --overwrite
	$(BIN)/lendstack model train $(APPLICANTS)/training.csv --target defaulted \
		--labels $(APPLICANTS)/labels.json --seed 42 --out $(DEFAULT_MODEL) --overwrite
	cp src/lendstack/underwriting/default_model_features.toml $(DEFAULT_MODEL)/feature_map.toml
