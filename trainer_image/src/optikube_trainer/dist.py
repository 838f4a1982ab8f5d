"""The torchrun environment: process group setup and the collective helpers the stages use.

Works with one process (no process group is created, every helper is the identity) and with
several (gloo on CPU, NCCL on GPU). Every collective helper must be called by all ranks.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.distributed as torch_dist

if TYPE_CHECKING:
    from optikube_trainer.progress import ProgressSender
    from optikube_trainer.prometheus import TrainerMetrics

log = logging.getLogger(__name__)

# How long the other ranks wait at the end for rank 0, which alone evaluates, exports and writes
# results.json (minutes on a large model): torchrun stops them sooner if rank 0 fails.
FINISH_WAIT = timedelta(hours=24)
_finish_group: torch_dist.ProcessGroup | None = None


@dataclass
class RunContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    seed: int
    output_dir: Path
    progress: ProgressSender | None = None
    trial: int | None = None
    metrics: TrainerMetrics | None = None  # rank 0's Prometheus gauges, when served
    extras: dict[str, object] = field(default_factory=dict)

    def progress_sender(self) -> ProgressSender:
        """The run's one sender of progress to the operator, made on first use."""
        if self.progress is None:
            from optikube_trainer.progress import ProgressSender

            self.progress = ProgressSender(rank=self.rank, trial=self.trial, output_dir=self.output_dir)
        return self.progress

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def backend(self) -> str:
        return "nccl" if self.device.type == "cuda" else "gloo"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def choose_device(local_rank: int, *, use_gpu: bool | None = None) -> torch.device:
    gpu = torch.cuda.is_available() if use_gpu is None else use_gpu
    if gpu:
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def init_distributed(
    *, seed: int, output_dir: Path | str, use_gpu: bool | None = None, timeout_s: float = 600.0
) -> RunContext:
    """Read RANK/WORLD_SIZE/LOCAL_RANK (set by torchrun) and join the process group when needed."""
    rank = _env_int("RANK", 0)
    world_size = _env_int("WORLD_SIZE", 1)
    local_rank = _env_int("LOCAL_RANK", 0)
    device = choose_device(local_rank, use_gpu=use_gpu)
    if world_size > 1 and not torch_dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch_dist.init_process_group(
            backend=backend,
            rank=rank,
            world_size=world_size,
            timeout=timedelta(seconds=timeout_s),
            device_id=device if device.type == "cuda" else None,
        )
        global _finish_group
        # a group of its own, so that the final wait has its own timeout (see shutdown)
        _finish_group = torch_dist.new_group(backend="gloo", timeout=FINISH_WAIT)
    if device.type == "cpu":
        # torchrun starts several processes on one machine: sharing the cores avoids oversubscription
        # the cores this process may run on (a cpuset-limited pod sees fewer than the node has)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        torch.set_num_threads(max(1, cores // max(1, _env_int("LOCAL_WORLD_SIZE", world_size))))
    seed_everything(seed)
    out = Path(output_dir)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    return RunContext(
        rank=rank, world_size=world_size, local_rank=local_rank, device=device, seed=seed, output_dir=out
    )


def shutdown(*, completed: bool) -> None:
    """Leave the process group. After a completed run every rank first waits for the others:
    a rank that tore down its gloo connections while rank 0 was still writing its results aborted
    ("terminate called without an active exception", SIGABRT), and torchrun then failed the whole
    run. The wait is a barrier on a gloo group with its own timeout (`FINISH_WAIT`), not the
    process group's 10 minutes, which a monitored barrier keeps for every rank but rank 0.
    After a failure there is no barrier: the other ranks may be stuck in a collective."""
    global _finish_group
    if not torch_dist.is_initialized():
        return
    if completed and _finish_group is not None:
        try:
            torch_dist.barrier(group=_finish_group)
        except RuntimeError as error:  # a rank that never arrives: still leave cleanly
            log.warning("ranks did not finish together: %s", error)
    torch_dist.destroy_process_group()
    _finish_group = None


def local_context(seed: int = 0, output_dir: Path | str = ".", device: str = "cpu") -> RunContext:
    """A one-process context for library use and tests (no process group)."""
    return RunContext(
        rank=0,
        world_size=1,
        local_rank=0,
        device=torch.device(device),
        seed=seed,
        output_dir=Path(output_dir),
    )


def _active() -> bool:
    return torch_dist.is_available() and torch_dist.is_initialized() and torch_dist.get_world_size() > 1


def barrier() -> None:
    if _active():
        torch_dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks in place (and return it)."""
    if _active():
        torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.SUM)
    return tensor


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    if _active():
        torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.SUM)
        tensor /= torch_dist.get_world_size()
    return tensor


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    if _active():
        torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.MAX)
    return tensor


def broadcast_object(value: object, src: int = 0) -> object:
    """Every rank returns rank ``src``'s value (any picklable object)."""
    if not _active():
        return value
    holder = [value]
    torch_dist.broadcast_object_list(holder, src=src)
    return holder[0]


def broadcast_flag(flag: bool, device: torch.device, src: int = 0) -> bool:
    """Every rank returns rank ``src``'s boolean; cheap enough to call once per epoch."""
    if not _active():
        return flag
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    torch_dist.broadcast(tensor, src=src)
    return bool(tensor.item())


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when at least one rank passed True."""
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    return bool(all_reduce_max(tensor).item())


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. to write a cache), the others after it finished."""
    is_main = not _active() or torch_dist.get_rank() == 0
    if not is_main:
        barrier()
    try:
        yield
    finally:
        if is_main:
            barrier()
