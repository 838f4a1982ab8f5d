"""The settings the core decides with, read once from a job's typed spec.

Every value comes from `optikube_operator.api` (its defaults are the only defaults): a backend
reads the settings once per reconcile (`JobSettings.from_spec`) and hands them to `decide`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta

from optikube_operator.api import OptimizationJobSpec, duration_seconds
from optikube_operator.api.objectives import Objective
from optikube_operator.api.tuning import Constraint, Parameter, Pruner, Sampler


def _duration(text: str | None) -> timedelta | None:
    return None if not text else timedelta(seconds=duration_seconds(text))


@dataclass(frozen=True)
class JobSettings:
    job_name: str
    seed: int
    objectives: tuple[Objective, ...]
    # search keys (dotted spec paths) in sorted order -> their dimension; empty without tuning
    search_space: Mapping[str, Parameter] = field(default_factory=dict)
    sampler: Sampler = field(default_factory=Sampler)
    pruner: Pruner = field(default_factory=Pruner)
    max_trials: int = 0
    parallel_trials: int = 1
    max_failed_trials: int = 0
    max_duration: timedelta | None = None
    trial_timeout: timedelta | None = None
    goal: float | None = None
    constraints: tuple[Constraint, ...] = ()
    # intermediate progresss of a full trial (epochs x folds): Hyperband's maximum resource
    steps_per_trial: int = 1
    suspend: bool = False
    # spec.data.crossValidation.folds; 0 when trials validate on one split
    cross_validation_folds: int = 0

    @classmethod
    def from_spec(cls, spec: OptimizationJobSpec, job_name: str) -> JobSettings:
        common = {
            "job_name": job_name,
            "seed": spec.seed,
            "objectives": tuple(spec.objectives),
            "steps_per_trial": spec.steps_per_trial(),
            "suspend": spec.suspend,
            "cross_validation_folds": spec.data.cross_validation.folds if spec.data.cross_validation else 0,
        }
        tuning = spec.tuning
        if tuning is None:
            return cls(**common)  # type: ignore[arg-type]
        return cls(
            **common,  # type: ignore[arg-type]
            search_space={key: tuning.search_space[key] for key in sorted(tuning.search_space)},
            sampler=tuning.sampler,
            pruner=tuning.pruner,
            max_trials=tuning.max_trials,
            parallel_trials=tuning.parallel_trials,
            max_failed_trials=tuning.max_failed_trials,
            max_duration=_duration(tuning.max_duration),
            trial_timeout=_duration(tuning.trial_timeout),
            goal=tuning.goal,
            constraints=tuple(tuning.selection.constraints) if tuning.selection else (),
        )

    def with_parallel_trials(self, parallel: int | None) -> JobSettings:
        """These settings with another parallelism (`optikube run --parallel`)."""
        return self if parallel is None else replace(self, parallel_trials=parallel)

    @property
    def primary(self) -> Objective:
        return self.objectives[0]

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def sampler_seed(self) -> int:
        return self.sampler.seed if self.sampler.seed is not None else self.seed
