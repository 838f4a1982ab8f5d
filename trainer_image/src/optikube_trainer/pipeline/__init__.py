"""The `pipeline` stage and the compression/quantization steps trials reuse."""

from optikube_trainer.pipeline.runner import compress_and_quantize, measure, run_pipeline
from optikube_trainer.pipeline.stages import STAGES, sample_inputs

__all__ = [
    "STAGES",
    "compress_and_quantize",
    "measure",
    "run_pipeline",
    "sample_inputs",
]
