# optikube developer entry points. `make demo` and `make test` are the two commands of the README.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# Installs into the project's venv; the stamp changes whenever pyproject.toml does.
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint fmt controlplane cluster-up cluster-down cluster-demo docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "uv>=0.5"
	$(UV) pip install --python $(PY) --quiet -e ".[trainer,hf,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/optikube run examples/quickstart.yaml --output runs/quickstart

# Everything: lint, types, unit, trainer (real torchrun), contract and cluster tiers.
test: $(STAMP) controlplane
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

test-fast: $(STAMP)
	$(VENV)/bin/pytest -m "not cluster and not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

controlplane:
	@bash hack/build-controlplane.sh >/dev/null

cluster-up: $(STAMP) controlplane
	@$(PY) -m optikube_operator.envtest up

cluster-down: $(STAMP)
	@$(PY) -m optikube_operator.envtest down

# The quickstart through the operator, its trainer pods running for real on the process node;
# the cluster stays up (its last line is `export KUBECONFIG=...`) until `make cluster-down`.
cluster-demo: $(STAMP) controlplane
	@$(PY) -m optikube_operator.envtest demo examples/quickstart.yaml

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
