"""Image augmentation for the training split: flips, rotations and padded random crops."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from optikube_operator.api.data import Augmentation


def augment_image(
    image: torch.Tensor, config: Augmentation, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One random augmentation of a (C, H, W) image; the shape is preserved."""

    def coin() -> bool:
        return bool(torch.rand((), generator=generator) < 0.5)

    if config.horizontal_flip and coin():
        image = image.flip(-1)
    if config.vertical_flip and coin():
        image = image.flip(-2)
    if config.rotation_degrees > 0:
        angle = float((torch.rand((), generator=generator) * 2 - 1) * config.rotation_degrees)
        # imported here: torchvision costs seconds to import, and only rotation needs it
        from torchvision.transforms.v2 import functional as TF

        image = TF.rotate(image, angle)
    if config.random_crop is not None and config.random_crop.padding > 0:
        pad = config.random_crop.padding
        height, width = image.shape[-2:]
        padded = F.pad(image, (pad, pad, pad, pad))
        top = int(torch.randint(0, 2 * pad + 1, (), generator=generator))
        left = int(torch.randint(0, 2 * pad + 1, (), generator=generator))
        image = padded[..., top : top + height, left : left + width]
    return image


class AugmentedDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor, config: Augmentation) -> None:
        self.images = images
        self.labels = labels
        self.config = config

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return augment_image(self.images[index], self.config), self.labels[index]
