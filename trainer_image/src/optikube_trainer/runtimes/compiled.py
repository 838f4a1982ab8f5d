"""The `compiled` runtime: torch.compile with inductor, set up so that int8 kernels are used."""

from __future__ import annotations

import torch
import torch._inductor.config as inductor_config
from torch import nn


def compile_for_cpu(model: nn.Module) -> nn.Module:
    """`torch.compile` for CPU inference.

    Freezing treats the weights as constants, which is what lets inductor fold batch norm and
    prepack int8 (and float) convolution and linear weights for oneDNN: without it a PT2E int8
    ResNet-18 runs no faster than float. It is set process-wide: passed only as a compile option,
    inductor's int8 convolution patterns are not registered and the compile fails on
    `onednn.qconv_prepack` (torch 2.13); nothing else in a trainer process compiles. Shapes are
    static (`dynamic=False`): each batch size gets its own graph, since the int8 convolution
    lowering fails a stride check with a symbolic batch. The first call of each batch size
    compiles (seconds to a minute)."""
    model.eval()
    inductor_config.freezing = True
    compiled = torch.compile(model, dynamic=False, options={"freezing": True})
    assert isinstance(compiled, nn.Module)
    return compiled
