"""Measuring models: metrics, parameters, MACs, bytes on disk and latency."""

from optikube_trainer.evaluation.counting import count_macs, stored_parameters
from optikube_trainer.evaluation.latency import measure_latency
from optikube_trainer.evaluation.measure import Measurement, measure_model
from optikube_trainer.evaluation.size import serialized_bytes, state_dict_bytes, weight_bytes

__all__ = [
    "Measurement",
    "count_macs",
    "measure_latency",
    "measure_model",
    "serialized_bytes",
    "state_dict_bytes",
    "stored_parameters",
    "weight_bytes",
]
