"""The training loop in one process: metrics, stopping, penalties and the fit diagnosis."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score
from torch import nn

from optikube_operator.api.data import DataSpec
from optikube_operator.api.model import ModelSpec
from optikube_operator.api.training import TrainingSpec
from optikube_trainer.data import DataBundle, load_data
from optikube_trainer.dist import local_context, seed_everything
from optikube_trainer.models import build_model
from optikube_trainer.recipe import TrainingRecipe
from optikube_trainer.training import evaluate, fit
from optikube_trainer.training.diagnosis import diagnose
from optikube_trainer.training.optim import Penalty, build_optimizer, build_scheduler


def _iris(seed: int = 0) -> DataBundle:
    return load_data(DataSpec.model_validate({"source": {"builtin": "iris"}}), seed)


def _training(**raw: object) -> TrainingRecipe:
    spec = TrainingSpec.model_validate({"epochs": 3, "batchSize": 16, "learningRate": 0.01, **raw})
    return TrainingRecipe.from_spec(spec)


def test_evaluate_matches_sklearn() -> None:
    bundle = _iris()
    seed_everything(0)
    model = build_model(
        ModelSpec.model_validate({"builtin": {"name": "mlp"}, "params": {"width": 4}}), bundle
    )
    x, y = bundle.val.tensors  # type: ignore[attr-defined]
    with torch.no_grad():
        predictions = model(x).argmax(1)
        loss = nn.functional.cross_entropy(model(x), y)
    metrics = evaluate(model, bundle.loader("val", 7), local_context())
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, predictions))
    present = sorted(set(y.tolist()))
    assert metrics["f1"] == pytest.approx(f1_score(y, predictions, average="macro", labels=present))
    assert metrics["valLoss"] == pytest.approx(float(loss), rel=1e-5)
    assert metrics["samples"] == len(y)


def test_fit_records_curves_and_learns(tmp_path: Path) -> None:
    bundle = _iris()
    seed_everything(0)
    model = build_model(ModelSpec.model_validate({"builtin": {"name": "mlp"}}), bundle)
    result = fit(
        model, bundle, _training(epochs=8, learningRate=0.03, scheduler={"type": "cosine"}), local_context()
    )
    assert result.epochs_run == 8 and not result.pruned and not result.stopped_early
    assert len(result.curves["train"]["loss"]) == len(result.curves["validation"]["accuracy"]) == 8
    assert result.curves["train"]["loss"][-1] < result.curves["train"]["loss"][0]
    assert result.best_metrics["accuracy"] > 0.8
    assert result.diagnosis["fit"] in {"good", "overfitting", "underfitting"}
    assert result.samples_per_second > 0


def test_callback_returning_true_prunes() -> None:
    bundle = _iris()
    model = build_model(ModelSpec.model_validate({"builtin": {"name": "mlp"}}), bundle)
    seen: list[int] = []

    def stop_at_one(epoch: int, metrics: dict[str, float]) -> bool:
        seen.append(epoch)
        assert {"accuracy", "f1", "valLoss", "trainLoss"} <= set(metrics)
        return epoch == 1

    result = fit(model, bundle, _training(epochs=5), local_context(), on_epoch_end=stop_at_one)
    assert result.pruned and result.epochs_run == 2 and seen == [0, 1]


def test_early_stopping_when_validation_stalls() -> None:
    bundle = _iris()
    model = build_model(ModelSpec.model_validate({"builtin": {"name": "mlp"}}), bundle)
    training = _training(epochs=10, learningRate=1e-9, earlyStopping={"patience": 2, "minDelta": 0.01})
    result = fit(model, bundle, training, local_context())
    assert result.stopped_early and result.epochs_run == 3 and result.best_epoch == 0


def test_custom_loss_with_logits_and_clipping() -> None:
    bundle = _iris()
    model = build_model(ModelSpec.model_validate({"builtin": {"name": "mlp"}}), bundle)
    calls: list[int] = []

    def loss_fn(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(len(y))
        logits = m(x)
        return nn.functional.cross_entropy(logits, y, label_smoothing=0.1), logits

    result = fit(model, bundle, _training(epochs=1, gradientClipNorm=0.5), local_context(), loss_fn=loss_fn)  # type: ignore[arg-type]
    assert sum(calls) == len(bundle.train)  # type: ignore[arg-type]
    assert 0.0 <= result.curves["train"]["accuracy"][0] <= 1.0


def test_penalty_values_and_scope() -> None:
    linear = nn.Linear(2, 2)
    model = nn.Sequential(linear, nn.LayerNorm(2))
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, -2.0], [0.0, 3.0]]))
    assert float(Penalty(model, l1=0.1, l2=0.0)().detach()) == pytest.approx(0.6)
    assert float(Penalty(model, l1=0.0, l2=0.2)().detach()) == pytest.approx(0.1 * 14)
    assert not Penalty(model, 0.0, 0.0).active


def test_schedulers() -> None:
    model = nn.Linear(2, 2)
    optimizer = build_optimizer(model, _training(optimizer={"type": "sgd"}, learningRate=1.0))
    step = build_scheduler(optimizer, _training(scheduler={"type": "step", "stepSize": 1, "gamma": 0.5}), 4)
    assert step is not None
    optimizer.step()
    step.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)
    assert build_scheduler(optimizer, _training(), 4) is None


@pytest.mark.parametrize(
    ("train_acc", "val_acc", "train_loss", "val_loss", "fit_label"),
    [
        ([0.8, 0.95, 1.0], [0.78, 0.8, 0.79], [0.6, 0.2, 0.05], [0.6, 0.5, 0.7], "overfitting"),
        ([0.3, 0.35, 0.4], [0.3, 0.33, 0.38], [1.5, 1.3, 1.1], [1.5, 1.35, 1.2], "underfitting"),
        ([0.9, 0.95, 0.96], [0.9, 0.94, 0.95], [0.3, 0.15, 0.149], [0.3, 0.2, 0.19], "good"),
    ],
)
def test_diagnosis(
    train_acc: list[float],
    val_acc: list[float],
    train_loss: list[float],
    val_loss: list[float],
    fit_label: str,
) -> None:
    curves = {
        "train": {"accuracy": train_acc, "loss": train_loss},
        "validation": {"accuracy": val_acc, "loss": val_loss},
    }
    result = diagnose(curves, best_epoch=len(train_acc) - 1)
    assert result["fit"] == fit_label
    assert result["gap"] == pytest.approx(train_acc[-1] - val_acc[-1], abs=1e-6)


def test_resume_in_one_process_continues_after_the_last_finished_epoch(tmp_path: Path) -> None:
    bundle = _iris()
    spec = ModelSpec.model_validate({"builtin": {"name": "mlp"}, "params": {"width": 8}})
    training = _training(epochs=3, optimizer={"type": "sgd"}, learningRate=0.05)

    def crash_after_first(epoch: int, metrics: dict[str, float]) -> bool:
        if epoch == 0:
            raise RuntimeError("crash")
        return False

    seed_everything(0)
    model = build_model(spec, bundle)
    with pytest.raises(RuntimeError, match="crash"):
        fit(model, bundle, training, local_context(), checkpoint_dir=tmp_path, on_epoch_end=crash_after_first)
    seed_everything(1)  # a different fresh model: everything must come from the checkpoint
    resumed_model = build_model(spec, bundle)
    resumed = fit(resumed_model, bundle, training, local_context(), checkpoint_dir=tmp_path)
    seed_everything(0)
    straight_model = build_model(spec, bundle)
    straight = fit(straight_model, bundle, training, local_context())
    assert resumed.epochs_run == 3 and resumed.curves == straight.curves
    for name, weight in straight_model.state_dict().items():
        assert torch.allclose(resumed_model.state_dict()[name], weight), name
