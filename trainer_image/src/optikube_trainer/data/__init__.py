"""Data: built-in, generated, file, torchvision and Hugging Face sources, preprocessed into a DataBundle."""

from optikube_trainer.data.bundle import DataBundle, ShardSampler
from optikube_trainer.data.loading import (
    build_bundle,
    load_data,
    load_folds,
    load_job_data,
    load_job_folds,
    load_raw,
)
from optikube_trainer.data.raw import RawData

__all__ = [
    "DataBundle",
    "RawData",
    "ShardSampler",
    "build_bundle",
    "load_data",
    "load_folds",
    "load_job_data",
    "load_job_folds",
    "load_raw",
]
