"""One DDP training step of the trainer's digits CNN over NCCL in bf16, under torchrun: every rank
checks that the process group is NCCL, that the forward ran in bfloat16 under the trainer's own
autocast, and that the gradients DDP all-reduced are the same on every rank. Rank 0 writes what it
saw to the JSON file given as the first argument.

The trainer joins a process group only with two or more processes, so on a machine with one GPU
this worker is where NCCL is exercised (a process group of one is valid for NCCL; two processes on
one GPU are not).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from optikube_operator.api.data import DataSpec
from optikube_operator.api.model import ModelSpec
from optikube_trainer.data import load_data
from optikube_trainer.dist import RunContext
from optikube_trainer.models import build_model
from optikube_trainer.training.loop import _autocast


def main(output: Path) -> None:
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    device = torch.device("cuda", local_rank)
    dist.init_process_group(
        "nccl", rank=rank, world_size=world, timeout=timedelta(minutes=5), device_id=device
    )
    ctx = RunContext(
        rank=rank, world_size=world, local_rank=local_rank, device=device, seed=0, output_dir=output.parent
    )
    bundle = load_data(DataSpec.model_validate({"source": {"builtin": "digits"}}), seed=0, ctx=ctx)
    torch.manual_seed(0)
    model = build_model(ModelSpec.model_validate({"builtin": {"name": "cnn"}}), bundle).to(device)
    ddp = DistributedDataParallel(model, device_ids=[local_rank])
    inputs, targets = next(iter(bundle.loader("train", 64, shuffle=False, distributed=True)))
    inputs, targets = inputs.to(device), targets.to(device)
    with _autocast(ctx, "bf16"):
        logits = ddp(inputs)
        loss = torch.nn.functional.cross_entropy(logits, targets)
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]).float()
    gathered = [torch.empty_like(grads) for _ in range(world)]
    dist.all_gather(gathered, grads)
    seen = {
        "backend": dist.get_backend(),
        "worldSize": world,
        "logitsDtype": str(logits.dtype),
        "gradientsEqualAcrossRanks": all(torch.allclose(g, gathered[0], atol=1e-6) for g in gathered),
        "loss": float(loss),
        "device": torch.cuda.get_device_name(device),
    }
    if rank == 0:
        output.write_text(json.dumps(seen))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
