"""The reports' wording and layout import without the trainer's torch or the core's Optuna, so that
the operator, the CLI and the trainer can all word a job the same way."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import optikube_operator.reports


def test_importing_every_report_module_loads_neither_torch_nor_optuna() -> None:
    modules = [
        f"optikube_operator.reports.{info.name}"
        for info in pkgutil.iter_modules(optikube_operator.reports.__path__)
    ]
    assert {"job_text", "pipeline_text", "pipeline_sentences", "job_html", "pipeline_html"} <= {
        m.rsplit(".", 1)[1] for m in modules
    }
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in ('torch', 'optuna', 'matplotlib') if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout
