"""The `pipeline` stage and the compression/quantization steps trials reuse."""

from optikube_trainer.pipeline.runner import compress_and_quantize, measure, run_pipeline
from optikube_trainer.pipeline.stages import STAGE_ORDER, enabled_stages, sample_inputs

__all__ = [
    "STAGE_ORDER",
    "compress_and_quantize",
    "enabled_stages",
    "measure",
    "run_pipeline",
    "sample_inputs",
]
