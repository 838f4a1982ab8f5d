"""bench/gpu_runtimes.py's measuring code, run on the CPU: every runtime it offers answers like the
eager model and is timed in the same rounds. The GPU row itself is only measured on a GPU
(tests/gpu, `make test-gpu`); this run is no such row and writes nowhere but a temporary file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _bench import bench_module


@pytest.mark.slow  # trains the digits CNN for an epoch and compiles it (~30 s)
def test_the_gpu_benchmark_code_runs_every_runtime_on_the_cpu(tmp_path: Path) -> None:
    gpu_runtimes = bench_module("gpu_runtimes")
    output = tmp_path / "gpu-runtimes.json"
    argv = ["--device", "cpu", "--workload", "digits-cnn", "--epochs", "1", "--runs", "5"]
    gpu_runtimes.main([*argv, "--batch-sizes", "1", "32", "--output", str(output)])
    report = json.loads(output.read_text())
    assert report["deviceType"] == "cpu" and report["trainingPrecision"] == "bf16"
    rows = {row["model"]: row for row in report["rows"]}
    assert list(rows) == ["eager fp32", "eager bf16 (autocast)", "torch.compile bf16", "ORT CPU EP fp32"]
    for row in rows.values():
        assert "error" not in row, row
        assert row["latencyMs"]["batch1P50"] > 0 and row["latencyMs"]["batch32P50"] > 0
    # the same trained model in every runtime: test accuracies within a few samples of each other
    accuracies = [row["metrics"]["accuracy"] for row in rows.values()]
    assert max(accuracies) - min(accuracies) < 0.02
    assert rows["eager fp32"]["speedupVsEagerFp32"] == {"batch1": 1.0, "batch32": 1.0}
