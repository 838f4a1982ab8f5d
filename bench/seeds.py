"""Accuracy (and speed) over seeds: is the model optikube ships as accurate as the baseline and
the manual anchors, or was one seed's comparison a few samples' luck either way?

    python bench/seeds.py --workloads digits-mlp digits-cnn text-transformer --seeds 10
    python bench/seeds.py --workloads digits-mlp --max-accuracy-drop 0   # a job that asks for no loss
    python bench/runtimes_tables.py --write docs/benchmarks.md   # the table in the doc

Every seed is a whole replicate of the runtimes suite's workload (bench/trainer.py `runtime_spec`
with that seed): its own data split, initialization, training, pipeline and anchors, built and
timed by bench/peers.py (one thread, 30 runs). Against optikube's model, per other model: the accuracy
difference on every seed's test split, their mean with a 95 % t-interval across seeds (the spread
a user re-running the job sees), and the discordant samples of all seeds pooled into one McNemar
exact test. Pooling is sound because the seeds are independent replicates: under "equally
accurate" every discordant sample is still a fair coin, so the pooled count is one binomial. And
per seed, optikube's speed over that seed's fastest anchor: a stage the budget retries or skips on
one seed changes the shipped model, and so its speed.
Writes bench/results/seeds-<workload>.json (seeds-<workload>-budget<points>.json with
--max-accuracy-drop, and -validation<share> appended with --validation-split).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from console_tables import named_rows  # bench/, beside this script
from optikube_trainer.evaluation.paired import mcnemar_exact_p
from runtimes_tables import stage_outcome

RESULTS = Path(__file__).parent / "results"
FIRST_SEED = 7  # the seed of the runtimes suite's tables, so that seed 7 here is that run again


def seed_record(seed: int, report: dict[str, Any]) -> dict[str, Any]:
    """What one replicate contributes: test accuracy per model, optikube's paired comparison with
    each, what the pipeline's accuracy budget did to each stage (a stage it skips on one seed
    changes the shipped model), and optikube's speed over the fastest anchor of that seed."""
    rows = {row["model"]: row for row in report["rows"]}
    return {
        "seed": seed,
        "shipped": report["pipelineRuntimes"]["chosen"],
        "accuracy": {name: row["metrics"].get("accuracy") for name, row in rows.items()},
        "kinds": {name: row["kind"] for name, row in rows.items()},
        "paired": report["pairedWithOptikube"],
        "stages": {s["name"]: stage_outcome(s) for s in report["stages"] if s.get("attempts")},
        "versusFastestAnchor": {
            setting: {"anchor": entry["bestAnchor"], "ratio": entry["ratio"]}
            for setting, entry in report["optikubeVsBestAnchor"].items()
        },
        "pipelineSeconds": report["pipelineSeconds"],
    }


def t_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the two-sided t-interval of the mean (half-width nan for one value)."""
    from scipy.stats import t

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    spread = statistics.stdev(values) / math.sqrt(len(values))
    return mean, float(t.ppf(0.5 + confidence / 2, len(values) - 1)) * spread


def slowest_versus_anchor(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per timing setting, the seed where optikube's model was least ahead of the fastest anchor."""
    settings = dict.fromkeys(s for r in records for s in r["versusFastestAnchor"])
    return {
        setting: min(
            (
                {"seed": r["seed"], **r["versusFastestAnchor"][setting]}
                for r in records
                if setting in r["versusFastestAnchor"]
            ),
            key=lambda entry: entry["ratio"],
        )
        for setting in settings
    }


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model compared with optikube's: every seed's difference (optikube minus it, points), the
    mean and its 95 % interval, how many seeds optikube was ahead / level / behind, and the pooled
    McNemar test of all seeds' discordant samples."""
    models = list(dict.fromkeys(name for record in records for name in record["paired"]))
    summaries = []
    for model in models:
        tests = [(r["seed"], r["paired"][model]) for r in records if model in r["paired"]]
        differences = [
            100.0 * (p["onlyOptikubeRight"] - p["onlyOtherRight"]) / p["samples"] for _, p in tests
        ]
        mean, half_width = t_interval(differences)
        only_ours = sum(p["onlyOptikubeRight"] for _, p in tests)
        only_other = sum(p["onlyOtherRight"] for _, p in tests)
        summaries.append(
            {
                "model": model,
                "kind": next(r["kinds"][model] for r in records if model in r["kinds"]),
                "seeds": [seed for seed, _ in tests],
                "differencePoints": [round(d, 4) + 0.0 for d in differences],
                "meanDifferencePoints": round(mean, 4) + 0.0,
                "interval95Points": None if math.isnan(half_width) else round(half_width, 4),
                "optikubeAheadLevelBehind": [
                    sum(d > 0 for d in differences),
                    sum(d == 0 for d in differences),
                    sum(d < 0 for d in differences),
                ],
                "pooled": {
                    "samples": sum(p["samples"] for _, p in tests),
                    "onlyOptikubeRight": only_ours,
                    "onlyOtherRight": only_other,
                    "pValue": round(mcnemar_exact_p(only_ours, only_other), 4),
                },
            }
        )
    return summaries


def seeds_table(report: dict[str, Any]) -> Table:
    table = named_rows(
        f"{report['workload']}: optikube's model minus each other model, test accuracy points",
        ("model", "seeds", "mean", "95 % interval", "ahead/level/behind", "pooled", "pooled p"),
    )
    for row in report["summary"]:
        pooled = row["pooled"]
        half = row["interval95Points"]
        table.add_row(
            row["model"],
            str(len(row["seeds"])),
            f"{row['meanDifferencePoints']:+.2f}",
            "-"
            if half is None
            else f"{row['meanDifferencePoints'] - half:+.2f} .. {row['meanDifferencePoints'] + half:+.2f}",
            "/".join(map(str, row["optikubeAheadLevelBehind"])),
            f"{pooled['onlyOptikubeRight']} vs {pooled['onlyOtherRight']}",
            f"{pooled['pValue']:.3f}",
        )
    return table


def run_seeds(
    name: str,
    seeds: list[int],
    console: Console,
    *,
    runs: int,
    max_drop: float | None,
    target: Path,
    validation_split: float | None = None,
) -> dict[str, Any]:
    """The replicates one after the other, with the suite's accuracy budget or `max_drop` (and the
    workload's validation split or `validation_split`); `target` is rewritten after each, so that a
    long run that is stopped keeps the seeds it finished."""
    from peers import run_peers
    from trainer import runtime_spec

    workload = runtime_spec(name)
    if max_drop is not None:
        workload["compression"] = {**workload.get("compression", {}), "maxAccuracyDrop": max_drop}
    if validation_split is not None:
        workload["data"] = {**workload["data"], "validationSplit": validation_split}
    records: list[dict[str, Any]] = []
    started = time.monotonic()
    report: dict[str, Any] = {}
    for seed in seeds:
        torch._dynamo.reset()  # each seed's anchors compile their own models
        spec = {**workload, "seed": seed}
        peers = run_peers(f"{name}-seed{seed}", spec, console, threads=[1], runs=runs)
        records.append(seed_record(seed, peers))
        console.log(f"{name}: seed {seed} done, shipped {records[-1]['shipped']}")
        report = {
            "workload": name,
            "spec": workload,
            "seeds": [r["seed"] for r in records],
            "records": records,
            "summary": summarize(records),
            "slowestVersusFastestAnchor": slowest_versus_anchor(records),
            "timedRuns": runs,
            "wallSeconds": round(time.monotonic() - started, 1),
        }
        target.write_text(json.dumps(report, indent=2))
    return report


def main(argv: list[str] | None = None) -> None:
    from trainer import LARGE_WORKLOADS, WORKLOADS, write_digits32

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workloads", nargs="+", required=True, choices=[*WORKLOADS, *LARGE_WORKLOADS])
    parser.add_argument("--seeds", type=int, default=10, help=f"how many seeds, from {FIRST_SEED} on")
    parser.add_argument(
        "--runs", type=int, default=30, help="timed runs per model and batch size, one thread"
    )
    parser.add_argument(
        "--max-accuracy-drop",
        type=float,
        default=None,
        help="the pipeline's accuracy budget instead of the suite's 1 point (0: ask for no loss)",
    )
    parser.add_argument(
        "--validation-split",
        type=float,
        default=None,
        help="the share of the data the budget judges on, instead of the workload's",
    )
    args = parser.parse_args(argv)
    console = Console(width=200)
    if "resnet18-digits32" in args.workloads:
        write_digits32()
    seeds = list(range(FIRST_SEED, FIRST_SEED + args.seeds))
    for name in args.workloads:
        suffix = "" if args.max_accuracy_drop is None else f"-budget{args.max_accuracy_drop:g}"
        if args.validation_split is not None:
            suffix += f"-validation{args.validation_split:g}"
        target = RESULTS / f"seeds-{name}{suffix}.json"
        report = run_seeds(
            name,
            seeds,
            console,
            runs=args.runs,
            max_drop=args.max_accuracy_drop,
            target=target,
            validation_split=args.validation_split,
        )
        console.print(seeds_table(report))
        for setting, slowest in report["slowestVersusFastestAnchor"].items():
            console.print(
                f"{setting}: optikube at least {slowest['ratio']:.2f}x the fastest anchor"
                f" (seed {slowest['seed']}, {slowest['anchor']})"
            )
        console.print(f"wrote {target} ({report['wallSeconds']} s)")


if __name__ == "__main__":
    main()
