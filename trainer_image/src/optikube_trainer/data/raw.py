"""Raw data before splitting: arrays (images, tabular), a table to encode, or texts, with integer labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from optikube_trainer.data.tabular import Table

Task = Literal["image", "tabular", "text"]


@dataclass
class RawData:
    task: Task
    labels: np.ndarray  # int64, shape (N,)
    features: np.ndarray | None = None  # float32: (N, C, H, W) for images, (N, F) for tabular
    texts: list[str] | None = None
    class_names: list[str] = field(default_factory=list)
    # a CSV's columns before encoding: imputation and encoders are fitted on the training rows only
    table: Table | None = None
    # what each column of ``features`` is (tabular), so that messages can name it
    feature_names: list[str] | None = None

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels).astype(np.int64)
        if self.features is not None:
            self.features = np.asarray(self.features, dtype=np.float32)
            if len(self.features) != len(self.labels):
                raise ValueError(f"{len(self.features)} samples but {len(self.labels)} labels")
        if self.texts is not None and len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")
        if self.table is not None and len(self.table) != len(self.labels):
            raise ValueError(f"{len(self.table)} table rows but {len(self.labels)} labels")
        if self.features is None and self.texts is None and self.table is None:
            raise ValueError("raw data needs features, a table or texts")
        if not self.class_names:
            self.class_names = [str(c) for c in range(self.num_classes)]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0


def encode_labels(values: np.ndarray | list[object]) -> tuple[np.ndarray, list[str]]:
    """Map arbitrary label values to 0..K-1 (sorted, so the mapping is the same on every rank)."""
    array = np.asarray(values)
    classes, codes = np.unique(array, return_inverse=True)
    return codes.astype(np.int64), [str(c) for c in classes]
