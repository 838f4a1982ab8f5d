"""User models by import path ``package.module:function`` (installed in the user's image)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from torch import nn


def import_builder(path: str) -> Callable[..., Any]:
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"model.importPath: cannot import {module_name!r}: {error}") from None
    builder = getattr(module, attribute, None)
    if not callable(builder):
        raise ValueError(f"model.importPath: {module_name} has no callable {attribute!r}")
    return builder


def build_user_model(path: str, params: dict[str, Any], context: dict[str, Any]) -> nn.Module:
    """Call the builder with the user's params plus whichever of ``context`` it accepts.

    ``context`` holds input_shape, num_classes, task, vocab_size and dropout.
    """
    builder = import_builder(path)
    signature = inspect.signature(builder)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    kwargs = {k: v for k, v in context.items() if takes_any or k in signature.parameters}
    kwargs.update(params)
    model = builder(**kwargs)
    if not isinstance(model, nn.Module):
        raise ValueError(f"model.importPath: {path} returned {type(model).__name__}, not a torch.nn.Module")
    return model
