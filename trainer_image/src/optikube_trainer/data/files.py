"""Data from a mounted path: CSV (read by `csv_reader`), NPZ and image folders (one sub-folder per class)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from optikube_operator.api.data import FileSource, MissingValues
from optikube_trainer.data.csv_reader import load_csv
from optikube_trainer.data.raw import RawData, encode_labels

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_npz(source: FileSource) -> RawData:
    path = Path(source.path)
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.keys())
        for key, field in ((source.features_key, "featuresKey"), (source.target_column, "targetColumn")):
            if key not in keys:
                raise ValueError(
                    f"spec.data.source.file.{field}: {key!r} is not an array in {path} (arrays: {keys})"
                )
        features = archive[source.features_key].astype(np.float32)
        labels, names = encode_labels(archive[source.target_column])
    if features.ndim == 3:  # (N, H, W): grey images
        features = features[:, None]
    if features.ndim == 4:
        if features.shape[-1] in (1, 3) and features.shape[1] not in (1, 3):  # channels-last
            features = features.transpose(0, 3, 1, 2)
        if features.max() > 1.5:  # 0..255 pixels
            features = features / 255.0
        return RawData(task="image", features=features, labels=labels, class_names=names)
    if features.ndim != 2:
        raise ValueError(
            f"spec.data.source.file.featuresKey: expected 2-D (tabular) or 3/4-D (images), "
            f"got shape {features.shape}"
        )
    # an array's columns have no names: messages call them as numpy would index them
    columns = [f"{source.features_key}[:, {i}]" for i in range(features.shape[1])]
    return RawData(task="tabular", features=features, labels=labels, class_names=names, feature_names=columns)


def load_image_folder(source: FileSource) -> RawData:
    from PIL import Image  # installed with torchvision

    root = Path(source.path)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not classes:
        raise ValueError(f"spec.data.source.file.path: {root} needs one sub-folder per class")
    mode = "L" if source.channels == 1 else "RGB"
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            with Image.open(file) as image:
                resized = image.convert(mode).resize((source.image_size, source.image_size))
                pixels = np.asarray(resized, dtype=np.float32) / 255.0
            images.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))
            labels.append(label)
    if not images:
        raise ValueError(f"spec.data.source.file.path: no images under {root}")
    return RawData(task="image", features=np.stack(images), labels=np.array(labels), class_names=classes)


def load_file(source: FileSource, missing: MissingValues) -> RawData:
    """``missing`` (spec.data.preprocessing.missingValues) decides which CSV rows are kept."""
    if not Path(source.path).exists():
        raise ValueError(f"spec.data.source.file.path: {source.path} does not exist")
    if source.format == "csv":
        return load_csv(source, missing)
    return load_npz(source) if source.format == "npz" else load_image_folder(source)
