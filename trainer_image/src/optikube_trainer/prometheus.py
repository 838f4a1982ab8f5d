"""Prometheus metrics of a training process, served by rank 0 when ``OPTIKUBE_METRICS_PORT`` is set.

The gauges live in their own registry so that a process can hold several runs' metrics in tests
without clashing with the global default registry.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import torch
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

log = logging.getLogger(__name__)

METRICS_PORT_ENV = "OPTIKUBE_METRICS_PORT"
METRICS_ADDR_ENV = "OPTIKUBE_METRICS_ADDR"


class TrainerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.samples_per_second = Gauge(
            "optikube_trainer_samples_per_second",
            "Training samples per second over all ranks, last epoch",
            registry=r,
        )
        self.epoch = Gauge("optikube_trainer_epoch", "Index of the last finished epoch", registry=r)
        self.epochs = Counter("optikube_trainer_epochs", "Finished training epochs", registry=r)
        self.train_loss = Gauge("optikube_trainer_train_loss", "Mean training loss, last epoch", registry=r)
        self.validation_loss = Gauge(
            "optikube_trainer_validation_loss", "Validation loss, last epoch", registry=r
        )
        self.validation_accuracy = Gauge(
            "optikube_trainer_validation_accuracy_ratio", "Validation accuracy, last epoch", registry=r
        )
        self.gpu_memory = Gauge(
            "optikube_trainer_gpu_memory_bytes", "Peak GPU memory allocated by this process", registry=r
        )
        self.server: Any = None

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        self.server = server
        return int(server.server_address[1])

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def record_epoch(
        self, epoch: int, values: Mapping[str, float], samples_per_second: float, device: torch.device
    ) -> None:
        self.epoch.set(epoch)
        self.epochs.inc()
        self.samples_per_second.set(samples_per_second)
        self.train_loss.set(values.get("trainLoss", float("nan")))
        self.validation_loss.set(values.get("valLoss", float("nan")))
        self.validation_accuracy.set(values.get("accuracy", float("nan")))
        if device.type == "cuda":
            self.gpu_memory.set(torch.cuda.max_memory_allocated(device))


def metrics_from_env(rank: int) -> TrainerMetrics | None:
    """Rank 0 serves /metrics on ``OPTIKUBE_METRICS_PORT`` (bound to ``OPTIKUBE_METRICS_ADDR``)."""
    port = os.environ.get(METRICS_PORT_ENV)
    if rank != 0 or not port:
        return None
    metrics = TrainerMetrics()
    try:
        metrics.serve(int(port), os.environ.get(METRICS_ADDR_ENV, "0.0.0.0"))
    except (OSError, ValueError) as error:
        # metrics are an aid, never a reason to fail a training run
        log.warning("cannot serve trainer metrics on port %s: %s", port, error)
        return None
    return metrics
