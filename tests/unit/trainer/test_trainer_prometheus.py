"""Trainer /metrics: fit() updates rank 0's gauges and Prometheus can scrape them."""

from __future__ import annotations

import urllib.request

import pytest

from optikube_operator.api.data import DataSpec
from optikube_operator.api.model import ModelSpec
from optikube_operator.api.training import TrainingSpec
from optikube_trainer.data import load_data
from optikube_trainer.dist import local_context
from optikube_trainer.models import build_model
from optikube_trainer.prometheus import METRICS_ADDR_ENV, METRICS_PORT_ENV, TrainerMetrics, metrics_from_env
from optikube_trainer.recipe import TrainingRecipe
from optikube_trainer.training import fit


def _sample(text: str, name: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return float(line.split()[1])


def test_fit_publishes_epoch_metrics_over_http() -> None:
    metrics = TrainerMetrics()
    port = metrics.serve(0, "127.0.0.1")
    try:
        ctx = local_context(seed=0)
        ctx.metrics = metrics
        bundle = load_data(DataSpec.model_validate({"source": {"builtin": "iris"}}), seed=0)
        model = build_model(ModelSpec.model_validate({"builtin": {"name": "mlp"}}), bundle)
        training = TrainingRecipe.from_spec(TrainingSpec.model_validate({"epochs": 2, "batchSize": 16}))
        result = fit(model, bundle, training, ctx)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        metrics.stop()
    assert _sample(text, "optikube_trainer_epoch") == 1
    assert _sample(text, "optikube_trainer_epochs_total") == 2
    assert _sample(text, "optikube_trainer_samples_per_second") > 0
    assert _sample(text, "optikube_trainer_validation_loss") == pytest.approx(result.last_metrics["valLoss"])
    assert _sample(text, "optikube_trainer_validation_accuracy_ratio") == pytest.approx(
        result.last_metrics["accuracy"]
    )


def test_only_rank_zero_serves_and_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(METRICS_PORT_ENV, raising=False)
    assert metrics_from_env(0) is None
    monkeypatch.setenv(METRICS_PORT_ENV, "0")
    monkeypatch.setenv(METRICS_ADDR_ENV, "127.0.0.1")
    assert metrics_from_env(1) is None
    served = metrics_from_env(0)
    assert served is not None and served.server is not None
    served.stop()
    monkeypatch.setenv(METRICS_PORT_ENV, "not-a-port")
    assert metrics_from_env(0) is None  # a bad port never fails training
