"""Optuna pruners (early stopping of unpromising trials), and the rung records successive halving
keeps on trials, rebuilt from the reported values.

Optuna's successive halving (and Hyperband, a set of successive-halving brackets) writes a
``completed_rung_<k>`` system attribute on a trial each time it judges the trial at a rung, and
compares a new value against those records. The records are a pure function of the values a
trial reported at each step, so they are recomputed instead of stored.
"""

from __future__ import annotations

from collections.abc import Mapping

import optuna

from optikube_operator.core.settings import JobSettings

TRIAL_PRUNERS = ("none", "median", "percentile", "successiveHalving", "hyperband")


def make_trial_pruner(settings: JobSettings) -> optuna.pruners.BasePruner:
    pruner = settings.pruner
    if pruner.type == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=pruner.startup_trials, n_warmup_steps=pruner.warmup_steps, interval_steps=1
        )
    if pruner.type == "percentile":
        return optuna.pruners.PercentilePruner(
            pruner.percentile,
            n_startup_trials=pruner.startup_trials,
            n_warmup_steps=pruner.warmup_steps,
            interval_steps=1,
        )
    if pruner.type == "successiveHalving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=pruner.min_resource,
            reduction_factor=pruner.reduction_factor,
            min_early_stopping_rate=0,
        )
    if pruner.type == "hyperband":
        # The resource is the step (epoch, counted on across folds), so a full trial bounds it
        # (never "auto", which would change as trials finish and move trials between brackets).
        max_resource = pruner.max_resource or settings.steps_per_trial
        return optuna.pruners.HyperbandPruner(
            min_resource=pruner.min_resource,
            max_resource=max(max_resource, pruner.min_resource + 1),
            reduction_factor=pruner.reduction_factor,
        )
    return optuna.pruners.NopPruner()


def halving_parameters(study: optuna.Study, number: int) -> tuple[int, int, int] | None:
    """(min_resource, reduction_factor, min_early_stopping_rate) of the successive halving that judges
    trial ``number``, or None when the study's pruner is not successive halving or Hyperband.

    Optuna exposes neither Hyperband's brackets nor successive halving's parameters, so this is the
    one place that reads its private attributes; tests/unit/core/test_core_pruners.py fails loudly
    if an Optuna upgrade changes them.
    """
    pruner = study.pruner
    if isinstance(pruner, optuna.pruners.HyperbandPruner):
        if not pruner._pruners:
            pruner._try_initialization(study)
        if not pruner._pruners:
            return None
        # The bracket depends only on the study name and the trial number.
        numbered = optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL)
        numbered.number = number
        pruner = pruner._pruners[pruner._get_bracket_id(study, numbered)]
    if isinstance(pruner, optuna.pruners.SuccessiveHalvingPruner):
        min_resource = pruner._min_resource
        if min_resource is None or min_resource == "auto":
            return None
        return int(min_resource), int(pruner._reduction_factor), int(pruner._min_early_stopping_rate)
    return None


def rung_attrs(study: optuna.Study, number: int, series: Mapping[int, float]) -> dict[str, float]:
    """The ``completed_rung_<k>`` records successive halving would have written for ``series``."""
    parameters = halving_parameters(study, number)
    if parameters is None:
        return {}
    min_resource, reduction, rate = parameters
    attrs: dict[str, float] = {}
    rung = 0
    for step in sorted(series):
        while step >= min_resource * reduction ** (rate + rung):
            attrs[f"completed_rung_{rung}"] = series[step]
            rung += 1
    return attrs
