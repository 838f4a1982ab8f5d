"""`optikube run` refuses a bad spec before any process starts, naming the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from test_local_backend import MANIFEST

from optikube_operator.cli.run import EXIT_SPEC_ERROR, run


def _invoke(tmp_path: Path, manifest: dict[str, Any]) -> tuple[int, str, Path]:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(manifest))
    out = tmp_path / "out"
    result = CliRunner().invoke(run, [str(path), "--output", str(out)])
    return result.exit_code, result.output, out


def test_spec_error_names_the_field_and_starts_nothing(tmp_path: Path) -> None:
    bad = copy.deepcopy(MANIFEST)
    bad["spec"]["tuning"]["searchSpace"]["training.learningRate"]["low"] = -1.0
    code, output, out = _invoke(tmp_path, bad)
    assert code == EXIT_SPEC_ERROR
    assert 'searchSpace["training.learningRate"]' in output and "job.yaml" in output
    assert not out.exists()


def test_grid_over_a_continuous_range_is_refused_before_starting(tmp_path: Path) -> None:
    grid = copy.deepcopy(MANIFEST)
    grid["spec"]["tuning"]["sampler"] = {"type": "grid"}
    grid["spec"]["tuning"]["pruner"] = {"type": "none"}
    code, output, out = _invoke(tmp_path, grid)
    assert code == EXIT_SPEC_ERROR
    assert "spec.tuning.searchSpace" in output and "grid" in output
    assert not out.exists()
