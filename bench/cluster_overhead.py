"""The operator's overhead: the same job through the cluster and on this machine, side by side.

Runs `examples/quickstart.yaml` (or the file given) twice in one go, one after the other:

1. local mode: `optikube run FILE` (torchrun processes on this machine);
2. the cluster: `python -m optikube_testcluster demo FILE` (what `make cluster-demo` runs: a
   control plane, a process node running the trainer pods for real, the operator acting as the
   chart's ServiceAccount), then `python -m optikube_testcluster down`.

For the cluster it reports the whole wall time and the part from `kubectl apply` to `Succeeded`
(the cluster's start-up is a one-off cost a user pays once per `make cluster-up`), and checks what
the demo promises: Succeeded, a model at least 3x smaller (`sizeRatio`, optimized / baseline,
<= 1/3), >= 2 trials completed, the optimized model's test accuracy within 2 points of the
baseline's, and the exported model in the claim's host directory. Prints a table and writes
bench/results/cluster-overhead.json.

    .venv/bin/python bench/cluster_overhead.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from optikube_operator.core import TrialState
from optikube_operator.kube.status import bounded_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
APPLIED = re.compile(r"^# applied ")
MODEL_LINE = re.compile(r"^# model:\s+(\S+)")
RESULTS_LINE = re.compile(r"^# results:\s+(\S+)")


def timed(argv: list[str], env: dict[str, str], marks: dict[str, float]) -> tuple[float, list[str], int]:
    """Run ``argv``; its wall time, its output lines, its exit code; ``marks`` gets the monotonic
    time at which a line matching `# applied` was printed."""
    began = time.monotonic()
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line.rstrip())
        if APPLIED.match(line) and "applied" not in marks:
            marks["applied"] = time.monotonic()
    code = process.wait()
    return time.monotonic() - began, lines, code


def accuracy_points(results: dict[str, Any]) -> tuple[float | None, float | None]:
    sides = [results.get(side) or {} for side in ("baseline", "optimized")]
    values = [(side.get("metrics") or {}).get("accuracy") for side in sides]
    return values[0], values[1]


def local_run(example: Path, env: dict[str, str], out: Path) -> dict[str, Any]:
    argv = [str(ROOT / ".venv" / "bin" / "optikube"), "run", str(example), "--output", str(out)]
    seconds, lines, code = timed(argv, env, {})
    results = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
    baseline, optimized = accuracy_points(results)
    # the ratios as the job's status states them, so that both sides are computed alike
    stated = bounded_results(results) or {}
    return {
        "wall_s": round(seconds, 1),
        "exit_code": code,
        # finished in any way, as the status's trialCounts.completed counts them
        "trials_completed": sum(
            1 for t in results.get("trials") or [] if not TrialState(t.get("state", "Pending")).active
        ),
        "size_ratio": stated.get("sizeRatio"),
        "speedup": stated.get("speedup"),
        "baseline_accuracy": baseline,
        "optimized_accuracy": optimized,
        "tail": lines[-3:],
    }


def cluster_run(example: Path, env: dict[str, str]) -> dict[str, Any]:
    marks: dict[str, float] = {}
    began = time.monotonic()
    seconds, lines, code = timed(
        [sys.executable, "-m", "optikube_testcluster", "demo", str(example)], env, marks
    )
    ended = began + seconds
    facts: dict[str, Any] = {
        "wall_s": round(seconds, 1),
        "apply_to_finished_s": round(ended - marks["applied"], 1) if "applied" in marks else None,
        "exit_code": code,
        "tail": lines[-6:],
    }
    kubeconfig = next(
        (line.split("=", 1)[1] for line in lines if line.startswith("export KUBECONFIG=")), None
    )
    if kubeconfig is not None:
        name = "quickstart"
        raw = subprocess.run(
            [str(_kubectl()), f"--kubeconfig={kubeconfig}", "get", "optjob", name, "-o", "json"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        status = (json.loads(raw) if raw else {}).get("status") or {}
        results = status.get("results") or {}
        baseline, optimized = accuracy_points(results)
        facts |= {
            "phase": status.get("phase"),
            "trials_completed": (status.get("trialCounts") or {}).get("completed"),
            "size_ratio": results.get("sizeRatio"),
            "speedup": results.get("speedup"),
            "baseline_accuracy": baseline,
            "optimized_accuracy": optimized,
        }
    model = next((m.group(1) for line in lines if (m := MODEL_LINE.match(line))), None)
    facts["model_on_host"] = model is not None and Path(model).exists() and any(Path(model).iterdir())
    return facts


def _kubectl() -> Path:
    from optikube_testcluster.assets import find_assets

    return find_assets() / "kubectl"


def checks(cluster: dict[str, Any]) -> dict[str, bool]:
    baseline, optimized = cluster.get("baseline_accuracy"), cluster.get("optimized_accuracy")
    return {
        "Succeeded": cluster.get("phase") == "Succeeded",
        # sizeRatio is optimized / baseline (the printer column): 3x smaller is <= 1/3
        "at least 3x smaller (sizeRatio <= 1/3)": 0 < (cluster.get("size_ratio") or 1) <= 1 / 3,
        ">= 2 trials completed": (cluster.get("trials_completed") or 0) >= 2,
        "accuracy within 2 points": baseline is not None
        and optimized is not None
        and abs(baseline - optimized) * 100 <= 2.0,
        "model on the claim's host directory": bool(cluster.get("model_on_host")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("example", nargs="?", type=Path, default=ROOT / "examples" / "quickstart.yaml")
    parser.add_argument("--keep-cluster", action="store_true", help="leave the cluster up afterwards")
    args = parser.parse_args()
    env = dict(os.environ)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="optikube-local-") as folder:
        local = local_run(args.example.resolve(), env, Path(folder) / "out")
    try:
        cluster = cluster_run(args.example.resolve(), env)
    finally:
        if not args.keep_cluster:
            subprocess.run(
                [sys.executable, "-m", "optikube_testcluster", "down"], cwd=ROOT, env=env, check=False
            )
    verdict = checks(cluster)
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_before": load_before},
        "example": str(args.example.relative_to(ROOT) if args.example.is_relative_to(ROOT) else args.example),
        "local": local,
        "cluster": cluster,
        "overhead_ratio_total": round(cluster["wall_s"] / local["wall_s"], 2),
        "overhead_ratio_apply_to_finished": round(cluster["apply_to_finished_s"] / local["wall_s"], 2)
        if cluster.get("apply_to_finished_s")
        else None,
        "checks": verdict,
    }
    console = Console()
    table = Table(title=f"{report['example']}: the cluster vs this machine")
    table.add_column("run")
    table.add_column("wall time", justify="right")
    table.add_column("vs local", justify="right")
    table.add_row("local (optikube run)", f"{local['wall_s']:.0f} s", "1.00x")
    table.add_row(
        "cluster, whole demo", f"{cluster['wall_s']:.0f} s", f"{report['overhead_ratio_total']:.2f}x"
    )
    if cluster.get("apply_to_finished_s"):
        table.add_row(
            "cluster, apply -> Succeeded",
            f"{cluster['apply_to_finished_s']:.0f} s",
            f"{report['overhead_ratio_apply_to_finished']:.2f}x",
        )
    console.print(table)
    for check, passed in verdict.items():
        console.print(f"{'ok  ' if passed else 'FAIL'} {check}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cluster-overhead.json").write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {RESULTS / 'cluster-overhead.json'}")
    return 0 if all(verdict.values()) and local["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
