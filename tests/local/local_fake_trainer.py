"""A stand-in for `torchrun -m optikube_trainer` that speaks Contracts 2-4 without torch.

It lets the LocalBackend tests exercise process handling, the progress endpoint, pruning replies,
crashes and resume in seconds. Its "accuracy" is a smooth function of the learning rate (best
near 0.01) that grows with the epoch; environment variables make chosen trials crash or hang.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any


def post(event: dict[str, Any]) -> dict[str, Any]:
    url = os.environ["OPTIKUBE_PROGRESS_URL"]
    token = Path(os.environ["OPTIKUBE_PROGRESS_TOKEN_FILE"]).read_text().strip()
    request = urllib.request.Request(
        url,
        data=json.dumps(event).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        reply: dict[str, Any] = json.loads(response.read() or b"{}")
    return reply


def main() -> int:
    stage, config_path = sys.argv[1], sys.argv[sys.argv.index("--config") + 1]
    config = json.loads(Path(config_path).read_text())
    spec, out = config["spec"], Path(config["outputDir"])
    out.mkdir(parents=True, exist_ok=True)
    number = None if config["trial"] is None else config["trial"]["number"]
    if stage == "preflight":  # the real one loads data and builds models; this one passes
        (out / "preflight.json").write_text(json.dumps({"ok": True, "findings": {"samples": 0}}))
        return 0
    with (out / "fake-runs.log").open("a") as runs:
        runs.write(f"{stage} {number}\n")
    if str(number) in os.environ.get("FAKE_TRAINER_CRASH", "").split(","):
        print("RuntimeError: fake trainer crashed on purpose", flush=True)
        return 1
    epochs = int(spec["training"]["epochs"])
    quality = max(0.05, 1.0 - abs(math.log10(float(spec["training"]["learningRate"])) + 2.0) / 3.0)
    delay = float(os.environ.get("FAKE_TRAINER_EPOCH_SECONDS", "0.05"))
    if str(number) in os.environ.get("FAKE_TRAINER_HANG", "").split(","):
        delay = 3600.0
    accuracy = 0.0
    for epoch in range(epochs):
        time.sleep(delay)
        accuracy = quality * (epoch + 1) / epochs
        if stage == "trial":
            reply = post(
                {
                    "type": "intermediate",
                    "trial": number,
                    "stage": "train",
                    "epoch": epoch,
                    "step": epoch,
                    "values": {"accuracy": accuracy},
                }
            )
            if reply.get("prune"):
                post({"type": "pruned", "trial": number, "epoch": epoch, "values": {"accuracy": accuracy}})
                return 0
        else:
            post({"type": "stage", "trial": None, "stage": "train", "status": "started", "summary": {}})
    block = {
        "metrics": {"accuracy": accuracy},
        "parameters": 1000,
        "sizeBytes": 4000,
        "macs": 1000,
        "latencyMs": {"batch1P50": 0.1, "batch32P50": 0.5},
    }
    results = {
        "baseline": {**block, "metrics": {"accuracy": accuracy * 0.9}},
        "optimized": block,
        "stages": [],
        "artifacts": {"model": "model/", "report": "report.html"},
    }
    if stage == "pipeline":
        (out / "model").mkdir(exist_ok=True)
        (out / "model" / "weights.txt").write_text(json.dumps(config["spec"]["training"]))
    (out / "results.json").write_text(json.dumps(results))
    post(
        {
            "type": "final",
            "trial": number,
            "values": {"accuracy": accuracy, "latencyMs": 0.1},
            "results": results,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
