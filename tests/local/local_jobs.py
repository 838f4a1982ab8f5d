"""The jobs the local backend's tests run, and the torch-free stand-in trainer they run them with."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

from optikube_operator.api import load_job
from optikube_operator.local.backend import LocalBackend, LocalOptions

FAKE = Path(__file__).with_name("local_fake_trainer.py")


def fake_command(stage: str, config: Path, processes: int) -> list[str]:
    """LocalOptions' command builder that runs local_fake_trainer.py in place of torchrun."""
    return [sys.executable, str(FAKE), stage, "--config", str(config)]


def fake_backend(out: Path, manifest: dict[str, Any], *, resume: bool = False, **env: str) -> LocalBackend:
    """A LocalBackend of ``manifest`` (copied) whose trainers are the stand-in, polled every 0.2 s;
    ``env`` reaches the stand-in (FAKE_TRAINER_CRASH, FAKE_TRAINER_HANG, ...)."""
    options = LocalOptions(
        output_dir=out,
        resume=resume,
        command=fake_command,
        poll_seconds=0.2,
        grace_seconds=2.0,
        extra_env=env,
    )
    return LocalBackend(load_job(copy.deepcopy(manifest)), options)


def log_uniform(low: float, high: float) -> dict[str, Any]:
    """A float search-space parameter sampled on a log scale."""
    return {"type": "float", "low": low, "high": high, "log": True}


def median_search(
    sampler: dict[str, Any], *, trials: int, parallel: int, space: dict[str, Any], **more: Any
) -> dict[str, Any]:
    """`spec.tuning` of a search whose median pruner stops trials from the third on (after their
    second step) and that fails at its second failed trial; ``more`` adds fields."""
    return {
        "sampler": sampler,
        "pruner": {"type": "median", "startupTrials": 2, "warmupSteps": 1},
        "maxTrials": trials,
        "parallelTrials": parallel,
        "maxFailedTrials": 1,
        "searchSpace": space,
        **more,
    }


def mlp_job(
    name: str,
    *,
    seed: int,
    data: dict[str, Any],
    params: dict[str, Any] | None = None,
    tuning: dict[str, Any],
    training: dict[str, Any],
) -> dict[str, Any]:
    """An OptimizationJob manifest that tunes the builtin MLP (with ``params``) for accuracy."""
    model: dict[str, Any] = {"builtin": {"name": "mlp"}}
    if params is not None:
        model["params"] = params
    return {
        "apiVersion": "optikube.io/v1alpha1",
        "kind": "OptimizationJob",
        "metadata": {"name": name},
        "spec": {
            "seed": seed,
            "data": data,
            "model": model,
            "objectives": [{"metric": "accuracy", "direction": "maximize"}],
            "tuning": tuning,
            "training": training,
        },
    }
