"""The numerical guard: a NaN loss fails training at that epoch, naming the input column or the
learning rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn import datasets
from torch import nn

from optikube_operator.api.data import DataSpec
from optikube_operator.api.model import ModelSpec
from optikube_operator.api.training import TrainingSpec
from optikube_trainer.data import DataBundle, RawData, load_data
from optikube_trainer.dist import local_context, seed_everything
from optikube_trainer.models import build_model
from optikube_trainer.recipe import TrainingRecipe
from optikube_trainer.training import NonFiniteTrainingError, fit
from optikube_trainer.training.guard import nonfinite_inputs


def _mlp(bundle: DataBundle, width: int = 16) -> nn.Module:
    seed_everything(0)
    return build_model(
        ModelSpec.model_validate({"builtin": {"name": "mlp"}, "params": {"width": width}}), bundle
    )


def _training(**raw: object) -> TrainingRecipe:
    spec = TrainingSpec.model_validate({"epochs": 4, "batchSize": 16, "learningRate": 0.01, **raw})
    return TrainingRecipe.from_spec(spec)


def _iris_npz(tmp_path: Path, nan_rows: list[int], column: int) -> DataBundle:
    iris = datasets.load_iris()
    x = iris.data.astype(np.float32)
    x[nan_rows, column] = np.nan
    path = tmp_path / "iris.npz"
    np.savez(path, x=x, label=iris.target)
    spec = {
        "source": {"file": {"path": str(path), "format": "npz"}},
        "preprocessing": {"normalization": "none"},
    }
    return load_data(DataSpec.model_validate(spec), seed=0)


def test_nan_inputs_fail_the_first_epoch_naming_the_column(tmp_path: Path) -> None:
    bundle = _iris_npz(tmp_path, nan_rows=list(range(0, 150, 10)), column=2)
    reported: list[int] = []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        reported.append(epoch)
        return False

    with pytest.raises(NonFiniteTrainingError) as caught:
        fit(_mlp(bundle), bundle, _training(), local_context(), on_epoch_end=report)
    message = str(caught.value)
    assert message.startswith("epoch 1 of 4: training loss is nan")
    assert "column 'x[:, 2]'" in message and "x[:, 0]" not in message and "x[:, 3]" not in message
    assert "in train" in message and "naValues" in message
    assert reported == []  # nothing NaN was reported as a validation value


def test_divergence_on_finite_inputs_blames_the_learning_rate() -> None:
    bundle = load_data(DataSpec.model_validate({"source": {"builtin": "iris"}}), seed=0)
    assert nonfinite_inputs(bundle) == {}
    training = _training(epochs=5, learningRate=10.0, optimizer={"type": "sgd"})
    with pytest.raises(NonFiniteTrainingError) as caught:
        fit(_mlp(bundle, width=64), bundle, training, local_context())
    message = str(caught.value)
    assert message.startswith("epoch ") and " of 5: " in message
    assert "every input is finite" in message and "learning rate" in message and "too high" in message
    # the same model and data with a sane learning rate train to the end
    result = fit(
        _mlp(bundle, width=64), bundle, _training(epochs=5, optimizer={"type": "sgd"}), local_context()
    )
    assert result.epochs_run == 5


def test_image_inputs_are_named_by_channel() -> None:
    digits = datasets.load_digits()
    images = np.repeat(digits.images.reshape(-1, 1, 8, 8) / 16.0, 3, axis=1)
    images[5, 1, 2, 2] = np.inf
    raw = RawData(task="image", features=images, labels=digits.target)
    bundle = load_data(
        DataSpec.model_validate(
            {"source": {"builtin": "digits"}, "preprocessing": {"normalization": "none"}}
        ),
        seed=0,
        raw=raw,
    )
    found = nonfinite_inputs(bundle)
    assert list(found) == ["channel 1"] and sum(found["channel 1"].values()) == 1
