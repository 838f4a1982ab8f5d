"""Runs under `torchrun --nproc-per-node 2`: trains on digits with optikube's DDP loop, applies
techniques, and has rank 0 write the measured effects as JSON for the slow tests to assert on.

    torchrun --nproc-per-node 2 techniques_driver.py {linear|conv} OUT.json
"""

from __future__ import annotations

import copy
import io
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from optikube_operator.api import OptimizationJobSpec
from optikube_operator.api.validation import parse_spec
from optikube_trainer.compression import (
    DistillationConfig,
    LowRankConfig,
    PruningConfig,
    WeightSharingConfig,
    distillation_loss_fn,
    factorize_low_rank_,
    prune_,
    share_weights_,
)
from optikube_trainer.compression.pruning import output_layers
from optikube_trainer.data import DataBundle, load_data
from optikube_trainer.dist import RunContext, init_distributed, shutdown
from optikube_trainer.evaluation import count_macs, stored_parameters, weight_bytes
from optikube_trainer.evaluation.counting import ensure_cpu
from optikube_trainer.evaluation.metrics import classification_metrics
from optikube_trainer.export import artifact_size_bytes
from optikube_trainer.models import build_model
from optikube_trainer.pipeline import sample_inputs
from optikube_trainer.quantization import QuantizationConfig, quantize
from optikube_trainer.recipe import TrainingRecipe
from optikube_trainer.training.loop import fit


def _spec(model: dict[str, Any], epochs: int) -> OptimizationJobSpec:
    return parse_spec(
        {
            "seed": 3,
            "data": {"source": {"builtin": "digits"}, "validationSplit": 0.15, "testSplit": 0.25},
            "model": model,
            "objectives": [{"metric": "accuracy", "direction": "maximize"}],
            "training": {"epochs": epochs, "batchSize": 64, "learningRate": 0.003},
        }
    )


def _accuracy(model: nn.Module, bundle: DataBundle) -> float:
    loader = bundle.loader("test", 256, shuffle=False, distributed=False)
    return classification_metrics(ensure_cpu(model), loader, bundle.num_classes)["accuracy"]


def _state_dict_bytes(model: nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def _weight(module: nn.Module) -> torch.Tensor:
    weight = module.weight
    assert isinstance(weight, torch.Tensor)
    return weight


def _calibration(bundle: DataBundle, batches: int = 8) -> Any:
    def batches_of_train() -> Any:
        for index, (inputs, _) in enumerate(bundle.loader("train", 64, shuffle=False, distributed=False)):
            if index >= batches:
                return
            yield inputs

    return batches_of_train


def _trained_baseline(
    ctx: RunContext, model: dict[str, Any], epochs: int
) -> tuple[OptimizationJobSpec, DataBundle, torch.Tensor, nn.Module]:
    """The suite's spec, data, example batch and the baseline model trained from a fixed seed."""
    spec = _spec(model, epochs)
    bundle = load_data(spec.data, spec.seed, ctx)
    example = sample_inputs(bundle, 32)
    torch.manual_seed(0)
    baseline = build_model(spec.model, bundle)
    fit(baseline, bundle, TrainingRecipe.from_spec(spec.training, ctx.world_size), ctx)
    return spec, bundle, example, baseline


def linear_suite(ctx: RunContext) -> dict[str, Any]:
    spec, bundle, example, baseline = _trained_baseline(
        ctx, {"builtin": {"name": "mlp"}, "params": {"width": 256, "depth": 2}}, epochs=20
    )
    training = TrainingRecipe.from_spec(spec.training, ctx.world_size)
    out: dict[str, Any] = {
        "baseline": {
            "accuracy": _accuracy(baseline, bundle),
            "weightBytes": weight_bytes(baseline),
            "stateDictBytes": _state_dict_bytes(baseline),
            "artifactBytes": artifact_size_bytes(baseline, example),
            "parameters": stored_parameters(baseline),
            "macs": count_macs(baseline, example[:1]),
        }
    }

    for method in ("dynamic", "weightOnly"):
        quantization = QuantizationConfig(method=method)
        model, _ = quantize(copy.deepcopy(baseline), quantization, example_inputs=example)
        out[method] = {
            "accuracy": _accuracy(model, bundle),
            "weightBytes": weight_bytes(model),
            "stateDictBytes": _state_dict_bytes(model),
            "artifactBytes": artifact_size_bytes(model, example),
        }

    pruned = copy.deepcopy(baseline)
    summary = prune_(pruned, PruningConfig(method="structured", sparsity=0.5), example[:2])
    out["structured"] = {"beforeFineTune": _accuracy(pruned, bundle), **summary.changes()}
    fit(pruned, bundle, training, ctx, epochs=5)
    out["structured"]["accuracy"] = _accuracy(pruned, bundle)

    factored = copy.deepcopy(baseline)
    low_rank = factorize_low_rank_(
        factored, LowRankConfig(rank_ratio=0.25), ignored_layers=output_layers(factored, example[:2])
    )
    fit(factored, bundle, training, ctx, epochs=2)
    out["lowRank"] = {
        "accuracy": _accuracy(factored, bundle),
        "layers": {
            name: {
                "rank": info.rank,
                "parametersAfter": info.parameters_after,
                "measured": sum(p.numel() for p in factored.get_submodule(name).parameters()),
            }
            for name, info in low_rank.layers.items()
        },
        "shapes": {name: list(_weight(baseline.get_submodule(name)).shape) for name in low_rank.layers},
    }

    shared = copy.deepcopy(baseline)
    sharing = share_weights_(shared, WeightSharingConfig(clusters=16))
    fit(shared, bundle, training, ctx, epochs=1)
    out["weightSharing"] = {
        "accuracy": _accuracy(shared, bundle),
        "stateDictBytes": _state_dict_bytes(shared),
        "artifactBytes": artifact_size_bytes(shared, example),
        "distinct": {
            name: int(torch.unique(m.weight.detach()).numel())
            for name, m in shared.named_modules()
            if name in sharing.layers
        },
    }

    student_spec = _spec({"builtin": {"name": "mlp"}, "params": {"width": 16, "depth": 1}}, epochs=40)
    torch.manual_seed(1)
    alone = build_model(student_spec.model, bundle)
    student_training = TrainingRecipe.from_spec(student_spec.training, ctx.world_size)
    fit(alone, bundle, student_training, ctx)
    torch.manual_seed(1)
    distilled = build_model(student_spec.model, bundle)
    config = DistillationConfig(
        student={"builtin": {"name": "mlp"}, "params": {"width": 16}}, temperature=4.0, alpha=0.7
    )
    teacher_loss = distillation_loss_fn(copy.deepcopy(baseline), config)
    fit(distilled, bundle, student_training, ctx, loss_fn=teacher_loss)
    out["distillation"] = {
        "alone": _accuracy(alone, bundle),
        "distilled": _accuracy(distilled, bundle),
        "studentParameters": stored_parameters(distilled),
    }
    return out


def conv_suite(ctx: RunContext) -> dict[str, Any]:
    spec, bundle, example, baseline = _trained_baseline(
        ctx, {"builtin": {"name": "cnn"}, "params": {"channels": 16, "width": 64}}, epochs=12
    )
    out: dict[str, Any] = {
        "baseline": {"accuracy": _accuracy(baseline, bundle), "weightBytes": weight_bytes(baseline)}
    }
    static, summary = quantize(
        copy.deepcopy(baseline).eval(),
        QuantizationConfig(method="static"),
        example_inputs=example,
        calibration=_calibration(bundle),
    )
    out["static"] = {"accuracy": _accuracy(static, bundle), **summary.changes()}

    def qat_train(prepared: nn.Module) -> None:
        qat_training = replace(TrainingRecipe.from_spec(spec.training, ctx.world_size), learning_rate=0.0005)
        fit(prepared, bundle, qat_training, ctx, epochs=2)
        prepared.to("cpu")

    qat, qat_summary = quantize(
        copy.deepcopy(baseline).eval(),
        QuantizationConfig(method="qat", qat_epochs=2),
        example_inputs=example,
        train=qat_train,
    )
    out["qat"] = {"accuracy": _accuracy(qat, bundle), **qat_summary.changes()}
    return out


def main() -> None:
    suite, target = sys.argv[1], Path(sys.argv[2])
    ctx = init_distributed(seed=3, output_dir=target.parent, use_gpu=False)
    completed = False
    try:
        result = {"linear": linear_suite, "conv": conv_suite}[suite](ctx)
        result["worldSize"] = ctx.world_size
        if ctx.is_main:
            target.write_text(json.dumps(result, indent=2))
        completed = True
    finally:
        shutdown(completed=completed)


if __name__ == "__main__":
    main()
