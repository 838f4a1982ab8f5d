"""Training throughput of optikube's loop against a plain PyTorch DDP loop on the same model and data.

Run under torchrun (the ratio is what matters; the target is >= 0.95):

    torchrun --nproc-per-node 2 bench/throughput.py                # CPU, gloo
    torchrun --nproc-per-node 1 bench/throughput.py --precision bf16   # one GPU, NCCL

Both loops see the same DataBundle loaders (seeded DistributedSampler, global batch split over the
ranks) and the same freshly seeded model; they alternate, and each figure is the median of the
repeats, so that drift on a busy machine hits both alike. Only training steps are timed: optikube's
per-epoch validation is excluded (``FitResult.samples_per_second``), the plain loop has none.
Rank 0 prints a table and writes ``bench/results/throughput-<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from optikube_operator.api.data import DataSpec
from optikube_operator.api.model import ModelSpec
from optikube_operator.api.training import TrainingSpec
from optikube_trainer.data import DataBundle, load_data
from optikube_trainer.dist import RunContext, init_distributed, seed_everything, shutdown
from optikube_trainer.models import build_model
from optikube_trainer.recipe import TrainingRecipe
from optikube_trainer.training import fit

RESULTS = Path(__file__).parent / "results"

WORKLOADS: dict[str, dict[str, Any]] = {
    "digits-mlp": {
        "data": {"source": {"builtin": "digits"}},
        "model": {"builtin": {"name": "mlp"}, "params": {"width": 256, "depth": 2}},
    },
    "text-transformer": {
        "data": {
            "source": {"synthetic": {"kind": "text", "samples": 2000, "classes": 4}},
            "preprocessing": {"text": {"maxLength": 32}},
        },
        "model": {"builtin": {"name": "textTransformer"}, "params": {"width": 64, "depth": 2, "heads": 4}},
    },
}


def plain_ddp_epochs(
    model: nn.Module, bundle: DataBundle, training: TrainingRecipe, ctx: RunContext, epochs: int
) -> float:
    """The reference: the textbook DDP loop (AdamW, cross-entropy); returns samples/s over all ranks."""
    model.to(ctx.device)
    ddp: nn.Module = model
    if ctx.distributed:
        ddp = DistributedDataParallel(model, device_ids=[ctx.device] if ctx.device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=training.learning_rate, weight_decay=0.0)
    loader = bundle.loader("train", training.per_process_batch)
    use_amp = ctx.device.type == "cuda" and training.mixed_precision != "none"
    dtype = torch.bfloat16 if training.mixed_precision == "bf16" else torch.float16
    samples, seconds = 0, 0.0
    for epoch in range(epochs):
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(epoch)
        ddp.train()
        started = time.perf_counter()
        for inputs, targets in loader:
            inputs = inputs.to(ctx.device, non_blocking=True)
            targets = targets.to(ctx.device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            autocast = torch.autocast("cuda", dtype=dtype) if use_amp else nullcontext()
            with autocast:
                loss = F.cross_entropy(ddp(inputs), targets)
            loss.backward()
            optimizer.step()
            samples += targets.shape[0]
        if ctx.device.type == "cuda":
            torch.cuda.synchronize(ctx.device)
        seconds += time.perf_counter() - started
    return samples * ctx.world_size / seconds


def optikube_epochs(
    model: nn.Module, bundle: DataBundle, training: TrainingRecipe, ctx: RunContext, epochs: int
) -> float:
    return fit(model, bundle, training, ctx, epochs=epochs).samples_per_second


def measure(
    name: str, ctx: RunContext, *, epochs: int, repeats: int, batch_size: int, precision: str
) -> dict[str, Any]:
    workload = WORKLOADS[name]
    bundle = load_data(DataSpec.model_validate(workload["data"]), seed=ctx.seed, ctx=ctx)
    spec = ModelSpec.model_validate(workload["model"])
    training = TrainingRecipe.from_spec(
        TrainingSpec.model_validate(
            {"epochs": epochs, "batchSize": batch_size, "learningRate": 1e-3, "mixedPrecision": precision}
        ),
        ctx.world_size,
    )
    runners: dict[str, Callable[[nn.Module, DataBundle, TrainingRecipe, RunContext, int], float]] = {
        "optikube": optikube_epochs,
        "plain": plain_ddp_epochs,
    }
    rates: dict[str, list[float]] = {"optikube": [], "plain": []}
    for repeat in range(repeats + 1):  # the first round warms up caches and allocators and is dropped
        # alternate which loop goes first so that neither always meets a warmer or cooler machine
        order = list(runners.items()) if repeat % 2 == 0 else list(reversed(runners.items()))
        for label, runner in order:
            seed_everything(ctx.seed)
            rate = runner(build_model(spec, bundle), bundle, training, ctx, epochs)
            if repeat > 0:
                rates[label].append(rate)
    optikube, plain = statistics.median(rates["optikube"]), statistics.median(rates["plain"])
    return {
        "workload": name,
        "optikubeSamplesPerSecond": optikube,
        "plainSamplesPerSecond": plain,
        "ratio": optikube / plain,
        "target": 0.95,
        "meetsTarget": optikube / plain >= 0.95,
        "samples": {"optikube": rates["optikube"], "plain": rates["plain"]},
    }


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'workload':<18} {'optikube s/s':>13} {'plain DDP s/s':>14} {'ratio':>7}  target 0.95"]
    for row in rows:
        verdict = "ok" if row["meetsTarget"] else "below"
        lines.append(
            f"{row['workload']:<18} {row['optikubeSamplesPerSecond']:>13.0f} "
            f"{row['plainSamplesPerSecond']:>14.0f} {row['ratio']:>7.3f}  {verdict}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128, help="global batch")
    parser.add_argument("--precision", choices=["none", "bf16", "fp16"], default="none")
    parser.add_argument(
        "--output", type=Path, help="JSON path (default bench/results/throughput-<device>.json)"
    )
    args = parser.parse_args(argv)
    ctx = init_distributed(seed=0, output_dir=RESULTS)
    rows = [
        measure(
            name,
            ctx,
            epochs=args.epochs,
            repeats=args.repeats,
            batch_size=args.batch_size,
            precision=args.precision,
        )
        for name in args.workloads
    ]
    if ctx.is_main:
        device = torch.cuda.get_device_name(ctx.device) if ctx.device.type == "cuda" else "cpu"
        report = {
            "benchmark": "training throughput, optikube fit() vs plain DDP loop",
            "device": device,
            "backend": ctx.backend,
            "processes": ctx.world_size,
            "threadsPerProcess": torch.get_num_threads(),
            "precision": args.precision,
            "epochs": args.epochs,
            "repeats": args.repeats,
            "globalBatch": args.batch_size,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "results": rows,
        }
        print(_table(rows))
        target = args.output or RESULTS / f"throughput-{'gpu' if ctx.device.type == 'cuda' else 'cpu'}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report, indent=2))
        print(f"wrote {target}")
    shutdown(completed=True)


if __name__ == "__main__":
    main()
