"""When `decide` next needs to be asked although nothing was observed to change.

Most of a job moves on events (a Job finished, progress arrived); only the clock moves the rest: a
running trial reaching `trialTimeout`, the search reaching `maxDuration`. Executors wake a job at
the earliest of these instead of polling it.
"""

from __future__ import annotations

from datetime import datetime

from optikube_operator.core.observed import ObservedState, PipelineState
from optikube_operator.core.settings import JobSettings


def next_deadline(settings: JobSettings, observed: ObservedState, now: datetime) -> datetime | None:
    """The earliest moment after ``now`` at which `decide` could answer differently on the same
    observed state; None when only an event can change its answer."""
    moments: list[datetime] = []
    if settings.trial_timeout is not None:
        moments += [
            trial.start_time + settings.trial_timeout
            for trial in observed.trials
            if trial.state.active and trial.start_time is not None
        ]
    searching = observed.pipeline.state is PipelineState.NOT_STARTED
    if settings.max_duration is not None and observed.start_time is not None and searching:
        moments.append(observed.start_time + settings.max_duration)
    # a moment already past has had its pass (decide acted on it, or waits for running trials)
    return min((moment for moment in moments if moment > now), default=None)
