"""bench/runtimes_tables.py's over-seeds table: every row says the budget and the validation split
it was decided on, a workload's runs ordered by budget, then by validation split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _bench import bench_module

tables = bench_module("runtimes_tables")


def _seeds_report(budget: float, validation_split: float) -> dict[str, Any]:
    return {
        "workload": "digits-cnn",
        "spec": {
            "data": {"validationSplit": validation_split},
            "compression": {"maxAccuracyDrop": budget},
        },
        "seeds": [7, 8],
        "records": [{"stages": {"pruning": "accepted"}}, {"stages": {"pruning": "skipped"}}],
        "summary": [
            {
                "model": "ORT quantize_static",
                "kind": "anchor",
                "seeds": [7, 8],
                "meanDifferencePoints": -0.1,
                "interval95Points": 0.2,
                "optikubeAheadLevelBehind": [0, 1, 1],
                "pooled": {"samples": 900, "onlyOptikubeRight": 1, "onlyOtherRight": 2, "pValue": 1.0},
            }
        ],
        "slowestVersusFastestAnchor": {"1thread-batch32": {"seed": 8, "ratio": 0.98}},
    }


def test_seeds_rows_name_their_validation_split_and_sort_by_budget_then_split(tmp_path: Path) -> None:
    for name, (budget, split) in {"a": (0.0, 0.3), "b": (0.0, 0.15), "c": (1.0, 0.15)}.items():
        (tmp_path / f"seeds-{name}.json").write_text(json.dumps(_seeds_report(budget, split)))
    reports = tables.load(tmp_path, "seeds")
    order = [(r["spec"]["compression"]["maxAccuracyDrop"], tables._validation_split(r)) for r in reports]
    assert order == [(1.0, 0.15), (0.0, 0.15), (0.0, 0.3)]
    rows = [line for line in tables.seeds_summary(reports).splitlines() if line.startswith("| digits-cnn")]
    assert [row.split(" | ")[1:3] for row in rows] == [["1 pt", "15 %"], ["0 pt", "15 %"], ["0 pt", "30 %"]]
    notes = [line for line in tables.seeds_summary(reports).splitlines() if line.startswith("- ")]
    assert "budget 0 pt, validation split 30 %" in notes[-1]
    assert "pruning: accepted 1, skipped 1" in notes[-1]
