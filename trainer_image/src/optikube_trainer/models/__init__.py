"""build_model: the model a spec names, sized to the data it will see."""

from __future__ import annotations

import math

from torch import nn

from optikube_operator.api.model import ModelSpec
from optikube_operator.api.model_params import resolve_builtin_params
from optikube_trainer.data.bundle import DataBundle
from optikube_trainer.models.builtin import CNN, MLP, TextTransformer
from optikube_trainer.models.huggingface import build_huggingface
from optikube_trainer.models.user import build_user_model
from optikube_trainer.models.vision import build_torchvision


def _builtin(name: str, spec: ModelSpec, bundle: DataBundle, dropout: float) -> nn.Module:
    shape = bundle.input_shape
    if name == "mlp":
        p = resolve_builtin_params("mlp", spec.params)
        return MLP(math.prod(shape), bundle.num_classes, width=p["width"], depth=p["depth"], dropout=dropout)
    if name == "cnn":
        if bundle.task != "image" or len(shape) != 3:
            raise ValueError(
                f"model.builtin.name: cnn needs image data, got {bundle.task} data of shape {shape}"
            )
        p = resolve_builtin_params("cnn", spec.params)
        return CNN(
            shape[0],
            (shape[1], shape[2]),
            bundle.num_classes,
            channels=p["channels"],
            depth=p["depth"],
            width=p["width"],
            batch_norm=p["batchNorm"],
            dropout=dropout,
        )
    if name == "textTransformer":
        if bundle.task != "text" or bundle.vocab_size is None:
            raise ValueError(f"model.builtin.name: textTransformer needs text data, got {bundle.task} data")
        p = resolve_builtin_params("textTransformer", spec.params)
        return TextTransformer(
            bundle.vocab_size,
            shape[0],
            bundle.num_classes,
            width=p["width"],
            depth=p["depth"],
            heads=p["heads"],
            ff_multiplier=p["ffMultiplier"],
            dropout=dropout,
            pad_id=bundle.pad_id,
        )
    raise ValueError(f"model.builtin.name: unknown model {name!r}")


def build_model(model_spec: ModelSpec, bundle: DataBundle, *, dropout: float = 0.0) -> nn.Module:
    if model_spec.builtin is not None:
        return _builtin(model_spec.builtin.name, model_spec, bundle, dropout)
    if model_spec.torchvision is not None:
        return build_torchvision(model_spec.torchvision, bundle.input_shape, bundle.num_classes)
    if model_spec.huggingface is not None:
        if bundle.task != "text":
            raise ValueError(f"model.huggingface needs text data, got {bundle.task} data")
        return build_huggingface(
            model_spec.huggingface,
            num_classes=bundle.num_classes,
            max_length=bundle.input_shape[0],
            vocab_size=bundle.vocab_size,
            pad_id=bundle.pad_id,
            dropout=dropout,
        )
    if model_spec.import_path is not None:
        context = {
            "input_shape": bundle.input_shape,
            "num_classes": bundle.num_classes,
            "task": bundle.task,
            "vocab_size": bundle.vocab_size,
            "dropout": dropout,
        }
        return build_user_model(model_spec.import_path, model_spec.params, context)
    raise ValueError("model: no model given")


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["CNN", "MLP", "TextTransformer", "build_model", "count_parameters"]
