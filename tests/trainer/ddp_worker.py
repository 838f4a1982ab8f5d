"""A torchrun worker for the DDP tests: trains a small MLP on digits and saves the final weights.

Run as ``torchrun --nproc-per-node N ddp_worker.py --out DIR [--crash-after-epoch K]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from optikube_operator.api.data import DataSpec
from optikube_operator.api.model import ModelSpec
from optikube_operator.api.training import TrainingSpec
from optikube_trainer.data import load_data
from optikube_trainer.dist import init_distributed, shutdown
from optikube_trainer.models import build_model
from optikube_trainer.recipe import TrainingRecipe
from optikube_trainer.training import fit

# 1797 digits: 360 test, 413 validation and exactly 1024 training samples, so that the global batch
# of 64 divides the training set and no rank needs padding duplicates
DATA = {"source": {"builtin": "digits"}, "validationSplit": 0.2299, "testSplit": 0.2}
TRAIN_SAMPLES = 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--checkpoint-dir", type=Path)
    parser.add_argument("--crash-after-epoch", type=int, default=-1)
    args = parser.parse_args()
    ctx = init_distributed(seed=7, output_dir=args.out, use_gpu=False)
    bundle = load_data(DataSpec.model_validate(DATA), seed=7, ctx=ctx)
    assert len(bundle.train) == TRAIN_SAMPLES  # type: ignore[arg-type]
    model = build_model(
        ModelSpec.model_validate({"builtin": {"name": "mlp"}, "params": {"width": 32}}), bundle
    )
    training = TrainingSpec.model_validate(
        {
            "epochs": args.epochs,
            "batchSize": args.batch_size,
            "learningRate": 0.05,
            "optimizer": {"type": "sgd", "momentum": 0.9},
            "scheduler": {"type": "cosine"},
            "regularization": {"l2": 1e-4},
        }
    )

    def crash(epoch: int, metrics: dict[str, float]) -> bool:
        if epoch == args.crash_after_epoch:
            raise RuntimeError(f"simulated crash after epoch {epoch}")
        return False

    recipe = TrainingRecipe.from_spec(training, ctx.world_size)
    result = fit(model, bundle, recipe, ctx, checkpoint_dir=args.checkpoint_dir, on_epoch_end=crash)
    if ctx.is_main:
        torch.save(
            {"weights": model.state_dict(), "curves": result.curves, "epochs_run": result.epochs_run},
            args.out / "result.pt",
        )
    shutdown(completed=True)


if __name__ == "__main__":
    main()
