"""Whether this machine can run the GPU tier (`make test-gpu`), and if not, why not.

python tests/gpu/gpu_environment.py   # prints the GPUs, or "skipped: <why>" and exits 1
"""

from __future__ import annotations

import shutil
import subprocess
import sys


def missing_reason() -> str | None:
    """None when torch sees a CUDA device; otherwise what is missing, in words."""
    try:
        import torch
    except ImportError as error:  # the trainer extra is not installed
        return f"torch cannot be imported ({error})"
    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        return None
    smi = shutil.which("nvidia-smi")
    if smi is None:
        seen = "no nvidia-smi on PATH (no NVIDIA driver on this machine)"
    else:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
        seen = f"nvidia-smi -L says: {(listed.stdout or listed.stderr).strip()[:200] or 'nothing'}"
    built = f"torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none'}"
    return f"torch.cuda.is_available() is false ({built}); {seen}"


def describe() -> str:
    import torch

    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return f"{len(names)} GPU(s): {', '.join(names)}; torch {torch.__version__}, CUDA {torch.version.cuda}"


if __name__ == "__main__":
    reason = missing_reason()
    if reason is not None:
        print(f"skipped: {reason}")
        sys.exit(1)
    print(describe())
