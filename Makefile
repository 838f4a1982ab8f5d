# optikube developer entry points. `make demo` and `make test` are the two commands of the README.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# Installs into the project's venv; the stamp changes whenever pyproject.toml does. Bytecode is
# compiled at install: uv leaves it out by default, and where PYTHONDONTWRITEBYTECODE is set every
# trainer process would compile torch again (a preflight took 11 s instead of 5).
STAMP := $(VENV)/.installed
# The test cluster (hack/testcluster) is a distribution of its own: it never ships in optikube's
# wheel or images, and its dependencies are only the developer's.
TESTCLUSTER := hack/testcluster

.PHONY: demo test test-fast test-gpu test-reliability test-long lint fmt controlplane node images-local prometheus chromium report-preview cluster-up cluster-down cluster-demo node-demo docs clean

$(STAMP): pyproject.toml $(TESTCLUSTER)/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "uv>=0.5"
	$(UV) pip install --python $(PY) --quiet --compile-bytecode -e ".[trainer,hf,dev]" -e $(TESTCLUSTER)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/optikube run examples/quickstart.yaml --output runs/quickstart

# Everything: lint, types, unit, trainer (real torchrun), contract and cluster tiers (the real node's
# tests need its binaries and the chart's images: `node` and `images-local` build them, cached).
test: $(STAMP) controlplane node images-local prometheus chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -m "not reliability and not long and not gpu" --durations=30

test-fast: $(STAMP) chromium prometheus
	$(VENV)/bin/pytest -m "not cluster and not slow and not reliability and not long and not gpu"

# The GPU tier (tests/gpu): the trainer under torchrun with NCCL and bf16 on this machine's GPUs, and
# bench/gpu_runtimes.py measured for real. Never part of `make test`; without a CUDA device it says
# why it was skipped and succeeds.
test-gpu: $(STAMP)
	@if ! reason=$$($(PY) tests/gpu/gpu_environment.py); then echo "make test-gpu: $$reason"; exit 0; fi; \
	echo "make test-gpu: $$reason"; \
	$(VENV)/bin/pytest -m gpu tests/gpu

# The long fault, load and fuzz scenarios of docs/reliability.md (make test runs their core samples).
test-reliability: $(STAMP) controlplane prometheus
	$(VENV)/bin/pytest -m reliability

# Second samples of what make test shows (the other RBAC mode rule by rule, ...).
test-long: $(STAMP) controlplane node images-local prometheus
	$(VENV)/bin/pytest -m long

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

controlplane:
	@bash hack/build-controlplane.sh >/dev/null

cluster-up: $(STAMP) controlplane
	@$(PY) -m optikube_testcluster up

# The real node's binaries (docs/development.md, "The real node"): Debian's containerd, runc and CNI
# plugins installed with apt-get when missing (as root, like `make prometheus`), then the kubelet,
# CoreDNS and the pause image built from source into ~/.cache/optikube/node (nothing once cached).
node:
	@bash hack/install-node-packages.sh >/dev/null
	@bash hack/build-node.sh >/dev/null

# The chart's two images without Docker or a registry (as root: mmdebstrap, uv, umoci), as OCI
# archives in ~/.cache/optikube/images/out; base and dependency layers are cached, a code change
# rebuilds the project layer only. `make images` builds the same Dockerfiles with Docker.
images-local: $(STAMP)
	@bash hack/build-images.sh all >/dev/null

cluster-down: $(STAMP)
	@$(PY) -m optikube_testcluster down

# The quickstart through the operator, its trainer pods running for real on the process node;
# the cluster stays up (its last line is `export KUBECONFIG=...`) until `make cluster-down`.
cluster-demo: $(STAMP) controlplane
	@$(PY) -m optikube_testcluster demo examples/quickstart.yaml

# The quickstart as a user deploys it: the cluster with the real node real-0, the chart's images
# imported into its containerd, `helm install` of the chart (its defaults, restricted Pod Security),
# `helm test`, the quickstart applied and followed to Succeeded in real containers; the last line
# is `export KUBECONFIG=...`, the cluster stays up until `make cluster-down`.
node-demo: $(STAMP) controlplane node images-local
	@$(PY) -m optikube_testcluster node-demo examples/quickstart.yaml

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

# Debian's Chromium for the reports' browser test (tests/local/test_report_in_browser.py opens
# them headless), installed with apt-get when missing, like Prometheus above.
chromium:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "chromium missing: run 'make chromium' as root (apt-get)" >&2; exit 1; fi; \
	echo "installing Debian's chromium package (the reports' browser test runs it headless)"; \
	DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
		|| { echo "apt-get install chromium failed" >&2; exit 1; }; \
	chromium --version 2>/dev/null

# docs/images/report.png: the job report of a real quickstart run's records, drawn by headless
# Chromium in the reports' browser test.
report-preview: $(STAMP) chromium
	mkdir -p docs/images
	OPTIKUBE_REPORT_PREVIEW=$(CURDIR)/docs/images/report.png $(VENV)/bin/pytest -q tests/local/test_report_in_browser.py

# --- images and the kind path (need Docker: without a running daemon each target says so and fails)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
# The chart's default images (values.yaml) and the operator's default --trainer-image.
OPERATOR_IMAGE ?= ghcr.io/optikube/operator:$(VERSION)
TRAINER_IMAGE ?= ghcr.io/optikube/trainer:$(VERSION)
DOCKER ?= docker
KIND ?= kind
KIND_CLUSTER ?= optikube
KIND_CONTEXT := kind-$(KIND_CLUSTER)
BIN = $$(bash hack/build-controlplane.sh)

define need-docker
@$(DOCKER) info >/dev/null 2>&1 || { echo "make $@: needs a running Docker daemon ('$(DOCKER) info' fails on this machine); nothing was built or started. Without Docker, 'make cluster-up' / 'make cluster-demo' give a real control plane instead." >&2; exit 1; }
endef
define need-kind
@command -v $(KIND) >/dev/null || { echo "make $@: needs kind (go install sigs.k8s.io/kind@v0.29.0)" >&2; exit 1; }
endef

.PHONY: images operator-image trainer-image kind-up kind-load deploy kind-e2e kind-down dashboard dashboard-preview

images: operator-image trainer-image

operator-image:
	$(need-docker)
	$(DOCKER) build -f operator/Dockerfile -t $(OPERATOR_IMAGE) .

trainer-image:
	$(need-docker)
	$(DOCKER) build -f trainer_image/Dockerfile -t $(TRAINER_IMAGE) .

# A kind cluster of kind-config.yaml's shape (docs/kind.md), then the images loaded into its nodes.
kind-up:
	$(need-docker)
	$(need-kind)
	$(KIND) get clusters 2>/dev/null | grep -qx $(KIND_CLUSTER) || $(KIND) create cluster --name $(KIND_CLUSTER) --config kind-config.yaml

kind-load:
	$(need-docker)
	$(need-kind)
	$(KIND) load docker-image --name $(KIND_CLUSTER) $(OPERATOR_IMAGE) $(TRAINER_IMAGE)

# The chart into the kind cluster, with the images just loaded (never pulled).
deploy:
	$(need-docker)
	$(BIN)/helm upgrade --install optikube charts/optikube --kube-context $(KIND_CONTEXT) \
		--namespace optikube-system --create-namespace --wait --timeout 5m --set image.pullPolicy=Never
	$(BIN)/helm test optikube --kube-context $(KIND_CONTEXT) --namespace optikube-system

# The quickstart on kind, to Succeeded (the trainer image runs on the CPU worker).
kind-e2e:
	$(need-docker)
	$(BIN)/kubectl --context $(KIND_CONTEXT) apply -f examples/quickstart.yaml
	$(BIN)/kubectl --context $(KIND_CONTEXT) wait optjob/quickstart --for=jsonpath='{.status.phase}'=Succeeded --timeout=30m
	$(BIN)/kubectl --context $(KIND_CONTEXT) get optjob quickstart

kind-down:
	$(need-docker)
	$(need-kind)
	$(KIND) delete cluster --name $(KIND_CLUSTER)

# The chart's Grafana dashboard and alert rules, regenerated from optikube_operator.observability.
dashboard: $(STAMP)
	$(PY) -m optikube_operator.observability

# docs/images/dashboard.png: the chart installed into the test control plane, the quickstart run,
# and every panel drawn from the real Prometheus that scraped it (the chart's end-to-end test).
dashboard-preview: $(STAMP) controlplane prometheus
	mkdir -p docs/images
	OPTIKUBE_DASHBOARD_PREVIEW=$(CURDIR)/docs/images/dashboard.png $(VENV)/bin/pytest -q -s tests/chart/test_chart_install_e2e.py
