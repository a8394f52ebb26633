# f8lab: `make test` and `make demo` set everything up from a fresh clone.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# the versions the suite passed on (`make lock` rewrites it); empty: the newest releases
CONSTRAINTS ?= constraints.txt
PIN := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),--upgrade --upgrade-strategy eager)
DATA := data/FashionMNIST/raw/train-images-idx3-ubyte
BROWSER := /usr/bin/chromium
EMULATOR := /usr/bin/qemu-x86_64
PROFILE ?= default
RESULTS ?= results/$(PROFILE)
# the README's figures: the default study's, refreshed by `make demo`
README_FIGURES := 01_activations 02_error_curves_signed 03_formula_vs_grid 04_results 04_format_trace 05_schemes 06_fraclens

.PHONY: help install data browser emulator lint test test-slow test-no-vnni test-latest lock demo lab bench clean

help:
	@echo "make test          set up .venv (versions of constraints.txt) and data, lint, run the test"
	@echo "                   suite (notebooks in the quick profile)"
	@echo "make lint          ruff (lint, import order, formatting) and mypy"
	@echo "make demo          set up, run every notebook with papermill (PROFILE=default|quick)"
	@echo "make lab           open JupyterLab on notebooks/"
	@echo "make test-slow     the slow checks kept out of the default run (the full matrices)"
	@echo "make test-no-vnni  the export tests with onnxruntime on an emulated AVX2 CPU without VNNI"
	@echo "make test-latest   the test suite in .venv-latest, on the newest releases of every dependency"
	@echo "make lock          write constraints.txt from .venv (after test-latest: VENV=.venv-latest)"
	@echo "make bench         the benchmarks in benchmarks/"

install: $(INSTALLED)

$(INSTALLED): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(PIN) -e '.[test]' 2>&1 | { grep -v "is ignored: it is neither" || true; }
	$(PY) -c "import f8lab, torch, torchvision, onnxruntime, papermill"
	touch $@

data: $(DATA)

$(DATA): | $(INSTALLED)
	$(PY) data_scripts/get_fashion_mnist.py

# Chromium for the test that drives the widgets in JupyterLab (Debian's package, as root)
browser: $(BROWSER)

$(BROWSER):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null \
		|| { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
		|| echo "make: could not install chromium: the browser test will be skipped"; \
	else echo "make: no $(BROWSER) (Debian: apt-get install chromium): the browser test will be skipped"; fi

# QEMU's user-mode emulator, for the tests that run onnxruntime on an emulated CPU (as root)
emulator: $(EMULATOR)

$(EMULATOR):
	@if [ "$$(uname -m)" = x86_64 ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq --no-install-recommends qemu-user >/dev/null \
		|| { apt-get update -qq && apt-get install -y -qq --no-install-recommends qemu-user >/dev/null; } \
		|| echo "make: could not install qemu-user: the emulated-CPU tests will be skipped"; \
	else echo "make: no $(EMULATOR) (Debian, x86-64: apt-get install qemu-user): the emulated-CPU tests will be skipped"; fi

lint: $(INSTALLED)
	$(VENV)/bin/ruff check f8lab tests benchmarks data_scripts
	$(VENV)/bin/ruff format --check f8lab tests benchmarks data_scripts
	$(VENV)/bin/mypy

test: lint $(INSTALLED) $(DATA) $(BROWSER) $(EMULATOR)
	$(PY) -m pytest -m "not slow"

test-slow: $(INSTALLED) $(DATA)
	$(PY) -m pytest -m slow

test-no-vnni: $(INSTALLED) $(EMULATOR)
	$(PY) -m pytest tests/export tests/train/test_imagenet_rows.py --onnxruntime-cpu Haswell

test-latest:
	rm -f .venv-latest/.installed
	$(MAKE) test VENV=.venv-latest CONSTRAINTS=
	.venv-latest/bin/python -m pip list --format freeze 2>/dev/null | grep -i -E "^(torch|torchvision|onnx|onnxruntime|numpy)=="

lock:
	@test -x $(PY) || { echo "make lock: no $(VENV) to read the versions from: run make test first"; exit 2; }
	{ echo "# The versions \`make test\` passed on, written by \`make lock\` from $(VENV)."; \
	  $(PY) -m pip freeze --exclude-editable --disable-pip-version-check | grep -v -i "^f8lab"; } > constraints.txt

demo: $(INSTALLED) $(DATA)
	@mkdir -p $(RESULTS)
	@set -e; notebooks=$$(ls notebooks/[0-9]*.ipynb 2>/dev/null || true); \
	if [ -z "$$notebooks" ]; then echo "demo: no notebooks in notebooks/ yet, nothing to run"; exit 0; fi; \
	for nb in $$notebooks; do \
		echo "demo: running $$nb (profile $(PROFILE))"; start=$$SECONDS; \
		$(VENV)/bin/papermill --cwd notebooks -p PROFILE $(PROFILE) -p RESULTS_DIR $(abspath $(RESULTS)) \
			$$nb $(RESULTS)/$$(basename $$nb); \
		echo "demo: $$nb done in $$((SECONDS - start)) s"; \
	done; echo "demo: executed notebooks, figures and results in $(RESULTS) ($$SECONDS s in all)"; \
	if [ "$(PROFILE)" = default ]; then \
		for f in $(README_FIGURES); do cp $(RESULTS)/figures/$$f.png notebooks/figures/; done; \
		$(PY) -m f8lab.analysis.executed $(RESULTS) notebooks/executed; \
		echo "demo: the README's figures (notebooks/figures) and the executed notebooks and records (notebooks/executed) are this run's"; \
	fi

lab: $(INSTALLED) $(DATA)
	$(VENV)/bin/jupyter lab notebooks/

bench: $(INSTALLED)
	@set -e; for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b; done
	@echo "(benchmarks/gpu_train_throughput.py needs a GPU: run it by hand there)"

clean:
	rm -rf .venv .venv-latest results .pytest_cache .hypothesis
