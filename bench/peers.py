"""Deployment speed, side by side in one run: for each workload the fp32 eager baseline, the model
optikube's pipeline ships (its `auto` runtime, held to the accuracy budget), and the manual
anchors a user would try on the same trained baseline instead:

- torchao + torch.compile: int8 dynamic activations and weights (`Int8DynamicActivationInt8WeightConfig`)
  for Linear layers; for convolutional models torchao's PT2E static int8 (`X86InductorQuantizer`),
  the documented CPU path for convolutions; both compiled with inductor (freezing on);
- ONNX Runtime: `quantize_dynamic` and `quantize_static` (QDQ, calibrated on the same batches) of
  the fp32 `torch.onnx` export.

Same model, same data, same machine; every model's latency is timed in the same interleaved rounds
(`compare_latency`), with one thread and with all cores, and reported as ratios to the fp32 eager
baseline of that run.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn

from console_tables import add_failed_row, named_rows  # bench/, beside this script
from optikube_operator.api.runconfig import parse_run_config
from optikube_trainer.data import DataBundle, load_job_data
from optikube_trainer.dist import local_context
from optikube_trainer.evaluation.latency import compare_latency
from optikube_trainer.evaluation.metrics import classification_metrics
from optikube_trainer.evaluation.paired import compare_paired, correct_predictions
from optikube_trainer.export import load_exported
from optikube_trainer.pipeline import run_pipeline, sample_inputs
from optikube_trainer.pipeline.stages import calibration_batches
from optikube_trainer.progress import ProgressSender
from optikube_trainer.quantization.static import quantize_static_int8
from optikube_trainer.quantization.torchao_int8 import quantize_dynamic_int8_
from optikube_trainer.recipe import read_recipe
from optikube_trainer.runtimes.compiled import compile_for_cpu
from optikube_trainer.runtimes.onnx_model import OnnxModule, export_onnx
from optikube_trainer.runtimes.onnx_quantize import quantize_onnx
from optikube_trainer.runtimes.selection import FixedBatches

# the baseline exported to ONNX Runtime as it is: what a user who only exports gets
REFERENCE_ORT_FP32 = "ORT fp32 (no quantization)"
Maker = Callable[
    [int], nn.Module
]  # threads -> a runnable model (ORT sessions and compiled graphs per setting)


def _size(path: Path) -> int:
    return (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else path.stat().st_size
    )


def _torch_bytes(model: nn.Module) -> int:
    buffer = io.BytesIO()
    try:
        torch.save(model, buffer)
    except Exception:
        torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


class Entry:
    def __init__(self, name: str, make: Maker, size: int, *, kind: str) -> None:
        self.name, self.make, self.size, self.kind = name, make, size, kind
        self.metrics: dict[str, float] = {}
        self.latency: dict[int, dict[str, float]] = {}
        self.error: str | None = None
        self.correct: Tensor | None = None  # per test sample, for the paired comparison


def _fixed(model: nn.Module, _threads: int) -> nn.Module:
    return model


def _compiled(model: nn.Module, _threads: int) -> nn.Module:
    return compile_for_cpu(model)


def _onnx(path: Path, threads: int) -> nn.Module:
    return OnnxModule(path, threads=threads)


def _failed(error: Exception) -> Maker:
    def make(_threads: int) -> nn.Module:
        raise error

    return make


def _anchors(baseline: nn.Module, bundle: DataBundle, example: Tensor, work: Path, batch: int) -> list[Entry]:
    """The manual routes on the trained baseline; one that cannot be built is listed with its error."""
    entries: list[Entry] = []
    has_conv = any(isinstance(m, nn.Conv2d) for m in baseline.modules())
    calibrate = calibration_batches(bundle, batch, 8)

    def add(name: str, build: Callable[[], tuple[Maker, int]], kind: str = "anchor") -> None:
        try:
            make, size = build()
            entries.append(Entry(name, make, size, kind=kind))
        except Exception as error:
            entry = Entry(name, _failed(error), 0, kind=kind)
            entry.error = f"{type(error).__name__}: {str(error)[:200]}"
            entries.append(entry)

    def torchao_dynamic() -> tuple[Maker, int]:
        dynamic = copy.deepcopy(baseline)
        quantize_dynamic_int8_(dynamic)
        return functools.partial(_compiled, dynamic), _torch_bytes(dynamic)

    def pt2e_static() -> tuple[Maker, int]:
        static, _ = quantize_static_int8(copy.deepcopy(baseline), example[:4], calibrate())
        return functools.partial(_compiled, static), _weights_size(static, example)

    def ort(file: str, method: str | None) -> Callable[[], tuple[Maker, int]]:
        def build() -> tuple[Maker, int]:
            if not (work / "fp32.onnx").exists():
                export_onnx(baseline, example, work / "fp32.onnx")
            path = work / file
            if method is not None:
                quantize_onnx(work / "fp32.onnx", path, method, calibrate() if method == "static" else None)
            return functools.partial(_onnx, path), _size(path)

        return build

    add(REFERENCE_ORT_FP32, ort("fp32.onnx", None), kind="reference")
    if any(type(m) is nn.Linear for m in baseline.modules()):
        add("torchao int8 dynamic + compile", torchao_dynamic)
    if has_conv:
        add("torchao PT2E static int8 + compile", pt2e_static)
    add("ORT quantize_dynamic", ort("ort-dynamic.onnx", "dynamic"))
    add("ORT quantize_static", ort("ort-static.onnx", "static"))
    return entries


def _weights_size(model: nn.Module, example: Tensor) -> int:
    from optikube_trainer.export import artifact_size_bytes

    return artifact_size_bytes(model, example)


def run_peers(
    name: str, spec: dict[str, Any], console: Console, *, threads: list[int], runs: int
) -> dict[str, Any]:
    """The pipeline on `spec` (one thread), then every entry timed together at each thread count."""
    out = Path(tempfile.mkdtemp(prefix=f"optikube-bench-{name}-"))
    load_at_start = os.getloadavg()  # the machine is shared: the report says how busy it was
    torch.set_num_threads(threads[0])
    started = time.monotonic()
    config = parse_run_config(
        {"stage": "pipeline", "job": {"name": name}, "outputDir": str(out), "spec": spec}
    )
    ctx = local_context(seed=spec.get("seed", 7), output_dir=out)
    events = io.StringIO()
    ctx.progress = ProgressSender(rank=0, trial=None, stream=events, output_dir=out)
    results = run_pipeline(config, ctx)
    assert results is not None
    pipeline_seconds = round(time.monotonic() - started, 1)
    console.log(f"{name}: pipeline done in {pipeline_seconds} s, shipped {results['runtime']['chosen']}")
    bundle = load_job_data(read_recipe(config.spec, 1), ctx)
    example = sample_inputs(bundle, 32)
    baseline = load_exported(out / "pipeline" / "model-1", compiled=False)
    shipped_dir = out / "model"
    chosen = results["runtime"]["chosen"]

    def shipped(t: int) -> nn.Module:
        if chosen == "onnx":
            manifest = json.loads((shipped_dir / "manifest.json").read_text())
            return OnnxModule(
                shipped_dir / "model.onnx", config=manifest.get("sessionConfig") or {}, threads=t
            )
        return load_exported(shipped_dir)  # compiled artifacts compile at their first call

    entries = [
        Entry(
            "fp32 eager (baseline)",
            functools.partial(_fixed, baseline),
            _torch_bytes(baseline),
            kind="baseline",
        ),
        Entry(
            f"optikube ({chosen})",
            shipped,
            _size(shipped_dir) - _size(shipped_dir / "manifest.json"),
            kind="optikube",
        ),
        *_anchors(baseline, bundle, example, out / "anchors", spec["training"]["batchSize"]),
    ]
    test = bundle.loader("test", 256, shuffle=False, distributed=False)
    for entry in entries:
        try:
            model = entry.make(threads[0])
            entry.metrics = {
                k: round(v, 6)
                for k, v in classification_metrics(FixedBatches(model), test, bundle.num_classes).items()
            }
            entry.correct = correct_predictions(FixedBatches(model), test)
        except Exception as error:
            entry.error = f"{type(error).__name__}: {str(error)[:200]}"
    for count in threads:
        torch.set_num_threads(count)
        torch._dynamo.reset()  # inductor bakes the thread count into compiled kernels
        models = {}
        for entry in entries:
            if entry.error is None:
                try:
                    models[entry.name] = entry.make(count)
                except Exception as error:
                    entry.error = f"{type(error).__name__}: {str(error)[:200]}"
        timed = compare_latency(models, example, runs=runs, warmup=10)
        for entry in entries:
            if entry.name in timed:
                entry.latency[count] = timed[entry.name]
        console.log(f"{name}: timed at {count} thread(s)")
    torch.set_num_threads(threads[0])
    report = _report(name, spec, results, entries, threads, pipeline_seconds)
    report["loadAverage"] = {
        "start": [round(v, 2) for v in load_at_start],
        "end": [round(v, 2) for v in os.getloadavg()],
    }
    shutil.rmtree(out, ignore_errors=True)
    return report


def _report(
    name: str,
    spec: dict[str, Any],
    results: dict[str, Any],
    entries: list[Entry],
    threads: list[int],
    seconds: float,
) -> dict[str, Any]:
    base = next(e for e in entries if e.kind == "baseline")
    rows = []
    for entry in entries:
        row: dict[str, Any] = {
            "model": entry.name,
            "kind": entry.kind,
            "sizeBytes": entry.size,
            "metrics": entry.metrics,
        }
        if entry.error:
            row["error"] = entry.error
        row["sizeRatio"] = round(base.size / entry.size, 2) if entry.size else None
        row["latencyMs"] = {str(t): entry.latency.get(t) for t in threads}
        row["speedup"] = {
            str(t): {
                f"batch{b}": round(base.latency[t][f"batch{b}P50"] / entry.latency[t][f"batch{b}P50"], 2)
                for b in (1, 32)
            }
            for t in threads
            if t in entry.latency and t in base.latency
        }
        rows.append(row)
    anchors = [r for r in rows if r["kind"] == "anchor" and "error" not in r]
    ours = next(r for r in rows if r["kind"] == "optikube")
    paired = _paired_with_optikube(entries)
    versus: dict[str, Any] = {}
    for t in map(str, threads):
        for b in ("batch1", "batch32"):
            best = max(
                (a for a in anchors if t in a["speedup"]), key=lambda a: a["speedup"][t][b], default=None
            )
            if best is not None and t in ours["speedup"]:
                versus[f"{t}thread-{b}"] = {
                    "bestAnchor": best["model"],
                    "ratio": round(ours["speedup"][t][b] / best["speedup"][t][b], 2),
                    "anchorAccuracy": best["metrics"].get("accuracy"),
                    "pairedTest": paired.get(best["model"]),
                }
    return {
        "workload": name,
        **headline(rows, versus, str(threads[0])),
        "spec": spec,
        "pipelineSeconds": seconds,
        "threads": threads,
        "cpuCount": os.cpu_count(),
        "rows": rows,
        "optikubeVsBestAnchor": versus,
        "budget": results["budget"],
        "stages": [_stage(s) for s in results["stages"]],
        "pipelineRuntimes": results["runtime"],
        "baselineTest": results["baseline"]["metrics"],
        "pairedTestVsBaseline": paired.get(base.name),
        "pairedWithOptikube": paired,
    }


# what a stage's `changes` say about where its speed comes from (pruning's channels and allocation)
STAGE_DETAILS = (
    "layerChannels",
    "allocation",
    "layerTargetSparsity",
    "sensitivity",
    "macsBefore",
    "macsAfter",
)


def _stage(stage: dict[str, Any]) -> dict[str, Any]:
    """A pipeline stage as the benchmark keeps it: the budget's verdict and attempts, the latency
    check's timings, and the changes that explain the speed."""
    budget = stage.get("budget", {})
    changes = stage.get("changes", {})
    entry: dict[str, Any] = {
        "name": stage["name"],
        "outcome": budget.get("outcome", "n/a"),
        "attempts": budget.get("attempts"),
    }
    if "reason" in budget:
        entry["reason"] = budget["reason"]
    if "latencyCheck" in budget:
        entry["latencyCheck"] = budget["latencyCheck"]
    details = {key: changes[key] for key in STAGE_DETAILS if key in changes}
    if details:
        entry["changes"] = details
    return entry


def headline(rows: list[dict[str, Any]], versus: dict[str, Any], threads: str) -> dict[str, Any]:
    """The numbers a workload is judged by, at `threads` (one): optikube's shipped model against
    the fastest manual anchor of the run (its speed-up over the eager baseline divided by the
    anchor's), against the baseline exported to ONNX Runtime as it is (ORT fp32, "export only"),
    against the eager baseline, and the test accuracy it lost against the baseline, in points."""
    ours = next(r for r in rows if r["kind"] == "optikube")
    base = next(r for r in rows if r["kind"] == "baseline")
    ort = next((r for r in rows if r["model"] == REFERENCE_ORT_FP32 and threads in r["latencyMs"]), None)
    numbers: dict[str, Any] = {}
    for batch in (1, 32):
        entry = versus.get(f"{threads}thread-batch{batch}")
        numbers[f"speedupVsBestAnchorBatch{batch}"] = entry["ratio"] if entry else None
    for batch in (1, 32):
        mine = (ours["latencyMs"].get(threads) or {}).get(f"batch{batch}P50")
        theirs = ((ort or {}).get("latencyMs", {}).get(threads) or {}).get(f"batch{batch}P50")
        numbers[f"speedupVsOrtFp32Batch{batch}"] = round(theirs / mine, 2) if mine and theirs else None
    for batch in (1, 32):
        numbers[f"speedupVsEagerBatch{batch}"] = ours["speedup"].get(threads, {}).get(f"batch{batch}")
    base_accuracy, our_accuracy = base["metrics"].get("accuracy"), ours["metrics"].get("accuracy")
    numbers["testAccuracyDropPoints"] = (
        round(100.0 * (base_accuracy - our_accuracy), 2) + 0.0
        if base_accuracy is not None and our_accuracy is not None
        else None
    )
    return numbers


def _paired_with_optikube(entries: list[Entry]) -> dict[str, dict[str, Any]]:
    """optikube's shipped model against every other model, sample by sample on the test split
    (McNemar's exact test): whether an accuracy difference is more than a few samples' luck."""
    ours = next(e for e in entries if e.kind == "optikube")
    if ours.correct is None:
        return {}
    return {
        entry.name: compare_paired(ours.correct, entry.correct).to_contract("optikube", "other")
        for entry in entries
        if entry is not ours and entry.correct is not None
    }


def peers_table(report: dict[str, Any]) -> Table:
    threads = report["threads"]
    settings = ", ".join(f"{t} thread(s)" for t in threads)
    columns = ["model", "accuracy", "size (B)", "smaller"]
    for t in threads:
        columns += [f"b1 ms ({t}t)", f"b32 ms ({t}t)", f"b1 x ({t}t)", f"b32 x ({t}t)"]
    table = named_rows(f"{report['workload']}: speed-up vs fp32 eager, same run ({settings})", columns)
    for row in report["rows"]:
        if "error" in row and not row["latencyMs"].get(str(threads[0])):
            add_failed_row(table, row["model"], row["error"][:50])
            continue
        cells = [
            row["model"],
            f"{row['metrics'].get('accuracy', float('nan')):.4f}",
            str(row["sizeBytes"]),
            f"{row['sizeRatio']}x",
        ]
        for t in map(str, threads):
            latency, speedup = row["latencyMs"].get(t) or {}, row["speedup"].get(t) or {}
            cells += [
                f"{latency.get('batch1P50', float('nan')):.3f}",
                f"{latency.get('batch32P50', float('nan')):.3f}",
                f"{speedup.get('batch1', float('nan')):.2f}",
                f"{speedup.get('batch32', float('nan')):.2f}",
            ]
        table.add_row(*cells)
    return table
