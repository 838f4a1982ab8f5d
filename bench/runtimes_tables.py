"""Markdown tables of the deployment-speed suite, made from bench/results/runtimes-*.json (written by
`python bench/trainer.py --suite runtimes`) and bench/results/seeds-*.json (`python bench/seeds.py`),
so that docs/benchmarks.md shows what was measured:

    python bench/runtimes_tables.py                          # print the tables
    python bench/runtimes_tables.py --write docs/benchmarks.md

`--write` replaces what lies between the `<!-- runtimes-tables:start -->` and
`<!-- runtimes-tables:end -->` lines of the file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
START, END = "<!-- runtimes-tables:start -->", "<!-- runtimes-tables:end -->"
# the order of the doc: the large workloads, then the small ones
ORDER = [
    "resnet18-digits32",
    "text-transformer-6x512",
    "wide-mlp-tabular",
    "digits-mlp",
    "digits-cnn",
    "text-transformer",
]


def load(results: Path = RESULTS, kind: str = "runtimes") -> list[dict[str, Any]]:
    reports = [json.loads(path.read_text()) for path in sorted(results.glob(f"{kind}-*.json"))]
    rank = {name: index for index, name in enumerate(ORDER)}
    # a workload's seeds at its suite budget first, then at a stricter one, then on a larger
    # validation split
    return sorted(
        reports,
        key=lambda r: (
            rank.get(r["workload"], len(ORDER)),
            r["workload"],
            -r["spec"].get("compression", {}).get("maxAccuracyDrop", 0),
            _validation_split(r),
        ),
    )


def _validation_split(report: dict[str, Any]) -> float:
    return float(report["spec"]["data"].get("validationSplit", 0.0))


def _accuracy(row: dict[str, Any]) -> float | None:
    value = row.get("metrics", {}).get("accuracy")
    return None if value is None else float(value)


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _ms(latency: dict[str, Any] | None, batch: int) -> str:
    if not latency:
        return "-"
    value = latency.get(f"batch{batch}P50")
    return "-" if value is None else (f"{value:.3f}" if value < 10 else f"{value:.1f}")


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f}" if size >= 10_000 else f"{size / 1e6:.4f}"


def _rows(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [row for row in report["rows"] if row["kind"] == kind]


def _paired(paired: dict[str, Any] | None) -> str:
    """McNemar on the test split: samples only optikube's model gets right vs only the other's."""
    if not paired:
        return ""
    return f"; {paired['onlyOptikubeRight']} vs {paired['onlyOtherRight']} samples, p {paired['pValue']:.2f}"


def stage_outcome(stage: dict[str, Any]) -> str:
    """The budget's verdict, "skipped (slower)" where the latency check skipped the stage."""
    slower = (stage.get("latencyCheck") or {}).get("slower")
    return (
        f"{stage['outcome']} (slower)" if slower and stage["outcome"] == "skipped" else str(stage["outcome"])
    )


def _shipped(report: dict[str, Any]) -> str:
    """The shipped runtime, and its form where the document names it (int8 or the float model)."""
    runtime = report["pipelineRuntimes"]
    shipped = next((c for c in runtime.get("candidates", []) if c.get("shipped")), None)
    return runtime["chosen"] if shipped is None else f"{runtime['chosen']}, {shipped['quantization']}"


def _versus_ort_fp32(report: dict[str, Any], threads: str) -> dict[int, float]:
    """optikube's model against the baseline exported to ONNX Runtime as it is, per batch size:
    the run's headline numbers, or from its rows in documents written before them."""
    if "speedupVsOrtFp32Batch1" in report:
        return {
            b: report[f"speedupVsOrtFp32Batch{b}"] for b in (1, 32) if report[f"speedupVsOrtFp32Batch{b}"]
        }
    ours = _rows(report, "optikube")[0]["latencyMs"].get(threads) or {}
    ort = next((r for r in report["rows"] if r["model"].startswith("ORT fp32")), None)
    theirs = (ort or {}).get("latencyMs", {}).get(threads) or {}
    return {
        b: round(theirs[f"batch{b}P50"] / ours[f"batch{b}P50"], 2)
        for b in (1, 32)
        if theirs.get(f"batch{b}P50") and ours.get(f"batch{b}P50")
    }


def summary(reports: list[dict[str, Any]]) -> str:
    """One line per workload: optikube's shipped model against the fp32 baseline in PyTorch
    (eager) and exported to ONNX Runtime as it is ("export only", ORT fp32), and against the
    fastest manual anchor of the same run (one thread). Accuracy differences come with McNemar's
    exact test on the test split where the run recorded per-sample results (`pairedTest`)."""
    lines = [
        "| workload | optikube ships | vs PyTorch baseline b1 | vs PyTorch baseline b32 "
        "| vs baseline in ORT b1 | vs baseline in ORT b32 | smaller | accuracy (test) "
        "| vs best anchor b1 | vs best anchor b32 | budget (validation drop / max) | stages |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- | --- |",
    ]
    for report in reports:
        base = _rows(report, "baseline")[0]
        ours = _rows(report, "optikube")[0]
        one = str(report["threads"][0])
        speed = ours["speedup"].get(one, {})
        base_acc, our_acc = _accuracy(base), _accuracy(ours)
        delta = (
            f"{our_acc:.4f} vs {base_acc:.4f} ({100 * (our_acc - base_acc):+.1f} pt"
            f"{_paired(report.get('pairedTestVsBaseline'))})"
            if base_acc is not None and our_acc is not None
            else "-"
        )
        versus = report["optikubeVsBestAnchor"]

        def anchor(batch: str, versus: dict[str, Any] = versus, one: str = one) -> str:
            entry = versus.get(f"{one}thread-{batch}")
            if not entry:
                return "-"
            accuracy = entry.get("anchorAccuracy")
            shown = f", acc {accuracy:.4f}{_paired(entry.get('pairedTest'))}" if accuracy is not None else ""
            return f"{entry['ratio']:.2f}x ({entry['bestAnchor']}{shown})"

        budget = report["budget"]
        drop = budget.get("drop")
        allowed = budget.get(
            "maxAccuracyDrop", budget.get("maxDrop")
        )  # maxDrop: documents written before the rename
        stages = ", ".join(
            f"{s['name']}: {stage_outcome(s)}"
            + (f" ({len(s['attempts'])} tries)" if len(s["attempts"]) > 1 else "")
            for s in report["stages"]
            if s.get("attempts")
        )
        ort = _versus_ort_fp32(report, one)
        lines.append(
            f"| {report['workload']} | {_shipped(report)} "
            f"| {_x(speed.get('batch1'))} | {_x(speed.get('batch32'))} "
            f"| {_x(ort.get(1))} | {_x(ort.get(32))} | {_x(ours.get('sizeRatio'))} "
            f"| {delta} | {anchor('batch1')} | {anchor('batch32')} "
            f"| {'-' if drop is None else f'{drop:.2f}'} / {allowed} pt | {stages or '-'} |"
        )
    return "\n".join(lines)


def workload_table(report: dict[str, Any]) -> str:
    threads = [str(t) for t in report["threads"]]
    header = ["model", "accuracy (test)", "size (MB)", "smaller"]
    for t in threads:
        header += [f"b1 ms ({t}t)", f"b32 ms ({t}t)", f"b1 speed-up ({t}t)", f"b32 speed-up ({t}t)"]
    lines = ["| " + " | ".join(header) + " |", "| --- | " + " | ".join("---:" for _ in header[1:]) + " |"]
    for row in report["rows"]:
        name = f"**{row['model']}**" if row["kind"] == "optikube" else row["model"]
        if row.get("error") and not any(row["latencyMs"].get(t) for t in threads):
            lines.append(f"| {name} | failed: {row['error'][:90]} |" + " |" * (len(header) - 2))
            continue
        accuracy = _accuracy(row)
        cells = [
            name,
            "-" if accuracy is None else f"{accuracy:.4f}",
            _mb(row["sizeBytes"]),
            _x(row.get("sizeRatio")),
        ]
        for t in threads:
            latency, speedup = row["latencyMs"].get(t), row["speedup"].get(t, {})
            cells += [
                _ms(latency, 1),
                _ms(latency, 32),
                _x(speedup.get("batch1")),
                _x(speedup.get("batch32")),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    pipeline = report["pipelineRuntimes"]
    tried = ", ".join(
        f"{c['runtime']} {_x(c.get('speedupVsBaselineHere', {}).get('batch1'))}"
        f"/{_x(c.get('speedupVsBaselineHere', {}).get('batch32'))}"
        if "error" not in c
        else f"{c['runtime']} failed ({c['error'][:60]})"
        for c in pipeline["candidates"]
    )
    note = (
        f"Pipeline: {report['pipelineSeconds']:.0f} s, shipped `{pipeline['chosen']}` "
        f"({pipeline['reason']}); its own measurement, b1/b32 speed-up over the baseline in the same "
        f"runtime: {tried}. Whole run {report.get('wallSeconds', 0):.0f} s, "
        f"torch {report.get('torch', '?')}, {report['cpuCount']} cores."
    )
    return "\n".join([f"**{report['workload']}**", "", *lines, "", note])


def seeds_summary(reports: list[dict[str, Any]]) -> str:
    """Per workload and per model compared with optikube's (the baseline and the anchors): the
    accuracy difference over seeds, and what the budget did and how fast optikube stayed."""
    lines = [
        "| workload | budget | validation split | against | seeds "
        "| optikube minus it, mean (95 % interval) | ahead / level / behind "
        "| pooled discordant samples, p |",
        "| --- | ---: | ---: | --- | ---: | --- | --- | --- |",
    ]
    notes = []
    for report in reports:
        budget = report["spec"]["compression"]["maxAccuracyDrop"]
        validation = f"{100 * _validation_split(report):g} %"
        for row in report["summary"]:
            if row["kind"] not in ("baseline", "anchor"):
                continue
            half, pooled = row["interval95Points"], row["pooled"]
            mean = row["meanDifferencePoints"]
            interval = "" if half is None else f" ({mean - half:+.2f} to {mean + half:+.2f})"
            lines.append(
                f"| {report['workload']} | {budget:g} pt | {validation} | {row['model']} "
                f"| {len(row['seeds'])} | {mean:+.2f} pt{interval} "
                f"| {' / '.join(map(str, row['optikubeAheadLevelBehind']))} "
                f"| {pooled['onlyOptikubeRight']} vs {pooled['onlyOtherRight']} of {pooled['samples']}, "
                f"p {pooled['pValue']:.3f} |"
            )
        outcomes: dict[str, dict[str, int]] = {}
        for record in report["records"]:
            for stage, outcome in record["stages"].items():
                outcomes.setdefault(stage, {}).setdefault(outcome, 0)
                outcomes[stage][outcome] += 1
        verdicts = "; ".join(
            f"{stage}: " + ", ".join(f"{outcome} {count}" for outcome, count in counts.items())
            for stage, counts in outcomes.items()
        )
        slowest = ", ".join(
            f"{setting.replace('thread-', ' thread, ')} {entry['ratio']:.2f}x (seed {entry['seed']})"
            for setting, entry in report["slowestVersusFastestAnchor"].items()
        )
        notes.append(
            f"- {report['workload']}, budget {budget:g} pt, validation split {validation},"
            f" seeds {report['seeds'][0]} "
            f"to {report['seeds'][-1]}: the budget's "
            f"verdicts {verdicts}. optikube's speed over the fastest anchor of the same seed, at its "
            f"lowest: {slowest}."
        )
    return "\n".join([*lines, "", *notes])


def render(reports: list[dict[str, Any]], seeds: list[dict[str, Any]] | None = None) -> str:
    parts = [summary(reports)]
    if seeds:
        parts.append(seeds_summary(seeds))
    parts += [workload_table(r) for r in reports]
    return "\n\n".join(parts)


def write(target: Path, text: str) -> None:
    content = target.read_text()
    if START not in content or END not in content:
        raise SystemExit(f"{target}: no {START} ... {END} block to replace")
    head, rest = content.split(START, 1)
    _, tail = rest.split(END, 1)
    target.write_text(f"{head}{START}\n\n{text}\n\n{END}{tail}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--write", type=Path, default=None, help="markdown file whose table block to replace")
    args = parser.parse_args(argv)
    text = render(load(args.results), load(args.results, "seeds"))
    if args.write is None:
        print(text)
    else:
        write(args.write, text)
        print(f"wrote the tables into {args.write}")


if __name__ == "__main__":
    main()
