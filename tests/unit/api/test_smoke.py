"""`optikube run --smoke`: the smoke spec is the job's own spec, only smaller and offline."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from optikube_operator.api import SpecError, load_job
from optikube_operator.api.job import OptimizationJobSpec
from optikube_operator.api.smoke import (
    SHRUNK,
    SMOKE_EPOCHS,
    SMOKE_FOLDS,
    SMOKE_SAMPLES,
    SMOKE_TRIALS,
    STAND_IN,
    SmokeChange,
    smoke_spec,
)
from optikube_operator.api.validation import parse_spec

EXAMPLES = sorted((Path(__file__).parents[3] / "examples").glob("*.yaml"))

SPEC: dict[str, Any] = {
    "data": {
        "source": {"synthetic": {"kind": "tabular", "samples": 5000, "classes": 3}},
        "crossValidation": {"folds": 5},
    },
    "model": {"builtin": {"name": "mlp"}, "params": {"width": 32}},
    "objectives": [{"metric": "accuracy", "direction": "maximize"}],
    "tuning": {
        "sampler": {"type": "tpe", "startupTrials": 4},
        "pruner": {"type": "hyperband", "maxResource": 12},
        "maxTrials": 30,
        "parallelTrials": 4,
        "searchSpace": {
            "training.learningRate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
            "training.epochs": {"type": "int", "low": 4, "high": 12},
        },
    },
    "training": {"epochs": 12, "earlyStopping": {"patience": 3}},
    "compression": {
        "distillation": {"student": {"builtin": {"name": "mlp"}, "params": {"width": 8}}, "epochs": 6},
        "pruning": {"fineTuneEpochs": 3},
        "lowRank": {"fineTuneEpochs": 2},
        "weightSharing": {"fineTuneEpochs": 4},
    },
    "quantization": {"method": "qat", "qatEpochs": 3},
}


def _spec(raw: dict[str, Any]) -> OptimizationJobSpec:
    return parse_spec(copy.deepcopy(raw))


def _path_keys(path: str) -> list[str]:
    """`spec.tuning.searchSpace["training.epochs"]` -> ["tuning", "searchSpace", "training.epochs"]."""
    match = re.fullmatch(r'spec\.(.*?)(?:\["(.+)"\])?', path)
    assert match, path
    keys = match.group(1).split(".")
    return [*keys, match.group(2)] if match.group(2) else keys


def _undo(raw: dict[str, Any], changes: tuple[SmokeChange, ...]) -> dict[str, Any]:
    undone = copy.deepcopy(raw)
    for change in reversed(changes):
        *parents, key = _path_keys(change.path)
        node = undone
        for parent in parents:
            node = node[parent]
        assert node.get(key) == change.after, change
        if change.before is None:
            node.pop(key)
        else:
            node[key] = change.before
    return undone


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_an_example_shrinks_and_nothing_else_changes(example: Path) -> None:
    spec = load_job(example).spec
    smoke = smoke_spec(spec)
    assert _undo(smoke.spec.to_dict(), smoke.changes) == spec.to_dict()
    assert smoke.spec.tuning is not None and smoke.spec.tuning.max_trials <= SMOKE_TRIALS
    assert smoke.spec.training.epochs == SMOKE_EPOCHS
    assert smoke.spec.resources.workers == 1 and smoke.spec.resources.gpus_per_process == 0
    source = smoke.spec.data.source
    assert source.torchvision is None and source.huggingface is None
    model = smoke.spec.model.torchvision
    assert model is None or (not model.pretrained and model.weights_path is None)


def test_every_size_is_capped_and_a_searched_size_is_pinned() -> None:
    smoke = smoke_spec(_spec(SPEC))
    spec = smoke.spec
    assert spec.tuning is not None
    assert (spec.tuning.max_trials, spec.tuning.parallel_trials) == (SMOKE_TRIALS, SMOKE_TRIALS)
    assert spec.tuning.pruner.max_resource == SMOKE_EPOCHS
    assert spec.data.cross_validation is not None and spec.data.cross_validation.folds == SMOKE_FOLDS
    assert spec.data.source.synthetic is not None and spec.data.source.synthetic.samples == SMOKE_SAMPLES
    assert spec.compression is not None and spec.compression.distillation is not None
    assert spec.compression.distillation.epochs == SMOKE_EPOCHS
    assert spec.compression.pruning is not None and spec.compression.pruning.fine_tune_epochs == SMOKE_EPOCHS
    assert (
        spec.compression.low_rank is not None and spec.compression.low_rank.fine_tune_epochs == SMOKE_EPOCHS
    )
    assert spec.compression.weight_sharing is not None
    assert spec.compression.weight_sharing.fine_tune_epochs == SMOKE_EPOCHS
    assert spec.quantization is not None and spec.quantization.qat_epochs == SMOKE_EPOCHS
    # a trial must not undo the one epoch through its sampled parameters
    epochs = spec.tuning.search_space["training.epochs"]
    assert (epochs.type, epochs.choices) == ("categorical", [SMOKE_EPOCHS])
    assert spec.tuning.search_space["training.learningRate"].high == 1e-1
    # unchanged: the sampler, early stopping, the methods
    assert spec.tuning.sampler.startup_trials == 4 and spec.training.early_stopping is not None
    assert {change.kind for change in smoke.changes} == {SHRUNK}
    assert _undo(spec.to_dict(), smoke.changes) == _spec(SPEC).to_dict()


def test_the_input_is_left_alone_and_a_smoke_spec_is_its_own_smoke() -> None:
    spec = _spec(SPEC)
    before = spec.to_dict()
    smoke = smoke_spec(spec)
    assert spec.to_dict() == before
    again = smoke_spec(smoke.spec)
    assert again.changes == () and again.spec == smoke.spec


def test_a_small_job_is_run_as_written() -> None:
    small = copy.deepcopy(SPEC)
    small.pop("tuning")
    small["data"] = {"source": {"builtin": "iris"}}
    small["training"] = {"epochs": 1}
    small.pop("compression")
    small["quantization"] = {"method": "dynamic", "calibrationBatches": 50}
    smoke = smoke_spec(_spec(small))
    assert smoke.changes == ()
    assert smoke.spec == _spec(small)


def test_many_classes_keep_a_few_examples_each_in_the_smallest_split() -> None:
    many = copy.deepcopy(SPEC)
    many["data"]["source"]["synthetic"].update(classes=100, samples=100_000)
    many["data"].update(validationSplit=0.1, testSplit=0.25)
    smoke = smoke_spec(_spec(many))
    assert smoke.spec.data.source.synthetic is not None
    assert smoke.spec.data.source.synthetic.samples == 4000  # 4 x 100 classes / 0.1
    many["data"]["testSplit"] = 0.0
    many["data"]["validationSplit"] = 0.5
    smoke = smoke_spec(_spec(many))
    assert smoke.spec.data.source.synthetic is not None
    assert smoke.spec.data.source.synthetic.samples == 800  # no test split: 4 x 100 / 0.5


def test_a_static_quantization_calibrates_on_two_batches() -> None:
    static = copy.deepcopy(SPEC)
    static["quantization"] = {"method": "static", "calibrationBatches": 16}
    smoke = smoke_spec(_spec(static))
    assert smoke.spec.quantization is not None and smoke.spec.quantization.calibration_batches == 2


def test_stand_ins_are_listed_as_such() -> None:
    job = load_job(Path(__file__).parents[3] / "examples" / "multi-node-gpu.yaml")
    smoke = smoke_spec(job.spec)
    stand_ins = {change.path for change in smoke.changes if change.kind == STAND_IN}
    assert stand_ins == {
        "spec.data.source",
        "spec.model.torchvision.pretrained",
        "spec.model.torchvision.weightsPath",
        "spec.resources.workers",
        "spec.resources.processesPerWorker",
        "spec.resources.gpusPerProcess",
    }
    source = smoke.spec.data.source.synthetic
    assert source is not None
    assert (source.kind, source.channels, source.image_size, source.classes) == ("images", 3, 32, 100)
    assert all(str(change).startswith(change.path) for change in smoke.changes)


def test_a_torchvision_set_of_unknown_shape_is_refused_naming_the_field() -> None:
    unknown = copy.deepcopy(SPEC)
    unknown["data"]["source"] = {"torchvision": {"name": "Places365"}}
    with pytest.raises(SpecError) as caught:
        smoke_spec(_spec(unknown))
    assert caught.value.errors[0].path == "spec.data.source.torchvision.name"
    assert "Places365" in caught.value.errors[0].message


def test_a_hugging_face_model_is_refused_naming_the_field() -> None:
    hf = copy.deepcopy(SPEC)
    hf["data"]["source"] = {"huggingface": {"name": "imdb"}}
    hf["model"] = {"huggingface": {"name": "distilbert-base-uncased"}}
    hf["compression"].pop("distillation")
    with pytest.raises(SpecError) as caught:
        smoke_spec(_spec(hf))
    assert caught.value.errors[0].path == "spec.model.huggingface"


def test_a_hugging_face_data_set_becomes_generated_text() -> None:
    hf = copy.deepcopy(SPEC)
    hf["data"]["source"] = {"huggingface": {"name": "imdb", "maxSamples": 25000}}
    hf["model"] = {"builtin": {"name": "textTransformer"}}
    hf["compression"].pop("distillation")
    smoke = smoke_spec(_spec(hf))
    source = smoke.spec.data.source.synthetic
    assert source is not None and source.kind == "text" and source.samples == SMOKE_SAMPLES
