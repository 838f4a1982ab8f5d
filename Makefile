# optikube developer entry points. `make demo` and `make test` are the two commands of the README.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# Installs into the project's venv; the stamp changes whenever pyproject.toml does.
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint fmt controlplane prometheus cluster-up cluster-down cluster-demo docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "uv>=0.5"
	$(UV) pip install --python $(PY) --quiet -e ".[trainer,hf,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/optikube run examples/quickstart.yaml --output runs/quickstart

# Everything: lint, types, unit, trainer (real torchrun), contract and cluster tiers.
test: $(STAMP) controlplane prometheus
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

# Debian's Prometheus (`prometheus`, `promtool`) for the chart tests, installed with apt-get when
# missing. Its service is never started: a policy-rc.d answering 101 is in place for the install
# (and removed after, if it was ours), since the tests run their own Prometheus on 127.0.0.1 only.
prometheus:
	@if command -v prometheus >/dev/null && command -v promtool >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "prometheus/promtool missing: run 'make prometheus' as root (apt-get)" >&2; exit 1; fi; \
	echo "installing Debian's prometheus package (prometheus, promtool)"; \
	ours=; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; ours=1; fi; \
	DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; rc=$$?; \
	if [ -n "$$ours" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	if [ $$rc != 0 ]; then echo "apt-get install prometheus failed" >&2; exit $$rc; fi; \
	prometheus --version | head -1
