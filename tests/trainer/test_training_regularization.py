"""Regularization really changes the model: L1 sparsifies, dropout and L2 shrink the overfitting gap.

A deliberately overfitting setup: 240 training samples of 40 features (6 informative) and a wide
MLP trained long enough to reach 100 % training accuracy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from optikube_operator.api.data import DataSpec
from optikube_operator.api.model import ModelSpec
from optikube_operator.api.training import TrainingSpec
from optikube_trainer.data import DataBundle, load_data
from optikube_trainer.dist import local_context, seed_everything
from optikube_trainer.models import build_model
from optikube_trainer.recipe import TrainingRecipe
from optikube_trainer.training import evaluate, fit
from optikube_trainer.training.optim import near_zero_share

pytestmark = pytest.mark.slow

OVERFIT_DATA = {
    "source": {
        "synthetic": {
            "kind": "tabular",
            "samples": 600,
            "features": 40,
            "informative": 6,
            "classes": 3,
            "noise": 0.05,
        }
    },
    "validationSplit": 0.5,
    "testSplit": 0.1,
}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # several threads on a busy machine make these small models slower, not faster
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def bundle() -> DataBundle:
    return load_data(DataSpec.model_validate(OVERFIT_DATA), seed=0)


def _train(bundle: DataBundle, **regularization: float) -> dict[str, Any]:
    ctx = local_context(seed=0)
    seed_everything(0)
    model = build_model(
        ModelSpec.model_validate({"builtin": {"name": "mlp"}, "params": {"width": 128}}),
        bundle,
        dropout=regularization.get("dropout", 0.0),
    )
    training = TrainingSpec.model_validate(
        {"epochs": 30, "batchSize": 32, "learningRate": 3e-3, "regularization": regularization}
    )
    result = fit(model, bundle, TrainingRecipe.from_spec(training), ctx)
    train = evaluate(model, bundle.loader("train", 256, shuffle=False), ctx)  # eval mode: no dropout
    val = evaluate(model, bundle.loader("val", 256), ctx)
    return {
        "train": train,
        "val": val,
        "lossGap": val["valLoss"] - train["valLoss"],
        "accuracyGap": train["accuracy"] - val["accuracy"],
        "nearZero": near_zero_share(model, 1e-2),
        "diagnosis": result.diagnosis,
    }


@pytest.fixture(scope="module")
def plain(bundle: DataBundle) -> dict[str, Any]:
    return _train(bundle)


def test_the_setup_overfits(plain: dict[str, Any]) -> None:
    assert plain["train"]["accuracy"] == 1.0
    assert plain["accuracyGap"] > 0.15
    assert plain["diagnosis"]["fit"] == "overfitting"


def test_l1_raises_the_share_of_near_zero_weights(bundle: DataBundle, plain: dict[str, Any]) -> None:
    sparse = _train(bundle, l1=1e-3)
    assert sparse["nearZero"] > 0.6
    assert sparse["nearZero"] > 3 * plain["nearZero"]
    assert sparse["val"]["accuracy"] >= plain["val"]["accuracy"] - 0.02


@pytest.mark.parametrize("regularization", [{"dropout": 0.6}, {"l2": 1e-2}], ids=["dropout", "l2"])
def test_dropout_and_l2_reduce_the_train_validation_gap(
    bundle: DataBundle, plain: dict[str, Any], regularization: dict[str, float]
) -> None:
    regularized = _train(bundle, **regularization)
    assert regularized["lossGap"] < 0.8 * plain["lossGap"]
    assert regularized["accuracyGap"] <= plain["accuracyGap"] + 0.01
    assert regularized["val"]["valLoss"] < plain["val"]["valLoss"]
