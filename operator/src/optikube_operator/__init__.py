"""optikube operator: the OptimizationJob API, the orchestration core, backends and the CLI."""

__version__ = "0.1.0"
GROUP = "optikube.io"
VERSION = "v1alpha1"
