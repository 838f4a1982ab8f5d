"""Generates the CRDs in `crds/` from the pydantic models: `python -m optikube_operator.api.crdgen`.

It also writes the Helm chart's CRD templates (charts/optikube/templates/crds/): the same text,
inside `crds.enabled`, with the `helm.sh/resource-policy: keep` annotation under `crds.keep`, so
that the chart installs exactly what `crds/` holds.

Pydantic's JSON schema is turned into a structural OpenAPI v3 schema as Kubernetes wants it:
references inlined, `Optional` unwrapped (absent means unset), JSON-Schema-2020 bounds rewritten in
the OpenAPI 3.0 form, free-form values marked `x-kubernetes-preserve-unknown-fields`, and every
always-present block defaulted to `{}` so that the apiserver fills in its defaults too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import BaseModel

from optikube_operator.api.generated_files import check_option, output_option, write_or_check
from optikube_operator.api.job import GROUP, VERSION, OptimizationJob
from optikube_operator.api.trial import OptimizationTrial

CATEGORIES = ["optikube", "ml"]
ROOT = Path(__file__).resolve().parents[4]
CRD_DIR = ROOT / "crds"
CHART_CRD_DIR = ROOT / "charts" / "optikube" / "templates" / "crds"

# propertyNames and patternProperties (map keys' format) have no place in a Kubernetes schema:
# validation.py checks the keys.
_DROPPED_KEYS = {"title", "examples", "additionalProperties", "propertyNames", "patternProperties"}


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline a `$ref` (or a single-element allOf), letting the field's own keys win."""
    ref_holder = node
    if "allOf" in node and len(node["allOf"]) == 1:
        ref_holder = node["allOf"][0]
    if "$ref" not in ref_holder:
        return node
    target = dict(defs[ref_holder["$ref"].rsplit("/", 1)[-1]])
    siblings = {k: v for k, v in node.items() if k not in ("$ref", "allOf")}
    merged = {**target, **siblings}
    merged["description"] = _combine(siblings.get("description", ""), target.get("description", ""))
    return merged


# A field description about a block mostly restates the block's docstring; it is kept only when it
# says what leaving the block out means, or how the block is written.
_FIELD_ROLE = re.compile(r"\bomit\b|without it|written like", re.IGNORECASE)


def _combine(field_doc: str, model_doc: str) -> str:
    """The description of a field whose type is a model: the model's docstring, plus the field's role."""
    field_doc, model_doc = field_doc.strip(), " ".join(model_doc.split())
    if not model_doc:
        return field_doc
    if field_doc and _FIELD_ROLE.search(field_doc) and model_doc not in field_doc:
        return f"{field_doc} {model_doc}"
    return model_doc


def _unwrap_nullable(node: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    branches = node.get("anyOf")
    if not branches or {"type": "null"} not in branches:
        return node, False
    rest = [b for b in branches if b != {"type": "null"}]
    merged = {k: v for k, v in node.items() if k != "anyOf"}
    if len(rest) == 1:
        merged = {**rest[0], **merged}
    else:
        merged["anyOf"] = rest
    if merged.get("default", 0) is None:
        del merged["default"]
    return merged, True


def structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """One pydantic JSON schema node as a structural Kubernetes schema node."""
    node, _ = _unwrap_nullable(_resolve(node, defs))
    node = _resolve(node, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "properties":
            required = set(node.get("required", []))
            out["properties"] = {
                name: _property(child, name in required, defs) for name, child in value.items()
            }
        elif key == "items":
            out["items"] = structural(value, defs)
        else:
            out[key] = value
    extra = node.get("additionalProperties")
    if extra is None and len(node.get("patternProperties", {})) == 1:
        # a map with constrained keys: Kubernetes has no patternProperties (validation.py checks
        # the keys), so the values' schema becomes additionalProperties
        extra = next(iter(node["patternProperties"].values()))
    if extra is True or extra == {}:
        out["additionalProperties"] = {"x-kubernetes-preserve-unknown-fields": True}
    elif isinstance(extra, dict):
        out["additionalProperties"] = structural(extra, defs)
    if "properties" in out or "additionalProperties" in out:
        out.setdefault("type", "object")
    if not out.get("type") and not out.get("x-kubernetes-int-or-string"):
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("type") == "object" and out.get("properties") is not None and not out["properties"]:
        del out["properties"]
    return _ordered(out)


_KEY_ORDER = [
    "description",
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
]


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    """Readable key order: what a field is first, its children last."""
    rank = {key: i for i, key in enumerate(_KEY_ORDER)}
    return dict(sorted(node.items(), key=lambda item: rank.get(item[0], len(rank))))


def _property(node: dict[str, Any], required: bool, defs: dict[str, Any]) -> dict[str, Any]:
    nullable = _unwrap_nullable(_resolve(node, defs))[1]
    schema = structural(node, defs)
    # A nested block that is always present in Python (default_factory) and has no required
    # fields: default it to {} so the apiserver stores the same defaults the models fill in.
    if not required and not nullable and schema.get("properties") and not schema.get("required"):
        schema.setdefault("default", {})
    return schema


def _model_schema(model: type[BaseModel], field: str) -> dict[str, Any]:
    full = model.model_json_schema(by_alias=True, mode="validation")
    defs = full.get("$defs", {})
    return _property(full["properties"][field], field in full.get("required", []), defs)


def _root_schema(model: type[BaseModel], description: str) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "APIVersion of this object: optikube.io/v1alpha1.",
            },
            "kind": {"type": "string", "description": "Kind of this object."},
            "metadata": {"type": "object"},
            "spec": _model_schema(model, "spec"),
            "status": _model_schema(model, "status"),
        },
    }
    rules = getattr(model, "RULES", ())
    if rules:
        schema["x-kubernetes-validations"] = [rule.to_crd() for rule in rules if rule.cel]
    return schema


def _crd(
    model: type[BaseModel], plural: str, short_names: list[str], columns: list[dict[str, Any]]
) -> dict[str, Any]:
    kind = model.__name__
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "optikube"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": CATEGORIES,
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": _root_schema(model, model.__doc__ or "")},
                }
            ],
        },
    }


def _column(name: str, type_: str, path: str, description: str, priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path, "description": description}
    if priority:
        column["priority"] = priority
    return column


_PHASE = _column("Phase", "string", ".status.phase", "Lifecycle phase.")
_AGE = _column("Age", "date", ".metadata.creationTimestamp", "Time since creation.")


def job_crd() -> dict[str, Any]:
    columns = [
        _PHASE,
        _column("Stage", "string", ".status.stage", "Pipeline stage running now."),
        _column("Trials", "integer", ".status.trialCounts.completed", "Finished trials."),
        _column("Best", "number", ".status.bestTrial.objectiveValue", "Best value of the primary objective."),
        _column("Size ratio", "number", ".status.results.sizeRatio", "Optimized / baseline model size."),
        _column("Speedup", "number", ".status.results.speedup", "Baseline / optimized latency."),
        _column("Runtime", "string", ".status.results.runtime", "The runtime the optimized model ships for."),
        _AGE,
    ]
    return _crd(OptimizationJob, "optimizationjobs", ["optjob", "oj"], columns)


def trial_crd() -> dict[str, Any]:
    columns = [
        _column("Job", "string", ".spec.jobRef.name", "The OptimizationJob."),
        _column("Number", "integer", ".spec.number", "Trial number."),
        _column("Stage", "string", ".spec.stage", "trial or pipeline."),
        _PHASE,
        _AGE,
    ]
    return _crd(OptimizationTrial, "optimizationtrials", ["opttrial"], columns)


HEADER = "# Generated by `python -m optikube_operator.api.crdgen` from optikube_operator.api. Do not edit.\n"


def render(crd: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(crd, sort_keys=False, width=110, allow_unicode=True)


def rendered_crds() -> dict[str, str]:
    """File name -> YAML text of every CRD."""
    return {f"{crd['metadata']['name']}.yaml": render(crd) for crd in (job_crd(), trial_crd())}


# Inserted as the last key of `metadata` (just before the top-level `spec:`), so that with
# crds.keep=false the rendered CRD is the crds/ file byte for byte.
_KEEP_ANNOTATION = """\
  {{- if .Values.crds.keep }}
  annotations:
    # `helm uninstall` leaves the CRDs (and so every OptimizationJob) in place
    helm.sh/resource-policy: keep
  {{- end }}
"""


def chart_template(text: str) -> str:
    """A CRD's YAML as a chart template behind `crds.enabled` and `crds.keep`."""
    if "{{" in text:
        raise ValueError("a CRD whose text holds '{{' would be read as a template by Helm")
    head, separator, tail = text.partition("\nspec:\n")
    if not separator:
        raise ValueError("no top-level spec: in the CRD")
    return (
        "{{- if .Values.crds.enabled }}\n"
        + head
        + "\n"
        + _KEEP_ANNOTATION
        + "spec:\n"
        + tail
        + "{{- end }}\n"
    )


def chart_crds() -> dict[str, str]:
    """File name -> chart template of every CRD."""
    return {name: chart_template(text) for name, text in rendered_crds().items()}


@click.command()
@output_option("--out", "out_dir", CRD_DIR, "Folder to write the CRDs to.", folder=True)
@output_option(
    "--chart-out",
    "chart_dir",
    CHART_CRD_DIR,
    "Folder to write the Helm chart's CRD templates to.",
    folder=True,
)
@check_option("a committed CRD")
def main(out_dir: Path, chart_dir: Path, check: bool) -> None:
    """Write (or check) the CRDs generated from the API models, and the chart's CRD templates."""
    files = {out_dir / name: text for name, text in rendered_crds().items()}
    files.update({chart_dir / name: text for name, text in chart_crds().items()})
    write_or_check(files, check=check, command="python -m optikube_operator.api.crdgen")


if __name__ == "__main__":
    main()
