"""DDP under real torchrun (gloo): the same global batches give the same weights; resume after a crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torchrun_helpers import torchrun

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("ddp_worker.py")
EPOCHS = 3


def _train(out: Path, nproc: int, *extra: str) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    run = torchrun([str(WORKER), "--out", str(out), "--epochs", str(EPOCHS), *extra], nproc=nproc)
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, Any] = torch.load(out / "result.pt", weights_only=False)
    return result


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _train(tmp_path_factory.mktemp("ddp2"), nproc=2)


def test_two_processes_match_one_process_with_the_same_global_batch(
    two_process_run: dict[str, Any], tmp_path: Path
) -> None:
    single = _train(tmp_path / "single", nproc=1)
    assert single["epochs_run"] == two_process_run["epochs_run"] == EPOCHS
    for name, weight in single["weights"].items():
        other = two_process_run["weights"][name]
        assert torch.allclose(weight, other, atol=2e-5, rtol=1e-4), (
            name,
            float((weight - other).abs().max()),
        )
    # the curves are all-reduced over ranks, so they agree too
    assert single["curves"]["validation"]["accuracy"] == pytest.approx(
        two_process_run["curves"]["validation"]["accuracy"], abs=1e-6
    )
    assert single["curves"]["train"]["loss"] == pytest.approx(
        two_process_run["curves"]["train"]["loss"], rel=1e-4
    )
    # and the run really trained
    assert single["curves"]["validation"]["accuracy"][-1] > 0.75


def test_resume_after_a_crash_gives_the_uninterrupted_result(
    two_process_run: dict[str, Any], tmp_path: Path
) -> None:
    checkpoints = tmp_path / "checkpoints"
    crashed = torchrun(
        [
            str(WORKER),
            "--out",
            str(tmp_path),
            "--epochs",
            str(EPOCHS),
            "--checkpoint-dir",
            str(checkpoints),
            "--crash-after-epoch",
            "1",
        ],
        nproc=2,
    )
    assert crashed.returncode != 0 and "simulated crash after epoch 1" in crashed.stderr
    assert (checkpoints / "checkpoint.pt").exists()
    assert not (tmp_path / "result.pt").exists()
    resumed = _train(tmp_path, 2, "--checkpoint-dir", str(checkpoints))
    assert len(resumed["curves"]["train"]["loss"]) == EPOCHS  # epochs 0-1 from the checkpoint, 2 rerun
    for name, weight in resumed["weights"].items():
        assert torch.allclose(weight, two_process_run["weights"][name], atol=1e-6), name
    assert resumed["curves"] == two_process_run["curves"]
