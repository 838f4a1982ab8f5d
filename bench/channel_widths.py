"""Why structured pruning keeps multiples of `channelMultiple` channels: the latency of the digits
CNN of bench/trainer.py (32 and 64 channels, a 128-wide head, 8x8 inputs) after structured pruning
at several sparsities, with each layer's kept channels exact (`channelMultiple: 1`) and rounded up
to multiples of 16 (the default), in eager PyTorch, ONNX Runtime float and ONNX Runtime static
INT8 (QDQ): the runtimes `export.runtime: auto` chooses from.

    python bench/channel_widths.py            # writes bench/results/channel-widths.json

Latency only depends on the shapes, so the models are untrained. Every model of one runtime is
timed in the same interleaved rounds (`compare_latency`, one thread) and reported over the
unpruned model in that runtime: above 1.0 the pruned model is faster.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn

from optikube_trainer.compression import PruningConfig, prune_
from optikube_trainer.evaluation.latency import compare_latency
from optikube_trainer.models.builtin import CNN
from optikube_trainer.runtimes.onnx_model import OnnxModule, export_onnx
from optikube_trainer.runtimes.onnx_quantize import quantize_onnx

RESULTS = Path(__file__).parent / "results"
SPARSITIES = (0.25, 0.3, 0.5)
MULTIPLES = (1, 16)
RUNTIMES = ("eager", "onnx float", "onnx int8 static")


def digits_cnn() -> nn.Module:
    torch.manual_seed(0)
    return CNN(1, (8, 8), 10, channels=32, width=128).eval()


def pruned_variants(example: Tensor) -> dict[str, tuple[nn.Module, list[int]]]:
    """`{label: (model, kept channels per layer)}`, the unpruned model first."""
    variants: dict[str, tuple[nn.Module, list[int]]] = {"unpruned": (digits_cnn(), [32, 64, 128])}
    for sparsity in SPARSITIES:
        for multiple in MULTIPLES:
            model = digits_cnn()
            # uniform: the table is about the channel counts a sparsity gives every layer
            config = PruningConfig(sparsity=sparsity, channel_multiple=multiple, allocation="uniform")
            summary = prune_(model, config, example)
            kept = [after for _, after in summary.layer_channels.values()]
            variants[f"{sparsity:.0%} multiple {multiple}"] = (model.eval(), kept)
    return variants


def runtime_forms(model: nn.Module, example: Tensor, directory: Path) -> dict[str, nn.Module]:
    """The model in each runtime: eager, its ONNX export, and the export's static INT8 form."""
    exported = directory / "model.onnx"
    export_onnx(model, example, exported)
    quantized = directory / "int8.onnx"
    calibration = [torch.randn(32, *example.shape[1:]) for _ in range(4)]
    quantize_onnx(exported, quantized, "static", calibration)
    return {
        "eager": model,
        "onnx float": OnnxModule(exported, threads=1),
        "onnx int8 static": OnnxModule(quantized, threads=1),
    }


def measure(runs: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    example = torch.randn(2, 1, 8, 8)
    variants = pruned_variants(example)
    latency: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as temporary:
        forms = {
            label: runtime_forms(model, example, Path(temporary) / label.replace(" ", "-").replace("%", ""))
            for label, (model, _) in variants.items()
        }
        for runtime in RUNTIMES:
            latency[runtime] = compare_latency(
                {label: forms[label][runtime] for label in variants}, example, runs=runs, warmup=20
            )
    rows = []
    for label, (_, kept) in variants.items():
        row: dict[str, Any] = {"model": label, "keptChannels": kept}
        for runtime in RUNTIMES:
            for batch in (1, 32):
                key = f"batch{batch}P50"
                row[f"{runtime} batch{batch}"] = {
                    "ms": latency[runtime][label][key],
                    "speedupOverUnpruned": round(
                        latency[runtime]["unpruned"][key] / latency[runtime][label][key], 3
                    ),
                }
        rows.append(row)
    return {
        "workload": "digits-cnn",
        "threads": 1,
        "timedRuns": runs,
        "rows": rows,
        "torch": torch.__version__,
    }


def table(report: dict[str, Any]) -> Table:
    out = Table(title="digits CNN after structured pruning: speed-up over the unpruned model, one thread")
    out.add_column("pruned")
    out.add_column("kept channels")
    for runtime in RUNTIMES:
        for batch in (1, 32):
            out.add_column(f"{runtime} b{batch}", justify="right")
    for row in report["rows"]:
        cells = [
            f"{row[f'{runtime} batch{batch}']['speedupOverUnpruned']:.2f}x"
            for runtime in RUNTIMES
            for batch in (1, 32)
        ]
        out.add_row(row["model"], "/".join(str(k) for k in row["keptChannels"]), *cells)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200, help="timed runs per model and batch size")
    args = parser.parse_args(argv)
    report = measure(args.runs)
    Console(width=200).print(table(report))
    target = RESULTS / "channel-widths.json"
    target.write_text(json.dumps(report, indent=2))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
