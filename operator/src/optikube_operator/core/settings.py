"""The tuning settings the core needs, read from a job's spec.

The spec arrives either as the API's pydantic model or as its camelCase dict (Contract 1); the
core only reads the few fields below, with the documented defaults, so that it never depends on
how the rest of the spec is modelled.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from optikube_operator.api.base import duration_seconds


class Direction(enum.StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: Direction

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction is Direction.MAXIMIZE else a < b

    def reaches(self, value: float, goal: float) -> bool:
        return value >= goal if self.direction is Direction.MAXIMIZE else value <= goal


@dataclass(frozen=True)
class Param:
    """One search-space dimension; ``name`` is a dotted path into the spec."""

    name: str
    type: str  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Constraint:
    metric: str
    min: float | None = None
    max: float | None = None

    def met(self, values: Mapping[str, float]) -> bool:
        value = values.get(self.metric)
        if value is None:
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


@dataclass(frozen=True)
class TuningSettings:
    seed: int
    objectives: tuple[Objective, ...]
    search_space: tuple[Param, ...]
    sampler: Mapping[str, Any]
    pruner: Mapping[str, Any]
    max_trials: int
    parallel_trials: int
    max_failed_trials: int | None
    max_duration: timedelta | None
    trial_timeout: timedelta | None
    goal: float | None
    constraints: tuple[Constraint, ...]
    epochs: int
    job_name: str = "optikube"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def primary(self) -> Objective:
        return self.objectives[0]

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def sampler_type(self) -> str:
        return str(self.sampler.get("type", "tpe"))

    @property
    def pruner_type(self) -> str:
        return str(self.pruner.get("type", "none"))

    @property
    def sampler_seed(self) -> int:
        seed = self.sampler.get("seed")
        return int(seed) if seed is not None else self.seed


def spec_as_dict(spec: Any) -> dict[str, Any]:
    """A camelCase dict of the spec, from the API model or from a dict."""
    if isinstance(spec, Mapping):
        return dict(spec)
    dump = getattr(spec, "model_dump", None)
    if dump is None:
        raise TypeError(f"expected a spec mapping or model, got {type(spec).__name__}")
    result: dict[str, Any] = dump(by_alias=True, exclude_none=True, mode="json")
    return result


def _param(name: str, raw: Mapping[str, Any]) -> Param:
    kind = str(raw.get("type", "categorical" if "choices" in raw else "float"))
    return Param(
        name=name,
        type=kind,
        low=raw.get("low"),
        high=raw.get("high"),
        log=bool(raw.get("log", False)),
        step=raw.get("step"),
        choices=tuple(raw.get("choices") or ()),
    )


def _duration(text: str | None) -> timedelta | None:
    return None if not text else timedelta(seconds=duration_seconds(text))


def read_settings(spec: Any, job_name: str = "optikube") -> TuningSettings:
    data = spec_as_dict(spec)
    tuning: Mapping[str, Any] = data.get("tuning") or {}
    raw_objectives = data.get("objectives") or [{"metric": "accuracy", "direction": "maximize"}]
    objectives = tuple(
        Objective(str(o["metric"]), Direction(str(o.get("direction", "maximize")))) for o in raw_objectives
    )
    space: Mapping[str, Any] = tuning.get("searchSpace") or {}
    selection: Mapping[str, Any] = tuning.get("selection") or {}
    constraints = tuple(
        Constraint(str(c["metric"]), c.get("min"), c.get("max")) for c in selection.get("constraints") or ()
    )
    max_failed = tuning.get("maxFailedTrials", 3)
    training: Mapping[str, Any] = data.get("training") or {}
    return TuningSettings(
        seed=int(data.get("seed", 0) or 0),
        objectives=objectives,
        search_space=tuple(_param(name, raw) for name, raw in sorted(space.items())),
        sampler=dict(tuning.get("sampler") or {}),
        pruner=dict(tuning.get("pruner") or {}),
        max_trials=int(tuning.get("maxTrials", 20)),
        parallel_trials=max(1, int(tuning.get("parallelTrials", 1))),
        max_failed_trials=None if max_failed is None else int(max_failed),
        max_duration=_duration(tuning.get("maxDuration")),
        trial_timeout=_duration(tuning.get("trialTimeout")),
        goal=None if tuning.get("goal") is None else float(tuning["goal"]),
        constraints=constraints,
        epochs=int(training.get("epochs", 10) or 10),
        job_name=job_name,
    )
