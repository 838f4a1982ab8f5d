"""Properties of the generated CRDs that Kubernetes and users rely on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from optikube_operator.api.crdgen import job_crd, trial_crd
from optikube_operator.api.job import OptimizationJobSpec
from optikube_operator.api.params import tunable_fields

CRDS = {"job": job_crd(), "trial": trial_crd()}


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from nodes(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from nodes(node["additionalProperties"], f"{path}.<key>")


@pytest.mark.parametrize("kind", CRDS)
def test_schema_is_structural_and_described(kind: str) -> None:
    schema = schema_of(CRDS[kind])
    for path, node in nodes(schema):
        if path == ".metadata":
            continue
        # Structural: every node has a type, except explicit int-or-string / free-form values.
        assert (
            node.get("type")
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        ), path
        assert "$ref" not in node and "allOf" not in node and "oneOf" not in node, path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string"), path
        assert node.get("description") or path.endswith("<key>") or path.endswith("[]"), (
            f"{path} has no description"
        )
        assert node.get("default", 0) is not None, path
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert node.get(bound, True) is True, f"{path}.{bound} must be the OpenAPI 3.0 boolean form"


def test_free_form_only_where_truly_free_form() -> None:
    free = {
        path for path, node in nodes(schema_of(job_crd())) if node.get("x-kubernetes-preserve-unknown-fields")
    }
    assert free == {
        ".spec.model.params.<key>",
        ".spec.compression.distillation.student.params.<key>",
        ".status.pipeline.params.<key>",
        ".status.acceptedSpec.<key>",  # a copy of the spec, validated as the spec when it was accepted
        ".spec.tuning.searchSpace.<key>.choices[]",
        ".status.bestTrial.params.<key>",
        ".status.paretoFront[].params.<key>",
    }


def test_names_short_names_categories_and_status_subresource() -> None:
    job, trial = job_crd(), trial_crd()
    assert job["metadata"]["name"] == "optimizationjobs.optikube.io"
    assert job["spec"]["names"]["shortNames"] == ["optjob", "oj"]
    assert trial["spec"]["names"]["shortNames"] == ["opttrial"]
    for crd in (job, trial):
        assert crd["spec"]["names"]["categories"] == ["optikube", "ml"]
        assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}
    columns = [c["name"] for c in job["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == ["Phase", "Stage", "Trials", "Best", "Size ratio", "Speedup", "Runtime", "Age"]


def test_status_lists_and_maps_are_bounded() -> None:
    for crd in CRDS.values():
        for path, node in nodes(schema_of(crd)["properties"]["status"], ".status"):
            if node.get("type") == "array":
                assert "maxItems" in node, path
            if node.get("type") == "object" and "additionalProperties" in node:
                assert "maxProperties" in node, path
            if node.get("type") == "string" and node.get("format") != "date-time" and "enum" not in node:
                assert "maxLength" in node, path


def test_spec_has_suspend_defaults_and_cross_field_rules() -> None:
    spec = schema_of(job_crd())["properties"]["spec"]
    assert spec["properties"]["suspend"] == {
        "description": spec["properties"]["suspend"]["description"],
        "type": "boolean",
        "default": False,
    }
    tuning = spec["properties"]["tuning"]
    assert tuning["properties"]["maxTrials"]["default"] == 20
    assert tuning["properties"]["sampler"]["default"] == {}
    rules = {r["rule"] for r in tuning["x-kubernetes-validations"]}
    assert "self.parallelTrials <= self.maxTrials" in rules
    parameter = tuning["properties"]["searchSpace"]["additionalProperties"]
    log_rule = next(
        r for r in parameter["x-kubernetes-validations"] if r["message"] == "must be > 0 for log scale"
    )
    assert log_rule["fieldPath"] == ".low"
    assert spec["properties"]["objectives"]["x-kubernetes-list-type"] == "map"


def test_search_key_rule_lists_exactly_the_tunable_fields() -> None:
    spec = schema_of(job_crd())["properties"]["spec"]
    rule = next(r["rule"] for r in spec["x-kubernetes-validations"] if "searchSpace.all" in r["rule"])
    for path in tunable_fields(OptimizationJobSpec):
        assert f'"{path}"' in rule
    assert '"tuning.maxTrials"' not in rule and '"resources.workers"' not in rule
