# plait: every target creates and reuses a local .venv, from a clean clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.plait-installed

.PHONY: venv test demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

test: venv
	$(BIN)/python -m pytest -q

demo: venv
	$(BIN)/plait run examples/quickstart.py:graph --input '{"question": "What is 17 * 3 + 4?"}' --summary

bench: venv
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/csp.py

clean:
	rm -rf $(VENV) .pytest_cache
