"""Search-space paths: which spec fields can be tuned, and setting sampled values into a spec.

A search-space key is a dotted path of camelCase field names into the spec (`training.learningRate`,
`compression.pruning.sparsity`); under a model's `params` any name its builder takes
(`model.params.width`; a built-in model's are listed in `api.model_params`). The tunable fields are
derived from the models, so a new field is tunable as soon as it exists.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

# Subtrees that describe the search itself or where the job runs, not the model: never tunable.
NOT_TUNABLE = frozenset(
    {
        "suspend",
        "seed",
        "objectives",
        "tuning",
        "resources",
        "artifacts",
        "cleanup",
        "data.source",
    }
)
# Free-form builder arguments: any key below these prefixes is tunable.
MODEL_PARAMS_PREFIX = "model.params."
STUDENT_PARAMS_PREFIX = "compression.distillation.student.params."
FREE_PARAM_PREFIXES = (MODEL_PARAMS_PREFIX, STUDENT_PARAMS_PREFIX)

ScalarKind = Literal["float", "int", "bool", "str"]


@dataclass(frozen=True)
class TunableField:
    path: str
    kind: ScalarKind
    choices: tuple[Any, ...] | None  # the allowed values of an enum field


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """(inner type, whether None is allowed)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0], len(args) < len(get_args(annotation))
    return annotation, False


def _scalar_kind(annotation: Any) -> tuple[ScalarKind, tuple[Any, ...] | None] | None:
    if get_origin(annotation) is Literal:
        choices = get_args(annotation)
        kind: ScalarKind = "str" if all(isinstance(c, str) for c in choices) else "int"
        return kind, choices
    for python_type, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")):
        if annotation is python_type:
            return name, None  # type: ignore[return-value]
    return None


def _alias(model: type[BaseModel], name: str) -> str:
    return model.model_fields[name].alias or name


def _walk(model: type[BaseModel], prefix: str) -> Iterator[TunableField]:
    for name, info in model.model_fields.items():
        path = prefix + _alias(model, name)
        if path in NOT_TUNABLE:
            continue
        inner, _ = _unwrap_optional(info.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            yield from _walk(inner, path + ".")
            continue
        scalar = _scalar_kind(inner)
        if scalar is not None:
            yield TunableField(path, scalar[0], scalar[1])


def tunable_fields(spec_model: type[BaseModel]) -> dict[str, TunableField]:
    """Every scalar spec field a search-space key may name, by dotted camelCase path."""
    return {field.path: field for field in _walk(spec_model, "")}


def is_free_param(path: str) -> bool:
    return any(path.startswith(prefix) and len(path) > len(prefix) for prefix in FREE_PARAM_PREFIXES)


def missing_block(spec_model: type[BaseModel], spec: dict[str, Any], path: str) -> str | None:
    """The dotted path of an optional block that `path` lies in but `spec` does not set, if any.

    Tuning `compression.pruning.sparsity` makes no sense without a `compression.pruning` block:
    the block is what turns weight pruning on. Blocks with defaults (training.regularization) are fine.
    """
    model: type[BaseModel] | None = spec_model
    node: Any = spec
    segments = path.split(".")
    for depth, segment in enumerate(segments[:-1]):
        if model is None:  # inside free-form params: anything goes
            return None
        name = next((n for n, f in model.model_fields.items() if (f.alias or n) == segment), None)
        if name is None:
            return None
        inner, optional = _unwrap_optional(model.model_fields[name].annotation)
        present = isinstance(node, dict) and isinstance(node.get(segment), dict)
        if optional and not present:
            return ".".join(segments[: depth + 1])
        node = node.get(segment) if isinstance(node, dict) else None
        model = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None
    return None


def apply_params(spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of the camelCase `spec` with each dotted-path parameter set to its value.

    Missing intermediate objects are created (model.params.<name>, or a defaulted block such as
    training.regularization that the user did not write); a path through a scalar is an error.
    """
    result = copy.deepcopy(spec)
    for path, value in params.items():
        segments = path.split(".")
        node = result
        for depth, segment in enumerate(segments[:-1]):
            child = node.setdefault(segment, {})
            if not isinstance(child, dict):
                walked = ".".join(segments[: depth + 1])
                raise ValueError(f"cannot set {path}: {walked} is not an object")
            node = child
        node[segments[-1]] = copy.deepcopy(value)
    return result
