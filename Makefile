# Two commands do everything on a fresh machine with Python 3.11 and pip:
#   make test   -- bootstrap .venv, install, run the test suite
#   make demo   -- bootstrap .venv, install, run the main job on the embedded demo
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test demo bench schemas clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	mkdir -p reports/demo
	$(BIN)/cliffaudit threshold --p 0.99 --b 0.9 --clip 2 --lambda 1.2 --steps 200 --eta 0.5
	$(BIN)/cliffaudit threshold --p 0.99 --b 0.9 --clip 2 --lambda 1.2 --steps 200 --eta 0.5 --json \
		> reports/demo/threshold.json.tmp && mv reports/demo/threshold.json.tmp reports/demo/threshold.json
	@echo "wrote reports/demo/threshold.json"

bench: $(STAMP)
	$(BIN)/python bench/contract_bench.py
	$(BIN)/python bench/audit_bench.py

schemas: $(STAMP)
	$(BIN)/python -m cliffaudit.report

clean:
	rm -rf $(VENV) build *.egg-info
