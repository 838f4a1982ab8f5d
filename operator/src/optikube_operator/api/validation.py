"""Validation shared by `optikube validate` and the operator.

Three layers, each reporting field paths like `spec.tuning.searchSpace["training.learningRate"].low`:
1. the schema (pydantic: types, enums, bounds, unknown fields),
2. the cross-field rules (the Python side of the CRD's CEL rules),
3. what no schema can express: a search-space key must name a spec field that exists in this spec
   and whose type fits the parameter, and the spec with each parameter's values applied must
   still be valid.
"""

from __future__ import annotations

import difflib
import json
import re
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from optikube_operator.api.base import ApiModel, AsDict
from optikube_operator.api.job import API_VERSION, OptimizationJob, OptimizationJobSpec
from optikube_operator.api.manifests import Document, read_documents
from optikube_operator.api.model_params import param_names, unknown_param_message
from optikube_operator.api.params import (
    MODEL_PARAMS_PREFIX,
    STUDENT_PARAMS_PREFIX,
    apply_params,
    is_free_param,
    missing_block,
    tunable_fields,
)
from optikube_operator.api.status import OptimizationJobStatus
from optikube_operator.api.trial import OptimizationTrial
from optikube_operator.api.tuning import SEARCH_KEY_PATTERN, Parameter

KINDS: dict[str, type[ApiModel]] = {
    "OptimizationJob": OptimizationJob,
    "OptimizationTrial": OptimizationTrial,
}
TUNABLE = tunable_fields(OptimizationJobSpec)
_STATUS_KEYS = {info.alias or name for name, info in OptimizationJobStatus.model_fields.items()}
# The spec is copied into every run's ConfigMap (at most 1 MiB, indented JSON) and its values into
# trials and status; 256 KiB of JSON leaves room for all of that.
MAX_SPEC_BYTES = 256 * 1024
# More than this many problems are summed up in one line: a message stays readable (and an
# Event or a status condition stays small) whatever was written.
MAX_ERRORS = 30


@dataclass(frozen=True)
class FieldError:
    """One problem, at a field path such as `spec.training.epochs`."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(ValueError):
    """An invalid OptimizationJob; `errors` names every offending field."""

    def __init__(self, errors: list[FieldError], source: str | None = None) -> None:
        self.errors = errors
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}invalid OptimizationJob:\n" + "\n".join(f"  {e}" for e in errors))


def _join(path: str, child: str) -> str:
    if not child:
        return path
    if child.startswith("["):
        return path + child
    return f"{path}.{child}" if path else child


def _unwrap(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return annotation


def _as_model(metadata: list[Any]) -> type[ApiModel] | None:
    """The model of an `AsDict` field (a dict validated as that model), else None."""
    return next((m.model for m in metadata if isinstance(m, AsDict)), None)


def format_loc(model: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    """A pydantic error location as a field path, with map keys in brackets: `a.b["key"].c`."""
    path = ""
    current: Any = model
    for item in loc:
        current = _unwrap(current)
        origin = get_origin(current)
        if isinstance(item, int):
            path += f"[{item}]"
            current = get_args(current)[0] if origin is list and get_args(current) else None
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if (f.alias or n) == item), None)
            path = _join(path, item)
            current = (_as_model(field.metadata) or field.annotation) if field else None
        elif origin is dict:
            path += f'["{item}"]'
            current = get_args(current)[1]
        elif current is None:
            path = _join(path, str(item))
        # else: a union branch tag that names no field
    return path


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    message = str(error["msg"]).removeprefix("Value error, ").replace(" after validation", "")
    for wordy, short in (
        ("Input should be", "must be"),
        ("String should", "must"),
        (" should have", " must have"),
    ):
        message = message.replace(wordy, short)
    return message.replace("List must", "must").replace("Dictionary must", "must")


def model_errors(model: type[ApiModel], obj: Any, prefix: str = "") -> tuple[Any, list[FieldError]]:
    try:
        return model.model_validate(obj, by_alias=True, by_name=False), []
    except ValidationError as exc:
        errors = [
            FieldError(_join(prefix, format_loc(model, tuple(e["loc"]))), _message(e)) for e in exc.errors()
        ]
        return None, errors


def rule_errors(value: Any, path: str = "") -> Iterator[FieldError]:
    """Violations of the cross-field rules, in the model tree below `value`."""
    if isinstance(value, ApiModel):
        for rule in type(value).RULES:
            if rule.check is not None and not rule.check(value):
                yield FieldError(_join(path, rule.field), rule.message)
        for field, message in value.field_errors():
            yield FieldError(_join(path, field), message)
        for name, info in type(value).model_fields.items():
            child, model = getattr(value, name), _as_model(info.metadata)
            if model is not None and isinstance(child, dict):
                # validated already; rebuilt as the model so that its rules are walked too
                child = model.model_validate(child, by_alias=True, by_name=False)
            yield from rule_errors(child, _join(path, info.alias or name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from rule_errors(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from rule_errors(item, f'{path}["{key}"]')


def _duplicate_objectives(spec: OptimizationJobSpec) -> Iterator[FieldError]:
    seen: set[str] = set()
    for index, objective in enumerate(spec.objectives):
        if objective.metric in seen:
            yield FieldError(f"spec.objectives[{index}].metric", f"duplicate objective {objective.metric}")
        seen.add(objective.metric)


def validate_spec(spec: Any, prefix: str = "spec") -> tuple[OptimizationJobSpec | None, list[FieldError]]:
    """Schema and cross-field rules of a camelCase spec; the search-space checks are separate."""
    parsed, errors = model_errors(OptimizationJobSpec, spec, prefix)
    if parsed is None:
        return None, errors
    errors = [*rule_errors(parsed, prefix), *_duplicate_objectives(parsed)]
    return (parsed if not errors else None), errors


def parse_spec(spec: Any) -> OptimizationJobSpec:
    """A validated spec (schema and cross-field rules); raises SpecError naming each field."""
    parsed, errors = validate_spec(spec)
    if parsed is None:
        raise SpecError(errors)
    return parsed


def _values_to_try(parameter: Parameter) -> Iterator[tuple[str, Any]]:
    if parameter.type == "categorical":
        for index, choice in enumerate(parameter.choices or []):
            yield f"choices[{index}]", choice
    elif parameter.low is not None and parameter.high is not None:
        cast = int if parameter.type == "int" else float
        yield "low", cast(parameter.low)
        yield "high", cast(parameter.high)


def _type_fit(key: str, parameter: Parameter) -> str | None:
    field = TUNABLE.get(key)
    if field is None:
        return None
    if parameter.type == "float" and field.kind != "float":
        return f"a float parameter cannot set {key}, which is a {field.kind} field; use int or categorical"
    if parameter.type == "int" and field.kind not in ("int", "float"):
        return f"an int parameter cannot set {key}, which is a {field.kind} field; use categorical"
    return None


def _model_param_problem(spec: OptimizationJobSpec, key: str) -> str | None:
    """A `model.params.<x>` (or student) key that the model there does not take."""
    distillation = spec.compression.distillation if spec.compression is not None else None
    for prefix, model in (
        (MODEL_PARAMS_PREFIX, spec.model),
        (STUDENT_PARAMS_PREFIX, distillation.student if distillation is not None else None),
    ):
        if model is None or not key.startswith(prefix):
            continue
        name = key.removeprefix(prefix)
        if model.builtin is not None and name not in param_names(model.builtin.name):
            return unknown_param_message(model.builtin.name, name)
        if model.torchvision is not None or model.huggingface is not None:
            return (
                f"{prefix.removesuffix('.params.')} is not a built-in or importPath model: it takes no params"
            )
    return None


def search_space_errors(spec: OptimizationJobSpec, raw_spec: dict[str, Any]) -> Iterator[FieldError]:
    """What no schema expresses: keys naming real, present fields, and values those fields accept."""
    if spec.tuning is None:
        return
    for key, parameter in spec.tuning.search_space.items():
        base = f'spec.tuning.searchSpace["{key}"]'
        if not re.fullmatch(SEARCH_KEY_PATTERN, key):
            yield FieldError(base, "a key is a dotted path into the spec, e.g. training.learningRate")
            continue
        if not is_free_param(key) and key not in TUNABLE:
            close = difflib.get_close_matches(key, TUNABLE, n=1)
            hint = f"; did you mean {close[0]}?" if close else "; see docs/api.md for the tunable fields"
            yield FieldError(base, f"{key} names no tunable spec field{hint}")
            continue
        block = missing_block(OptimizationJobSpec, raw_spec, key)
        if block is not None:
            yield FieldError(
                base, f"spec.{block} is not set, so tuning {key} would have no effect; add the block"
            )
            continue
        unknown = _model_param_problem(spec, key)
        if unknown:
            yield FieldError(base, unknown)
            continue
        misfit = _type_fit(key, parameter)
        if misfit:
            yield FieldError(f"{base}.type", misfit)
            continue
        for label, value in _values_to_try(parameter):
            if isinstance(value, dict | list) or value is None:
                yield FieldError(f"{base}.{label}", "a choice must be a number, string or boolean")
                break
            _, errors = validate_spec(apply_params(raw_spec, {key: value}))
            if errors:
                yield FieldError(f"{base}.{label}", f"{value!r} is not valid for {errors[0]}")
                break


def validate_manifest(obj: Any, *, search_space: bool = True) -> list[FieldError]:
    """Every problem of an OptimizationJob or OptimizationTrial manifest (an empty list when valid).

    `status` is not checked: with the status subresource the apiserver ignores it in what users
    send, and the operator owns it (kopf may keep its own bookkeeping there). `search_space=False`
    leaves out trying each search dimension's values in the spec (a full validation per value):
    for a spec whose search space was checked when it was accepted and which now has one trial's
    values applied, validated as they are.
    """
    if not isinstance(obj, dict):
        return [FieldError("", "a manifest must be a mapping with apiVersion, kind, metadata and spec")]
    if obj.get("apiVersion") != API_VERSION:
        return [FieldError("apiVersion", f"must be {API_VERSION}, got {obj.get('apiVersion')!r}")]
    model = KINDS.get(obj.get("kind", ""))
    if model is None:
        return [FieldError("kind", f"must be one of {', '.join(KINDS)}, got {obj.get('kind')!r}")]
    if not isinstance(obj.get("metadata"), dict) or not (
        obj["metadata"].get("name") or obj["metadata"].get("generateName")
    ):
        return [FieldError("metadata.name", "required field is missing")]
    size = _json_size(obj.get("spec"))
    if size > MAX_SPEC_BYTES:
        where, part = _largest_part(obj["spec"], "spec", size)
        return [
            FieldError(where, f"is {part} bytes of JSON; the whole spec may have at most {MAX_SPEC_BYTES}")
        ]
    parsed, errors = model_errors(model, _without_status(obj))
    if parsed is None:
        return _bounded(errors)
    errors = list(rule_errors(parsed))
    if isinstance(parsed, OptimizationJob):
        errors += _duplicate_objectives(parsed.spec)
        if not errors and search_space:
            errors += search_space_errors(parsed.spec, parsed.spec.to_dict())
    return _bounded(errors)


def _json_size(value: Any) -> int:
    try:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError):
        return 0  # not JSON (a date, a set): the schema names the field


def _largest_part(value: Any, path: str, size: int) -> tuple[str, int]:
    """The field that makes a spec too big: the largest child, followed down while it holds
    most of the bytes (a huge list or string, not the block around it)."""
    while isinstance(value, dict | list) and value:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        sizes = [(_json_size(item), key, item) for key, item in items]
        part, key, item = max(sizes, key=lambda entry: entry[0])
        if part * 2 < size:
            break
        path = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"
        value, size = item, part
    return path, size


def _bounded(errors: list[FieldError]) -> list[FieldError]:
    if len(errors) <= MAX_ERRORS:
        return errors
    return [*errors[:MAX_ERRORS], FieldError("", f"... and {len(errors) - MAX_ERRORS} more problems")]


def duplicate_errors(document: Document) -> list[FieldError]:
    """A key written twice in one mapping of the document (YAML keeps only the last)."""
    value = document.value
    model = KINDS.get(value.get("kind", "")) if isinstance(value, dict) else None
    return [
        FieldError(
            format_loc(model, d.loc) if model else ".".join(map(str, d.loc)),
            f"written twice (line {d.line}); YAML would silently keep only the last",
        )
        for d in document.duplicates
    ]


def _without_status(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key != "status"}


def load_documents(path: Path) -> list[Any]:
    """Every YAML document of a file (empty documents skipped); raises yaml.YAMLError on a key
    written twice, an alias or a file over the size limit."""
    documents = read_documents(path)
    for document in documents:
        errors = duplicate_errors(document)
        if errors:
            raise yaml.YAMLError(f"{path}: {errors[0]}")
    return [document.value for document in documents]


def load_job(source: str | Path | dict[str, Any], *, search_space: bool = True) -> OptimizationJob:
    """A validated OptimizationJob from a manifest dict or a YAML file; raises SpecError naming each
    field (`search_space` as in `validate_manifest`)."""
    if isinstance(source, dict):
        obj, where = source, None
    else:
        where = str(source)
        try:
            documents = [d for d in load_documents(Path(source)) if isinstance(d, dict)]
        except yaml.YAMLError as exc:
            raise SpecError([FieldError("", f"not valid YAML: {exc}")], where) from exc
        jobs = [d for d in documents if d.get("kind") == "OptimizationJob"]
        if len(jobs) != 1:
            raise SpecError(
                [FieldError("kind", f"expected one OptimizationJob document, found {len(jobs)}")], where
            )
        obj = jobs[0]
    errors = validate_manifest(obj, search_space=search_space)
    if errors:
        raise SpecError(errors, where)
    if obj.get("kind") != "OptimizationJob":
        raise SpecError([FieldError("kind", "must be OptimizationJob")], where)
    job = OptimizationJob.model_validate(_without_status(obj), by_alias=True, by_name=False)
    job.status = lenient_status(obj.get("status"))
    return job


def lenient_status(raw: Any) -> OptimizationJobStatus | None:
    """The recorded status, or None if it is absent or not in this version's shape (the operator
    rebuilds it from the OptimizationTrials, so an unreadable status is never fatal)."""
    if not isinstance(raw, dict):
        return None
    known = {key: value for key, value in raw.items() if key in _STATUS_KEYS}
    try:
        return OptimizationJobStatus.model_validate(known, by_alias=True, by_name=False)
    except ValidationError:
        return None
