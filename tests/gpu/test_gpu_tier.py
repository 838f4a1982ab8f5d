"""The GPU tier (`make test-gpu`): the trainer under torchrun on the machine's GPUs with NCCL and
bf16, and the GPU runtimes of docs/benchmarks.md measured for real. Skipped, with the reason,
where torch sees no CUDA device (conftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from torchrun_launch import torchrun

pytestmark = pytest.mark.gpu

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _gpus() -> int:
    import torch

    return torch.cuda.device_count()


def test_nccl_carries_a_bf16_ddp_step_of_the_trainers_model(tmp_path: Path) -> None:
    output = tmp_path / "seen.json"
    torchrun(
        str(HERE / "nccl_bf16_worker.py"), str(output), cwd=tmp_path, processes=_gpus(), one_thread=False
    )
    seen = json.loads(output.read_text())
    assert seen["backend"] == "nccl" and seen["worldSize"] == _gpus()
    assert seen["logitsDtype"] == "torch.bfloat16" and seen["gradientsEqualAcrossRanks"]


def _final(stdout: str) -> dict[str, Any]:
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith('{"')]
    return next(e for e in events if e.get("type") == "final")


def test_a_trial_trains_under_torchrun_on_every_gpu_in_bf16(tmp_path: Path) -> None:
    """The trainer's own entry point, one process per GPU: NCCL joins them where there are two or
    more (the trainer makes no process group for one), bf16 autocast in every step."""
    config = {
        "stage": "trial",
        "job": {"name": "gpu-trial"},
        "trial": {"number": 0, "params": {}},
        "spec": {
            "seed": 3,
            "data": {"source": {"builtin": "digits"}, "validationSplit": 0.15, "testSplit": 0.25},
            "model": {"builtin": {"name": "cnn"}, "params": {"channels": 32, "width": 128}},
            "objectives": [{"metric": "accuracy", "direction": "maximize"}],
            "training": {"epochs": 6, "batchSize": 64, "learningRate": 0.003, "mixedPrecision": "bf16"},
        },
        "outputDir": str(tmp_path / "out"),
    }
    (tmp_path / "run.json").write_text(json.dumps(config))
    args = ("-m", "optikube_trainer", "trial", "--config", str(tmp_path / "run.json"))
    final = _final(torchrun(*args, cwd=tmp_path, processes=_gpus(), one_thread=False).stdout)
    assert final["values"]["accuracy"] > 0.9


def test_the_gpu_runtimes_are_measured_on_the_gpu(tmp_path: Path) -> None:
    """bench/gpu_runtimes.py for real, on a short training (the docs' row is the full command)."""
    output = tmp_path / "gpu-runtimes.json"
    command = [sys.executable, str(ROOT / "bench" / "gpu_runtimes.py"), "--epochs", "2", "--runs", "50"]
    result = subprocess.run(
        [*command, "--output", str(output)], cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, result.stderr[-6000:]
    report = json.loads(output.read_text())
    assert report["deviceType"] == "cuda"
    rows = {row["model"]: row for row in report["rows"]}
    for name in ("eager fp32", "eager bf16 (autocast)", "torch.compile bf16"):
        assert "error" not in rows[name], rows[name]
        assert all(rows[name]["latencyMs"][f"batch{b}P50"] > 0 for b in report["batchSizes"])
    # ONNX Runtime's GPU providers are measured where the package serves them, else say why not
    for name in ("ORT CUDA EP fp32", "ORT TensorRT EP fp16"):
        assert "latencyMs" in rows[name] or rows[name]["error"]
