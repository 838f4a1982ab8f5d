"""The training loop: DDP, penalties, mixed precision, clipping, early stopping, checkpoints, curves."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: N817
from torch.utils.data import DataLoader, DistributedSampler

from optikube_trainer.data.bundle import DataBundle
from optikube_trainer.dist import RunContext, all_reduce_max, all_reduce_sum, any_rank, broadcast_object
from optikube_trainer.recipe import TrainingRecipe
from optikube_trainer.training.checkpoint import load_checkpoint, save_checkpoint
from optikube_trainer.training.diagnosis import diagnose
from optikube_trainer.training.guard import check_epoch
from optikube_trainer.training.optim import Penalty, build_optimizer, build_scheduler

# (model, inputs, targets) -> loss, or (loss, logits) so that training accuracy can be recorded
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
EpochCallback = Callable[[int, dict[str, float]], bool]


def cross_entropy_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(inputs), targets)


def _empty_curves() -> dict[str, dict[str, list[float]]]:
    return {"train": {"loss": [], "accuracy": []}, "validation": {"loss": [], "accuracy": []}}


@dataclass
class FitResult:
    curves: dict[str, dict[str, list[float]]]
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    pruned: bool
    diagnosis: dict[str, Any]
    best_metrics: dict[str, float] = field(default_factory=dict)  # validation metrics at best_epoch
    last_metrics: dict[str, float] = field(default_factory=dict)
    samples_per_second: float = math.nan  # training samples over all ranks per second of training steps


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DDP) else model


def _autocast(ctx: RunContext, precision: str) -> AbstractContextManager[Any]:
    if ctx.device.type != "cuda" or precision == "none":
        return nullcontext()  # mixed precision is a GPU feature; CPU runs stay in float32
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def _batches(loader: DataLoader[Any], device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    non_blocking = device.type == "cuda"
    for inputs, targets in loader:
        yield inputs.to(device, non_blocking=non_blocking), targets.to(device, non_blocking=non_blocking)


@torch.no_grad()
def evaluate(
    model: nn.Module, loader: DataLoader[Any], ctx: RunContext, *, num_classes: int | None = None
) -> dict[str, float]:
    """Accuracy, macro F1 and mean cross-entropy over every rank's shard (all ranks get the same numbers)."""
    module = unwrap(model)
    was_training = module.training
    module.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=ctx.device)
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
    seen_classes = 0
    for inputs, targets in _batches(loader, ctx.device):
        logits = module(inputs).float()
        loss_sum += F.cross_entropy(logits, targets, reduction="sum").double()
        pairs.append((targets, logits.argmax(dim=1)))
        seen_classes = max(seen_classes, logits.shape[1])
    module.train(was_training)
    classes = int(all_reduce_max(torch.tensor(num_classes or seen_classes, device=ctx.device)).item())
    confusion = torch.zeros(classes * classes, dtype=torch.float64, device=ctx.device)
    for targets, predictions in pairs:
        confusion += torch.bincount(targets * classes + predictions, minlength=classes * classes).double()
    totals = all_reduce_sum(torch.cat([confusion, loss_sum.reshape(1)]))
    matrix = totals[:-1].reshape(classes, classes)
    count = float(matrix.sum())
    if count == 0:
        return {"accuracy": math.nan, "f1": math.nan, "valLoss": math.nan, "samples": 0.0}
    true_positive = matrix.diag()
    predicted, actual = matrix.sum(dim=0), matrix.sum(dim=1)
    f1_per_class = 2 * true_positive / (predicted + actual).clamp(min=1)
    present = actual > 0  # macro F1 over the classes that occur in this split
    return {
        "accuracy": float(true_positive.sum() / count),
        "f1": float(f1_per_class[present].mean()),
        "valLoss": float(totals[-1] / count),
        "samples": count,
    }


@dataclass
class _State:
    epoch: int = 0  # next epoch to run
    curves: dict[str, dict[str, list[float]]] = field(default_factory=_empty_curves)
    best_loss: float = math.inf
    best_epoch: int = -1
    best_metrics: dict[str, float] = field(default_factory=dict)
    best_weights: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0


def _resume(directory: Path | None, ctx: RunContext) -> dict[str, Any] | None:
    state = load_checkpoint(directory, ctx)
    epoch = torch.tensor(state["loop"]["epoch"] if state else -1, device=ctx.device)
    highest = int(all_reduce_max(epoch.clone()).item())
    lowest = -int(all_reduce_max(-epoch).item())
    if highest != lowest:
        # the ranks disagree (no shared volume): everyone takes rank 0's copy
        state = broadcast_object(state)  # type: ignore[assignment]
    return state


@dataclass
class _Run:
    """What one fit() trains with: the optimizer and its schedule, the penalty, the loss scaler
    (fp16 on GPU) and the loaders, built once from the recipe."""

    model: nn.Module
    ddp_model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    penalty: Penalty
    scaler: torch.amp.GradScaler | None
    train_loader: DataLoader[Any]
    val_loader: DataLoader[Any]
    training: TrainingRecipe
    loss_fn: LossFn

    @classmethod
    def start(
        cls,
        model: nn.Module,
        bundle: DataBundle,
        training: TrainingRecipe,
        ctx: RunContext,
        epochs: int,
        loss_fn: LossFn,
    ) -> _Run:
        model.to(ctx.device)
        ddp_model: nn.Module = model
        if ctx.distributed:
            ddp_model = DDP(model, device_ids=[ctx.device] if ctx.device.type == "cuda" else None)
        optimizer = build_optimizer(model, training)
        fp16 = ctx.device.type == "cuda" and training.mixed_precision == "fp16"
        return cls(
            model=model,
            ddp_model=ddp_model,
            optimizer=optimizer,
            scheduler=build_scheduler(optimizer, training, epochs),
            penalty=Penalty(model, training.regularization.l1, training.regularization.l2),
            scaler=torch.amp.GradScaler("cuda") if fp16 else None,
            train_loader=bundle.loader("train", training.per_process_batch),
            val_loader=bundle.loader("val", training.per_process_batch),
            training=training,
            loss_fn=loss_fn,
        )

    def resume(self, directory: Path | None, ctx: RunContext) -> _State:
        saved = _resume(directory, ctx)
        if saved is None:
            return _State()
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scheduler is not None and saved.get("scheduler") is not None:
            self.scheduler.load_state_dict(saved["scheduler"])
        if self.scaler is not None and saved.get("scaler") is not None:
            self.scaler.load_state_dict(saved["scaler"])
        return _State(**saved["loop"])

    def checkpoint(self, directory: Path, state: _State, ctx: RunContext) -> None:
        save_checkpoint(
            directory,
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "loop": copy.copy(state.__dict__),
            },
            ctx,
        )

    def _loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The batch's loss and, where known, its logits (for the training accuracy)."""
        if self.loss_fn is cross_entropy_loss:
            logits = self.ddp_model(inputs)
            return F.cross_entropy(logits, targets), logits
        output: Any = self.loss_fn(self.ddp_model, inputs, targets)
        return output if isinstance(output, tuple) else (output, None)

    def _step(self, objective: torch.Tensor) -> None:
        clip = self.training.gradient_clip_norm
        if self.scaler is not None:
            self.scaler.scale(objective).backward()
            if clip > 0:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            return
        objective.backward()
        if clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.optimizer.step()

    def train_epoch(self, epoch: int, ctx: RunContext) -> tuple[float, float, float, float]:
        """One pass over the training shard: (loss, accuracy, samples over all ranks, seconds)."""
        if isinstance(self.train_loader.sampler, DistributedSampler):
            self.train_loader.sampler.set_epoch(epoch)
        self.ddp_model.train()
        sums = torch.zeros(3, dtype=torch.float64, device=ctx.device)  # loss * n, correct, n
        started = time.perf_counter()
        for inputs, targets in _batches(self.train_loader, ctx.device):
            self.optimizer.zero_grad(set_to_none=True)
            with _autocast(ctx, self.training.mixed_precision):
                loss, logits = self._loss(inputs, targets)
                objective = loss + self.penalty() if self.penalty.active else loss
            self._step(objective)
            n = targets.shape[0]
            sums[0] += loss.detach().double() * n
            sums[1] += (logits.detach().argmax(dim=1) == targets).sum() if logits is not None else math.nan
            sums[2] += n
        if ctx.device.type == "cuda":
            torch.cuda.synchronize(ctx.device)
        seconds = time.perf_counter() - started
        all_reduce_sum(sums)
        return float(sums[0] / sums[2]), float(sums[1] / sums[2]), float(sums[2]), seconds


def _judge(
    state: _State, epoch: int, metrics: dict[str, float], model: nn.Module, training: TrainingRecipe
) -> bool:
    """Record the epoch as the best so far or as one more without improvement; True when early
    stopping ends training."""
    if metrics["valLoss"] < state.best_loss - training.min_delta or state.best_epoch < 0:
        state.best_loss, state.best_epoch, state.best_metrics = metrics["valLoss"], epoch, dict(metrics)
        state.bad_epochs = 0
        if training.patience > 0:
            state.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return False
    state.bad_epochs += 1
    return training.patience > 0 and state.bad_epochs >= training.patience


def fit(
    model: nn.Module,
    bundle: DataBundle,
    training: TrainingRecipe,
    ctx: RunContext,
    *,
    epochs: int | None = None,
    loss_fn: LossFn | None = None,
    on_epoch_end: EpochCallback | None = None,
    checkpoint_dir: Path | None = None,
) -> FitResult:
    """Train ``model`` in place; wraps in DDP when world_size > 1 and returns the plain module's results.

    ``on_epoch_end(epoch, metrics)`` runs on every rank after each epoch; True from any rank stops
    training on all ranks (a prune). A NaN or infinite loss or validation metric raises
    `NonFiniteTrainingError` at the end of that epoch, on every rank. With ``checkpoint_dir``
    every epoch is checkpointed and a run started again with the same directory resumes after the
    last finished epoch.
    """
    total_epochs = epochs if epochs is not None else training.epochs
    run = _Run.start(model, bundle, training, ctx, total_epochs, loss_fn or cross_entropy_loss)
    state = run.resume(checkpoint_dir, ctx)
    stopped_early = pruned = False
    last: dict[str, float] = {}
    step_seconds, step_samples = 0.0, 0.0
    while state.epoch < total_epochs and not (stopped_early or pruned):
        epoch = state.epoch
        train_loss, train_acc, samples, seconds = run.train_epoch(epoch, ctx)
        step_seconds, step_samples = step_seconds + seconds, step_samples + samples
        val = evaluate(model, run.val_loader, ctx, num_classes=bundle.num_classes)
        learning_rate = float(run.optimizer.param_groups[0]["lr"])
        # before anything is recorded, checkpointed or reported: a NaN epoch ends the run here
        check_epoch(epoch, total_epochs, {"trainLoss": train_loss, **val}, bundle, learning_rate)
        if run.scheduler is not None:
            run.scheduler.step()
        for split, loss, accuracy in (
            ("train", train_loss, train_acc),
            ("validation", val["valLoss"], val["accuracy"]),
        ):
            state.curves[split]["loss"].append(loss)
            state.curves[split]["accuracy"].append(accuracy)
        last = {
            "epoch": float(epoch),
            "trainLoss": train_loss,
            "trainAccuracy": train_acc,
            "learningRate": learning_rate,
            **val,
        }
        if ctx.metrics is not None:
            ctx.metrics.record_epoch(epoch, last, samples / max(seconds, 1e-9), ctx.device)
        stopped_early = _judge(state, epoch, last, model, training)
        state.epoch = epoch + 1
        if checkpoint_dir is not None:
            run.checkpoint(checkpoint_dir, state, ctx)
        if on_epoch_end is not None:
            pruned = any_rank(bool(on_epoch_end(epoch, dict(last))), ctx.device)
    if stopped_early and state.best_weights is not None:
        # early stopping keeps the best validation weights, not the last ones
        model.load_state_dict(state.best_weights)
    return FitResult(
        curves=state.curves,
        best_epoch=state.best_epoch,
        epochs_run=state.epoch,
        stopped_early=stopped_early,
        pruned=pruned,
        diagnosis=diagnose(state.curves, state.best_epoch),
        best_metrics=state.best_metrics,
        last_metrics=last,
        samples_per_second=step_samples / step_seconds if step_seconds > 0 else math.nan,
    )
