"""The accuracy budget (compression.maxAccuracyDrop): a destructive stage is retried with a
gentler setting, then skipped, and results.json and the stage events say so."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from torch import nn
from trainer_specs import digits_mlp_spec, run_in_process

from optikube_operator.api.validation import parse_spec
from optikube_trainer.dist import local_context
from optikube_trainer.pipeline import budget as budget_module
from optikube_trainer.pipeline.budget import (
    SPARSITY_SEARCH_STEPS,
    SparsitySearch,
    gentler,
    resolution_notes,
    retries,
    run_within_budget,
)
from optikube_trainer.pipeline.stages import StageOutcome
from optikube_trainer.recipe import AccuracyBudget, read_recipe


def _spec(compression: dict[str, Any], quantization: dict[str, Any] | None = None) -> dict[str, Any]:
    return digits_mlp_spec(
        seed=3,
        epochs=4,
        compression=compression,
        **({"quantization": quantization} if quantization else {}),
        export={"runtime": "eager"},
    )


def _run(out: Path, spec: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    results = run_in_process(out, spec, job="budget", events=events)
    assert results is not None
    return results, events


def test_a_destructive_stage_is_retried_then_skipped_and_recorded(tmp_path: Path) -> None:
    # 98 % of the neurons removed and no fine-tuning: far over a 1-point budget, and so is 49 %
    spec = _spec(
        {
            "pruning": {"method": "structured", "sparsity": 0.98, "fineTuneEpochs": 0, "channelMultiple": 1},
            "maxAccuracyDrop": 1.0,
        }
    )
    results, events = _run(tmp_path, spec)
    statuses = [e["status"] for e in events if e["type"] == "stage" and e["stage"] == "pruning"]
    assert statuses[:2] == ["started", "retried"] and statuses[-1] in ("skipped", "completed")
    pruning = next(s for s in results["stages"] if s["name"] == "pruning")
    attempts = pruning["budget"]["attempts"]
    # no fine-tuning to lengthen: the sparsity is bisected, each step halving the interval between
    # the largest sparsity within the budget so far (0: unpruned) and the smallest over it
    sparsities = [a["sparsity"] for a in attempts]
    assert sparsities[:2] == [0.98, 0.49] and len(sparsities) == 1 + SPARSITY_SEARCH_STEPS
    within, over = 0.0, 0.98
    for attempt in attempts[1:]:
        assert attempt["sparsity"] == pytest.approx((within + over) / 2)
        if attempt["drop"] <= 1.0:
            within = attempt["sparsity"]
        else:
            over = attempt["sparsity"]
    assert attempts[0]["drop"] > 1.0  # the first setting really broke the model
    if statuses[-1] == "skipped":
        assert (
            pruning["skipped"]
            and pruning["budget"]["outcome"] == "skipped"
            and "budget" in pruning["budget"]["reason"]
        )
        assert results["optimized"]["parameters"] == results["baseline"]["parameters"]  # model unchanged
    else:
        assert pruning["budget"]["outcome"] == "retried"
        assert pruning["changes"]["targetSparsity"] == within  # the largest sparsity that passed
    # whatever happened, the shipped model is within the budget on the validation split
    assert results["budget"]["withinBudget"] and results["budget"]["drop"] <= 1.0
    assert results["budget"]["validationSamples"] == results["data"]["samples"]["val"]
    assert isinstance(results["budget"]["notes"], list)


def test_a_harmless_stage_is_accepted_as_is(tmp_path: Path) -> None:
    spec = _spec(
        {"pruning": {"method": "structured", "sparsity": 0.25, "fineTuneEpochs": 2}, "maxAccuracyDrop": 5.0}
    )
    results, events = _run(tmp_path, spec)
    assert not [e for e in events if e["type"] == "stage" and e["status"] in ("retried", "skipped")]
    pruning = next(s for s in results["stages"] if s["name"] == "pruning")
    assert pruning["budget"]["outcome"] == "accepted" and len(pruning["budget"]["attempts"]) == 1
    assert results["optimized"]["parameters"] < results["baseline"]["parameters"]


def test_gentler_settings() -> None:
    spec = parse_spec(
        _spec(
            {
                "pruning": {"sparsity": 0.6},
                "lowRank": {"energy": 0.9},
                "weightSharing": {"clusters": 256},
            },
            {"method": "static"},
        )
    )
    recipe = read_recipe(spec, world_size=1)
    assert gentler("pruning", recipe).pruning.sparsity == 0.3  # type: ignore[union-attr]
    assert abs(gentler("lowRank", recipe).low_rank.energy - 0.95) < 1e-9  # type: ignore[union-attr, operator]
    assert gentler("weightSharing", recipe) is None  # 256 clusters is the most there is
    assert gentler("quantization", recipe).quantization.method == "weightOnly"  # type: ignore[union-attr]
    weight_only = gentler("quantization", recipe)
    assert weight_only is not None and gentler("quantization", weight_only) is None


def test_fine_tuning_decays_a_constant_learning_rate() -> None:
    # the budget judges a stage right after its fine-tuning: a decay ends at a settled point
    constant = read_recipe(parse_spec(_spec({"pruning": {"sparsity": 0.5}})), world_size=1).training
    assert constant.for_fine_tuning().scheduler.type == "cosine"
    assert constant.for_fine_tuning().learning_rate == constant.learning_rate
    stepped = replace(
        constant, scheduler=constant.scheduler.model_copy(update={"type": "step", "step_size": 2})
    )
    assert stepped.for_fine_tuning() is stepped  # a schedule the spec sets is kept


def test_pruning_that_fine_tunes_retries_with_more_fine_tuning_then_searches_a_lower_sparsity() -> None:
    spec = _spec({"pruning": {"method": "structured", "sparsity": 0.5, "fineTuneEpochs": 3}})
    recipe = read_recipe(parse_spec(spec), world_size=1)
    (longer,) = retries("pruning", recipe)
    assert (longer.pruning.sparsity, longer.pruning.fine_tune_epochs) == (0.5, 6)  # type: ignore[union-attr]
    search = SparsitySearch(recipe, over=0.5)
    lower = search.next()
    assert lower is not None and (lower.pruning.sparsity, lower.pruning.fine_tune_epochs) == (0.25, 3)  # type: ignore[union-attr]
    without = _spec({"pruning": {"method": "structured", "sparsity": 0.5, "fineTuneEpochs": 0}})
    assert retries("pruning", read_recipe(parse_spec(without), world_size=1)) == []


class _Pruned(nn.Module):
    """Stands for a model pruned at `sparsity`; the fake validation below scores it."""

    def __init__(self, sparsity: float) -> None:
        super().__init__()
        self.sparsity = sparsity


def test_the_sparsity_search_ships_the_largest_sparsity_within_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a model that holds the budget up to 55 % sparsity: halving 80 % would ship 40 %, the
    # bisection goes on to 60 % (over) and 50 % (within), and ships 50 %
    monkeypatch.setattr(
        budget_module, "validation_value", lambda model, *_: 0.9 if model.sparsity <= 0.55 else 0.5
    )
    spec = _spec({"pruning": {"method": "structured", "sparsity": 0.8, "fineTuneEpochs": 0}})
    recipe = read_recipe(parse_spec(spec), world_size=1)
    ctx = local_context(seed=3, output_dir=tmp_path)

    def run(_model: nn.Module, attempt: Any) -> StageOutcome:
        return StageOutcome(_Pruned(attempt.pruning.sparsity), {})

    retried: list[dict[str, Any]] = []
    guarded = run_within_budget(
        "pruning",
        _Pruned(0.0),
        recipe,
        None,
        ctx,
        AccuracyBudget("accuracy", 1.0, 0.9),
        run,
        retried.append,  # type: ignore[arg-type]
    )
    assert [a["sparsity"] for a in guarded.record["attempts"]] == [0.8, 0.4, 0.6, 0.5]
    assert guarded.record["outcome"] == "retried" and guarded.model.sparsity == 0.5
    assert guarded.recipe.pruning is not None and guarded.recipe.pruning.sparsity == 0.5
    assert [r["reason"] for r in retried] == [
        "over the accuracy budget",
        "within the budget: the search tries a larger sparsity",
        "over the accuracy budget",
    ]


def test_the_budget_says_what_its_validation_split_cannot_show() -> None:
    saturated = resolution_notes(AccuracyBudget("accuracy", 1.0, baseline=1.0), 300)
    assert len(saturated) == 1 and "1.0 on all 300 validation samples" in saturated[0]
    coarse = resolution_notes(AccuracyBudget("accuracy", 1.0, baseline=0.96), 50)
    assert coarse == [
        "one validation sample is 2.00 points of accuracy, more than the budget of 1: a stage that gets"
        " one more sample wrong is retried or skipped"
    ]
    assert resolution_notes(AccuracyBudget("accuracy", 1.0, baseline=0.96), 270) == []  # 0.37 points a sample
    assert resolution_notes(AccuracyBudget("accuracy", 0.0, baseline=0.96), 270) == [
        "the budget allows no loss, which 270 validation samples check to one sample, 0.37 points of"
        " accuracy: a smaller loss on new data passes unseen, and a larger spec.data.validationSplit"
        " checks more finely"
    ]
    assert (
        resolution_notes(AccuracyBudget("f1", 1.0, baseline=0.96), 50) == []
    )  # a sample's weight in F1 varies
