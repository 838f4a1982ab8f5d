"""The example notebook runs as a user runs it: a real Jupyter kernel (nbclient, ipykernel), the
local backend, the quickstart's smoke form trained for real. Its outputs are plain text and HTML:
no terminal escape code reaches the notebook."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "client-quickstart.ipynb"


def test_the_example_notebook_runs_the_quickstart_smoke_to_succeeded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTIKUBE_NOTEBOOK_OUTPUT", str(tmp_path))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute(env=dict(os.environ))
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert "\x1b[" not in text and not any("\x1b[" in shown for shown in html)
    assert "quickstart: trial 0 started" in text and "quickstart: phase Evaluating -> Succeeded" in text
    assert any(line.startswith("Succeeded ") for line in text.splitlines())  # phase, best trial
    # the first display shows the job as submitted, the last one its outcome and results
    assert "Pending" in html[0]
    assert "Succeeded" in html[-1] and "Baseline vs optimized" in html[-1] and "best trial" in html[-1]
    assert (tmp_path / "quickstart" / "results.json").is_file()
