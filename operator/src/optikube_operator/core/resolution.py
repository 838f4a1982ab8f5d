"""Whether the validation split can tell the trials apart.

Accuracy and F1 count samples: on a validation split of n samples one sample moves them by about
1/n. When the primary scores of all succeeded trials lie within one sample of each other, the
ranking rests on a single prediction (or on the tie-breakers of `core.selection`), and the job
says so, suggesting k-fold cross-validation, where every non-test sample validates once
(docs/tuning.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from optikube_operator.api.objectives import COUNTED_METRICS, VALIDATION_SAMPLES
from optikube_operator.core.observed import ObservedTrial, TrialState
from optikube_operator.core.settings import JobSettings

# The status condition and its reasons (Kubernetes) and the results.json block (local mode).
CONDITION = "TrialsDistinguishable"
REASON_TOO_SMALL = "ValidationSplitTooSmall"
REASON_SPREAD = "ScoresSpreadBeyondOneSample"
SUGGESTED_FOLDS = 5


@dataclass(frozen=True)
class ValidationResolution:
    """How far apart the succeeded trials scored, counted in validation samples."""

    metric: str
    # the fewest validation samples behind a compared trial's score
    samples: int
    # best minus worst primary score of the compared trials
    spread: float
    trials: int
    cross_validation_folds: int = 0

    @property
    def one_sample(self) -> float:
        return 1.0 / self.samples

    @property
    def samples_apart(self) -> int:
        # accuracies are multiples of 1/n, so this is exact for them; F1 is rounded to the nearest
        return round(self.spread * self.samples)

    @property
    def distinguishable(self) -> bool:
        return self.samples_apart > 1

    @property
    def reason(self) -> str:
        return REASON_SPREAD if self.distinguishable else REASON_TOO_SMALL

    @property
    def message(self) -> str:
        scale = (
            f"{self.trials} succeeded trials scored {self.metric} within {self.spread:.4g} of each other,"
            f" about {self.samples_apart} validation sample{'' if self.samples_apart == 1 else 's'}"
            f" (one of {self.samples} samples is worth {self.one_sample:.4g})"
        )
        if self.distinguishable:
            return f"The {scale}."
        if self.cross_validation_folds:
            return (
                f"The {scale}: even with {self.cross_validation_folds}-fold cross-validation the data"
                " cannot tell these trials apart, and the choice rests on the tie-breakers (validation"
                " loss, then fewer parameters). More data, or a search space whose trials differ more,"
                " would rank them."
            )
        return (
            f"The {scale}: the validation split is too small to tell these trials apart, and the choice"
            " rests on the tie-breakers (validation loss, then fewer parameters). Set"
            f" spec.data.crossValidation (e.g. folds: {SUGGESTED_FOLDS}) so that every sample validates once."
        )

    def to_json(self) -> dict[str, object]:
        """The block of results.json's `search.validationResolution`."""
        return {
            "metric": self.metric,
            "validationSamples": self.samples,
            "spread": self.spread,
            "samplesApart": self.samples_apart,
            "trials": self.trials,
            "distinguishable": self.distinguishable,
            "message": self.message,
        }


def validation_resolution(
    settings: JobSettings, trials: Sequence[ObservedTrial]
) -> ValidationResolution | None:
    """The verdict on the succeeded trials, or None when there is nothing to judge: fewer than two
    such trials, a primary objective that does not count samples (loss, latency, size), or
    records without a sample count (an older trainer's)."""
    metric = settings.primary.metric
    if metric not in COUNTED_METRICS:
        return None
    scored = [
        trial
        for trial in trials
        if trial.state is TrialState.SUCCEEDED
        and metric in trial.values
        and trial.values.get(VALIDATION_SAMPLES, 0) >= 1
    ]
    if len(scored) < 2:
        return None
    scores = [float(trial.values[metric]) for trial in scored]
    return ValidationResolution(
        metric=metric,
        samples=min(int(trial.values[VALIDATION_SAMPLES]) for trial in scored),
        spread=max(scores) - min(scores),
        trials=len(scored),
        cross_validation_folds=settings.cross_validation_folds,
    )
