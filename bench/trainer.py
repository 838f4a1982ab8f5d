"""Baseline vs each compression/quantization technique vs the full pipeline, measured; and the
deployment-speed suite (bench/peers.py): the pipeline's shipped model vs the manual anchors.

    python bench/trainer.py                    # techniques: digits MLP and CNN, small text transformer
    python bench/trainer.py --workloads digits-mlp --skip-throughput
    python bench/trainer.py --suite runtimes   # ResNet-18 32x32, 6x512 transformer, wide MLP, small

Each workload's baseline is trained once with optikube's `fit`; every technique then runs on a
copy through the pipeline's own stage functions (with the fine-tuning the spec asks for) and is
measured like the pipeline measures: test-split accuracy, stored parameters, MACs, size of the
exported artifact (torch.export program), weight bytes, and CPU latency (median of 50 runs after
warm-up, batch 1 and 32). A technique that fails on a model is reported with its error. The run
ends with the training throughput comparison (bench/throughput.py, optikube loop vs plain DDP,
under `torchrun --nproc-per-node 2`). Prints rich tables; writes bench/results/trainer.json
(and the throughput figures to bench/results/trainer-throughput-cpu.json).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from console_tables import add_failed_row, named_rows  # bench/, beside this script
from optikube_operator.api import OptimizationJobSpec
from optikube_operator.api.validation import parse_spec
from optikube_trainer.data import load_data
from optikube_trainer.dist import local_context, seed_everything
from optikube_trainer.evaluation import count_macs, measure_latency
from optikube_trainer.models import build_model
from optikube_trainer.pipeline import measure, sample_inputs
from optikube_trainer.pipeline.stages import STAGES
from optikube_trainer.recipe import TrainingRecipe, read_recipe
from optikube_trainer.training.loop import fit

RESULTS = Path(__file__).parent / "results"


def _synthetic_text(validation_split: float) -> dict[str, Any]:
    """`spec.data` of 2000 generated 4-class texts of up to 32 tokens, a quarter held out to test."""
    return {
        "source": {"synthetic": {"kind": "text", "samples": 2000, "classes": 4}},
        "preprocessing": {"text": {"maxLength": 32}},
        "validationSplit": validation_split,
        "testSplit": 0.25,
    }


WORKLOADS: dict[str, dict[str, Any]] = {
    "digits-mlp": {
        "data": {"source": {"builtin": "digits"}, "validationSplit": 0.15, "testSplit": 0.25},
        "model": {"builtin": {"name": "mlp"}, "params": {"width": 256, "depth": 2}},
        "student": {"builtin": {"name": "mlp"}, "params": {"width": 64, "depth": 1}},
        "epochs": 20,
    },
    "digits-cnn": {
        "data": {"source": {"builtin": "digits"}, "validationSplit": 0.15, "testSplit": 0.25},
        "model": {"builtin": {"name": "cnn"}, "params": {"channels": 32, "width": 128}},
        "student": {"builtin": {"name": "cnn"}, "params": {"channels": 8, "width": 32}},
        "epochs": 12,
    },
    "text-transformer": {
        "data": _synthetic_text(validation_split=0.15),
        "model": {"builtin": {"name": "textTransformer"}, "params": {"width": 64, "depth": 2, "heads": 4}},
        "student": {"builtin": {"name": "textTransformer"}, "params": {"width": 32, "depth": 1, "heads": 2}},
        "epochs": 8,
    },
}

# Workloads where arithmetic dominates latency (the `runtimes` suite); the small ones above are
# dominated by call overhead. ResNet-18 with torchvision's CIFAR-style stem (3x3 stride 1, no
# max-pool: what optikube builds for inputs under 64 px) on digits upsampled to 3x32x32.
DIGITS32 = Path(tempfile.gettempdir()) / "optikube-bench-digits32.npz"
LARGE_WORKLOADS: dict[str, dict[str, Any]] = {
    "resnet18-digits32": {
        "data": {
            "source": {"file": {"path": str(DIGITS32), "format": "npz"}},
            "validationSplit": 0.2,
            "testSplit": 0.25,
        },
        "model": {"torchvision": {"name": "resnet18", "pretrained": False}},
        # cosine: training and every fine-tuning end at a converged point, not a noisy last epoch
        "training": {"epochs": 6, "batchSize": 64, "learningRate": 0.001, "scheduler": {"type": "cosine"}},
        "compression": {
            "pruning": {"method": "structured", "sparsity": 0.5, "fineTuneEpochs": 6},
            "maxAccuracyDrop": 1.0,
        },
        "quantization": {"method": "static", "calibrationBatches": 8},
    },
    "text-transformer-6x512": {
        "data": _synthetic_text(validation_split=0.2),
        "model": {
            "builtin": {"name": "textTransformer"},
            "params": {"width": 512, "depth": 6, "heads": 8, "ffMultiplier": 4},
        },
        "training": {"epochs": 3, "batchSize": 32, "learningRate": 0.0003, "scheduler": {"type": "cosine"}},
        "compression": {
            "distillation": {
                "student": {
                    "builtin": {"name": "textTransformer"},
                    "params": {"width": 256, "depth": 2, "heads": 4, "ffMultiplier": 4},
                },
                "temperature": 4.0,
                "alpha": 0.7,
                "epochs": 4,
            },
            "maxAccuracyDrop": 1.0,
        },
        "quantization": {"method": "dynamic"},
    },
    "wide-mlp-tabular": {
        "data": {
            "source": {
                "synthetic": {
                    "kind": "tabular",
                    "samples": 6000,
                    "classes": 4,
                    "features": 64,
                    "informative": 32,
                }
            },
            "preprocessing": {"normalization": "standard"},
            "validationSplit": 0.2,
            "testSplit": 0.25,
        },
        "model": {"builtin": {"name": "mlp"}, "params": {"width": 2048, "depth": 3}},
        "training": {"epochs": 10, "batchSize": 64, "learningRate": 0.001, "scheduler": {"type": "cosine"}},
        "compression": {
            "pruning": {"method": "structured", "sparsity": 0.5, "fineTuneEpochs": 10},
            "maxAccuracyDrop": 1.0,
        },
        "quantization": {"method": "static", "calibrationBatches": 8},
    },
}


def write_digits32(path: Path = DIGITS32) -> Path:
    """scikit-learn's digits, bilinearly upsampled from 8x8 to 32x32 and repeated on 3 channels."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype("float32") / 16.0).unsqueeze(1)
    large = torch.nn.functional.interpolate(images, size=(32, 32), mode="bilinear", align_corners=False)
    np.savez(path, x=large.repeat(1, 3, 1, 1).numpy(), label=digits.target)
    return path


def runtime_spec(name: str) -> dict[str, Any]:
    """The full-pipeline spec of a workload for the runtimes suite (runtime auto, budget 1 point)."""
    if name in LARGE_WORKLOADS:
        workload = LARGE_WORKLOADS[name]
        blocks: dict[str, Any] = {k: workload[k] for k in ("compression", "quantization") if k in workload}
        return {
            "seed": 7,
            "data": workload["data"],
            "model": workload["model"],
            "objectives": [{"metric": "accuracy", "direction": "maximize"}],
            "training": workload["training"],
            **blocks,
            "export": {"runtime": "auto"},
        }
    spec = _spec(WORKLOADS[name], FULL_PIPELINE).to_dict()
    # In this suite a 50 % pruned model fine-tunes as long as its baseline trained (as the large
    # workloads above do): with 3 epochs it ended 0.9 to 1.3 test points below the baseline on
    # three seeds of the digits CNN, with 10 at 0.0 to 0.4, about what a half-width CNN trained
    # from scratch reaches.
    spec["compression"]["pruning"]["fineTuneEpochs"] = WORKLOADS[name]["epochs"]
    spec["compression"]["maxAccuracyDrop"] = 1.0
    spec["export"] = {"runtime": "auto"}
    return spec


# technique name -> the spec blocks that select it (the pipeline's own configuration language)
TECHNIQUES: dict[str, dict[str, Any]] = {
    "int8 dynamic": {"quantization": {"method": "dynamic"}},
    "int8 weight-only": {"quantization": {"method": "weightOnly"}},
    "int8 static": {"quantization": {"method": "static", "calibrationBatches": 8}},
    "int8 QAT": {"quantization": {"method": "qat", "qatEpochs": 2}},
    "prune structured 50%": {
        "compression": {"pruning": {"method": "structured", "sparsity": 0.5, "fineTuneEpochs": 3}}
    },
    "prune unstructured 50%": {
        "compression": {"pruning": {"method": "unstructured", "sparsity": 0.5, "fineTuneEpochs": 2}}
    },
    "low-rank 25%": {"compression": {"lowRank": {"rankRatio": 0.25, "fineTuneEpochs": 2}}},
    "weight sharing k=16": {"compression": {"weightSharing": {"clusters": 16, "fineTuneEpochs": 1}}},
    "distillation": {"compression": {"distillation": {"student": None, "temperature": 4.0, "alpha": 0.7}}},
}
FULL_PIPELINE: dict[str, Any] = {
    "compression": {
        "distillation": {"student": None, "temperature": 4.0, "alpha": 0.7},
        "pruning": {"method": "structured", "sparsity": 0.5, "fineTuneEpochs": 3},
        "lowRank": {"energy": 0.95, "fineTuneEpochs": 2},
    },
    "quantization": {"method": "dynamic"},
}


def _spec(workload: dict[str, Any], extra: dict[str, Any]) -> OptimizationJobSpec:
    blocks = json.loads(json.dumps(extra))
    distillation = blocks.get("compression", {}).get("distillation")
    if distillation is not None:
        distillation["student"] = workload["student"]
        distillation["epochs"] = workload["epochs"]
    return parse_spec(
        {
            "seed": 7,
            "data": workload["data"],
            "model": workload["model"],
            "objectives": [{"metric": "accuracy", "direction": "maximize"}],
            "training": {"epochs": workload["epochs"], "batchSize": 64, "learningRate": 0.003},
            **blocks,
        }
    )


def _row(name: str, measured: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {"technique": name, "seconds": round(seconds, 2), **measured}


def run_workload(name: str, console: Console, *, compiled: bool = False) -> list[dict[str, Any]]:
    workload = WORKLOADS[name]
    ctx = local_context(seed=7, output_dir=RESULTS)
    base_spec = _spec(workload, {})
    bundle = load_data(base_spec.data, base_spec.seed, ctx)
    example = sample_inputs(bundle, 32)
    seed_everything(7)
    started = time.monotonic()
    baseline = build_model(base_spec.model, bundle)
    fit(baseline, bundle, TrainingRecipe.from_spec(base_spec.training, ctx.world_size), ctx)
    baseline.to("cpu")
    base = measure(baseline, bundle, example, split="test", macs=None).to_contract()
    if compiled:
        base["latencyMsCompiled"] = measure_latency(baseline, example, compile_model=True)
    rows = [_row("baseline", base, time.monotonic() - started)]
    console.log(f"{name}: baseline done")
    for technique, blocks in [*TECHNIQUES.items(), ("full pipeline", FULL_PIPELINE)]:
        spec = _spec(workload, blocks)
        model = copy.deepcopy(baseline)
        started = time.monotonic()
        try:
            macs = count_macs(model, example[:1])
            recipe = read_recipe(spec, world_size=1)
            for stage in recipe.stages:
                seed_everything(7)
                outcome = STAGES[stage](model, recipe, bundle, ctx)
                model, macs = outcome.model, outcome.extra.get("macs", macs)
            measured = measure(model, bundle, example, split="test", macs=macs).to_contract()
            if compiled and technique.startswith("int8"):
                measured["latencyMsCompiled"] = measure_latency(model, example, compile_model=True)
            rows.append(_row(technique, measured, time.monotonic() - started))
        except Exception as error:
            rows.append({"technique": technique, "error": f"{type(error).__name__}: {str(error)[:200]}"})
        console.log(f"{name}: {technique} done")
    return rows


def _table(name: str, rows: list[dict[str, Any]]) -> Table:
    compiled = any("latencyMsCompiled" in row for row in rows)
    columns = [
        "technique",
        "accuracy",
        "parameters",
        "MACs",
        "size (B)",
        "weights (B)",
        "p50 b1 (ms)",
        "p50 b32 (ms)",
    ] + (["compiled p50 b1 (ms)", "compiled p50 b32 (ms)"] if compiled else [])
    table = named_rows(name, columns)
    for row in rows:
        if "error" in row:
            add_failed_row(table, row["technique"], row["error"][:60])
            continue
        cells = [
            row["technique"],
            f"{row['metrics']['accuracy']:.4f}",
            str(row["parameters"]),
            str(row["macs"]),
            str(row["sizeBytes"]),
            str(row["weightBytes"]),
            f"{row['latencyMs']['batch1P50']:.3f}",
            f"{row['latencyMs']['batch32P50']:.3f}",
        ]
        if compiled:
            timing = row.get("latencyMsCompiled")
            cells += [f"{timing['batch1P50']:.3f}", f"{timing['batch32P50']:.3f}"] if timing else ["", ""]
        table.add_row(*cells)
    return table


def throughput(console: Console) -> dict[str, Any] | None:
    """bench/throughput.py under torchrun with 2 processes (gloo): optikube fit vs plain DDP."""
    target = RESULTS / "trainer-throughput-cpu.json"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        str(Path(__file__).parent / "throughput.py"),
        "--output",
        str(target),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        console.print(f"[red]throughput benchmark failed:[/red]\n{result.stderr[-2000:]}")
        return None
    report: dict[str, Any] = json.loads(target.read_text())
    table = named_rows(
        "training throughput, 2 processes (gloo), optikube fit vs plain DDP loop",
        ("workload", "optikube samples/s", "plain DDP samples/s", "ratio (target >= 0.95)"),
    )
    for row in report["results"]:
        table.add_row(
            row["workload"],
            f"{row['optikubeSamplesPerSecond']:.0f}",
            f"{row['plainSamplesPerSecond']:.0f}",
            f"{row['ratio']:.3f}",
        )
    console.print(table)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    everything = [*WORKLOADS, *LARGE_WORKLOADS]
    parser.add_argument("--suite", choices=["techniques", "runtimes"], default="techniques")
    parser.add_argument("--workloads", nargs="+", default=None, choices=everything)
    parser.add_argument("--runs", type=int, default=50, help="timed runs per model and batch size (runtimes)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads for training and latency")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time torch.compile'd baseline and int8 models (slow to compile)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "trainer.json")
    args = parser.parse_args(argv)
    console = Console(width=200)
    if args.suite == "runtimes":
        run_runtimes_suite(args.workloads or everything, console, runs=args.runs, output=args.output)
        return
    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {
        "benchmark": "baseline vs each technique vs the full pipeline",
        "device": "cpu",
        "threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "workloads": {},
    }
    for name in args.workloads or list(WORKLOADS):
        rows = run_workload(name, console, compiled=args.compile)
        report["workloads"][name] = rows
        console.print(_table(name, rows))
    if not args.skip_throughput:
        report["throughput"] = throughput(console)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    console.print(f"wrote {args.output}")


# what each workload of the runtimes suite is judged by (bench/peers.py `headline`)
HEADLINE_KEYS = (
    "speedupVsBestAnchorBatch1",
    "speedupVsBestAnchorBatch32",
    "speedupVsOrtFp32Batch1",
    "speedupVsOrtFp32Batch32",
    "testAccuracyDropPoints",
)


def run_runtimes_suite(names: list[str], console: Console, *, runs: int, output: Path) -> None:
    """Each workload's pipeline and its peers; one JSON per workload (a long run keeps what it did)."""
    from peers import peers_table, run_peers

    if "resnet18-digits32" in names:
        write_digits32()
    threads = sorted({1, os.cpu_count() or 1})
    for name in names:
        started = time.monotonic()
        report = run_peers(name, runtime_spec(name), console, threads=threads, runs=runs)
        report["wallSeconds"] = round(time.monotonic() - started, 1)
        report["torch"] = torch.__version__
        target = output if output.name != "trainer.json" else RESULTS / f"runtimes-{name}.json"
        target.write_text(json.dumps(report, indent=2))
        console.print(peers_table(report))
        judged = {key: report[key] for key in HEADLINE_KEYS}
        console.print(f"{name}: {json.dumps(judged)} (load average {report['loadAverage']})")
        console.print(f"wrote {target} ({report['wallSeconds']} s)")


if __name__ == "__main__":
    main()
