"""Training: the loop (fit/evaluate), its building blocks, and the trial stage."""

from optikube_trainer.training.guard import NonFiniteTrainingError
from optikube_trainer.training.loop import FitResult, LossFn, cross_entropy_loss, evaluate, fit, unwrap

__all__ = ["FitResult", "LossFn", "NonFiniteTrainingError", "cross_entropy_loss", "evaluate", "fit", "unwrap"]
