"""The job-level outputs of a local run: results.json, the model, the study file and report.html."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages.journal import JournalFileBackend

from optikube_operator.core.selection import best_trial, pareto_front, select
from optikube_operator.core.settings import TuningSettings, read_settings
from optikube_operator.core.study import build_study
from optikube_operator.local.state import RunState, TrialRecord, write_json_atomic
from optikube_operator.report.html import write_report

# An Optuna journal file: `optuna-dashboard <output>/study.log` opens it (no database needed).
STUDY_FILE = "study.log"


def _trial_summary(trial: TrialRecord) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "number": trial.number,
        "state": trial.state,
        "params": trial.params,
        "values": trial.values,
        "intermediate": {
            int(step): values for step, values in sorted(trial.intermediate.items(), key=lambda x: int(x[0]))
        },
        "startTime": trial.start_time,
        "endTime": trial.end_time,
        "attempts": trial.attempts,
    }
    if trial.message:
        summary["message"] = trial.message
    if trial.log_tail:
        summary["logTail"] = trial.log_tail.splitlines()
    return summary


def _brief(trial: TrialRecord | None) -> dict[str, Any] | None:
    if trial is None:
        return None
    return {"number": trial.number, "params": trial.params, "values": trial.values}


def job_results(
    spec: dict[str, Any], state: RunState, pipeline_results: dict[str, Any] | None
) -> dict[str, Any]:
    """The pipeline's Contract 4 results plus the search: trials, bestTrial, paretoFront."""
    settings = read_settings(spec, state.job_name)
    observed = state.observed().trials
    records = [state.trials[number] for number in sorted(state.trials)]
    chosen = select(settings, observed)
    # the best trial is the one the choice rule picks (with one objective: the best value)
    best = chosen.trial if chosen is not None else best_trial(settings, observed)
    front = pareto_front(settings, observed) if settings.multi_objective else ([best] if best else [])
    results: dict[str, Any] = dict(pipeline_results or {})
    results.update(
        {
            "job": state.job_name,
            "outcome": state.finished,
            "trials": [_trial_summary(trial) for trial in records],
            "bestTrial": _brief(state.trials[best.number]) if best else None,
            "paretoFront": [_brief(state.trials[t.number]) for t in front],
            "search": {
                "objectives": [
                    {"metric": o.metric, "direction": o.direction.value} for o in settings.objectives
                ],
                "endedBecause": state.pipeline.search_ended or None,
                "chosenTrial": state.pipeline.trial_number,
                "chosenParams": state.pipeline.params,
                "constraintsMet": None if chosen is None else chosen.constraints_met,
                "trialCounts": _counts(records),
                "interruptions": state.interruptions,
            },
        }
    )
    if state.pipeline.message or state.pipeline.log_tail:
        results["pipelineError"] = {
            "message": state.pipeline.message,
            "logTail": state.pipeline.log_tail.splitlines(),
        }
    return results


def _counts(records: list[TrialRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in records:
        counts[trial.state] = counts.get(trial.state, 0) + 1
    return counts


def copy_model(pipeline_dir: Path, pipeline_results: dict[str, Any] | None, out: Path) -> Path | None:
    artifacts = (pipeline_results or {}).get("artifacts") or {}
    model = artifacts.get("model") if isinstance(artifacts, dict) else None
    if not model:
        return None
    source = Path(model) if Path(model).is_absolute() else pipeline_dir / model
    if not source.exists():
        return None
    target = out / "model"
    if target.exists():
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        target.mkdir()
        shutil.copy2(source, target / source.name)
    return target


def export_study(settings: TuningSettings, state: RunState, out: Path) -> Path | None:
    """The study as an Optuna journal file, rewritten from the recorded trials."""
    if not settings.search_space:
        return None
    path = out / STUDY_FILE
    path.unlink(missing_ok=True)
    memory = build_study(settings, state.observed().trials)
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(
        storage=storage,
        study_name=state.job_name,
        directions=[objective.direction.value for objective in settings.objectives],
    )
    with warnings.catch_warnings():  # metric names are "experimental" in Optuna, and the dashboard shows them
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([objective.metric for objective in settings.objectives])
    study.add_trials(memory.get_trials(deepcopy=False))
    return path


def write_outputs(spec: dict[str, Any], state: RunState, out: Path, *, report: bool = True) -> dict[str, Any]:
    pipeline_dir = out / "pipeline"
    pipeline_results = _read(pipeline_dir / "results.json")
    results = job_results(spec, state, pipeline_results)
    settings = read_settings(spec, state.job_name)
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
        write_report(
            out / "report.html", results, build_study(settings, state.observed().trials) if study else None
        )
    return results


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
