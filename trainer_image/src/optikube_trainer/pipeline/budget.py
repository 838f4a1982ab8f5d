"""The accuracy budget of the pipeline (`compression.maxAccuracyDrop`).

After each compression or quantization stage rank 0 measures the budget metric on the validation
split and compares it with the trained baseline's; the drop is counted against the baseline, so the
whole chain stays within the budget, not each stage alone. A stage that exceeds it is run again
from the model it started with and with a gentler setting (`retries`: once; pruning that
fine-tunes first tries twice the fine-tuning), and pruning then searches the sparsity by bisection
(`SparsitySearch`) for the largest one within the budget; if nothing passes, or the stage has no
gentler setting, the stage is skipped: the model it started with goes on.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from optikube_trainer.data import DataBundle
from optikube_trainer.dist import RunContext, broadcast_object
from optikube_trainer.evaluation.metrics import classification_metrics
from optikube_trainer.recipe import AccuracyBudget, Recipe

# What a retry tries instead: a setting closer to the model the stage started from.
MAX_CLUSTERS = 256
# Bisection steps of pruning's sparsity search, each a pruning and its fine-tuning: 50 % over the
# budget tries 25 %, then 37.5 % or 12.5 %, then a step of 6.25 % more (on the digits CNN, 50 % ran
# 2.1x faster than unpruned in ONNX Runtime at batch 32, 25 % 1.17x: every step up is speed).
SPARSITY_SEARCH_STEPS = 3
GENTLER_QUANTIZATION = {"static": "weightOnly", "qat": "weightOnly", "dynamic": "weightOnly"}


def resolution_notes(budget: AccuracyBudget, validation_samples: int) -> list[str]:
    """What the validation split cannot tell the budget, in words for results.json and the report.
    On two of ten seeds of the small text transformer with its width pruned, the shipped model got
    300 of 300 validation samples right (budget 0) and lost 1.2 and 1.4 points on the test split.
    At budget 0 the digits CNN lost 0.24 points on the test split over ten seeds, decided on 270
    validation samples (0.37 points each), and 0.13 on 539 (bench/seeds.py)."""
    notes: list[str] = []
    if budget.baseline is not None and budget.baseline >= 1.0:
        notes.append(
            f"the trained model scores {budget.metric} 1.0 on all {validation_samples} validation samples:"
            " the budget cannot see a loss on samples unlike these, so read the test comparison"
            " (optimized.testComparison)"
        )
    if budget.metric == "accuracy" and validation_samples > 0:
        points = 100.0 / validation_samples
        if budget.max_accuracy_drop == 0:
            notes.append(
                f"the budget allows no loss, which {validation_samples} validation samples check to one"
                f" sample, {points:.2f} points of accuracy: a smaller loss on new data passes unseen,"
                " and a larger spec.data.validationSplit checks more finely"
            )
        elif points > budget.max_accuracy_drop:
            notes.append(
                f"one validation sample is {points:.2f} points of accuracy, more than the budget of"
                f" {budget.max_accuracy_drop:g}: a stage that gets one more sample wrong is retried or"
                " skipped"
            )
    return notes


def validation_value(model: nn.Module, bundle: DataBundle, metric: str) -> float:
    """The budget metric of `model` on the whole validation split (call on rank 0)."""
    device = next(iter([*model.parameters(), *model.buffers()]), torch.empty(0)).device
    batches = (
        (inputs.to(device), targets.to(device))
        for inputs, targets in bundle.loader("val", 256, shuffle=False, distributed=False)
    )
    return classification_metrics(model, batches, bundle.num_classes)[metric]


def setting(stage: str, recipe: Recipe) -> dict[str, Any]:
    """The knob a retry turns, as it reads in results.json."""
    if stage == "pruning" and recipe.pruning is not None:
        return {"sparsity": recipe.pruning.sparsity, "fineTuneEpochs": recipe.pruning.fine_tune_epochs}
    if stage == "lowRank" and recipe.low_rank is not None:
        if recipe.low_rank.energy is not None:
            return {"energy": recipe.low_rank.energy}
        return {"rankRatio": recipe.low_rank.rank_ratio}
    if stage == "weightSharing" and recipe.weight_sharing is not None:
        return {"clusters": recipe.weight_sharing.clusters}
    if stage == "quantization" and recipe.quantization is not None:
        return {"method": recipe.quantization.method}
    if stage == "distillation" and recipe.distillation is not None:
        return {"epochs": recipe.distillation.epochs}
    return {}


def gentler(stage: str, recipe: Recipe) -> Recipe | None:
    """The recipe of the retry, or None where the stage has no gentler setting: half the sparsity,
    half the discarded rank or energy, twice the clusters, weight-only instead of activation INT8,
    twice the distillation epochs."""
    if stage == "pruning" and recipe.pruning is not None:
        return replace(recipe, pruning=replace(recipe.pruning, sparsity=recipe.pruning.sparsity / 2))
    if stage == "lowRank" and recipe.low_rank is not None:
        config = recipe.low_rank
        if config.energy is not None:
            return replace(recipe, low_rank=replace(config, energy=1.0 - (1.0 - config.energy) / 2))
        assert config.rank_ratio is not None  # the API resolves one of the two
        return replace(recipe, low_rank=replace(config, rank_ratio=1.0 - (1.0 - config.rank_ratio) / 2))
    if stage == "weightSharing" and recipe.weight_sharing is not None:
        clusters = recipe.weight_sharing.clusters
        if clusters >= MAX_CLUSTERS:
            return None
        sharing = replace(recipe.weight_sharing, clusters=min(MAX_CLUSTERS, clusters * 2))
        return replace(recipe, weight_sharing=sharing)
    if stage == "quantization" and recipe.quantization is not None:
        method = GENTLER_QUANTIZATION.get(recipe.quantization.method)
        if method is None:
            return None
        # weightOnly takes no qatEpochs (the API's rule), so a QAT retry drops them
        gentler_quantization = replace(recipe.quantization, method=method, qat_epochs=None)  # type: ignore[arg-type]
        return replace(recipe, quantization=gentler_quantization)
    if stage == "distillation" and recipe.distillation is not None:
        epochs = recipe.distillation.epochs * 2
        return replace(recipe, distillation=replace(recipe.distillation, epochs=epochs))
    return None


def retries(stage: str, recipe: Recipe) -> list[Recipe]:
    """The recipes tried, in order, after the stage's own went over the budget. Pruning that
    fine-tunes first tries twice the fine-tuning at the same sparsity (50 % with twice the
    fine-tuning stayed within the budget on the digits CNN), then searches lower sparsities
    (`SparsitySearch`, not listed here: each step depends on the last); every other stage has one
    gentler setting."""
    if stage == "pruning" and recipe.pruning is not None:
        pruning = recipe.pruning
        if pruning.fine_tune_epochs <= 0:
            return []
        return [replace(recipe, pruning=replace(pruning, fine_tune_epochs=pruning.fine_tune_epochs * 2))]
    retry = gentler(stage, recipe)
    return [] if retry is None else [retry]


@dataclass
class SparsitySearch:
    """Bisection of pruning's sparsity between one within the budget (at first 0: the unpruned
    model) and one over it (the spec's), with the spec's fine-tuning: each step tries the middle
    and keeps the half that holds the budget's edge. The largest sparsity that passed ships."""

    recipe: Recipe
    over: float
    within: float = 0.0
    steps_left: int = SPARSITY_SEARCH_STEPS

    def next(self) -> Recipe | None:
        if self.steps_left <= 0 or self.recipe.pruning is None:
            return None
        self.steps_left -= 1
        middle = round((self.within + self.over) / 2, 6)
        return replace(self.recipe, pruning=replace(self.recipe.pruning, sparsity=middle))

    def record(self, sparsity: float, passed: bool) -> None:
        if passed:
            self.within = sparsity
        else:
            self.over = sparsity


@dataclass
class Guarded:
    """What running a stage under the budget gave."""

    model: nn.Module
    outcome: Any | None  # the accepted StageOutcome; None when the stage was skipped
    recipe: Recipe  # the recipe of the accepted attempt (the original one when skipped)
    record: dict[str, Any]  # results.json's `stages[].budget`


def run_within_budget(
    stage: str,
    model: nn.Module,
    recipe: Recipe,
    bundle: DataBundle,
    ctx: RunContext,
    budget: AccuracyBudget,
    run: Callable[[nn.Module, Recipe], Any],
    on_retry: Callable[[dict[str, Any]], None],
) -> Guarded:
    """Run `run(copy of model, recipe)` (every rank), measure on rank 0, retry (`retries`, then
    pruning's `SparsitySearch`) or skip."""
    attempts: list[dict[str, Any]] = []
    planned = retries(stage, recipe)
    search = (
        SparsitySearch(recipe, over=recipe.pruning.sparsity)
        if stage == "pruning" and recipe.pruning is not None
        else None
    )
    best: tuple[Any, Recipe] | None = None  # the sparsest pruning the search found within the budget
    current = recipe
    while True:
        outcome = run(copy.deepcopy(model), current)
        value = validation_value(outcome.model, bundle, budget.metric) if ctx.is_main else 0.0
        value = float(broadcast_object(value))  # type: ignore[arg-type]
        attempt = {**setting(stage, current), "validation": round(value, 6), "drop": budget.drop(value)}
        attempts.append(attempt)
        passed = budget.allows(value)
        searching = len(attempts) > len(planned) + 1
        if passed and not searching:
            record = {**budget.to_contract(), "outcome": "retried" if len(attempts) > 1 else "accepted"}
            return Guarded(outcome.model, outcome, current, {**record, "attempts": attempts})
        if searching and search is not None and current.pruning is not None:
            search.record(current.pruning.sparsity, passed)
            if passed:
                best = (outcome, current)
        retry = planned[len(attempts) - 1] if len(attempts) <= len(planned) else None
        if retry is None and search is not None:
            retry = search.next()
        if retry is None:
            if best is not None:
                found, found_recipe = best
                record = {**budget.to_contract(), "outcome": "retried", "attempts": attempts}
                return Guarded(found.model, found, found_recipe, record)
            reason = (
                f"{budget.metric} dropped {attempt['drop']} points on the validation split,"
                f" over the budget of {budget.max_accuracy_drop}"
            )
            record = {**budget.to_contract(), "outcome": "skipped", "reason": reason, "attempts": attempts}
            return Guarded(model, None, recipe, record)
        why = (
            "within the budget: the search tries a larger sparsity" if passed else "over the accuracy budget"
        )
        on_retry({"reason": why, **attempt, "next": setting(stage, retry)})
        current = retry
