"""Contract 2, property-based: for generated specs, the trainer reads every field it uses as the user
wrote it, or as the CRD documents its default.

Each spec is drawn from the API models (tests/contract/spec_strategies.py), rendered into a run
config by the operator's code, serialized as the ConfigMap would carry it, parsed by the trainer's
loader and turned into the trainer's `Recipe`. The expected value of each field comes from the
user's YAML (with the trial's parameters set) or, where the user left it out, from the `default`
in the committed CRD: so a default or a meaning changed on one side only fails here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from functools import cache
from operator import attrgetter
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_strategies import trial_params, user_specs

from optikube_operator.api.runconfig import JobIdentity, parse_run_config
from optikube_operator.runconfig import render_run_config
from optikube_trainer.recipe import Recipe, read_recipe

ROOT = Path(__file__).resolve().parents[2]
MISSING = object()


@cache
def crd_spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "crds" / "optimizationjobs.optikube.io.yaml").read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def documented(path: str) -> Any:
    """The CRD's default of a dotted spec path: its `default`, else empty for a list or map and unset
    (None) for anything else; MISSING for a path the CRD does not have."""
    node = crd_spec_schema()
    for segment in path.split("."):
        node = node.get("properties", {}).get(segment)
        if node is None:
            return MISSING
    if "default" in node:
        return node["default"]
    return {"array": [], "object": {}}.get(node.get("type", ""))


def _node(path: str) -> dict[str, Any]:
    node = crd_spec_schema()
    for segment in path.split("."):
        node = node.get("properties", {}).get(segment, {})
    return node


def block_present(spec: dict[str, Any], path: str) -> bool:
    """Whether the block at ``path`` exists once the apiserver defaulted the spec."""
    node: Any = spec
    prefix: list[str] = []
    for segment in path.split("."):
        prefix.append(segment)
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif "default" in _node(".".join(prefix)):
            node = {}
        else:
            return False
    return True


def expected(spec: dict[str, Any], path: str) -> Any:
    """What the user wrote at ``path``, else the documented default."""
    node: Any = spec
    for segment in path.split("."):
        if not isinstance(node, dict) or segment not in node:
            return documented(path)
        node = node[segment]
    return node


def with_params(spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    result = json.loads(json.dumps(spec))
    for path, value in params.items():
        *parents, leaf = path.split(".")
        node = result
        for segment in parents:
            node = node.setdefault(segment, {})
        node[leaf] = value
    return result


def world_size(spec: dict[str, Any]) -> int:
    workers = expected(spec, "resources.workers")
    processes = expected(spec, "resources.processesPerWorker")
    return int(workers) * int(processes)


# Each reading: (the block that turns it on, or None; the field inside; how the recipe shows it).
Reading = tuple[str | None, str, Callable[[Recipe], Any]]


def _snake(field: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", field).lower()


def _same_names(block: str, recipe_block: str, *fields: str) -> list[Reading]:
    """Fields of a spec block that the recipe holds under ``recipe_block`` by their snake_case names."""
    return [
        (None, f"{block}.{field}".lstrip("."), attrgetter(f"{recipe_block}.{_snake(field)}".lstrip(".")))
        for field in fields
    ]


READINGS: list[Reading] = [
    *_same_names("", "", "seed"),
    *_same_names("data", "data.spec", "validationSplit", "testSplit", "preprocessing.normalization"),
    *_same_names(
        "training",
        "training",
        "epochs",
        "batchSize",
        "learningRate",
        "optimizer.type",
        "optimizer.momentum",
        "scheduler.type",
        "scheduler.stepSize",
        "scheduler.gamma",
        "regularization.l1",
        "regularization.l2",
        "regularization.dropout",
        "mixedPrecision",
        "gradientClipNorm",
    ),
    ("training.earlyStopping", "training.earlyStopping.patience", lambda r: r.training.patience),
    ("training.earlyStopping", "training.earlyStopping.minDelta", lambda r: r.training.min_delta),
    ("data.crossValidation", "data.crossValidation.folds", lambda r: r.data.folds),
    *_same_names(
        "data.preprocessing.text",
        "data.text",
        "tokenizer",
        "vocabSize",
        "maxLength",
        "lowercase",
        "removeStopWords",
        "extraStopWords",
    ),
    # the budget holds with or without a compression block (a quantization-only spec too)
    (None, "compression.maxAccuracyDrop", lambda r: r.budget.max_accuracy_drop),
    (None, "compression.skipSlowerStages", lambda r: r.skip_slower_stages),
    *_same_names("export", "export", "runtime"),
]
# The technique configs: (the block, the recipe attribute, camelCase field -> config attribute).
TECHNIQUES: list[tuple[str, str, dict[str, str]]] = [
    (
        "compression.pruning",
        "pruning",
        {
            "method": "method",
            "sparsity": "sparsity",
            "fineTuneEpochs": "fine_tune_epochs",
            "allocation": "allocation",
        },
    ),
    ("compression.lowRank", "low_rank", {"energy": "energy", "fineTuneEpochs": "fine_tune_epochs"}),
    (
        "compression.weightSharing",
        "weight_sharing",
        {"clusters": "clusters", "fineTuneEpochs": "fine_tune_epochs"},
    ),
    (
        "compression.distillation",
        "distillation",
        {"temperature": "temperature", "alpha": "alpha", "epochs": "epochs"},
    ),
    ("quantization", "quantization", {"method": "method", "calibrationBatches": "calibration_batches"}),
]


def _technique_reading(attribute: str, field: str) -> Callable[[Recipe], Any]:
    def read(recipe: Recipe) -> Any:
        config = getattr(recipe, attribute)
        return None if config is None else getattr(config, field)

    return read


READINGS += [
    (block, f"{block}.{name}", _technique_reading(attribute, field))
    for block, attribute, fields in TECHNIQUES
    for name, field in fields.items()
]


def same(got: Any, want: Any) -> bool:
    if isinstance(want, float) or isinstance(got, float):
        return got is not None and want is not None and math.isclose(float(got), float(want), rel_tol=1e-12)
    return bool(got == want)


def check_readings(spec: dict[str, Any], recipe: Recipe) -> list[str]:
    """Every field the trainer reads, compared with what it should be; returns the mismatches."""
    wrong: list[str] = []
    for block, path, read in READINGS:
        got = read(recipe)
        if block is not None and not block_present(spec, block):
            want: Any = {
                "data.crossValidation": 0,
                "training.earlyStopping": 0 if "patience" in path else 0.0,
            }.get(block)
        else:
            want = expected(spec, path)
        assert want is not MISSING, f"{path} has neither a written value nor a documented default"
        if not same(got, want):
            wrong.append(f"{path}: the trainer reads {got!r}, the user wrote or the CRD documents {want!r}")
    return wrong


def check_meanings(spec: dict[str, Any], recipe: Recipe) -> list[str]:
    """Fields whose meaning the trainer derives: the global batch, the low-rank default, the stages."""
    wrong: list[str] = []
    world = world_size(spec)
    batch = int(expected(spec, "training.batchSize"))
    if recipe.training.world_size != world or recipe.training.per_process_batch != math.ceil(batch / world):
        wrong.append(
            f"training.batchSize {batch} is the global batch over {world} processes, but the trainer"
            f" takes {recipe.training.per_process_batch} per process"
        )
    if block_present(spec, "compression.lowRank"):
        block = spec["compression"]["lowRank"]
        # rankRatio as written; the documented 0.5 only when neither rankRatio nor energy is set
        want = block.get("rankRatio", 0.5 if "energy" not in block else None)
        assert recipe.low_rank is not None
        if not same(recipe.low_rank.rank_ratio, want):
            wrong.append(f"compression.lowRank.rankRatio: the trainer reads {recipe.low_rank.rank_ratio}")
    if block_present(spec, "quantization") and expected(spec, "quantization.method") == "qat":
        assert recipe.quantization is not None
        if recipe.quantization.qat_epochs != expected(spec, "quantization.qatEpochs"):
            wrong.append("quantization.qatEpochs differs")
    order = ["distillation", "pruning", "lowRank", "weightSharing"]
    stages = [name for name in order if block_present(spec, f"compression.{name}")]
    stages += ["quantization"] if block_present(spec, "quantization") else []
    if list(recipe.stages) != stages:
        wrong.append(f"stages: the trainer runs {recipe.stages}, the spec asks for {stages}")
    hub = spec["model"].get("huggingface")
    tokenizer = None if hub is None else (hub.get("localPath") or hub["name"])
    if recipe.data.pretrained_tokenizer != tokenizer:
        wrong.append(f"the pretrained tokenizer is {recipe.data.pretrained_tokenizer}, not {tokenizer}")
    if recipe.model.to_dict() != with_defaults_of_model(spec["model"], recipe):
        wrong.append("model differs")
    return wrong


def with_defaults_of_model(model: dict[str, Any], recipe: Recipe) -> dict[str, Any]:
    """The written model block with the documented defaults of its chosen source filled in."""
    result = json.loads(json.dumps(model))
    for source in ("builtin", "torchvision", "huggingface"):
        if source in result:
            schema = crd_spec_schema()["properties"]["model"]["properties"][source]["properties"]
            for key, node in schema.items():
                if key not in result[source] and "default" in node:
                    result[source][key] = node["default"]
    result.setdefault("params", {})
    return result


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
@given(spec=user_specs(), stage=st.sampled_from(["trial", "pipeline"]))
def test_the_trainer_reads_every_field_as_written_or_documented(spec: dict[str, Any], stage: str) -> None:
    params = trial_params(spec) if stage == "trial" else {}
    rendered = render_run_config(
        job=JobIdentity(name="contract"),
        spec=spec,
        stage="trial" if stage == "trial" else "pipeline",
        output_dir="/artifacts/contract",
        trial_number=0 if stage == "trial" else None,
        params=params,
    )
    config = parse_run_config(json.loads(json.dumps(rendered)))  # as the trainer reads the ConfigMap
    user = with_params(spec, params)
    recipe = read_recipe(config.spec, world_size(user), config.stage)
    wrong = check_readings(user, recipe) + check_meanings(user, recipe)
    assert not wrong, "\n".join(wrong)


def test_the_trainer_declares_no_spec_model_of_its_own() -> None:
    """One spec: nothing in the trainer package is a pydantic model (the API's models are the schema)."""
    import importlib
    import pkgutil

    import pydantic

    import optikube_trainer

    declared = []
    for module in pkgutil.walk_packages(optikube_trainer.__path__, "optikube_trainer."):
        loaded = importlib.import_module(module.name)
        for value in vars(loaded).values():
            if (
                isinstance(value, type)
                and issubclass(value, pydantic.BaseModel)
                and value.__module__ == loaded.__name__
            ):
                declared.append(f"{loaded.__name__}.{value.__name__}")
    assert declared == []
