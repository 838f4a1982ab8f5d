"""Launching real `torchrun --nproc-per-node 2` (gloo on CPU) runs for the slow trainer tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def torchrun(
    *args: str, cwd: Path, timeout: float = 900, processes: int = 2
) -> subprocess.CompletedProcess[str]:
    """Run `torchrun --standalone --nproc-per-node N ARGS...`; raises with the output on failure."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("OPTIKUBE_PROGRESS_URL", None)
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


def measure_techniques(suite: str, out_dir: Path) -> dict[str, Any]:
    """Run `techniques_driver.py SUITE` under 2-process torchrun; what rank 0 measured, as a dict."""
    out = out_dir / f"{suite}.json"
    torchrun(str(HERE / "techniques_driver.py"), suite, str(out), cwd=out_dir)
    result: dict[str, Any] = json.loads(out.read_text())
    assert result["worldSize"] == 2
    return result
