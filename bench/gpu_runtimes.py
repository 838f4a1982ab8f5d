"""GPU deployment runtimes, side by side in one run: a workload of the runtimes suite
(bench/trainer.py; by default `resnet18-digits32`, ResNet-18) trained on the GPU with optikube's
`fit` in bf16 (`training.mixedPrecision`), then timed on the GPU as eager PyTorch (fp32 and bf16
autocast), under torch.compile (bf16), and in ONNX Runtime's CUDA and TensorRT execution providers
where the installed onnxruntime serves them (`onnxruntime-gpu`; a provider that is not served is
listed with the providers that are).

    python bench/gpu_runtimes.py   # needs a CUDA device; writes bench/results/gpu-runtimes.json
    python bench/gpu_runtimes.py --device cpu --workload digits-cnn --epochs 1 --output /tmp/g.json

The second line runs the same code on the CPU (what tests/unit/bench checks); it is not a GPU row.
Every model is timed in the same interleaved rounds (`compare_latency`, medians of --runs calls
after warm-up), each call followed by `torch.cuda.synchronize()` so that a call's time is the
GPU's work and not the launch's; ONNX Runtime is given numpy arrays, so its times include the
copies to and from the device. Ratios are to eager fp32 of the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import Tensor, nn

from console_tables import add_failed_row, named_rows  # bench/, beside this script
from optikube_operator.api.validation import parse_spec
from optikube_trainer.data import load_data
from optikube_trainer.dist import local_context, seed_everything
from optikube_trainer.evaluation.latency import compare_latency
from optikube_trainer.evaluation.metrics import classification_metrics
from optikube_trainer.models import build_model
from optikube_trainer.recipe import TrainingRecipe
from optikube_trainer.runtimes.onnx_model import export_onnx
from optikube_trainer.training.loop import fit

RESULTS = Path(__file__).parent / "results"
# execution providers to try, best first, with the session options each needs
ORT_PROVIDERS = {
    "TensorrtExecutionProvider": ("ORT TensorRT EP fp16", {"trt_fp16_enable": "True"}),
    "CUDAExecutionProvider": ("ORT CUDA EP fp32", {}),
    "CPUExecutionProvider": ("ORT CPU EP fp32", {}),
}


class Synchronized(nn.Module):
    """Calls `model` on `device` and waits for the device: a timed call is the whole of its work."""

    def __init__(self, call: Callable[[Tensor], Tensor], device: torch.device) -> None:
        super().__init__()
        self.call, self.device = call, device

    def forward(self, inputs: Tensor) -> Tensor:
        outputs = self.call(inputs.to(self.device, non_blocking=True))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return outputs


def _bf16(model: nn.Module, device: torch.device) -> Callable[[Tensor], Tensor]:
    def call(inputs: Tensor) -> Tensor:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            return model(inputs).float()

    return call


def _ort(path: Path, provider: str, options: dict[str, str]) -> Callable[[Tensor], Tensor]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=[(provider, options)])
    if session.get_providers()[0] != provider:  # onnxruntime falls back silently
        raise RuntimeError(f"{provider} was not used (session providers: {session.get_providers()})")
    name = session.get_inputs()[0].name

    def call(inputs: Tensor) -> Tensor:
        array = np.ascontiguousarray(inputs.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(session.run(None, {name: array})[0])

    return call


def train_baseline(workload: str, device: torch.device, epochs: int, scratch: Path) -> tuple[nn.Module, Any]:
    """A workload of the runtimes suite (its data, model and training), trained with optikube's
    loop on `device` in bf16, without its compression."""
    from trainer import runtime_spec, write_digits32

    if workload == "resnet18-digits32":
        write_digits32()
    spec_dict = runtime_spec(workload)
    for block in ("compression", "quantization", "export"):
        spec_dict.pop(block, None)
    spec_dict["training"] = {**spec_dict["training"], "epochs": epochs, "mixedPrecision": "bf16"}
    spec = parse_spec(spec_dict)
    ctx = local_context(seed=spec.seed, output_dir=scratch, device=device.type)
    bundle = load_data(spec.data, spec.seed, ctx)
    seed_everything(spec.seed)
    model = build_model(spec.model, bundle).to(device)
    fit(model, bundle, TrainingRecipe.from_spec(spec.training), ctx)
    return model.eval(), bundle


def runtimes(model: nn.Module, example: Tensor, device: torch.device, work: Path) -> dict[str, Any]:
    """name -> a runnable model, or the error that kept it out."""
    import onnxruntime as ort

    entries: dict[str, Any] = {
        "eager fp32": Synchronized(model, device),
        "eager bf16 (autocast)": Synchronized(_bf16(model, device), device),
    }
    try:
        compiled = torch.compile(model, dynamic=False)
        entries["torch.compile bf16"] = Synchronized(_bf16(compiled, device), device)  # type: ignore[arg-type]
    except Exception as error:
        entries["torch.compile bf16"] = f"{type(error).__name__}: {error}"
    export_onnx(model.cpu(), example.cpu(), work / "model.onnx")
    model.to(device)
    served = ort.get_available_providers()
    wanted = ["TensorrtExecutionProvider", "CUDAExecutionProvider"] if device.type == "cuda" else []
    for provider in wanted or ["CPUExecutionProvider"]:
        label, options = ORT_PROVIDERS[provider]
        if provider not in served:
            entries[label] = f"not served by onnxruntime {ort.__version__} (providers: {', '.join(served)})"
            continue
        try:
            entries[label] = Synchronized(_ort(work / "model.onnx", provider, options), torch.device("cpu"))
        except Exception as error:
            entries[label] = f"{type(error).__name__}: {str(error)[:300]}"
    return entries


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="optikube-gpu-runtimes-") as scratch:
        return _measure(args, Path(scratch))


def _measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    device = torch.device(args.device)
    started = time.monotonic()
    model, bundle = train_baseline(args.workload, device, args.epochs, work)
    test = bundle.loader("test", 256, shuffle=False, distributed=False)
    example = next(iter(bundle.loader("val", 32, shuffle=False, distributed=False)))[0].to(device)
    entries = runtimes(model, example, device, work)
    rows: list[dict[str, Any]] = []
    runnable: dict[str, nn.Module] = {}
    for name, entry in entries.items():
        if isinstance(entry, str):
            rows.append({"model": name, "error": entry})
            continue
        try:
            with torch.inference_mode():
                metrics = classification_metrics(entry, test, bundle.num_classes)
            rows.append({"model": name, "metrics": {k: round(v, 6) for k, v in metrics.items()}})
            runnable[name] = entry
        except Exception as error:
            rows.append({"model": name, "error": f"{type(error).__name__}: {str(error)[:300]}"})
    sizes = tuple(args.batch_sizes)
    latency = compare_latency(runnable, example, batch_sizes=sizes, runs=args.runs, warmup=10)
    reference = latency.get("eager fp32", {})
    for row in rows:
        timed = latency.get(row["model"])
        if timed:
            row["latencyMs"] = timed
            row["speedupVsEagerFp32"] = {
                f"batch{b}": round(reference[f"batch{b}P50"] / timed[f"batch{b}P50"], 2) for b in sizes
            }
    return {
        "benchmark": "GPU deployment runtimes (bench/gpu_runtimes.py)",
        "workload": args.workload,
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu",
        "deviceType": device.type,
        "trainingEpochs": args.epochs,
        "trainingPrecision": "bf16",
        "timedRuns": args.runs,
        "batchSizes": list(sizes),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "rows": rows,
        "wallSeconds": round(time.monotonic() - started, 1),
    }


def table(report: dict[str, Any]) -> Any:
    sizes = report["batchSizes"]
    columns = ["model", "accuracy (test)"] + [f"b{b} ms" for b in sizes] + [f"b{b} x" for b in sizes]
    rendered = named_rows(f"{report['device']}: speed-up vs eager fp32, same run", columns)
    for row in report["rows"]:
        if "error" in row:
            add_failed_row(rendered, row["model"], row["error"][:70])
            continue
        latency, speedup = row.get("latencyMs", {}), row.get("speedupVsEagerFp32", {})
        rendered.add_row(
            row["model"],
            f"{row['metrics']['accuracy']:.4f}",
            *[f"{latency.get(f'batch{b}P50', float('nan')):.3f}" for b in sizes],
            *[f"{speedup.get(f'batch{b}', float('nan')):.2f}" for b in sizes],
        )
    return rendered


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda", help="cuda (the GPU row) or cpu (the code path only)")
    parser.add_argument("--workload", default="resnet18-digits32", help="a workload of bench/trainer.py")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs (the suite's 6 for ResNet-18)")
    parser.add_argument("--runs", type=int, default=100, help="timed calls per model and batch size")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--output", type=Path, default=RESULTS / "gpu-runtimes.json")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "no CUDA device: torch.cuda.is_available() is false (use --device cpu for the code path)"
        )
    report = measure(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    console = Console(width=160)
    console.print(table(report))
    console.print(f"wrote {args.output} ({report['wallSeconds']} s)")


if __name__ == "__main__":
    main()
