"""One job for both of the client's backends, played the same way: on the cluster by `Trainers`
(kube_harness), here by this file run as the local trainer. The values are kube_harness' (its
learning curve and results document), so a job gives the same answers from both.

Run as a script it is either side of a local job:
  `python client_scenario.py runner DIR [--smoke] [--resume]`: the client's local runner with this
      file's trainer in place of torchrun;
  `python client_scenario.py trainer STAGE --config RUN_JSON`: the trainer, speaking Contracts 2-4.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()


def scenario_manifest(name: str, namespace: str) -> dict[str, Any]:
    """A small search that ends the same way whatever the timing: one trial at a time, no trial
    pruner, a seeded random sampler."""
    from kube_harness import manifest

    job = manifest("quickstart", namespace)
    job["metadata"]["name"] = name
    job["spec"]["tuning"] = {
        "sampler": {"type": "random", "seed": 7},
        "maxTrials": 3,
        "parallelTrials": 1,
        "maxFailedTrials": 1,
        "searchSpace": {"training.learningRate": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True}},
    }
    job["spec"]["training"]["epochs"] = 3
    return job


def runner_command() -> list[str]:
    return [sys.executable, str(SCRIPT), "runner"]


def _post(event: dict[str, Any]) -> None:
    token = Path(os.environ["OPTIKUBE_PROGRESS_TOKEN_FILE"]).read_text().strip()
    request = urllib.request.Request(
        os.environ["OPTIKUBE_PROGRESS_URL"],
        data=json.dumps(event).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def trainer(stage: str, config_path: Path) -> int:
    from kube_harness import accuracy_for, results_document

    config = json.loads(config_path.read_text())
    out = Path(config["outputDir"])
    out.mkdir(parents=True, exist_ok=True)
    if stage == "preflight":
        (out / "preflight.json").write_text(json.dumps({"ok": True, "findings": {"samples": 0}}))
        return 0
    epochs = int(config["spec"]["training"]["epochs"])
    if stage == "trial":
        number, params = config["trial"]["number"], config["trial"]["params"]
        accuracy = 0.0
        for epoch in range(epochs):
            accuracy = accuracy_for(params, epoch, epochs)
            _post(
                {
                    "type": "intermediate",
                    "trial": number,
                    "epoch": epoch,
                    "step": epoch,
                    "values": {"accuracy": accuracy},
                }
            )
        _post(
            {"type": "final", "trial": number, "values": {"accuracy": accuracy}, "results": {"trial": number}}
        )
        return 0
    for name in ("train", "pruning", "quantization", "evaluation"):
        _post({"type": "stage", "trial": None, "stage": name, "status": "started"})
        _post({"type": "stage", "trial": None, "stage": name, "status": "completed", "durationSeconds": 1.5})
    results = results_document(0.95)
    (out / "results.json").write_text(json.dumps(results))
    _post(
        {"type": "final", "trial": None, "values": {"accuracy": 0.95, "sizeBytes": 10000}, "results": results}
    )
    return 0


def trainer_command(stage: str, config: Path, processes: int) -> list[str]:
    return [sys.executable, str(SCRIPT), "trainer", stage, "--config", str(config)]


def runner(argv: list[str]) -> int:
    from functools import partial

    from optikube_operator.cli import local_runner
    from optikube_operator.cli import run as run_command
    from optikube_operator.local.backend import LocalOptions

    run_command.LocalOptions = partial(LocalOptions, command=trainer_command, poll_seconds=0.2)  # type: ignore[misc]
    return local_runner.main(argv)


if __name__ == "__main__":
    role, rest = sys.argv[1], sys.argv[2:]
    if role == "trainer":
        sys.exit(trainer(rest[0], Path(rest[rest.index("--config") + 1])))
    sys.exit(runner(rest))
