"""The smoke form of a spec (`optikube run --smoke`): the same job, shrunk to run end to end in a
minute or two on a laptop, offline.

Only sizes shrink: at most 2 trials, 1 epoch (and 1 epoch of every fine-tuning, distillation and
quantization-aware training), 2 cross-validation folds, a few hundred examples. What cannot run on
this machine gets an honest stand-in, listed like every other change: a data set that needs a
download or a volume becomes a generated one of the same shape, pretrained weights become a random
initialization, and a multi-node or GPU placement becomes one local CPU process. Everything else
(the model, the objectives, the sampler and pruner, preprocessing, compression and quantization
methods, the export) is exactly what the YAML says.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from optikube_operator.api.data import DataSource
from optikube_operator.api.job import OptimizationJobSpec
from optikube_operator.api.tuning import Parameter
from optikube_operator.api.validation import FieldError, SpecError, search_space_errors, validate_spec

SMOKE_TRIALS = 2
SMOKE_EPOCHS = 1
SMOKE_FOLDS = 2
SMOKE_SAMPLES = 256
# With many classes: this many examples per class, on average, in the smallest split (validation,
# test), so that every class appears in every split (the preflight refuses a split without one).
SMOKE_SAMPLES_PER_CLASS = 4
SMOKE_CALIBRATION_BATCHES = 2

# Offline stand-ins for torchvision data sets: (channels, image size, classes) of the real one.
TORCHVISION_SHAPES: dict[str, tuple[int, int, int]] = {
    "CIFAR10": (3, 32, 10),
    "CIFAR100": (3, 32, 100),
    "MNIST": (1, 28, 10),
    "FashionMNIST": (1, 28, 10),
    "KMNIST": (1, 28, 10),
    "QMNIST": (1, 28, 10),
    "SVHN": (3, 32, 10),
    "STL10": (3, 96, 10),
}
# A Hugging Face data set's classes are known only once it is downloaded.
HUGGINGFACE_STAND_IN_CLASSES = 2

STAND_IN = "stand-in"
SHRUNK = "shrunk"


@dataclass(frozen=True)
class SmokeChange:
    """One field the smoke run sets differently from the YAML, and why."""

    path: str  # e.g. spec.training.epochs
    before: Any
    after: Any
    kind: str  # SHRUNK (a smaller size) or STAND_IN (what cannot run here, replaced)
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {_shown(self.before)} -> {_shown(self.after)} ({self.reason})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SmokeSpec:
    spec: OptimizationJobSpec
    changes: tuple[SmokeChange, ...]

    def stand_ins(self) -> list[SmokeChange]:
        return [change for change in self.changes if change.kind == STAND_IN]


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shown(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "(unset)"
    return str(value).lower() if isinstance(value, bool) else str(value)


class _Editor:
    """Edits the camelCase dict form of a spec, recording every change."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.changes: list[SmokeChange] = []

    def block(self, path: str) -> dict[str, Any] | None:
        node: Any = self.raw
        for key in path.split("."):
            if not isinstance(node, dict) or not isinstance(node.get(key), dict):
                return None
            node = node[key]
        return node if isinstance(node, dict) else None

    def set(self, path: str, value: Any, kind: str, reason: str) -> None:
        parent, _, key = path.rpartition(".")
        block = self.block(parent) if parent else self.raw
        if block is None:
            return
        before = block.get(key)
        if before == value:
            return
        if value is None:
            block.pop(key, None)
        else:
            block[key] = value
        self.changes.append(SmokeChange(f"spec.{path}", before, value, kind, reason))

    def cap(self, path: str, limit: int, reason: str) -> None:
        parent, _, key = path.rpartition(".")
        block = self.block(parent) if parent else self.raw
        value = None if block is None else block.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > limit:
            self.set(path, limit, SHRUNK, reason)


def _shrink_search(editor: _Editor) -> None:
    tuning = editor.block("tuning")
    if tuning is None:
        return
    editor.cap("tuning.maxTrials", SMOKE_TRIALS, f"at most {SMOKE_TRIALS} trials")
    editor.cap("tuning.parallelTrials", tuning["maxTrials"], "no more at once than trials")
    editor.cap("tuning.pruner.maxResource", SMOKE_EPOCHS, "a trial is one epoch")


def _shrink_training(editor: _Editor) -> None:
    one = f"{SMOKE_EPOCHS} epoch"
    editor.cap("training.epochs", SMOKE_EPOCHS, one)
    editor.cap("compression.distillation.epochs", SMOKE_EPOCHS, one)
    for stage in ("pruning", "lowRank", "weightSharing"):
        editor.cap(f"compression.{stage}.fineTuneEpochs", SMOKE_EPOCHS, one)
    editor.cap("quantization.qatEpochs", SMOKE_EPOCHS, one)
    if (editor.block("quantization") or {}).get("method") == "static":
        batches = f"{SMOKE_CALIBRATION_BATCHES} batches"
        editor.cap("quantization.calibrationBatches", SMOKE_CALIBRATION_BATCHES, batches)
    editor.cap("data.crossValidation.folds", SMOKE_FOLDS, f"{SMOKE_FOLDS} folds")


def _sample_cap(classes: int, data: dict[str, Any]) -> int:
    splits = [float(data["validationSplit"]), float(data["testSplit"])]
    smallest = min(fraction for fraction in splits if fraction > 0)
    return max(SMOKE_SAMPLES, math.ceil(SMOKE_SAMPLES_PER_CLASS * classes / smallest))


def _source(raw: dict[str, Any]) -> dict[str, Any]:
    """A stand-in source in the spec's own form, defaults filled in."""
    return DataSource.model_validate(raw).to_dict()


def _shrink_data(editor: _Editor) -> None:
    data, source = editor.block("data"), editor.block("data.source")
    if data is None or source is None:
        return
    if (synthetic := source.get("synthetic")) is not None:
        limit = _sample_cap(int(synthetic["classes"]), data)
        editor.cap("data.source.synthetic.samples", limit, f"{limit} examples")
    if (torchvision := source.get("torchvision")) is not None:
        shape = TORCHVISION_SHAPES.get(torchvision["name"])
        if shape is None:
            raise SpecError(
                [
                    FieldError(
                        "spec.data.source.torchvision.name",
                        f"--smoke runs offline and has no stand-in for {torchvision['name']!r}: its shape"
                        f" is known for {', '.join(sorted(TORCHVISION_SHAPES))}",
                    )
                ]
            )
        channels, size, classes = shape
        samples = _sample_cap(classes, data)
        stand_in = {
            "kind": "images",
            "samples": samples,
            "classes": classes,
            "imageSize": size,
            "channels": channels,
        }
        editor.set(
            "data.source",
            _source({"synthetic": stand_in}),
            STAND_IN,
            f"generated images of {torchvision['name']}'s shape ({channels}x{size}x{size}, {classes}"
            " classes): --smoke never downloads or reads a data volume",
        )
    if source.get("huggingface") is not None:
        samples = _sample_cap(HUGGINGFACE_STAND_IN_CLASSES, data)
        editor.set(
            "data.source",
            _source(
                {"synthetic": {"kind": "text", "samples": samples, "classes": HUGGINGFACE_STAND_IN_CLASSES}}
            ),
            STAND_IN,
            f"generated text, {HUGGINGFACE_STAND_IN_CLASSES} classes: --smoke never downloads a data set",
        )


def _model_stand_ins(editor: _Editor, path: str) -> None:
    model = editor.block(path)
    if model is None:
        return
    if isinstance(model.get("torchvision"), dict) and model["torchvision"].get("pretrained", True):
        editor.set(
            f"{path}.torchvision.pretrained",
            False,
            STAND_IN,
            "random initialization: --smoke never reads or downloads pretrained weights",
        )
        editor.set(f"{path}.torchvision.weightsPath", None, STAND_IN, "no pretrained weights to read")
    if model.get("huggingface") is not None:
        raise SpecError(
            [
                FieldError(
                    f"spec.{path}.huggingface",
                    "--smoke runs offline and has no stand-in for a Hugging Face model (its architecture"
                    " comes from the Hub or localPath)",
                )
            ]
        )


def _placement_stand_in(editor: _Editor) -> None:
    resources = editor.block("resources") or {}
    if int(resources.get("workers", 1)) == 1 and int(resources.get("gpusPerProcess", 0)) == 0:
        return
    reason = "one local CPU process stands in for the cluster placement"
    editor.set("resources.workers", 1, STAND_IN, reason)
    editor.set("resources.processesPerWorker", 1, STAND_IN, reason)
    editor.set("resources.gpusPerProcess", 0, STAND_IN, reason)


def _pin_searched_sizes(editor: _Editor, before: dict[str, Any]) -> None:
    """A search-space key at a field the smoke run shrank would undo it in every trial: it is
    pinned to the shrunk value."""
    space = (editor.block("tuning") or {}).get("searchSpace") or {}
    shrunk = {change.path.removeprefix("spec."): change.after for change in editor.changes}
    for key in list(space):
        if key in shrunk and shrunk[key] is not None:
            space[key] = Parameter(type="categorical", choices=[shrunk[key]]).to_dict()
            editor.changes.append(
                SmokeChange(
                    f'spec.tuning.searchSpace["{key}"]',
                    before.get(key),
                    space[key],
                    SHRUNK,
                    "searched sizes are pinned to the smoke value",
                )
            )


STEPS: tuple[Callable[[_Editor], None], ...] = (_shrink_search, _shrink_training, _shrink_data)


def smoke_spec(spec: OptimizationJobSpec) -> SmokeSpec:
    """The smoke form of ``spec`` and every change made to it; raises SpecError, naming the field,
    for what has no offline stand-in."""
    raw = spec.to_dict()
    editor = _Editor(raw)
    searched = dict((editor.block("tuning") or {}).get("searchSpace") or {})
    for step in STEPS:
        step(editor)
    _model_stand_ins(editor, "model")
    _model_stand_ins(editor, "compression.distillation.student")
    _placement_stand_in(editor)
    _pin_searched_sizes(editor, searched)
    smoke, errors = validate_spec(raw)
    if smoke is not None:
        errors = list(search_space_errors(smoke, raw))
    if smoke is None or errors:
        raise SpecError(errors)
    return SmokeSpec(smoke, tuple(editor.changes))
