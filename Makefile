# Course companion for "Generative Models": thin wrappers over `python -m tools.course TARGET`
# (the same targets without make: Windows, macOS). `make help` lists them. Variables: MIRROR=DIR
# (offline data), DATASETS="mnist cifar10 fashion", FORCE=1 (replace changed student copies, after
# a backup), CPU=1 (PyTorch's CPU-only build), MODE=quick|cpu|gpu and NOTEBOOKS="02 06" (bench),
# PYTHON=python3.1x.

PYTHON ?= python3
COURSE := $(PYTHON) -m tools.course
DATASETS ?= mnist
MODE ?= cpu

.PHONY: help setup lab test check test-devices test-gpu-smoke test-compile test-ui run site data \
  student lint classifier clean bench badges grade-check hub-link

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup:  ## build .venv with the pinned requirements and the course package (CPU=1: CPU-only torch)
	$(COURSE) setup $(if $(CPU),--cpu)

data:  ## fetch the datasets into data/ (MIRROR=DIR copies from a local mirror)
	$(COURSE) data $(DATASETS) $(if $(MIRROR),--mirror "$(MIRROR)")

student:  ## write student copies to student/ (changed copies are kept unless FORCE=1)
	$(COURSE) student $(if $(FORCE),--force)

lab:  ## set up, write the student copies, fetch the data and open JupyterLab
	$(COURSE) lab

classifier:  ## check the shipped reference classifier of the evaluation kit
	$(COURSE) classifier

lint:  ## ruff on helpers, tools, tests, notebooks and the template
	$(COURSE) lint

test:  ## the unit tests, then every notebook (quick) on the CPU: about 3 minutes
	$(COURSE) test $(if $(MIRROR),--mirror "$(MIRROR)")

check:  ## make test, the emulated devices, the browser test, the slow tests, test-compile
	$(COURSE) check

test-devices:  ## every notebook (quick) on an emulated CUDA GPU, then Apple MPS
	$(COURSE) test-devices

test-gpu-smoke:  ## gpu mode's sizes on the emulated CUDA GPU, a T4's, then test-compile
	$(COURSE) test-gpu-smoke

test-compile:  ## every training step that gpu mode compiles, traced on the CPU: one graph, once
	$(COURSE) test-compile

test-ui:  ## headless Chromium (Debian's chromium, chromium-driver): JupyterLab and the site
	$(COURSE) test-ui

run:  ## execute every notebook in this machine's default mode into build/run/
	$(COURSE) run

site:  ## the course as a static site in build/site/ (from make run's notebooks; works offline)
	$(COURSE) site

bench:  ## run every notebook in MODE=quick|cpu|gpu, then the peer baseline; tables in build/bench/
	$(COURSE) bench --mode $(MODE) $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS))

grade-check:  ## nbgrader round trip in its own environment: release, compare, autograde 3 submissions
	$(COURSE) grade-check

hub-link:  ## an nbgitpuller link for a JupyterHub: make hub-link HUB=https://hub.example.edu
	$(COURSE) hub-link --hub "$(HUB)" $(if $(NOTEBOOK),--notebook $(NOTEBOOK))

badges:  ## rewrite every badge and install line from pyproject.toml's Repository address
	$(COURSE) badges

clean:  ## remove build outputs and caches (keeps data/, student/ and .venv)
	$(COURSE) clean
