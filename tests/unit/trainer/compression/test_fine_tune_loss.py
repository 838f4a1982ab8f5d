"""`fineTuneLoss: distillation`: a stage that changes the model fine-tunes it against the model as
it was before the change, so the result stays closer to what was trained than labels alone keep it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from trainer_specs import digits_mlp_spec

from optikube_operator.api.validation import parse_spec
from optikube_trainer.data import DataBundle, load_job_data
from optikube_trainer.dist import local_context, seed_everything
from optikube_trainer.models import build_model
from optikube_trainer.pipeline.stages import STAGES
from optikube_trainer.recipe import read_recipe
from optikube_trainer.training.loop import fit


def _spec(compression: dict[str, Any]) -> dict[str, Any]:
    return digits_mlp_spec(seed=5, epochs=3, compression=compression)


def _divergence(model: nn.Module, original: nn.Module, bundle: DataBundle) -> float:
    """Mean KL(original || model) over the validation split: how far the model moved."""
    total, count = 0.0, 0
    with torch.no_grad():
        for inputs, _ in bundle.loader("val", 256, shuffle=False, distributed=False):
            reference = F.log_softmax(original(inputs), dim=-1)
            moved = F.log_softmax(model(inputs), dim=-1)
            total += float(F.kl_div(moved, reference, reduction="sum", log_target=True))
            count += inputs.shape[0]
    return total / count


@pytest.mark.parametrize(
    ("stage", "block"),
    [
        ("pruning", {"pruning": {"method": "structured", "sparsity": 0.5, "fineTuneEpochs": 2}}),
        ("lowRank", {"lowRank": {"rankRatio": 0.25, "fineTuneEpochs": 2}}),
    ],
)
def test_distillation_fine_tuning_stays_closer_to_the_model_before_the_stage(
    tmp_path: Path, stage: str, block: dict[str, Any]
) -> None:
    ctx = local_context(seed=5, output_dir=tmp_path)
    base = read_recipe(parse_spec(_spec(block)), world_size=1)
    bundle = load_job_data(base, ctx)
    seed_everything(5)
    trained = build_model(base.model, bundle)
    fit(trained, bundle, base.training, ctx)
    trained.eval()
    divergence: dict[str, float] = {}
    for loss in ("labels", "distillation"):
        blocks = copy.deepcopy(block)
        next(iter(blocks.values()))["fineTuneLoss"] = loss
        recipe = read_recipe(parse_spec(_spec(blocks)), world_size=1)
        seed_everything(5)
        outcome = STAGES[stage](copy.deepcopy(trained), recipe, bundle, ctx)
        assert outcome.changes["fineTuneLoss"] == loss
        divergence[loss] = _divergence(outcome.model.eval(), trained, bundle)
    assert divergence["distillation"] < 0.5 * divergence["labels"], divergence


def test_a_low_rank_stage_that_factorizes_nothing_does_not_fine_tune(tmp_path: Path) -> None:
    ctx = local_context(seed=5, output_dir=tmp_path)
    spec = parse_spec(_spec({"lowRank": {"rankRatio": 1.0, "fineTuneEpochs": 2}}))  # no layer saves
    recipe = read_recipe(spec, world_size=1)
    bundle = load_job_data(recipe, ctx)
    seed_everything(5)
    trained = build_model(recipe.model, bundle)
    fit(trained, bundle, recipe.training, ctx)
    outcome = STAGES["lowRank"](copy.deepcopy(trained), recipe, bundle, ctx)
    assert outcome.changes["factorizedLayers"] == 0 and "fineTuneEpochs" not in outcome.changes
    assert outcome.curves is None
    inputs, _ = next(iter(bundle.loader("val", 64, shuffle=False, distributed=False)))
    with torch.no_grad():
        torch.testing.assert_close(outcome.model.eval()(inputs), trained.eval()(inputs))


def test_the_default_is_distillation_and_no_fine_tuning_records_none() -> None:
    spec = parse_spec(_spec({"pruning": {"sparsity": 0.5, "fineTuneEpochs": 0}}))
    assert spec.compression is not None and spec.compression.pruning is not None
    assert spec.compression.pruning.fine_tune_loss == "distillation"
    with pytest.raises(ValueError, match="fineTuneLoss"):
        parse_spec(_spec({"pruning": {"sparsity": 0.5, "fineTuneLoss": "teacher"}}))
