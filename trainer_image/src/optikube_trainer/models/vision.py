"""torchvision classifiers for transfer learning: local or hub weights, frozen backbone, new head."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from optikube_operator.api.model import TorchvisionModel

# below this size the ImageNet stem (7x7 stride 2 + max-pool) would shrink the image to nothing
SMALL_INPUT = 64


def _load_weights(model: nn.Module, path: str) -> None:
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    # the old head has 1000 classes: it is replaced anyway, so it is not loaded
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "classifier.", "heads."))}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(("fc.", "classifier.", "heads."))]
    if missing or unexpected:
        raise ValueError(
            f"model.torchvision.weightsPath: {path} does not match {type(model).__name__} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )


def _replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    for attribute in ("fc", "classifier", "heads"):
        head = getattr(model, attribute, None)
        if isinstance(head, nn.Linear):
            new: nn.Module = nn.Linear(int(head.in_features), num_classes)
            setattr(model, attribute, new)
            return new
        if isinstance(head, nn.Sequential):
            for index in range(len(head) - 1, -1, -1):
                layer = head[index]
                if isinstance(layer, nn.Linear):
                    head[index] = nn.Linear(int(layer.in_features), num_classes)
                    return head
    raise ValueError(f"model.torchvision.name: cannot find the classification head of {type(model).__name__}")


def _adapt_stem(model: nn.Module, in_channels: int, image_size: int) -> list[nn.Module]:
    """Fit a ResNet-style stem to the input; returns the new (trainable) modules."""
    conv = getattr(model, "conv1", None)
    if not isinstance(conv, nn.Conv2d):
        if in_channels != 3:
            raise ValueError("model.torchvision: only ResNet-style models (conv1) adapt to non-RGB inputs")
        return []
    if image_size < SMALL_INPUT:
        new = nn.Conv2d(in_channels, conv.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        model.conv1 = new
        model.maxpool = nn.Identity()
        return [new]
    if in_channels != 3:
        new = nn.Conv2d(
            in_channels,
            conv.out_channels,
            kernel_size=(conv.kernel_size[0], conv.kernel_size[-1]),
            stride=(conv.stride[0], conv.stride[-1]),
            padding=conv.padding if isinstance(conv.padding, str) else (conv.padding[0], conv.padding[-1]),
            bias=False,
        )
        with torch.no_grad():
            # keep the pretrained filters' response: average the RGB filters into each new channel
            new.weight.copy_(conv.weight.mean(dim=1, keepdim=True).repeat(1, in_channels, 1, 1))
        model.conv1 = new
        return [new]
    return []


def build_torchvision(config: TorchvisionModel, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    import torchvision.models as tv_models

    if len(input_shape) != 3:
        raise ValueError(f"model.torchvision needs image data (C, H, W), got input shape {input_shape}")
    try:
        builder = tv_models.get_model_builder(config.name)
    except ValueError:
        raise ValueError(f"model.torchvision.name: unknown torchvision model {config.name!r}") from None
    if config.pretrained and config.weights_path is None:
        model = builder(weights="DEFAULT")  # from the hub: needs a network
    else:
        model = builder(weights=None)
        if config.pretrained and config.weights_path is not None:
            _load_weights(model, config.weights_path)
    if config.freeze_backbone:
        for parameter in model.parameters():
            parameter.requires_grad_(False)
    trainable = [_replace_head(model, num_classes), *_adapt_stem(model, input_shape[0], min(input_shape[1:]))]
    for module in trainable:
        for parameter in module.parameters():
            parameter.requires_grad_(True)
    return model
