"""The preflight: a job's data loaded once and its models built and run on one batch, before any trial.

What would otherwise fail every trial a minute in (a missing file, a misspelled column, a param the
model does not take, a class too small for the splits, features that are not finite numbers) fails
here in seconds, with one message naming the spec field. It loads the data with the loader trials
use (`data.loading`) and builds the models with `models.build_model`, so it cannot pass a spec that
trials would refuse for those reasons, nor refuse one they would accept.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from optikube_operator.api import OptimizationJobSpec
from optikube_operator.api.data import DataSpec
from optikube_operator.api.model import ModelSpec
from optikube_operator.api.runconfig import (
    PREFLIGHT_EXIT_REFUSED,
    PREFLIGHT_OUTCOME_FILE,
    PreflightFindings,
    RunConfig,
)
from optikube_trainer.compression import DistillationConfig, student_model_spec
from optikube_trainer.data import DataBundle, RawData, load_data, load_raw
from optikube_trainer.data.splits import split_indices
from optikube_trainer.models import build_model, count_parameters
from optikube_trainer.progress import TERMINATION_LOG, TERMINATION_LOG_LIMIT
from optikube_trainer.recipe import DataRecipe, TrainingRecipe, folds

log = logging.getLogger(__name__)

# exit codes: the spec or its data cannot run; the preflight itself broke
EXIT_REFUSED = PREFLIGHT_EXIT_REFUSED
EXIT_CRASHED = 1
STUDENT_FIELD = "spec.compression.distillation.student"
# messages of the model builders name `model.<field>`, relative to the ModelSpec they built
MODEL_PREFIX = "model."


class PreflightError(ValueError):
    """The job cannot run; `field` is the spec field to change, `message` says why."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


def as_preflight_error(error: Exception, field: str) -> PreflightError:
    """A loader's or builder's error as a PreflightError. Their messages start with the field
    (`spec.data.source.file.path: ...`; a model builder's with `model.params.width: ...`, relative
    to the model it built, which ``field`` names); others are placed at ``field``."""
    text = str(error)
    head, separator, rest = text.partition(": ")
    if not separator or " " in head or not head[:1].isalpha():
        return PreflightError(field, f"{type(error).__name__}: {text}")
    if head.startswith(MODEL_PREFIX):
        head = f"{field}.{head.removeprefix(MODEL_PREFIX)}"
    elif not head.startswith("spec."):
        head = f"spec.{head}"
    return PreflightError(head, rest)


def _class_name(raw: RawData, label: int) -> str:
    return raw.class_names[label] if label < len(raw.class_names) else str(label)


def class_count_problem(raw: RawData, data: DataSpec, seed: int) -> PreflightError | None:
    """A class with too few examples to appear in every split (and fold) trials train and score on."""
    labels = raw.labels
    counts = np.bincount(labels, minlength=raw.num_classes)
    if int((counts > 0).sum()) < 2:
        return PreflightError(
            "spec.data.source", f"the data has {int((counts > 0).sum())} class; at least 2 needed"
        )
    cross = folds(data)
    with_test = data.test_split > 0
    # one example for training and one for validation, or one per fold, plus one for the test split
    needed = (cross if cross >= 2 else 2) + (1 if with_test else 0)
    field = (
        "spec.data.crossValidation.folds"
        if cross >= 2
        else ("spec.data.testSplit" if with_test else "spec.data.validationSplit")
    )
    present = np.flatnonzero(counts)
    smallest = int(present[np.argmin(counts[present])])
    if counts[smallest] < needed:
        name = _class_name(raw, smallest)
        uses = f"{cross} folds" if cross >= 2 else "training and validation"
        return PreflightError(
            field,
            f"class {name!r} has {counts[smallest]} example{'s' if counts[smallest] != 1 else ''}, fewer"
            f" than the {needed} that {uses}{' and the test split' if with_test else ''} need (one"
            " each); add examples of it, merge it into another class or leave its rows out",
        )
    idx = split_indices(labels, validation=data.validation_split, test=data.test_split, seed=seed)
    for split, indices, split_field in (
        ("training", idx.train, "spec.data.validationSplit"),
        ("validation", idx.val, "spec.data.validationSplit"),
        ("test", idx.test, "spec.data.testSplit"),
    ):
        if split == "test" and not with_test:
            continue
        missing = sorted(set(present.tolist()) - set(np.unique(labels[indices]).tolist()))
        if missing:
            name = _class_name(raw, missing[0])
            return PreflightError(
                split_field,
                f"the {split} split ({len(indices)} of {len(labels)} examples) has no example of class"
                f" {name!r}: {len(present)} classes need more examples per split",
            )
    return None


def raw_finite_problem(raw: RawData) -> PreflightError | None:
    """Features that are not finite numbers (a CSV's are checked cell by cell by its reader)."""
    if raw.features is None:
        return None
    bad = ~np.isfinite(raw.features)
    if not bad.any():
        return None
    sample = int(np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))[0])
    count = int(bad.sum())
    where = ""
    if raw.feature_names is not None and bad.ndim == 2:
        columns = [raw.feature_names[i] for i in np.flatnonzero(bad.any(axis=0))]
        where = f" in column{'s' if len(columns) > 1 else ''} {', '.join(repr(c) for c in columns[:5])}"
        where += f" and {len(columns) - 5} more" if len(columns) > 5 else ""
    return PreflightError(
        "spec.data.source",
        f"{count} feature value{'s are' if count != 1 else ' is'} not a finite number (NaN or infinity)"
        f"{where}, the first in example {sample}; a model cannot learn from them",
    )


def bundle_finite_problem(bundle: DataBundle) -> PreflightError | None:
    """Preprocessing that turned finite features into non-finite ones."""
    for split in ("train", "val", "test"):
        tensors = getattr(bundle.split(split), "tensors", None)
        features = tensors[0] if tensors else None
        if features is not None and features.is_floating_point() and not torch.isfinite(features).all():
            return PreflightError(
                "spec.data.preprocessing",
                f"preprocessing leaves non-finite feature values in the {split} split",
            )
    return None


def _forward(model: nn.Module, bundle: DataBundle, batch: int, field: str) -> int:
    """Run ``model`` on one training batch; returns its parameter count."""
    dataset = bundle.train
    length = len(dataset)  # type: ignore[arg-type]
    inputs = torch.stack([dataset[i][0] for i in range(min(batch, length))])
    model.eval()
    try:
        with torch.no_grad():
            outputs = model(inputs)
    except Exception as error:  # a model that does not fit the data: its own error says why
        raise PreflightError(
            field,
            f"the model fails on a batch of the data (inputs of shape {tuple(inputs.shape)}):"
            f" {type(error).__name__}: {error}",
        ) from None
    logits = outputs.logits if hasattr(outputs, "logits") else outputs
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (len(inputs), bundle.num_classes):
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise PreflightError(
            field, f"the model gives {shape} for a batch of {len(inputs)}; expected ({len(inputs)}, classes)"
        )
    return count_parameters(model)


def _build(model_spec: ModelSpec, bundle: DataBundle, dropout: float, field: str) -> nn.Module:
    try:
        return build_model(model_spec, bundle, dropout=dropout)
    except (ValueError, TypeError, ImportError, AttributeError) as error:
        raise as_preflight_error(error, field) from None


def run_preflight(spec: OptimizationJobSpec) -> PreflightFindings:
    """Load the data once, check it, build the model (and the distillation student) and run each on
    one batch; raises PreflightError naming the field."""
    started = time.perf_counter()
    torch.manual_seed(spec.seed)
    # the recipe's readers of the parts a preflight builds (the whole recipe would import the
    # quantization package: torchao and dynamo, seconds of every job's first step)
    data_recipe, training = DataRecipe.from_spec(spec), TrainingRecipe.from_spec(spec.training)
    data = data_recipe.spec
    try:
        raw = load_raw(data.source, spec.seed, missing=data.preprocessing.missing_values)
    except (ValueError, OSError) as error:
        raise as_preflight_error(error, "spec.data.source") from None
    problem = raw_finite_problem(raw) or class_count_problem(raw, data, spec.seed)
    if problem is not None:
        raise problem
    try:
        bundle = load_data(data, spec.seed, raw=raw, pretrained=data_recipe.pretrained_tokenizer)
    except (ValueError, OSError) as error:
        raise as_preflight_error(error, "spec.data") from None
    problem = bundle_finite_problem(bundle)
    if problem is not None:
        raise problem
    dropout = training.regularization.dropout
    batch = max(1, min(training.per_process_batch, 32))
    parameters = _forward(_build(spec.model, bundle, dropout, "spec.model"), bundle, batch, "spec.model")
    student_parameters = None
    distillation = spec.compression.distillation if spec.compression is not None else None
    if distillation is not None:
        student_spec = ModelSpec.model_validate(
            student_model_spec(DistillationConfig.from_spec(distillation))
        )
        student = _build(student_spec, bundle, dropout, STUDENT_FIELD)
        student_parameters = _forward(student, bundle, batch, STUDENT_FIELD)
    return PreflightFindings(
        samples=len(raw),
        classes=raw.num_classes,
        input_shape=tuple(bundle.input_shape),
        parameters=parameters,
        student_parameters=student_parameters,
        seconds=round(time.perf_counter() - started, 3),
    )


def preflight_stage(config: RunConfig, termination_log: Path = TERMINATION_LOG) -> int:
    """`python -m optikube_trainer preflight`: the outcome goes to ``<outputDir>/preflight.json``,
    stdout or stderr, and (refused) the termination message, which is `<field>: <message>`."""
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        findings = run_preflight(config.spec)
    except PreflightError as error:
        _write(out / PREFLIGHT_OUTCOME_FILE, {"ok": False, "field": error.field, "message": error.message})
        print(f"preflight refused the job: {error}", file=sys.stderr)
        if termination_log.exists():
            try:
                termination_log.write_text(
                    str(error).encode()[:TERMINATION_LOG_LIMIT].decode(errors="ignore")
                )
            except OSError as failure:
                log.warning("cannot write %s: %s", termination_log, failure)
        return EXIT_REFUSED
    _write(out / PREFLIGHT_OUTCOME_FILE, {"ok": True, "findings": findings.to_dict()})
    print(json.dumps({"preflight": "passed", **findings.to_dict()}))
    return 0


def _write(path: Path, document: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(document, indent=1))
    temporary.replace(path)


__all__ = ["PreflightError", "PreflightFindings", "preflight_stage", "run_preflight"]
