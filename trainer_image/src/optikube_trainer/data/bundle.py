"""DataBundle: the three splits plus what models need to size themselves, and its loaders."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

SPLITS = ("train", "val", "test")


class ShardSampler(Sampler[int]):
    """Rank r sees samples r, r+W, r+2W, ... in order: disjoint, complete, no padding duplicates.

    Used for evaluation, where every sample must count exactly once over all ranks.
    """

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


@dataclass
class DataBundle:
    train: Dataset[tuple[torch.Tensor, torch.Tensor]]
    val: Dataset[tuple[torch.Tensor, torch.Tensor]]
    test: Dataset[tuple[torch.Tensor, torch.Tensor]]
    num_classes: int
    input_shape: tuple[int, ...]
    task: str  # "image" | "tabular" | "text"
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    vocab_size: int | None = None  # text only
    pad_id: int = 0  # text only
    class_names: list[str] = field(default_factory=list)
    fold: int | None = None
    # what each input feature is (tabular: a column, or a column's category after encoding)
    feature_names: list[str] | None = None
    # what loading and preprocessing found and chose: results.json's `data`
    summary: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> Dataset[tuple[torch.Tensor, torch.Tensor]]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        dataset: Dataset[tuple[torch.Tensor, torch.Tensor]] = getattr(self, name)
        return dataset

    def samples(self, name: str) -> int:
        """How many samples the split holds."""
        return len(self.split(name))  # type: ignore[arg-type]

    def loader(
        self, split: str, batch_size: int, *, shuffle: bool | None = None, distributed: bool = True
    ) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        """A loader over one split.

        ``batch_size`` is this process's batch (the recipe's per-process share of the global one).
        distributed=True: train uses a seeded DistributedSampler (call ``loader.sampler.set_epoch``),
        val/test a ShardSampler, so ranks see disjoint shards. distributed=False: this rank sees the
        whole split.
        """
        dataset = self.split(split)
        shuffle = (split == "train") if shuffle is None else shuffle
        if not distributed:
            generator = torch.Generator().manual_seed(self.seed)
            return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)
        sampler: Sampler[int]
        if split == "train":
            # even with one process: the same seeded permutation makes 1- and N-process runs comparable
            sampler = DistributedSampler(
                dataset, num_replicas=self.world_size, rank=self.rank, shuffle=shuffle, seed=self.seed
            )
        else:
            sampler = ShardSampler(self.samples(split), self.rank, self.world_size)
        # pinned host memory lets the copies to the GPU overlap with compute
        return DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, pin_memory=torch.cuda.is_available()
        )
