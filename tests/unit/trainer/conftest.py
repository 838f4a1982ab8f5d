"""Fixtures for the in-process technique checks."""

from __future__ import annotations

import pytest
import torch
from _tiny import make_blobs
from torch import Tensor

# Tiny models gain nothing from intra-op threads, and on a busy machine thread oversubscription
# makes them ~100x slower.
torch.set_num_threads(1)


@pytest.fixture
def blobs() -> tuple[Tensor, Tensor]:
    return make_blobs()
