# Course companion for "Generative Models": every target does the set-up it needs.
# `make help` lists them. Variables: MIRROR=DIR (offline data), DATASETS="mnist cifar10 fashion",
# FORCE=1 (replace changed student copies, after a backup), PYTHON=python3.1x (the interpreter).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SITE_STAMP := $(VENV)/.site-installed
BENCH_STAMP := $(VENV)/.bench-installed
DATASETS ?= mnist
MIRROR ?=
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
# nbval: lax output comparison, the kernel from this environment, and a cell timeout so that a
# dead kernel fails fast instead of hanging the run.
NBVAL := --nbval-lax --nbval-current-env --nbval-cell-timeout=600
# Two workers on two cores: one thread each. Notebooks (nbval) are scheduled a whole file per
# worker (loadscope, the only mode nbval supports); unit tests test by test (load).
PARALLEL := -n 2 --dist loadscope
UNIT := -n 2 --dist load

# The notebooks on emulated accelerators (tests/fake_device.py): an IPython start-up file installs
# the emulated device in every kernel, and DGM_RETRAIN=1 makes every training run under its audit.
STARTUP := build/ipython/profile_default/startup/00-emulated-device.py
# Under test the notebooks read a data folder of their own (build/test-data): the real MNIST
# (a link) and small CIFAR-10 files in CIFAR-10's own format (tests/cifar_fixture.py), so that the
# CIFAR sections run through torchvision's loader. Models trained under test go to its
# checkpoints/ and their figures to its results/; the reference classifier is found in the
# student's cache after it.
TEST_DATA := build/test-data
CHECKPOINTS := $(or $(DGM_CHECKPOINTS),$(or $(DGM_DATA),data)/checkpoints)
NOTEBOOK_TESTS := DGM_CIFAR10=1 DGM_DATA=$(CURDIR)/$(TEST_DATA) \
  DGM_RESULTS=$(CURDIR)/$(TEST_DATA)/results DGM_CHECKSUMS=$(CURDIR)/$(TEST_DATA)/checksums.json \
  DGM_CHECKPOINTS=$(CURDIR)/$(TEST_DATA)/checkpoints:$(CHECKPOINTS)
EMULATED = IPYTHONDIR=$(CURDIR)/build/ipython DGM_TESTS=$(CURDIR)/tests DGM_RETRAIN=1 \
  OMP_NUM_THREADS=1 $(NOTEBOOK_TESTS)

.PHONY: help setup lab test check test-devices test-gpu-smoke test-ui run site data student lint classifier clean bench

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup: $(STAMP)  ## build .venv with the pinned requirements and the helpers package

$(STAMP): requirements.txt pyproject.toml .gitattributes
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# uv installs the pinned set in seconds; plain pip is the fallback.
	@if $(BIN)/python -m pip install -q uv; then \
	  $(BIN)/uv pip install -q --python $(BIN)/python -r requirements.txt -e . ; \
	else \
	  $(BIN)/python -m pip install -q -r requirements.txt -e . ; \
	fi
	@# The git filter of .gitattributes: a notebook run in JupyterLab is committed without outputs.
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  git config filter.strip-notebooks.clean "'$(CURDIR)/$(BIN)/python' -m tools.student strip"; \
	  git config filter.strip-notebooks.smudge cat; \
	fi
	@# Widget state saved with a notebook: a reopened notebook shows its sliders and progress
	@# bars as they were, instead of "Error displaying widget: model not found".
	@mkdir -p $(VENV)/share/jupyter/lab/settings
	@echo '{"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": true}}' \
	  > $(VENV)/share/jupyter/lab/settings/overrides.json
	@touch $@
	@echo "setup: $(VENV) is ready ($$($(BIN)/python -c 'import torch; print("torch", torch.__version__)'))"

data: $(STAMP)  ## fetch the datasets into data/ (MIRROR=DIR copies from a local mirror)
	$(BIN)/python -m tools.data fetch $(DATASETS) $(if $(MIRROR),--mirror "$(MIRROR)")

student: $(STAMP)  ## write student copies to student/ (changed copies are kept unless FORCE=1)
	$(BIN)/python -m tools.student notebooks student $(if $(FORCE),--force)

# One kernel is fastest with torch's default threads (all cores; see the README): `make lab` keeps it.
lab: $(STAMP) student  ## open JupyterLab with everything installed and the data in place
	@$(MAKE) --no-print-directory data || echo "lab: opening JupyterLab without the data (see the message above)."
	$(BIN)/jupyter lab --notebook-dir=. --config=jupyter_lab_config.py \
	  $(if $(filter 0,$(shell id -u)),--allow-root)  # root: containers and cloud VMs

classifier: $(STAMP)  ## train (once) and cache the reference MNIST classifier of the evaluation kit
	$(BIN)/python -m tools.classifier

lint: $(STAMP)  ## ruff on helpers, tools, tests, notebooks and the template
	$(BIN)/ruff check helpers tools tests notebooks templates

test: $(STAMP) data lint classifier $(TEST_DATA)/checksums.json  ## the unit tests, then every notebook (quick) on the CPU: about 3 minutes
	OMP_NUM_THREADS=1 DGM_QUICK=1 $(BIN)/python -m pytest tests $(UNIT)
	OMP_NUM_THREADS=1 DGM_QUICK=1 $(NOTEBOOK_TESTS) $(BIN)/python -m pytest $(NBVAL) $(PARALLEL) $(NOTEBOOKS)

check: test test-devices test-ui  ## everything CI runs but the gpu-mode smoke run: make test, the emulated devices, the browser
	$(BIN)/python -m pytest -m slow tests

test-devices: $(STAMP) data classifier $(STARTUP) $(TEST_DATA)/checksums.json  ## every notebook (quick) on an emulated CUDA GPU, then Apple MPS
	$(EMULATED) DGM_QUICK=1 DGM_EMULATE=cuda $(BIN)/python -m pytest $(NBVAL) $(PARALLEL) $(NOTEBOOKS)
	$(EMULATED) DGM_QUICK=1 DGM_EMULATE=mps $(BIN)/python -m pytest $(NBVAL) $(PARALLEL) $(NOTEBOOKS)

test-gpu-smoke: $(STAMP) data classifier $(STARTUP) $(TEST_DATA)/checksums.json  ## gpu-mode sizes, quick counts, on the emulated CUDA GPU; measures in build/smoke/
	@rm -rf build/smoke
	$(EMULATED) DGM_QUICK=0 DGM_SMOKE=1 DGM_EMULATE=cuda DGM_EMULATE_REPORT=$(CURDIR)/build/smoke \
	  $(BIN)/python -m pytest $(NBVAL) $(PARALLEL) $(NOTEBOOKS)

test-ui: $(STAMP) $(SITE_STAMP) data classifier $(TEST_DATA)/checksums.json  ## headless Chromium (Debian's chromium, chromium-driver): a student's day in JupyterLab, every page of the site
	$(BIN)/python -m pytest -m ui tests/test_lab_ui.py tests/test_site.py

$(STARTUP): tests/emulated_kernel.py
	@mkdir -p $(@D) && cp $< $@

$(TEST_DATA)/checksums.json: tests/cifar_fixture.py $(STAMP)
	$(BIN)/python tests/cifar_fixture.py $(TEST_DATA)

run: $(STAMP) data  ## execute every notebook in this machine's default mode into build/run/ (trained models are reused)
	@mkdir -p build/run
	@for nb in $(NOTEBOOKS); do \
	  echo "run: $$nb"; \
	  DGM_RESULTS=$(CURDIR)/build/run/results $(BIN)/jupyter nbconvert --to notebook --execute \
	    --ExecutePreprocessor.timeout=3600 --output-dir build/run "$$nb" || exit 1; \
	done

$(BENCH_STAMP): requirements-bench.txt $(STAMP)  # the peer library, for make bench only
	@if test -x $(BIN)/uv; then $(BIN)/uv pip install -q --python $(BIN)/python -r $<; \
	  else $(BIN)/python -m pip install -q -r $<; fi
	@touch $@

$(SITE_STAMP): requirements-site.txt $(STAMP)
	@if test -x $(BIN)/uv; then $(BIN)/uv pip install -q --python $(BIN)/python -r $<; \
	  else $(BIN)/python -m pip install -q -r $<; fi
	@touch $@

site: $(SITE_STAMP) run  ## the course as a static site in build/site/ (from make run's executed notebooks; works offline)
	$(BIN)/python -m tools.site build/run build/site

clean:  ## remove build outputs and caches (keeps data/, student/ and .venv)
	rm -rf build .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

MODE ?= cpu
bench: $(STAMP) $(BENCH_STAMP) data classifier  ## run every notebook in MODE=quick|cpu|gpu, then the peer baseline; tables in build/bench/ and the README, pictures in docs/
	$(BIN)/python -m tools.bench --mode $(MODE) $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS))
