"""The `compiled` runtime: torch.compile with inductor, set up so that int8 kernels are used."""

from __future__ import annotations

import torch
from torch import nn


def compile_for_cpu(model: nn.Module) -> nn.Module:
    """`torch.compile` for CPU inference.

    `freezing` treats the weights as constants, which is what lets inductor fold batch norm and
    prepack int8 (and float) convolution and linear weights for oneDNN: without it a PT2E int8
    ResNet-18 runs no faster than float. Shapes are static (`dynamic=False`): each batch size gets
    its own graph, since inductor's int8 convolution lowering fails a stride check with a symbolic
    batch in torch 2.13. The first call of each batch size compiles (seconds to a minute)."""
    model.eval()
    compiled = torch.compile(model, dynamic=False, options={"freezing": True})
    assert isinstance(compiled, nn.Module)
    return compiled
