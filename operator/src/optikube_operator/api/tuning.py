"""`spec.tuning`: the hyperparameter search (Optuna sampler, pruner, budget, search space)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field

from optikube_operator.api.base import ApiModel, Duration, FreeValue, Rule, epoch_count
from optikube_operator.api.objectives import Metric

SamplerType = Literal["grid", "random", "tpe", "gp", "cmaes", "nsga2"]
PrunerType = Literal["none", "median", "percentile", "successiveHalving", "hyperband"]
# Search-space keys: a dotted path of at least two segments, e.g. training.learningRate.
# With a pruner, trials report the primary objective at every step (epoch, counted on across
# cross-validation folds) and the whole series is kept on the trial: this bounds it.
MAX_TRIAL_STEPS = 2048
SEARCH_KEY_PATTERN = r"^[a-z][A-Za-z0-9]*([.][A-Za-z_][A-Za-z0-9_]*)+$"


# What an unset startupTrials / populationSize means.
DEFAULT_STARTUP_TRIALS = 10
DEFAULT_NSGA2_POPULATION = 8


class Sampler(ApiModel):
    """How the next trial's parameters are chosen (an Optuna sampler)."""

    type: SamplerType = Field(
        "tpe",
        description="grid: every combination (needs finite choices); random; tpe: Tree-structured Parzen"
        " Estimator (Bayesian); gp: Gaussian-process Bayesian optimization; cmaes: CMA-ES (single objective,"
        " numeric parameters); nsga2: genetic multi-objective search.",
    )
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="Sampler seed; defaults to spec.seed.")
    startup_trials: int | None = Field(
        None,
        ge=0,
        le=1000,
        description="Random trials before the model-based samplers (tpe, gp) take over; "
        f"{DEFAULT_STARTUP_TRIALS} when unset.",
    )
    population_size: int | None = Field(
        None,
        ge=2,
        le=1000,
        description=f"Population size of nsga2 ({DEFAULT_NSGA2_POPULATION} when unset) and cmaes (CMA-ES's"
        " own default, 4 + 3 ln(dimensions), when unset).",
    )

    RULES = (
        Rule(
            cel="!has(self.populationSize) || self.type in ['nsga2', 'cmaes']",
            message="populationSize applies only to the nsga2 and cmaes samplers",
            check=lambda s: s.population_size is None or s.type in ("nsga2", "cmaes"),
            field="populationSize",
        ),
        Rule(
            cel="!has(self.startupTrials) || self.type in ['tpe', 'gp']",
            message="startupTrials applies only to the tpe and gp samplers",
            check=lambda s: s.startup_trials is None or s.type in ("tpe", "gp"),
            field="startupTrials",
        ),
    )

    def effective_startup_trials(self) -> int:
        return DEFAULT_STARTUP_TRIALS if self.startup_trials is None else self.startup_trials


class Pruner(ApiModel):
    """When to stop unpromising trials early, from their per-epoch intermediate values (an Optuna pruner)."""

    type: PrunerType = Field(
        "none",
        description="none; median: stop a trial worse than the median of earlier trials at the same epoch;"
        " percentile: like median at another percentile; successiveHalving; hyperband. Trial pruning needs a"
        " single objective.",
    )
    startup_trials: int = Field(
        2, ge=0, le=1000, description="Trials that run to the end before the trial pruner starts judging."
    )
    warmup_steps: int = epoch_count(1, "Epochs of each trial that are never pruned.", minimum=0)
    percentile: float = Field(25.0, gt=0, lt=100, description="Percentile kept by the percentile pruner.")
    min_resource: int = epoch_count(1, "Epochs before the first rung (successiveHalving, hyperband).")
    reduction_factor: int = Field(
        3, ge=2, le=10, description="Fraction 1/factor of trials promoted per rung."
    )
    max_resource: int | None = epoch_count(
        None, "Epochs of a full trial (hyperband); defaults to training.epochs."
    )


class Parameter(ApiModel):
    """One dimension of the search space."""

    type: Literal["float", "int", "categorical"] = Field(
        description="float and int draw from [low, high]; categorical picks one of choices."
    )
    low: float | None = Field(None, description="Smallest value (float, int).")
    high: float | None = Field(None, description="Largest value, inclusive (float, int).")
    step: float | None = Field(
        None, gt=0, description="Spacing of the values (float, int; int defaults to 1)."
    )
    log: bool = Field(False, description="Sample on a log scale (float, int); needs low > 0.")
    choices: list[FreeValue] | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="The values of a categorical parameter (numbers, strings or booleans).",
    )

    RULES = (
        Rule(
            cel="self.type == 'categorical' || (has(self.low) && has(self.high))",
            message="float and int parameters need low and high",
            check=lambda s: s.type == "categorical" or (s.low is not None and s.high is not None),
            field="low",
        ),
        Rule(
            cel="!has(self.low) || !has(self.high) || self.low < self.high",
            message="must be < high",
            check=lambda s: s.low is None or s.high is None or s.low < s.high,
            field="low",
        ),
        Rule(
            cel="!self.log || !has(self.low) || self.low > 0.0",
            message="must be > 0 for log scale",
            check=lambda s: not s.log or s.low is None or s.low > 0,
            field="low",
        ),
        Rule(
            cel="!(self.log && has(self.step))",
            message="step cannot be combined with log scale",
            check=lambda s: not (s.log and s.step is not None),
            field="step",
        ),
        Rule(
            cel="self.type != 'int' || [has(self.low) ? self.low : 0.0, has(self.high) ? self.high : 0.0,"
            " has(self.step) ? self.step : 1.0].all(v, double(int(v)) == v)",
            message="low, high and step of an int parameter must be whole numbers",
            check=lambda s: (
                s.type != "int"
                or all(float(v).is_integer() for v in (s.low or 0.0, s.high or 0.0, s.step or 1.0))
            ),
            field="low",
        ),
        Rule(
            cel=None,  # untyped choices are invisible to CEL
            message="a categorical parameter needs choices",
            check=lambda s: s.type != "categorical" or s.choices is not None,
            field="choices",
        ),
        Rule(
            cel=None,
            message="choices are only for categorical parameters; float and int use low/high",
            check=lambda s: s.type == "categorical" or s.choices is None,
            field="choices",
        ),
        Rule(
            cel="self.type != 'categorical'"
            " || !(has(self.low) || has(self.high) || has(self.step) || self.log)",
            message="low, high, step and log are only for float and int parameters",
            check=lambda s: (
                s.type != "categorical" or (s.low is None and s.high is None and s.step is None and not s.log)
            ),
            field="type",
        ),
    )

    def is_finite(self) -> bool:
        """Whether the parameter has a finite set of values (what the grid sampler needs)."""
        return self.type != "float" or self.step is not None


class Constraint(ApiModel):
    """A bound on one metric that the chosen model must satisfy."""

    metric: Metric = Field(description="The metric the bound applies to.")
    min: float | None = Field(None, description="Smallest acceptable value.")
    max: float | None = Field(None, description="Largest acceptable value.")

    RULES = (
        Rule(
            cel="has(self.min) || has(self.max)",
            message="a constraint needs min or max",
            check=lambda s: s.min is not None or s.max is not None,
            field="max",
        ),
        Rule(
            cel="!has(self.min) || !has(self.max) || self.min <= self.max",
            message="must be <= max",
            check=lambda s: s.min is None or s.max is None or s.min <= s.max,
            field="min",
        ),
    )

    def met(self, values: Mapping[str, float]) -> bool:
        """Whether ``values`` satisfy the bound (a missing metric does not)."""
        value = values.get(self.metric)
        if value is None:
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class Selection(ApiModel):
    """How the final configuration is chosen among the finished trials (matters with several objectives)."""

    constraints: list[Constraint] = Field(
        default_factory=list,
        max_length=8,
        description="Among the Pareto-optimal trials that satisfy every constraint, the best on the primary"
        " objective wins; without constraints it is simply the best on the primary objective.",
    )


class TuningSpec(ApiModel):
    """The hyperparameter search (Optuna): sampler, pruner, budget and search space."""

    sampler: Sampler = Field(default_factory=Sampler, description="The search strategy.")
    pruner: Pruner = Field(default_factory=Pruner, description="Early stopping of unpromising trials.")
    max_trials: int = Field(
        20, ge=1, le=10000, description="Trials to run in total (pruned and failed count too)."
    )
    parallel_trials: int = Field(1, ge=1, le=64, description="Trials running at the same time.")
    max_failed_trials: int = Field(
        3, ge=0, le=10000, description="The job fails when more trials than this have failed."
    )
    max_duration: Duration | None = Field(
        None, description="Stop starting trials after this long, e.g. 2h (Go duration syntax)."
    )
    trial_timeout: Duration | None = Field(
        None, description="A trial running longer than this fails, e.g. 15m."
    )
    goal: float | None = Field(
        None, description="Stop tuning as soon as a trial reaches this value of the primary objective."
    )
    selection: Selection | None = Field(None, description="Rule for choosing among several objectives.")
    search_space: dict[str, Parameter] = Field(
        min_length=1,
        max_length=32,
        description="Parameters to tune, keyed by a dotted path into this spec (training.learningRate,"
        " compression.pruning.sparsity, model.params.width); each trial runs the spec with the sampled values"
        " set at those paths.",
    )

    RULES = (
        Rule(
            cel="self.parallelTrials <= self.maxTrials",
            message="parallelTrials must be <= maxTrials",
            check=lambda s: s.parallel_trials <= s.max_trials,
            field="parallelTrials",
        ),
        Rule(
            cel="self.sampler.type != 'grid' || self.searchSpace.all(k, self.searchSpace[k].type != 'float'"
            " || has(self.searchSpace[k].step))",
            message="the grid sampler needs finite choices: give each float parameter a step",
            check=lambda s: s.sampler.type != "grid" or all(p.is_finite() for p in s.search_space.values()),
            field="searchSpace",
        ),
        Rule(
            cel=f"self.searchSpace.all(k, k.matches('{SEARCH_KEY_PATTERN}'))",
            message="searchSpace keys are dotted paths into the spec, e.g. training.learningRate",
            field="searchSpace",
        ),
    )
