"""Leaving the process group under real torchrun (gloo): after a completed run the other ranks wait
for rank 0, also longer than the process group's timeout."""

from __future__ import annotations

from pathlib import Path

import pytest
from torchrun_helpers import torchrun

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("shutdown_worker.py")


def test_every_rank_leaves_after_rank_0_has_finished(tmp_path: Path) -> None:
    run = torchrun([str(WORKER), str(tmp_path)], nproc=2, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    finished = float((tmp_path / "rank0-finished").read_text())
    assert float((tmp_path / "rank1-left").read_text()) >= finished
    assert float((tmp_path / "rank0-left").read_text()) >= finished
