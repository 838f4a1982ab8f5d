"""Launching a real `torchrun --standalone` run from a test, with its output in the failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def torchrun(
    *args: str, cwd: Path, timeout: float = 900, processes: int = 2, one_thread: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `torchrun --standalone --nproc-per-node N ARGS...`; raises with the output on failure.

    one_thread: OMP_NUM_THREADS=1, so that N CPU processes do not fight over the cores; a GPU run
    leaves the threads to torch."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if one_thread:
        env["OMP_NUM_THREADS"] = "1"
    env.pop("OPTIKUBE_PROGRESS_URL", None)  # rank 0 prints its progress instead of sending it
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        *args,
    ]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
        )
    return result
