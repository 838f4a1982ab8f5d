"""The run config (Contract 2) as the trainer parses it: defaults, strictness, errors naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from optikube_operator.api.runconfig import RunConfigError, load_run_config, parse_run_config


def _config(**spec_overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "data": {"source": {"builtin": "digits"}},
        "model": {"builtin": {"name": "mlp"}},
        "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    }
    spec.update(spec_overrides)
    return {
        "apiVersion": "optikube.io/v1alpha1",
        "kind": "RunConfig",
        "stage": "trial",
        "job": {"name": "quickstart", "namespace": "default", "uid": "abc"},
        "trial": {"number": 3, "params": {"training.learningRate": 0.01}},
        "spec": spec,
        "outputDir": "out/trials/3",
        "resumeFrom": None,
    }


def test_minimal_config_gets_defaults() -> None:
    config = parse_run_config(_config())
    assert config.trial_number == 3
    assert config.spec.training.batch_size == 64
    assert config.spec.training.optimizer.type == "adamw"
    assert config.spec.data.validation_split == 0.2
    assert config.spec.primary_objective().metric == "accuracy"
    assert config.spec.compression is None


def test_full_contract_example_parses() -> None:
    spec = {
        "seed": 7,
        "suspend": False,
        "data": {
            "source": {"synthetic": {"kind": "text", "samples": 500, "classes": 3}},
            "preprocessing": {
                "normalization": "minmax",
                "featureSelection": {"method": "kBest", "k": 4},
                "augmentation": {"horizontalFlip": True, "rotationDegrees": 10, "randomCrop": {"padding": 1}},
                "text": {"tokenizer": "word", "vocabSize": 500, "maxLength": 32, "extraStopWords": ["foo"]},
            },
            "validationSplit": 0.25,
            "testSplit": 0.15,
            "crossValidation": {"folds": 3},
        },
        "model": {"builtin": {"name": "textTransformer"}, "params": {"width": 32, "heads": 2}},
        "objectives": [
            {"metric": "accuracy", "direction": "maximize"},
            {"metric": "latencyMs", "direction": "minimize"},
        ],
        "tuning": {
            "sampler": {"type": "tpe"},
            "searchSpace": {"compression.pruning.sparsity": {"type": "float", "low": 0.2, "high": 0.8}},
        },
        "training": {
            "epochs": 3,
            "batchSize": 32,
            "optimizer": {"type": "sgd", "momentum": 0.8},
            "learningRate": 0.05,
            "scheduler": {"type": "cosine"},
            "regularization": {"l1": 1e-5, "l2": 1e-4, "dropout": 0.1},
            "earlyStopping": {"patience": 2, "minDelta": 0.001},
            "mixedPrecision": "bf16",
            "gradientClipNorm": 1.0,
        },
        "compression": {
            "distillation": {
                "student": {"builtin": {"name": "mlp"}, "params": {"width": 16}},
                "temperature": 2,
            },
            "pruning": {"method": "structured", "sparsity": 0.5, "fineTuneEpochs": 1},
            "lowRank": {"energy": 0.9},
            "weightSharing": {"clusters": 8},
        },
        "quantization": {"method": "static", "calibrationBatches": 4},
        "resources": {"workers": 2, "processesPerWorker": 1},
        "artifacts": {"pvc": {"claimName": "models"}},
        "cleanup": {"keepTrialPods": "failed"},
    }
    config = parse_run_config(_config(**spec))
    s = config.spec
    assert s.data.preprocessing.text is not None and s.data.preprocessing.text.extra_stop_words == ["foo"]
    assert s.training.regularization.l2 == 1e-4
    assert s.compression is not None and s.compression.low_rank is not None
    assert s.compression.low_rank.energy == 0.9 and s.compression.low_rank.rank_ratio is None
    assert s.compression.distillation is not None and s.compression.distillation.student.params == {
        "width": 16
    }
    assert s.search_keys() == ["compression.pruning.sparsity"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"training": {"learningRate": -1}}, "spec.training.learningRate"),
        ({"training": {"batchsize": 3}}, "spec.training.batchsize"),
        ({"training": {"optimizer": {"type": "adam"}}}, "spec.training.optimizer.type"),
        ({"data": {"source": {}}}, "spec.data.source"),
        ({"data": {"source": {"builtin": "mnist"}}}, "spec.data.source.builtin"),
        ({"model": {"builtin": {"name": "mlp"}, "importPath": "a.b:c"}}, "spec.model"),
        ({"model": {"importPath": "no_colon"}}, "spec.model"),
        ({"objectives": []}, "spec.objectives"),
        ({"compression": {"lowRank": {"rankRatio": 0.5, "energy": 0.9}}}, "spec.compression.lowRank"),
        ({"quantization": {"method": "int4"}}, "spec.quantization.method"),
    ],
)
def test_errors_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(RunConfigError) as error:
        parse_run_config(_config(**overrides))
    assert field in str(error.value)


def test_stage_and_trial_must_agree() -> None:
    raw = _config()
    raw["stage"] = "pipeline"
    with pytest.raises(RunConfigError, match="trial is set exactly when stage is trial"):
        parse_run_config(raw)
    raw["trial"] = None
    assert parse_run_config(raw).trial_number is None


def test_load_from_file_and_bad_json(tmp_path: Path) -> None:
    good = tmp_path / "run.json"
    good.write_text(json.dumps(_config()))
    assert load_run_config(good).job.name == "quickstart"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RunConfigError, match="cannot read"):
        load_run_config(bad)
