"""The built-in models' `params`: their names, kinds and defaults, the one table of them.

`optikube validate`, the CRD's CEL rule and the search-space checks read the names from here, and
the trainer builds each built-in model from the values `resolve_builtin_params` returns; a unit
test keeps this table equal to the trainer builders' keyword arguments. `training.regularization.dropout`
is not a param: it sets the dropout of every model.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

BuiltinName = Literal["mlp", "cnn", "textTransformer"]


@dataclass(frozen=True)
class ModelParam:
    name: str  # as written under model.params (camelCase)
    default: int | bool
    description: str


BUILTIN_MODEL_PARAMS: dict[str, tuple[ModelParam, ...]] = {
    "mlp": (
        ModelParam("width", 64, "units of each hidden layer"),
        ModelParam("depth", 2, "hidden layers"),
    ),
    "cnn": (
        ModelParam("channels", 16, "channels of the first block, doubled per block"),
        ModelParam("depth", 2, "convolutional blocks"),
        ModelParam("width", 64, "units of the head's hidden layer"),
        ModelParam("batchNorm", True, "batch normalization after each convolution"),
    ),
    "textTransformer": (
        ModelParam("width", 64, "embedding width"),
        ModelParam("depth", 2, "encoder layers"),
        ModelParam("heads", 4, "attention heads; must divide width"),
        ModelParam("ffMultiplier", 2, "feed-forward width as a multiple of width"),
    ),
}


def param_names(model: str) -> list[str]:
    return [param.name for param in BUILTIN_MODEL_PARAMS[model]]


def describe_params(model: str) -> str:
    """`width (64), depth (2)`: what a model's description and error messages list."""
    return ", ".join(f"{p.name} ({str(p.default).lower()})" for p in BUILTIN_MODEL_PARAMS[model])


# Names other libraries use for the same thing (the docs once listed dim and layers).
SYNONYMS = {"dim": "width", "hidden": "width", "hiddenSize": "width", "layers": "depth", "numLayers": "depth"}


def unknown_param_message(model: str, name: str) -> str:
    known = param_names(model)
    close = difflib.get_close_matches(name, known, n=1) or [
        synonym for synonym in (SYNONYMS.get(name),) if synonym in known
    ]
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{name} is not a parameter of the built-in {model} (it takes {', '.join(known)}){hint}"


def _coerced(param: ModelParam, value: Any) -> tuple[Any, str | None]:
    """(value as the builder takes it, problem or None)."""
    if isinstance(param.default, bool):
        if not isinstance(value, bool):
            return value, f"expected true or false, got {value!r}"
        return value, None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # search spaces may hand integers over as floats
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        return value, f"expected a positive integer, got {value!r}"
    return value, None


def builtin_param_errors(model: str, params: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(param name, problem) for each param the built-in `model` does not take or accept."""
    table = {param.name: param for param in BUILTIN_MODEL_PARAMS[model]}
    resolved: dict[str, Any] = {name: param.default for name, param in table.items()}
    for name, value in params.items():
        param = table.get(name)
        if param is None:
            yield name, unknown_param_message(model, name)
            continue
        coerced, problem = _coerced(param, value)
        if problem is not None:
            yield name, problem
        else:
            resolved[name] = coerced
    if model == "textTransformer" and resolved["width"] % resolved["heads"]:
        yield "heads", f"{resolved['heads']} must divide width ({resolved['width']})"


def resolve_builtin_params(model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Every param of the built-in `model`: the given ones, coerced, and the defaults; raises
    ValueError naming `model.params.<name>` for a param it does not take or accept."""
    for name, problem in builtin_param_errors(model, params):
        raise ValueError(f"model.params.{name}: {problem}")
    table = {param.name: param for param in BUILTIN_MODEL_PARAMS[model]}
    resolved: dict[str, Any] = {name: param.default for name, param in table.items()}
    resolved.update({name: _coerced(table[name], value)[0] for name, value in params.items()})
    return resolved
