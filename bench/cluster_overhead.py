"""The operator's overhead: the same job through the cluster and on this machine, side by side.

Runs `examples/quickstart.yaml` (or the file given) three times in one go, one after the other:

1. local mode: `optikube run FILE` (torchrun processes on this machine);
2. the process node: `python -m optikube_testcluster demo FILE` (what `make cluster-demo` runs: a
   control plane, a process node running the trainer pods for real as local processes, the
   operator acting as the chart's ServiceAccount), then `python -m optikube_testcluster down`;
3. the real node: `python -m optikube_testcluster node-demo FILE` (what `make node-demo` runs: the
   chart's images in real containers on a real kubelet and containerd, the operator as the
   chart's Deployment installed by `helm install`), then `down`.

For each cluster it reports the whole wall time and the part from `kubectl apply` to `Succeeded`
(the cluster's start-up is a one-off cost a user pays once per `make cluster-up`), and checks what
the demo promises: Succeeded, a model at least 3x smaller (`sizeRatio`, optimized / baseline,
<= 1/3), >= 2 trials completed, the optimized model's test accuracy within 2 points of the
baseline's, and the exported model in the claim's host directory. Prints a table and writes
bench/results/cluster-overhead.json.

    .venv/bin/python bench/cluster_overhead.py          (as root: the real node; about 10 minutes)
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


def cluster_run(example: Path, env: dict[str, str], demo: str) -> dict[str, Any]:
    marks: dict[str, float] = {}
    began = time.monotonic()
    seconds, lines, code = timed(
        [sys.executable, "-m", "optikube_testcluster", demo, str(example)], env, marks
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
        pods = subprocess.run(
            [str(_kubectl()), f"--kubeconfig={kubeconfig}", "get", "pods", "-o", "json"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        # where the job's pods ran: containerd:// IDs on the real node, none on the process node
        ids = [
            str(s.get("containerID", "")).split("://")[0]
            for pod in (json.loads(pods) if pods else {}).get("items", [])
            for s in (pod.get("status") or {}).get("containerStatuses") or []
        ]
        facts["container_runtimes"] = sorted(set(ids))
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


def down(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "optikube_testcluster", "down"], cwd=ROOT, env=env, check=False)


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
    parser.add_argument("--keep-cluster", action="store_true", help="leave the real node's cluster up")
    args = parser.parse_args()
    env = dict(os.environ)
    load_before = os.getloadavg()
    example = args.example.resolve()
    with tempfile.TemporaryDirectory(prefix="optikube-local-") as folder:
        local = local_run(example, env, Path(folder) / "out")
    down(env)  # a cluster left by an earlier run would be reused by the demo
    try:
        process = cluster_run(example, env, "demo")
    finally:
        down(env)
    try:
        real = cluster_run(example, env, "node-demo")
    finally:
        if not args.keep_cluster:
            down(env)
    runs = {"process node (make cluster-demo)": process, "real node (make node-demo)": real}
    verdict = {f"{which}: {check}": ok for which, run in runs.items() for check, ok in checks(run).items()}
    verdict["real node: the trainer pods ran in containerd containers"] = real.get("container_runtimes") == [
        "containerd"
    ]
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_before": load_before},
        "example": str(args.example.relative_to(ROOT) if args.example.is_relative_to(ROOT) else args.example),
        "local": local,
        "cluster": process,
        "real_node": real,
        "overhead_ratio_total": _ratio(process["wall_s"], local["wall_s"]),
        "overhead_ratio_apply_to_finished": _ratio(process.get("apply_to_finished_s"), local["wall_s"]),
        "real_node_ratio_total": _ratio(real["wall_s"], local["wall_s"]),
        "real_node_ratio_apply_to_finished": _ratio(real.get("apply_to_finished_s"), local["wall_s"]),
        "checks": verdict,
    }
    console = Console()
    table = Table(title=f"{report['example']}: local, the process node and the real node, side by side")
    table.add_column("run")
    table.add_column("whole command", justify="right")
    table.add_column("apply -> Succeeded", justify="right")
    table.add_column("vs local (apply -> Succeeded)", justify="right")
    table.add_row("local (optikube run)", f"{local['wall_s']:.0f} s", "-", "1.00x")
    for which, run in runs.items():
        applied = run.get("apply_to_finished_s")
        ratio = _ratio(applied, local["wall_s"])
        table.add_row(
            which,
            f"{run['wall_s']:.0f} s",
            f"{applied:.0f} s" if applied else "-",
            f"{ratio:.2f}x" if ratio else "-",
        )
    console.print(table)
    for check, passed in verdict.items():
        console.print(f"{'ok  ' if passed else 'FAIL'} {check}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cluster-overhead.json").write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {RESULTS / 'cluster-overhead.json'}")
    return 0 if all(verdict.values()) and local["exit_code"] == 0 else 1


def _ratio(value: float | None, base: float) -> float | None:
    return round(value / base, 2) if value and base else None


if __name__ == "__main__":
    sys.exit(main())
