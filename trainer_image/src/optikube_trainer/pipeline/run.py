"""What every stage of one pipeline run works with."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from optikube_operator.api.runconfig import RunConfig
from optikube_trainer.data import DataBundle
from optikube_trainer.dist import RunContext
from optikube_trainer.pipeline.checkpoint import PipelineCheckpoint
from optikube_trainer.recipe import Recipe


@dataclass(frozen=True)
class PipelineRun:
    """The run config and its recipe, the checkpoint the stages record into, the data, the example
    inputs models are saved and timed with, and the process's context."""

    config: RunConfig
    recipe: Recipe
    state: PipelineCheckpoint
    bundle: DataBundle
    example: Tensor
    ctx: RunContext
