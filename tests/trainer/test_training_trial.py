"""The trial stage: under real torchrun with 2 processes, and k-fold in one process."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from torchrun_helpers import torchrun, write_run_config

from fake_progress_endpoint import progress_endpoint
from optikube_operator.api.runconfig import RunConfig, parse_run_config
from optikube_trainer.data import load_job_folds
from optikube_trainer.dist import RunContext, local_context, seed_everything
from optikube_trainer.progress import ProgressSender
from optikube_trainer.recipe import compresses_trials, read_recipe
from optikube_trainer.training.trial import run_trial

pytestmark = pytest.mark.slow


def _spec(epochs: int, **extra: Any) -> dict[str, Any]:
    return {
        "seed": 3,
        "data": {"source": {"builtin": "digits"}},
        "model": {"builtin": {"name": "mlp"}, "params": {"width": 32}},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
        "training": {"epochs": epochs, "batchSize": 64, "learningRate": 0.01},
        **extra,
    }


def _trial_config(job: str, number: int, spec: dict[str, Any], output_dir: str) -> RunConfig:
    raw = {"stage": "trial", "job": {"name": job}, "trial": {"number": number}, "outputDir": output_dir}
    return parse_run_config({**raw, "spec": spec})


def _in_process(output_dir: Path, trial: int, stream: io.StringIO) -> RunContext:
    """A one-process run's context whose progress goes to ``stream``."""
    ctx = local_context(seed=3, output_dir=output_dir)
    ctx.progress = ProgressSender(rank=0, trial=trial, stream=stream, output_dir=output_dir)
    return ctx


def _run_trial_stage(tmp_path: Path, spec: dict[str, Any], url: str) -> Any:
    token = tmp_path / "token"
    token.write_text("trial-token")
    config = write_run_config(tmp_path / "run.json", spec, output_dir=tmp_path / "out", trial=5)
    env = {"OPTIKUBE_PROGRESS_URL": url, "OPTIKUBE_PROGRESS_TOKEN_FILE": str(token)}
    return torchrun(["-m", "optikube_trainer", "trial", "--config", str(config)], nproc=2, env=env)


def test_trial_reports_every_epoch_and_a_final_result(tmp_path: Path) -> None:
    with progress_endpoint() as endpoint:
        run = _run_trial_stage(tmp_path, _spec(epochs=2), endpoint.url)
    assert run.returncode == 0, run.stderr[-3000:]
    assert [e["type"] for e in endpoint.events] == ["intermediate", "intermediate", "final"]
    assert set(endpoint.authorizations) == {"Bearer trial-token"}
    first, second, final = endpoint.events
    assert (first["trial"], first["epoch"], first["step"], first["stage"]) == (5, 0, 0, "train")
    assert second["step"] == 1 and 0 < second["values"]["accuracy"] <= 1
    assert final["values"]["accuracy"] > 0.7 and final["values"]["parameters"] > 0
    assert {"accuracy", "f1", "valLoss"} <= set(final["values"])
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["epochsRun"] == 2 and len(results["curves"]["validation"]["loss"]) == 2
    assert results["diagnosis"]["fit"] in {"good", "overfitting", "underfitting"}


def test_trial_stops_cleanly_when_told_to_prune(tmp_path: Path) -> None:
    with progress_endpoint(prune_after=2) as endpoint:
        run = _run_trial_stage(tmp_path, _spec(epochs=6), endpoint.url)
    assert run.returncode == 0, run.stderr[-3000:]
    kinds = [e["type"] for e in endpoint.events]
    assert kinds == ["intermediate", "intermediate", "pruned"]  # both ranks stopped after epoch 1
    assert endpoint.events[-1]["epoch"] == 1 and endpoint.events[-1]["trial"] == 5
    assert not (tmp_path / "out" / "results.json").exists()


def test_k_fold_trial_reports_the_mean_of_the_folds(tmp_path: Path) -> None:
    spec = _spec(epochs=2, data={"source": {"builtin": "iris"}, "crossValidation": {"folds": 3}})
    config = _trial_config("kfold", 1, spec, str(tmp_path))
    stream = io.StringIO()
    ctx = _in_process(tmp_path, 1, stream)
    seed_everything(3)
    outcome = run_trial(config, ctx)
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["step"] for e in events if e["type"] == "intermediate"] == [0, 1, 2, 3, 4, 5]
    folds = outcome["results"]["folds"]
    assert len(folds) == 3
    mean = sum(f["accuracy"] for f in folds) / 3
    assert outcome["values"]["accuracy"] == pytest.approx(mean)
    # the mean stands on every fold's validation samples: together, all the non-test samples
    per_fold = [len(bundle.val) for bundle in load_job_folds(read_recipe(config.spec, 1))]  # type: ignore[arg-type]
    assert len(per_fold) == 3 and outcome["values"]["validationSamples"] == sum(per_fold)
    assert events[-1]["type"] == "final"


def test_compression_runs_in_trials_only_when_the_search_touches_it() -> None:
    def spec(**extra: Any) -> Any:
        return _trial_config("x", 0, _spec(epochs=1, **extra), "o").spec

    pruning = {"compression": {"pruning": {"sparsity": 0.5}}}
    assert not compresses_trials(spec(**pruning))
    touched = {
        "tuning": {
            "searchSpace": {"compression.pruning.sparsity": {"type": "float", "low": 0.2, "high": 0.8}}
        }
    }
    assert compresses_trials(spec(**pruning, **touched))
    assert not compresses_trials(spec(**touched))
    latency = {
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latencyMs", "direction": "minimize"},
        ]
    }
    assert compresses_trials(spec(**latency))


def test_trial_measures_objectives_that_need_the_compressed_model(tmp_path: Path) -> None:
    spec = _spec(
        epochs=1,
        objectives=[
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "sizeBytes", "direction": "minimize"},
            {"metric": "latencyMs", "direction": "minimize"},
        ],
        compression={"pruning": {"method": "unstructured", "sparsity": 0.5, "fineTuneEpochs": 0}},
        tuning={"searchSpace": {"compression.pruning.sparsity": {"type": "float", "low": 0.1, "high": 0.9}}},
    )
    config = _trial_config("measure", 2, spec, str(tmp_path))
    outcome = run_trial(config, _in_process(tmp_path, 2, io.StringIO()))
    values = outcome["values"]
    assert values["sizeBytes"] > 0 and values["latencyMs"] > 0
    assert 0.0 < values["accuracy"] <= 1.0
