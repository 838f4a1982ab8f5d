"""A torchrun worker for the shutdown test: rank 0 finishes late, past the process group's timeout,
and every rank writes when it left the process group.

Run as ``torchrun --nproc-per-node 2 shutdown_worker.py OUT_DIR``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from optikube_trainer.dist import init_distributed, shutdown

PROCESS_GROUP_TIMEOUT_S = 2.0
RANK0_EXTRA_WORK_S = 5.0


def main() -> None:
    out = Path(sys.argv[1])
    ctx = init_distributed(seed=0, output_dir=out, use_gpu=False, timeout_s=PROCESS_GROUP_TIMEOUT_S)
    if ctx.is_main:  # rank 0 alone evaluates and writes results.json in the pipeline
        time.sleep(RANK0_EXTRA_WORK_S)
        (out / "rank0-finished").write_text(repr(time.time()))
    shutdown(completed=True)
    (out / f"rank{ctx.rank}-left").write_text(repr(time.time()))


if __name__ == "__main__":
    main()
