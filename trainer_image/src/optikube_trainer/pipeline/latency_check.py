"""The per-stage latency check beside the accuracy budget (`compression.skipSlowerStages`).

A stage can make the model smaller and still make the artifact that ships slower: low-rank
factorization turns a layer into two calls, which a tiny CNN at batch 1 pays for; Q/DQ nodes cost
more than int8 arithmetic saves on a model of a few thousand weights. After a stage passes the
budget, rank 0 times the model before it and after it in the runtime `spec.export.runtime` ships
(`auto`: eager PyTorch and ONNX Runtime, the faster of them on each side; torch.compile is left
out, since compiling takes up to a minute per batch size for ResNet-18 on two cores), in the same
interleaved rounds, at batch 1 and 32 (or the serving batch size). A stage is slower at a batch
size when its median is higher and the rounds say so beyond chance: the after-model slower in so
many of the paired rounds that a fair coin gives that split less than once in a hundred (an exact
binomial test, as McNemar's for accuracy). Two identical ONNX Runtime sessions of the digits CNN,
timed that way twenty times at each batch size on a busy 2-core machine, had medians 0.85x to 1.18x
apart, but only two of the forty had p < 0.01. A slower stage is skipped as an over-budget stage is:
the model it started from goes on, and results.json records the numbers.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from optikube_trainer.evaluation.counting import ensure_cpu
from optikube_trainer.evaluation.latency import latency_samples
from optikube_trainer.evaluation.paired import mcnemar_exact_p
from optikube_trainer.runtimes.candidates import decoded
from optikube_trainer.runtimes.compiled import compile_for_cpu
from optikube_trainer.runtimes.onnx_model import OnnxModule, export_onnx
from optikube_trainer.runtimes.onnx_quantize import quantize_onnx, session_config

CHECK_RUNS = 50
SLOWER_P_VALUE = 0.01
RUNTIME_NAMES = {"eager": "eager PyTorch", "compiled": "torch.compile", "onnx": "ONNX Runtime"}


def check_runtimes(requested: str) -> tuple[str, ...]:
    """The runtimes a stage is timed in: the one asked for, or for `auto` eager and ONNX Runtime."""
    return ("eager", "onnx") if requested == "auto" else (requested,)


def check_sizes(serving_batch: int | None) -> tuple[int, ...]:
    """What `auto` weighs: the serving batch size where one is set, else batch 1 and 32."""
    return (serving_batch,) if serving_batch else (1, 32)


@dataclass
class BatchVerdict:
    """One batch size: the fastest runtime on each side, their medians, and the paired rounds."""

    size: int
    runtime_before: str
    runtime_after: str
    before_ms: float
    after_ms: float
    slower_rounds: int
    rounds: int

    @property
    def p_value(self) -> float:
        return mcnemar_exact_p(self.slower_rounds, self.rounds - self.slower_rounds)

    @property
    def slower(self) -> bool:
        return self.after_ms > self.before_ms and self.p_value < SLOWER_P_VALUE

    @property
    def speedup(self) -> float:
        return self.before_ms / self.after_ms if self.after_ms > 0 else float("inf")

    def to_contract(self) -> dict[str, Any]:
        return {
            "runtimeBefore": self.runtime_before,
            "runtimeAfter": self.runtime_after,
            "beforeMs": round(self.before_ms, 4),
            "afterMs": round(self.after_ms, 4),
            "speedup": round(self.speedup, 3),
            "slowerRounds": self.slower_rounds,
            "rounds": self.rounds,
            "pValue": round(self.p_value, 4),
        }

    def words(self) -> str:
        where = RUNTIME_NAMES.get(self.runtime_after, self.runtime_after)
        if self.runtime_before != self.runtime_after:
            where = f"{where} (before it: {RUNTIME_NAMES.get(self.runtime_before, self.runtime_before)})"
        return (
            f"batch {self.size} in {where}, {self.before_ms:.4g} to {self.after_ms:.4g} ms"
            f" ({self.speedup:.2f}x; slower in {self.slower_rounds} of {self.rounds} paired rounds,"
            f" p {self.p_value:.2g})"
        )


@dataclass
class LatencyCheck:
    """What the check measured for one stage; `slower` decides whether the stage is skipped."""

    batches: list[BatchVerdict] = field(default_factory=list)
    not_measured: dict[str, str] = field(default_factory=dict)  # runtime -> why it was not timed

    @property
    def slower(self) -> bool:
        return any(batch.slower for batch in self.batches)

    def reason(self) -> str:
        slower = [batch.words() for batch in self.batches if batch.slower]
        return "the stage made the model slower at " + "; ".join(slower)

    def to_contract(self) -> dict[str, Any]:
        record: dict[str, Any] = {f"batch{b.size}": b.to_contract() for b in self.batches}
        record["slower"] = self.slower
        if self.slower:
            record["reason"] = self.reason()
        if self.not_measured:
            record["notMeasured"] = dict(self.not_measured)
        return record


@dataclass(frozen=True)
class StageModels:
    """The model before a stage and after it; for the quantization stage in ONNX Runtime, the INT8
    form ONNX Runtime would ship, made from the float model before (`onnx_method`)."""

    before: nn.Module
    after: nn.Module
    onnx_method: str | None = None
    calibration: Callable[[], Iterable[Tensor]] | None = None


def _runnable(
    runtime: str, models: StageModels, example: Tensor, directory: Path
) -> tuple[nn.Module, nn.Module]:
    """The model before and after the stage as `runtime` runs them."""
    if runtime == "eager":
        return models.before, models.after
    if runtime == "compiled":
        return compile_for_cpu(copy.deepcopy(models.before)), compile_for_cpu(copy.deepcopy(models.after))
    directory.mkdir(parents=True, exist_ok=True)
    export_onnx(decoded(models.before), example, directory / "before.onnx")
    if models.onnx_method is None:
        export_onnx(decoded(models.after), example, directory / "after.onnx")
        return OnnxModule(directory / "before.onnx"), OnnxModule(directory / "after.onnx")
    calibration = models.calibration() if models.calibration is not None else None
    quantize_onnx(directory / "before.onnx", directory / "after.onnx", models.onnx_method, calibration)
    after = OnnxModule(directory / "after.onnx", config=session_config(models.onnx_method))
    return OnnxModule(directory / "before.onnx"), after


def check_stage_latency(
    models: StageModels,
    example: Tensor,
    *,
    runtimes: tuple[str, ...],
    sizes: tuple[int, ...],
    directory: Path,
    runs: int = CHECK_RUNS,
) -> LatencyCheck:
    """Time the model before and after a stage in `runtimes`, all in the same rounds (call on rank
    0: CPU only). A runtime that cannot run either model is left out and named."""
    cpu = StageModels(
        ensure_cpu(copy.deepcopy(models.before)).eval(),
        ensure_cpu(copy.deepcopy(models.after)).eval(),
        models.onnx_method,
        models.calibration,
    )
    timed: dict[str, nn.Module] = {}
    check = LatencyCheck()
    for runtime in runtimes:
        try:
            before, after = _runnable(runtime, cpu, example, directory / runtime)
            for model in (before, after):
                model(example[:1])  # fails here rather than in the middle of the timing
        except Exception as error:
            check.not_measured[runtime] = f"{type(error).__name__}: {str(error)[:200]}"
            continue
        timed[f"{runtime}/before"], timed[f"{runtime}/after"] = before, after
    if not timed:
        return check
    samples = latency_samples(timed, example, batch_sizes=sizes, runs=runs)
    measured = [r for r in runtimes if r not in check.not_measured]
    for size in sizes:

        def median(runtime: str, side: str, size: int = size) -> float:
            return statistics.median(samples[f"{runtime}/{side}"][size])

        fastest_before = min(measured, key=lambda r: median(r, "before"))
        fastest_after = min(measured, key=lambda r: median(r, "after"))
        pairs = zip(
            samples[f"{fastest_before}/before"][size], samples[f"{fastest_after}/after"][size], strict=True
        )
        slower_rounds = sum(after > before for before, after in pairs)
        check.batches.append(
            BatchVerdict(
                size,
                fastest_before,
                fastest_after,
                median(fastest_before, "before"),
                median(fastest_after, "after"),
                slower_rounds,
                runs,
            )
        )
    return check
