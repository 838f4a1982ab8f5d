"""bench/seeds.py's summary of replicates: per-seed differences, their interval, the pooled
McNemar test, and the seed where optikube's model was least ahead of the fastest anchor."""

from __future__ import annotations

from typing import Any

import pytest
from _bench import bench_module

from optikube_trainer.evaluation.paired import mcnemar_exact_p

seeds = bench_module("seeds")


def _record(
    seed: int, ours_vs_anchor: tuple[int, int], samples: int = 450, ratio: float = 1.5
) -> dict[str, Any]:
    only_ours, only_other = ours_vs_anchor
    return {
        "seed": seed,
        "kinds": {"optikube (onnx)": "optikube", "ORT quantize_static": "anchor"},
        "paired": {
            "ORT quantize_static": {
                "samples": samples,
                "onlyOptikubeRight": only_ours,
                "onlyOtherRight": only_other,
            }
        },
        "versusFastestAnchor": {"1thread-batch1": {"anchor": "ORT quantize_static", "ratio": ratio}},
    }


def test_pooling_the_seeds_finds_a_loss_no_single_seed_shows() -> None:
    records = [_record(7, (2, 6)), _record(8, (1, 6)), _record(9, (0, 5))]
    assert [round(mcnemar_exact_p(a, b), 4) for a, b in ((2, 6), (1, 6), (0, 5))] == [0.2891, 0.125, 0.0625]
    (row,) = seeds.summarize(records)
    assert row["pooled"] == {
        "samples": 1350,
        "onlyOptikubeRight": 3,
        "onlyOtherRight": 17,
        # 2 * (C(20,0) + C(20,1) + C(20,2) + C(20,3)) / 2**20
        "pValue": round(2 * 1351 / 2**20, 4),
    }
    assert row["optikubeAheadLevelBehind"] == [0, 0, 3]
    assert row["kind"] == "anchor" and row["seeds"] == [7, 8, 9]


def test_the_differences_are_per_seed_points_with_a_t_interval_of_their_mean() -> None:
    # differences of +1, +2 and +3 points on 100 samples: mean 2, sd 1, t(0.975, 2) = 4.302653
    records = [
        _record(7, (1, 0), samples=100),
        _record(8, (3, 1), samples=100),
        _record(9, (4, 1), samples=100),
    ]
    (row,) = seeds.summarize(records)
    assert row["differencePoints"] == [1.0, 2.0, 3.0]
    assert row["meanDifferencePoints"] == 2.0
    assert row["interval95Points"] == pytest.approx(4.302653 / 3**0.5, abs=1e-4)
    assert row["optikubeAheadLevelBehind"] == [3, 0, 0]


def test_one_seed_has_no_interval_and_a_level_seed_counts_as_level() -> None:
    (row,) = seeds.summarize([_record(7, (2, 2))])
    assert row["interval95Points"] is None
    assert row["optikubeAheadLevelBehind"] == [0, 1, 0]
    assert row["pooled"]["pValue"] == 1.0


def test_the_slowest_seed_against_the_fastest_anchor_is_reported() -> None:
    records = [_record(7, (0, 0), ratio=1.4), _record(8, (0, 0), ratio=0.97), _record(9, (0, 0), ratio=2.0)]
    assert seeds.slowest_versus_anchor(records) == {
        "1thread-batch1": {"seed": 8, "anchor": "ORT quantize_static", "ratio": 0.97}
    }


def test_a_seed_record_keeps_what_the_peers_run_measured() -> None:
    report = {
        "rows": [
            {"model": "fp32 eager (baseline)", "kind": "baseline", "metrics": {"accuracy": 0.98}},
            {"model": "optikube (onnx)", "kind": "optikube", "metrics": {"accuracy": 0.97}},
        ],
        "pairedWithOptikube": {
            "fp32 eager (baseline)": {"samples": 450, "onlyOptikubeRight": 1, "onlyOtherRight": 5}
        },
        "pipelineRuntimes": {"chosen": "onnx"},
        "stages": [
            {"name": "distillation", "outcome": "skipped", "attempts": [{}, {}]},
            {"name": "export", "outcome": "n/a", "attempts": None},
        ],
        "optikubeVsBestAnchor": {"1thread-batch32": {"bestAnchor": "ORT quantize_dynamic", "ratio": 1.8}},
        "pipelineSeconds": 12.5,
    }
    record = seeds.seed_record(11, report)
    assert record["accuracy"] == {"fp32 eager (baseline)": 0.98, "optikube (onnx)": 0.97}
    assert record["paired"] == report["pairedWithOptikube"]
    assert record["stages"] == {"distillation": "skipped"}  # stages the budget never weighed are left out
    assert record["versusFastestAnchor"] == {
        "1thread-batch32": {"anchor": "ORT quantize_dynamic", "ratio": 1.8}
    }
    assert record["shipped"] == "onnx" and record["seed"] == 11
