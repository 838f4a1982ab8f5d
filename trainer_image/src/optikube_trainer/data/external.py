"""torchvision and Hugging Face data sets, loaded into memory as arrays or texts.

Downloads happen only when the spec allows them and run on rank 0 first, so that the other
ranks read the finished cache instead of racing to write it.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np

from optikube_operator.api.data import HuggingFaceSource, TorchvisionSource
from optikube_trainer.data.raw import RawData, encode_labels
from optikube_trainer.dist import main_first


def _torchvision_dataset(source: TorchvisionSource) -> Any:
    import torchvision.datasets as tv_datasets
    from torchvision.transforms import ToTensor

    cls = getattr(tv_datasets, source.name, None)
    if cls is None or not inspect.isclass(cls):
        raise ValueError(f"data.source.torchvision.name: torchvision has no data set {source.name!r}")
    parameters = inspect.signature(cls).parameters
    kwargs: dict[str, Any] = {"transform": ToTensor()}
    if "root" in parameters:
        kwargs["root"] = source.root
    if "download" in parameters:
        kwargs["download"] = source.download
    if "train" in parameters:
        kwargs["train"] = True
    elif "split" in parameters:
        kwargs["split"] = "train"
    with main_first():
        return cls(**kwargs)


def load_torchvision(source: TorchvisionSource) -> RawData:
    dataset = _torchvision_dataset(source)
    count = len(dataset) if source.max_samples is None else min(len(dataset), source.max_samples)
    images: list[np.ndarray] = []
    targets: list[Any] = []
    for i in range(count):
        image, target = dataset[i]
        images.append(np.asarray(image, dtype=np.float32))
        targets.append(int(target) if not isinstance(target, str) else target)
    labels, _ = encode_labels(targets)
    names = [str(c) for c in getattr(dataset, "classes", [])] or None
    features = np.stack(images)
    if features.ndim == 3:
        features = features[:, None]
    raw = RawData(task="image", features=features, labels=labels)
    if names and len(names) == raw.num_classes:
        raw.class_names = names
    return raw


def load_huggingface(source: HuggingFaceSource) -> RawData:
    try:
        import datasets as hf_datasets
    except ImportError as error:
        raise ImportError(
            "data.source.huggingface needs the 'datasets' package (pip install optikube[hf])"
        ) from error

    with main_first():
        if Path(source.name).is_dir():
            loaded = hf_datasets.load_from_disk(source.name)
            dataset = loaded[source.split] if isinstance(loaded, hf_datasets.DatasetDict) else loaded
        else:
            dataset = hf_datasets.load_dataset(source.name, split=source.split)
    for column, field in ((source.text_column, "textColumn"), (source.label_column, "labelColumn")):
        if column not in dataset.column_names:
            raise ValueError(
                f"data.source.huggingface.{field}: {column!r} is not a column "
                f"(columns: {dataset.column_names})"
            )
    if source.max_samples is not None:
        dataset = dataset.select(range(min(len(dataset), source.max_samples)))
    texts = [str(t) for t in dataset[source.text_column]]
    labels, names = encode_labels(dataset[source.label_column])
    return RawData(task="text", texts=texts, labels=labels, class_names=names)
