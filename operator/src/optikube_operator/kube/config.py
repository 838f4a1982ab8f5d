"""The operator's own settings (`optikube operator` flags and environment), documented in
docs/operator.md: where it listens, what it tells pods, and the defaults of every trainer pod."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from optikube_operator import __version__

DEFAULT_TRAINER_IMAGE = f"ghcr.io/optikube/trainer:{__version__}"
DEFAULT_TRAINER_SERVICE_ACCOUNT = "optikube-trainer"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


@dataclass(frozen=True)
class TrainerDefaults:
    """What every trainer pod gets unless the job's spec.resources says otherwise."""

    image: str = DEFAULT_TRAINER_IMAGE
    service_account: str = DEFAULT_TRAINER_SERVICE_ACCOUNT
    # added to pods that request GPUs (GPU node pools are tainted and labelled)
    gpu_tolerations: tuple[dict[str, Any], ...] = (GPU_TOLERATION,)
    gpu_node_selector: dict[str, str] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    runtime_class_name: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    # the pods' user: the restricted Pod Security profile wants a non-root one
    run_as_user: int = 1000
    run_as_group: int = 1000
    fs_group: int = 1000

    @classmethod
    def from_file(cls, path: Path) -> TrainerDefaults:
        """Defaults from a YAML file of camelCase keys (the chart's `trainer:` values)."""
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: trainer defaults must be a mapping")
        known = {
            "image": "image",
            "serviceAccount": "service_account",
            "gpuTolerations": "gpu_tolerations",
            "gpuNodeSelector": "gpu_node_selector",
            "nodeSelector": "node_selector",
            "tolerations": "tolerations",
            "runtimeClassName": "runtime_class_name",
            "imagePullSecrets": "image_pull_secrets",
            "runAsUser": "run_as_user",
            "runAsGroup": "run_as_group",
            "fsGroup": "fs_group",
        }
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ValueError(f"{path}: unknown trainer default(s) {', '.join(unknown)}")
        values: dict[str, Any] = {known[key]: value for key, value in raw.items() if value is not None}
        for name in ("gpu_tolerations", "tolerations", "image_pull_secrets"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    progress_bind: str = "127.0.0.1:8443"
    progress_url: str | None = None  # what pods are told; default derived from progress_bind
    metrics_bind: str = "127.0.0.1:8080"
    liveness: str | None = None  # kopf's probe, e.g. http://0.0.0.0:8081/healthz
    kubeconfig: Path | None = None
    trainer: TrainerDefaults = field(default_factory=TrainerDefaults)
    # how often each unfinished job is reconciled even without events (timeouts, maxDuration)
    resync_seconds: float = 10.0
    # the operator's own identity for Events
    instance: str = "optikube-operator"

    @property
    def effective_progress_url(self) -> str:
        return self.progress_url or f"http://{self.progress_bind}/v1/progress"


def split_bind(bind: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 in brackets) -> (host, port)."""
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{bind!r} is not HOST:PORT")
    return host.strip("[]"), int(port)
