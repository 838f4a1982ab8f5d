"""The typed models, load_job, apply_params and the error paths they report."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_corpus_cases import EXAMPLES
from pydantic import ValidationError

from optikube_operator.api import (
    OptimizationJob,
    OptimizationTrial,
    OptimizationTrialStatus,
    SpecError,
    apply_params,
    duration_seconds,
    load_job,
    validate_manifest,
)
from optikube_operator.api.base import ApiModel
from optikube_operator.api.trial import MAX_INTERMEDIATE_VALUES
from optikube_operator.api.validation import validate_spec


def quickstart() -> dict[str, Any]:
    return next(yaml.safe_load_all((EXAMPLES / "quickstart.yaml").read_text()))


def test_load_job_fills_defaults_and_round_trips_in_camel_case() -> None:
    job = load_job(EXAMPLES / "quickstart.yaml")
    assert isinstance(job, OptimizationJob)
    assert job.spec.tuning is not None
    assert job.spec.tuning.search_space["training.learningRate"].log is True
    assert job.spec.training.regularization.dropout == 0.0
    assert job.spec.training.early_stopping is None
    spec = job.spec.to_dict()
    assert spec["training"]["optimizer"] == {"type": "adamw", "momentum": 0.9}
    assert spec["tuning"]["searchSpace"]["model.params.width"]["step"] == 32
    assert "earlyStopping" not in spec["training"]  # unset optional blocks stay unset
    assert "earlyStopping" not in spec["training"] and spec["artifacts"] == {
        "pvc": {"claimName": "quickstart-artifacts", "subPath": ""}
    }
    # the filled-in form is itself a valid spec, and stable
    parsed, errors = validate_spec(spec)
    assert errors == [] and parsed is not None and parsed.to_dict() == spec


def test_load_job_raises_spec_error_listing_every_field(tmp_path: Path) -> None:
    manifest = quickstart()
    manifest["spec"]["training"]["epochs"] = 0
    manifest["spec"]["tuning"]["searchSpace"]["training.learningRate"]["low"] = 0
    with pytest.raises(SpecError) as caught:
        load_job(manifest)
    paths = [e.path for e in caught.value.errors]
    assert paths == ["spec.training.epochs"]  # schema errors come first, rules after they are fixed
    manifest["spec"]["training"]["epochs"] = 3
    with pytest.raises(SpecError) as caught:
        load_job(manifest)
    assert [str(e) for e in caught.value.errors] == [
        'spec.tuning.searchSpace["training.learningRate"].low: must be > 0 for log scale'
    ]
    file = tmp_path / "job.yaml"
    file.write_text(yaml.safe_dump(manifest))
    with pytest.raises(SpecError, match=r"job\.yaml: invalid OptimizationJob"):
        load_job(file)


def test_load_job_picks_the_job_from_a_multi_document_file(tmp_path: Path) -> None:
    file = tmp_path / "multi.yaml"
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    file.write_text(yaml.safe_dump_all([config_map, quickstart()]))
    assert load_job(file).metadata.name == "quickstart"
    file.write_text(yaml.safe_dump_all([quickstart(), quickstart()]))
    with pytest.raises(SpecError, match="expected one OptimizationJob document, found 2"):
        load_job(file)


def test_strict_scalars_like_the_apiserver() -> None:
    for field, value in (("epochs", "3"), ("epochs", True), ("learningRate", "0.1")):
        manifest = quickstart()
        manifest["spec"]["training"][field] = value
        assert [e.path for e in validate_manifest(manifest)] == [f"spec.training.{field}"]
    manifest = quickstart()
    manifest["spec"]["training"]["learningRate"] = 1  # an integer is a fine number
    assert validate_manifest(manifest) == []


def test_snake_case_keys_are_unknown_fields() -> None:
    manifest = quickstart()
    manifest["spec"]["training"]["batch_size"] = 32
    assert [str(e) for e in validate_manifest(manifest)] == ["spec.training.batch_size: unknown field"]


def test_apply_params_sets_dotted_paths_in_a_copy() -> None:
    spec = quickstart()["spec"]
    original = copy.deepcopy(spec)
    applied = apply_params(
        spec,
        {
            "training.learningRate": 0.01,
            "model.params.width": 96,
            "model.params.block.kind": "residual",
            "training.regularization.dropout": 0.25,
        },
    )
    assert spec == original
    assert applied["training"]["learningRate"] == 0.01
    assert applied["model"]["params"] == {"width": 96, "depth": 2, "block": {"kind": "residual"}}
    assert applied["training"]["regularization"] == {"dropout": 0.25}
    with pytest.raises(ValueError, match=r"training\.learningRate is not an object"):
        apply_params(spec, {"training.learningRate.value": 1})


def test_search_space_checks_name_the_parameter() -> None:
    manifest = quickstart()
    space = manifest["spec"]["tuning"]["searchSpace"]
    space["training.batchsize"] = {"type": "categorical", "choices": [32, 64]}
    assert [str(e) for e in validate_manifest(manifest)] == [
        'spec.tuning.searchSpace["training.batchsize"]: training.batchsize names no tunable spec field;'
        " did you mean training.batchSize?"
    ]
    del space["training.batchsize"]
    space["compression.pruning.sparsity"] = {"type": "float", "low": 0.2, "high": 0.9}
    space["model.params.depth"] = {"type": "categorical", "choices": [1, 3]}
    space["quantization.method"] = {"type": "categorical", "choices": ["dynamic", "static"]}
    assert validate_manifest(manifest) == []


def test_low_rank_defaults_to_half_rank_only_when_nothing_is_set() -> None:
    manifest = quickstart()
    manifest["spec"]["compression"]["lowRank"] = {}
    low_rank = load_job(manifest).spec.compression.low_rank  # type: ignore[union-attr]
    assert low_rank is not None and low_rank.rank_ratio == 0.5 and low_rank.energy is None
    manifest["spec"]["compression"]["lowRank"] = {"energy": 0.9}
    low_rank = load_job(manifest).spec.compression.low_rank  # type: ignore[union-attr]
    assert low_rank is not None and low_rank.rank_ratio is None and low_rank.energy == 0.9


def test_trial_and_status_parse_from_the_cluster_form() -> None:
    trial = OptimizationTrial.model_validate(
        {
            "apiVersion": "optikube.io/v1alpha1",
            "kind": "OptimizationTrial",
            "metadata": {"name": "quickstart-3", "uid": "abc", "resourceVersion": "7"},
            "spec": {
                "jobRef": {"name": "quickstart"},
                "number": 3,
                "params": {"training.learningRate": 0.01},
            },
            "status": {
                "phase": "Running",
                "startTime": "2026-01-01T00:00:00Z",
                "intermediateValues": [{"step": 0, "value": 0.5}],
                "samplerAttributes": {"NSGAIISampler:generation": 0},
            },
        },
        by_alias=True,
        by_name=False,
    )
    assert trial.spec.stage == "trial"
    assert trial.status is not None and trial.status.start_time is not None
    assert trial.to_dict()["status"]["startTime"] == "2026-01-01T00:00:00Z"
    too_many = [{"step": i, "value": 0.5} for i in range(MAX_INTERMEDIATE_VALUES + 1)]
    with pytest.raises(ValidationError, match="intermediateValues"):
        OptimizationTrialStatus.model_validate({"intermediateValues": too_many}, by_alias=True, by_name=False)


def test_status_is_not_user_input() -> None:
    manifest = quickstart()
    # kopf keeps its own bookkeeping in status; users' status is ignored by the apiserver.
    manifest["status"] = {"phase": "Tuning", "trialCounts": {"completed": 2}, "kopf": {"progress": {}}}
    assert validate_manifest(manifest) == []
    job = load_job(manifest)
    assert job.status is not None and job.status.phase == "Tuning" and job.status.trial_counts.completed == 2
    manifest["status"] = {"phase": "NoSuchPhase"}
    assert load_job(manifest).status is None


def test_durations() -> None:
    assert duration_seconds("1h30m") == 5400
    assert duration_seconds("90s") == 90
    assert duration_seconds("250ms") == 0.25
    with pytest.raises(ValueError):
        duration_seconds("10")


def all_models() -> set[type[ApiModel]]:
    found: set[type[ApiModel]] = set()
    pending: list[type[ApiModel]] = [OptimizationJob, OptimizationTrial]
    while pending:
        model = pending.pop()
        if model in found:
            continue
        found.add(model)
        for info in model.model_fields.values():
            text = repr(info.annotation)
            for candidate in ApiModel.__subclasses__() + [
                c for s in ApiModel.__subclasses__() for c in s.__subclasses__()
            ]:
                if candidate.__name__ in text:
                    pending.append(candidate)
    return found


def test_every_field_is_described_and_every_rule_has_both_sides() -> None:
    models = all_models()
    assert len(models) > 30
    for model in models:
        assert model.__doc__, model.__name__
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name}"
        for rule in model.RULES:
            # A rule without a Python check must be one that validation.py (or the model's
            # field_errors, naming the map key: test_model_params.py) implements precisely.
            precise = "searchSpace" in rule.field
            assert rule.check is not None or precise, (model.__name__, rule.message)
            assert rule.cel is not None or rule.check is not None
