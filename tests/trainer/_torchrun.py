"""The techniques driver under a real 2-process torchrun (gloo on CPU), for the slow trainer tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torchrun_launch import torchrun

HERE = Path(__file__).resolve().parent


def measure_techniques(suite: str, out_dir: Path) -> dict[str, Any]:
    """Run `techniques_driver.py SUITE` under 2-process torchrun; what rank 0 measured, as a dict."""
    out = out_dir / f"{suite}.json"
    torchrun(str(HERE / "techniques_driver.py"), suite, str(out), cwd=out_dir)
    result: dict[str, Any] = json.loads(out.read_text())
    assert result["worldSize"] == 2
    return result
