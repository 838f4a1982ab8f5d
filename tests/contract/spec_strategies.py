"""Hypothesis strategies that write OptimizationJob specs the way users do, derived from the API models.

Every field of every model is drawn from its annotation and bounds (Literal -> one of its values,
int/float -> within ge/gt/le/lt, str -> matching its pattern, optional blocks present or not) and a
field that has a default is left out half of the time, so the generated YAML exercises the
documented defaults as much as the written values. The few rules no field annotation expresses
(exactly one model or data source, unique objectives, rules across blocks) are then satisfied by
small repairs, and what still breaks a rule is filtered out with `assume`.
"""

from __future__ import annotations

import functools
import math
import re
import types
from typing import Any, Literal, Union, get_args, get_origin

from hypothesis import assume
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from optikube_operator.api import OptimizationJobSpec
from optikube_operator.api.data import DataSource
from optikube_operator.api.model import ModelSpec
from optikube_operator.api.model_params import BUILTIN_MODEL_PARAMS
from optikube_operator.api.params import tunable_fields
from optikube_operator.api.validation import search_space_errors, validate_spec

# Models whose fields are alternatives: exactly one is written.
ALTERNATIVES: dict[type[BaseModel], tuple[str, ...]] = {
    ModelSpec: ("builtin", "torchvision", "huggingface", "import_path"),
    DataSource: ("builtin", "synthetic", "file", "torchvision", "huggingface"),
}
# Drawn by `tuning_blocks` from the rest of the spec, not field by field.
SPECIAL_FIELDS = {(OptimizationJobSpec, "tuning")}
# Keep generated specs light: a trainer run is never started from them.
INT_CAP = 10_000
FREE_VALUES = st.one_of(st.integers(1, 64), st.sampled_from(["relu", "gelu"]), st.booleans())
IDENTIFIER = st.from_regex(r"\A[a-z][a-zA-Z0-9]{0,11}\Z")
QUANTITIES = st.sampled_from(["1", "500m", "2Gi", "512Mi", 4, "1.5"])
TUNABLE = tunable_fields(OptimizationJobSpec)


def _bounds(info: FieldInfo) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in info.metadata:
        for name in ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern"):
            value = getattr(item, name, None)
            if value is not None:
                found[name] = value
    return found


def _number(kind: type, bounds: dict[str, Any]) -> st.SearchStrategy[Any]:
    if kind is int:
        low = bounds.get("ge", bounds.get("gt", -INT_CAP - 1) + 1)
        high = bounds.get("le", bounds.get("lt", INT_CAP + 1) - 1)
        return st.integers(int(low), int(min(high, max(low, 0) + INT_CAP)))
    low = bounds.get("ge", bounds.get("gt", -1e3))
    high = bounds.get("le", bounds.get("lt", 1e3))
    return st.floats(
        low,
        min(high, low + 1e3),
        exclude_min="gt" in bounds,
        exclude_max="lt" in bounds,
        allow_nan=False,
        allow_infinity=False,
    )


def _string(bounds: dict[str, Any]) -> st.SearchStrategy[str]:
    limit = min(int(bounds.get("max_length", 24)), 24)
    pattern = bounds.get("pattern")
    if pattern is None:
        return st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=limit)
    return st.from_regex(pattern, fullmatch=True).filter(lambda s: len(s) <= limit)


def _strategy(annotation: Any, info: FieldInfo) -> st.SearchStrategy[Any]:
    origin = get_origin(annotation)
    bounds = _bounds(info)
    if origin in (Union, types.UnionType):
        options = [arg for arg in get_args(annotation) if arg is not type(None)]
        return st.one_of(*[_strategy(option, info) for option in options])
    if origin is Literal:
        return st.sampled_from(get_args(annotation))
    if origin is list:
        (item,) = get_args(annotation)
        size = min(int(bounds.get("max_length", 3)), 3)
        return st.lists(
            _strategy(item, FieldInfo()), min_size=int(bounds.get("min_length", 0)), max_size=size
        )
    if origin is dict:
        _, value = get_args(annotation)
        values = QUANTITIES if "Quantity" in repr(value) or "int | str" in repr(value) else FREE_VALUES
        if value is str:
            values = IDENTIFIER
        return st.dictionaries(IDENTIFIER, values, max_size=min(int(bounds.get("max_length", 3)), 3))
    if get_origin(annotation) is not None and "Annotated" in repr(origin):  # pragma: no cover
        return _strategy(get_args(annotation)[0], info)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_dicts(annotation)
    if annotation is bool:
        return st.booleans()
    if annotation in (int, float):
        return _number(annotation, bounds)
    if annotation is str:
        return _string(bounds)
    return FREE_VALUES


@functools.cache
def _field(model: type[BaseModel], name: str) -> tuple[str, st.SearchStrategy[Any]]:
    info = model.model_fields[name]
    return info.alias or name, _strategy(info.annotation, info)


@functools.cache
def model_dicts(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """A camelCase dict for ``model``: required fields always, the others present or left out."""
    chosen = ALTERNATIVES.get(model)
    names = [name for name in model.model_fields if (model, name) not in SPECIAL_FIELDS]
    required = dict(_field(model, n) for n in names if model.model_fields[n].is_required())
    optional = dict(_field(model, n) for n in names if not model.model_fields[n].is_required())
    if chosen is None:
        return st.fixed_dictionaries(required, optional=optional)
    others = {
        key: value for key, value in optional.items() if key not in {_field(model, c)[0] for c in chosen}
    }
    return st.one_of(
        *[
            st.fixed_dictionaries(
                {**required, _field(model, alternative)[0]: _field(model, alternative)[1]}, optional=others
            )
            for alternative in chosen
        ]
    )


def _get(spec: dict[str, Any], path: str) -> Any:
    node: Any = spec
    for segment in path.split("."):
        if not isinstance(node, dict) or segment not in node:
            return None
        node = node[segment]
    return node


def _repair(spec: dict[str, Any]) -> dict[str, Any]:
    """Satisfy the rules that span blocks, which field-by-field drawing rarely gets right."""
    data = spec["data"]
    if data.get("validationSplit", 0.2) + data.get("testSplit", 0.2) >= 0.9:
        data["testSplit"] = 0.1
    text = data.get("preprocessing", {}).get("text")
    if (
        isinstance(text, dict)
        and text.get("tokenizer") == "pretrained"
        and "huggingface" not in spec["model"]
    ):
        text["tokenizer"] = "word"
    quantization = spec.get("quantization")
    if isinstance(quantization, dict):
        if quantization["method"] == "qat":
            quantization.setdefault("qatEpochs", 1)
        else:
            quantization.pop("qatEpochs", None)
    if spec.get("compression") == {}:
        spec["compression"] = {"pruning": {}}
    low_rank = _get(spec, "compression.lowRank")
    if isinstance(low_rank, dict) and "rankRatio" in low_rank and "energy" in low_rank:
        del low_rank["energy"]
    resources = spec.get("resources", {})
    for bound in ("requests", "limits"):
        resources.get(bound, {}).pop("nvidia.com/gpu", None)
    for toleration in resources.get("tolerations", []):
        if toleration.get("operator") == "Exists":
            toleration.pop("value", None)
    selection = data.get("preprocessing", {}).get("featureSelection")
    if isinstance(selection, dict) and selection["method"] == "kBest":
        selection.setdefault("k", 4)
    artifacts = spec.get("artifacts")
    if artifacts == {}:
        del spec["artifacts"]
    _repair_params(spec["model"])
    student = _get(spec, "compression.distillation.student")
    if isinstance(student, dict):
        _repair_params(student)
    return spec


def _repair_params(model: dict[str, Any]) -> None:
    """A built-in model takes only its own params, a torchvision or Hugging Face model none: as many
    of them as were drawn, at their defaults. An importPath builder keeps whatever was drawn."""
    params = model.get("params")
    if not isinstance(params, dict) or "importPath" in model:
        return
    table = BUILTIN_MODEL_PARAMS.get((model.get("builtin") or {}).get("name", ""), ())
    model["params"] = {param.name: param.default for param in table[: len(params)]}


def field_at(path: str) -> tuple[Any, FieldInfo]:
    """The annotation and field info of a dotted camelCase spec path."""
    model: Any = OptimizationJobSpec
    info: FieldInfo | None = None
    for segment in path.split("."):
        name = next(n for n, f in model.model_fields.items() if (f.alias or n) == segment)
        info = model.model_fields[name]
        inner = info.annotation
        if get_origin(inner) in (Union, types.UnionType):
            inner = next(arg for arg in get_args(inner) if arg is not type(None))
        model = inner
    assert info is not None
    return model, info


@functools.cache
def _value_of(path: str) -> st.SearchStrategy[Any]:
    annotation, info = field_at(path)
    return _strategy(annotation, info)


@st.composite
def tuning_blocks(draw: st.DrawFn, spec: dict[str, Any]) -> dict[str, Any] | None:
    """A search over tunable fields this spec sets, each a categorical of one value drawn for it,
    which is then what the trial's run config must carry instead of the written value."""
    present = [path for path in TUNABLE if _get(spec, path) is not None]
    if not present or not draw(st.booleans()):
        return None
    keys = draw(st.lists(st.sampled_from(sorted(present)), min_size=1, max_size=3, unique=True))
    block = draw(model_dicts(_tuning_model()))
    space = {}
    for key in keys:
        space[key] = {"type": "categorical", "choices": [draw(_value_of(key))]}
    block["searchSpace"] = space
    block.pop("sampler", None)  # grid needs finite spaces, nsga2/cmaes other rules: the default (tpe)
    block.pop("goal", None)
    block.pop("selection", None)
    if len(spec["objectives"]) > 1:
        block["pruner"] = {"type": "none"}
    trials = max(block.get("maxTrials", 20), block.get("parallelTrials", 1))
    block["maxTrials"] = trials
    return block


def _tuning_model() -> type[BaseModel]:
    from optikube_operator.api.tuning import TuningSpec

    return TuningSpec


@st.composite
def user_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec as a user writes it (camelCase, optional fields often left out)."""
    spec = _repair(draw(model_dicts(OptimizationJobSpec)))
    first = {}
    for objective in spec["objectives"]:  # one objective per metric (a list-map in the CRD)
        first.setdefault(objective["metric"], objective)
    spec["objectives"] = list(first.values())
    tuning = draw(tuning_blocks(spec))
    if tuning is not None:
        spec["tuning"] = tuning
    parsed, _ = validate_spec(spec)
    assume(parsed is not None)
    assert parsed is not None
    assume(not list(search_space_errors(parsed, parsed.to_dict())))
    return spec


def trial_params(spec: dict[str, Any]) -> dict[str, Any]:
    """The values a trial of ``spec`` gets: the (only) choice of each categorical dimension."""
    space = (spec.get("tuning") or {}).get("searchSpace") or {}
    return {key: dimension["choices"][0] for key, dimension in space.items()}


def finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()
