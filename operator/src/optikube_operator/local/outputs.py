"""The job-level outputs of a local run: results.json, the model, the study file and report.html."""

from __future__ import annotations

import shutil
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.storages.journal import JournalFileBackend

from optikube_operator.core import JobSettings, ObservedTrial
from optikube_operator.core.study import build_study
from optikube_operator.core.summary import summarize
from optikube_operator.local.state import (
    TEMPORARY_SUFFIX,
    LocalTrial,
    RunState,
    read_json_object,
    replace_atomically,
    write_json_atomic,
)
from optikube_operator.reports.job_html import write_report

# An Optuna journal file: `optuna-dashboard <output>/study.log` opens it (no database needed).
STUDY_FILE = "study.log"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _trial_summary(trial: LocalTrial) -> dict[str, Any]:
    record = trial.record
    summary: dict[str, Any] = {
        "number": record.number,
        "state": record.state.value,
        "params": dict(record.params),
        "values": dict(record.values),
        "intermediate": {step: value for step, value in sorted(record.intermediate.items())},
        "startTime": _iso(record.start_time),
        "endTime": _iso(record.end_time),
        "attempts": record.attempts,
    }
    if record.message:
        summary["message"] = record.message
    if trial.log_tail:
        summary["logTail"] = trial.log_tail.splitlines()
    return summary


def _brief(trial: ObservedTrial | None) -> dict[str, Any] | None:
    if trial is None:
        return None
    return {"number": trial.number, "params": dict(trial.params), "values": dict(trial.values)}


def job_results(
    settings: JobSettings, state: RunState, pipeline_results: dict[str, Any] | None
) -> dict[str, Any]:
    """The pipeline's Contract 4 results plus the search: trials, bestTrial, paretoFront."""
    summary = summarize(settings, state.observed())
    pipeline = state.pipeline
    results: dict[str, Any] = dict(pipeline_results or {})
    results.update(
        {
            "job": state.job_name,
            "outcome": state.finished,
            "trials": [_trial_summary(state.trials[number]) for number in sorted(state.trials)],
            "bestTrial": _brief(summary.best),
            "paretoFront": [_brief(trial) for trial in summary.pareto_front],
            "search": {
                "objectives": [{"metric": o.metric, "direction": o.direction} for o in settings.objectives],
                "endedBecause": pipeline.search_ended or None,
                "chosenTrial": pipeline.trial_number,
                "chosenParams": dict(pipeline.params),
                "constraintsMet": summary.constraints_met,
                "trialCounts": {state.value: count for state, count in summary.counts.items()},
                "interruptions": state.interruptions,
                # whether the validation split tells the trials apart (docs/tuning.md); None: not judged
                "validationResolution": summary.resolution.to_json() if summary.resolution else None,
            },
        }
    )
    if pipeline.message or state.pipeline_log_tail:
        results["pipelineError"] = {
            "message": pipeline.message,
            "logTail": state.pipeline_log_tail.splitlines(),
        }
    return results


def copy_model(pipeline_dir: Path, pipeline_results: dict[str, Any] | None, out: Path) -> Path | None:
    artifacts = (pipeline_results or {}).get("artifacts") or {}
    model = artifacts.get("model") if isinstance(artifacts, dict) else None
    if not model:
        return None
    source = Path(model) if Path(model).is_absolute() else pipeline_dir / model
    if not source.exists():
        return None
    target = out / "model"
    # copied beside, then swapped in: a kill mid-copy leaves the old model/ (or none), not half a one
    staging = out / f".model{TEMPORARY_SUFFIX}"
    _remove(staging)
    if source.is_dir():
        shutil.copytree(source, staging)
    else:
        staging.mkdir()
        shutil.copy2(source, staging / source.name)
    retired = out / f".model.old{TEMPORARY_SUFFIX}"
    _remove(retired)
    if target.exists():
        target.rename(retired)
    staging.rename(target)
    _remove(retired)
    return target


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def export_study(settings: JobSettings, state: RunState, out: Path) -> Path | None:
    """The study as an Optuna journal file, rewritten from the recorded trials."""
    if not settings.search_space:
        return None
    path = out / STUDY_FILE
    memory = build_study(settings, state.observed().trials)

    def write(temporary: Path) -> None:
        temporary.unlink()  # the journal is created by Optuna, from nothing
        storage = optuna.storages.JournalStorage(JournalFileBackend(str(temporary)))
        study = optuna.create_study(
            storage=storage,
            study_name=state.job_name,
            directions=[objective.direction for objective in settings.objectives],
        )
        with warnings.catch_warnings():  # metric names are "experimental" in Optuna; the dashboard shows them
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([objective.metric for objective in settings.objectives])
        study.add_trials(memory.get_trials(deepcopy=False))

    replace_atomically(path, write)
    return path


def write_outputs(
    settings: JobSettings,
    state: RunState,
    out: Path,
    *,
    report: bool = True,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``extra``: top-level keys the caller adds to results.json (`smoke` for a smoke run)."""
    pipeline_dir = out / "pipeline"
    pipeline_results = read_json_object(pipeline_dir / "results.json")
    results = {**job_results(settings, state, pipeline_results), **(extra or {})}
    model = copy_model(pipeline_dir, pipeline_results, out)
    study = export_study(settings, state, out)
    artifacts = dict(results.get("artifacts") or {})
    artifacts.update(
        {
            "model": "model/" if model else None,
            "report": "report.html",
            "study": STUDY_FILE if study else None,
            "state": "state.json",
        }
    )
    if (pipeline_dir / "report.html").exists():
        # the trainer's own report: training curves, fit diagnosis, stage by stage
        artifacts["pipelineReport"] = "pipeline/report.html"
    results["artifacts"] = artifacts
    write_json_atomic(out / "results.json", results)
    if report:
        shown = build_study(settings, state.observed().trials) if study else None
        replace_atomically(out / "report.html", lambda temporary: write_report(temporary, results, shown))
    return results
