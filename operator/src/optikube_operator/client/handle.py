"""`JobHandle`: one submitted job, whichever backend runs it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal, Protocol, overload

from optikube_operator.client.errors import ClientError, ErrorReason
from optikube_operator.client.records import JobResults, JobSnapshot, TrialRecord
from optikube_operator.client.specs import Submission
from optikube_operator.client.updates import JobUpdate, updates_between


class ClientBackend(Protocol):
    """What the client needs of a backend (`LocalJobs`, `ClusterJobs`)."""

    @property
    def where(self) -> str: ...

    def submit(self, submission: Submission) -> JobSnapshot: ...
    def snapshot(self, name: str) -> JobSnapshot: ...
    def snapshots(self) -> list[JobSnapshot]: ...
    def watch(self, name: str, timeout: float | None) -> Iterator[JobSnapshot]: ...
    def results_document(self, name: str) -> Mapping[str, Any] | None: ...
    def logs(self, name: str, trial: int | None) -> str: ...
    def follow_logs(self, name: str, trial: int | None) -> Iterator[str]: ...
    def suspend(self, name: str) -> None: ...
    def resume(self, name: str) -> None: ...
    def delete(self, name: str, wait: bool) -> None: ...


def job_failed(snapshot: JobSnapshot) -> ClientError:
    """A Failed job's error: its reason and message, what they mean and what to do."""
    from optikube_operator.reports.job_text import FAILURES

    reason = snapshot.reason or "Failed"
    message = (snapshot.status.message or "").rstrip(".")
    what, advice = FAILURES.get(
        reason,
        (
            f"it ended with {reason}",
            "Read the message above and the trials' messages (trials(), logs(trial=K)); fix the spec"
            " field or the data it names, then submit the job again.",
        ),
    )
    said = f": {message}" if message and message != reason else ""
    return ClientError(
        ErrorReason.JOB_FAILED, f"job {snapshot.name} Failed ({reason}){said}. In short: {what}.", advice
    )


class JobHandle:
    """A job: its name and phase as last seen, and every question about it."""

    def __init__(self, backend: ClientBackend, snapshot: JobSnapshot) -> None:
        self._backend = backend
        self.snapshot = snapshot

    @property
    def name(self) -> str:
        return self.snapshot.name

    @property
    def phase(self) -> str:
        """The phase as last seen (refresh(), wait() and watch() update it)."""
        return self.snapshot.phase

    @property
    def stage(self) -> str | None:
        return self.snapshot.stage

    def refresh(self) -> JobHandle:
        self.snapshot = self._backend.snapshot(self.name)
        return self

    def watch(self, timeout: float | None = None) -> Iterator[JobUpdate]:
        """The job as it is now, as updates (phase, trials, stage), then each change as it happens,
        until the job finishes or `timeout` seconds pass."""
        previous: JobSnapshot | None = None
        for snapshot in self._backend.watch(self.name, timeout):
            yield from updates_between(previous, snapshot)
            previous = self.snapshot = snapshot

    def wait(self, timeout: float | None = None) -> JobHandle:
        """Block until the job ends; raises ClientError on Failed (JobFailed) and when `timeout`
        seconds pass first (Timeout)."""
        for _ in self.watch(timeout):
            pass
        if not self.snapshot.finished:
            raise ClientError(
                ErrorReason.TIMEOUT,
                f"job {self.name} is still {self.phase} after {timeout:g}s",
                "wait longer (wait(timeout=None) waits until it ends), or look at its progress with"
                f" watch() or `optikube describe {self.name}`",
            )
        if self.phase == "Failed":
            raise job_failed(self.snapshot)
        return self

    def trials(self) -> list[TrialRecord]:
        return list(self.refresh().snapshot.trials)

    def best_trial(self) -> TrialRecord | None:
        """The trial the choice rule picks (the best primary objective with one objective)."""
        return self.refresh().snapshot.best_trial

    def results(self) -> JobResults:
        """Baseline vs optimized and the runtimes, once the job succeeded."""
        snapshot = self.refresh().snapshot
        if snapshot.phase == "Failed":
            raise job_failed(snapshot)
        if snapshot.status.results is None:
            raise ClientError(
                ErrorReason.NOT_READY,
                f"job {self.name} is {snapshot.phase}: it has results once its final pipeline succeeded",
                "wait() for it first",
            )
        return JobResults.of(snapshot, self._backend.results_document(self.name))

    @overload
    def logs(self, trial: int | None = None, follow: Literal[False] = False) -> str: ...
    @overload
    def logs(self, trial: int | None = None, *, follow: Literal[True]) -> Iterator[str]: ...

    def logs(self, trial: int | None = None, follow: bool = False) -> str | Iterator[str]:
        """Trial `trial`'s trainer log (rank 0), or the final pipeline's when None; with `follow`, an
        iterator of its lines as they come, until the run ends."""
        if follow:
            return self._backend.follow_logs(self.name, trial)
        return self._backend.logs(self.name, trial)

    def suspend(self) -> JobHandle:
        """Stop the running trials (they run again on resume); the job keeps what finished."""
        self._backend.suspend(self.name)
        return self.refresh()

    def resume(self) -> JobHandle:
        self._backend.resume(self.name)
        return self.refresh()

    def delete(self, wait: bool = False) -> None:
        """Delete the job with its trials and runs (`wait`: until they are gone)."""
        self._backend.delete(self.name, wait)

    def __repr__(self) -> str:
        return f"JobHandle(name={self.name!r}, phase={self.phase!r}, where={self.snapshot.where!r})"

    def _repr_html_(self) -> str:
        from optikube_operator.client.html import job_html

        return job_html(self.snapshot)
