"""Pruners, and the per-trial rung records successive halving keeps, rebuilt from reported values.

Optuna's successive halving (and Hyperband, a set of successive-halving brackets) writes a
``completed_rung_<k>`` system attribute on a trial each time it judges the trial at a rung, and
compares a new value against those records. The records are a pure function of the values a
trial reported at each step, so they are recomputed instead of stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from optikube_operator.core.settings import TuningSettings

PRUNERS = ("none", "median", "percentile", "successiveHalving", "hyperband")


def make_pruner(settings: TuningSettings) -> optuna.pruners.BasePruner:
    knobs: Mapping[str, Any] = settings.pruner
    kind = settings.pruner_type
    # Defaults as in optikube_operator.api (the spec normally arrives with them filled in).
    startup = int(knobs.get("startupTrials", 2))
    warmup = int(knobs.get("warmupSteps", 1))
    interval = 1
    min_resource = int(knobs.get("minResource", 1))
    reduction = int(knobs.get("reductionFactor", 3))
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=startup, n_warmup_steps=warmup, interval_steps=interval
        )
    if kind == "percentile":
        return optuna.pruners.PercentilePruner(
            float(knobs.get("percentile", 25.0)),
            n_startup_trials=startup,
            n_warmup_steps=warmup,
            interval_steps=interval,
        )
    if kind == "successiveHalving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=min_resource,
            reduction_factor=reduction,
            min_early_stopping_rate=0,
        )
    if kind == "hyperband":
        # The resource is the epoch index, so training.epochs bounds it (never "auto", which
        # would change as trials finish and move trials between brackets).
        max_resource = int(knobs.get("maxResource") or settings.epochs)
        return optuna.pruners.HyperbandPruner(
            min_resource=min_resource,
            max_resource=max(max_resource, min_resource + 1),
            reduction_factor=reduction,
        )
    raise ValueError(f"spec.tuning.pruner.type: {kind!r} is not one of {', '.join(PRUNERS)}")


def _halving_parameters(study: optuna.Study, number: int) -> tuple[int, int, int] | None:
    """(min_resource, reduction_factor, min_early_stopping_rate) judging trial ``number``, if halving."""
    pruner = study.pruner
    if isinstance(pruner, optuna.pruners.HyperbandPruner):
        # Private but stable across Optuna 4 and 5: brackets are built lazily from the resources.
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
    parameters = _halving_parameters(study, number)
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
