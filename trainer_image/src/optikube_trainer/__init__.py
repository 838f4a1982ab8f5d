"""optikube trainer: techniques that really change a model, and the stages torchrun launches."""

__version__ = "0.1.0"
