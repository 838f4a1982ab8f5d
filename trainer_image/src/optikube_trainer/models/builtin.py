"""optikube's own models, sized by parameters the search can tune."""

from __future__ import annotations

import math

import torch
from torch import nn


class MLP(nn.Module):
    """Flatten -> depth x (Linear -> ReLU -> Dropout) -> Linear."""

    def __init__(
        self, in_features: int, num_classes: int, *, width: int = 64, depth: int = 2, dropout: float = 0.0
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        previous = in_features
        for _ in range(depth):
            layers += [nn.Linear(previous, width), nn.ReLU(), nn.Dropout(dropout)]
            previous = width
        layers.append(nn.Linear(previous, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN(nn.Module):
    """depth x (Conv3x3 -> BatchNorm -> ReLU -> MaxPool while the image is large enough) -> MLP head.

    Channels double per block. Pooling stops at 2x2 so that 8x8 inputs (digits) work.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: tuple[int, int],
        num_classes: int,
        *,
        channels: int = 16,
        depth: int = 2,
        width: int = 64,
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        previous, height, breadth = in_channels, *image_size
        for i in range(depth):
            out = channels * 2**i
            blocks += [nn.Conv2d(previous, out, kernel_size=3, padding=1, bias=not batch_norm)]
            if batch_norm:
                blocks.append(nn.BatchNorm2d(out))
            blocks.append(nn.ReLU())
            if min(height, breadth) >= 4:
                blocks.append(nn.MaxPool2d(2))
                height, breadth = height // 2, breadth // 2
            previous = out
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(previous, width),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(width, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))


class TextTransformer(nn.Module):
    """Token + position embeddings -> nn.TransformerEncoder -> masked mean pooling -> Linear."""

    def __init__(
        self,
        vocab_size: int,
        max_length: int,
        num_classes: int,
        *,
        width: int = 64,
        depth: int = 2,
        heads: int = 4,
        ff_multiplier: int = 2,
        dropout: float = 0.0,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"model.params.heads: {heads} must divide model.params.width ({width})")
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, width, padding_idx=pad_id)
        self.position = nn.Parameter(torch.zeros(1, max_length, width))
        nn.init.normal_(self.position, std=1.0 / math.sqrt(width))
        layer = nn.TransformerEncoderLayer(
            width,
            heads,
            dim_feedforward=width * ff_multiplier,
            dropout=dropout,
            batch_first=True,
            norm_first=True,
        )
        # nested-tensor fast path off: it changes output shapes in eval mode and breaks tracing
        self.encoder = nn.TransformerEncoder(layer, num_layers=depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.long()
        padding = ids == self.pad_id
        # a sequence made only of padding would give NaN attention: let it attend to position 0
        padding = padding & ~(
            padding.all(dim=1, keepdim=True) & (torch.arange(ids.shape[1], device=ids.device) == 0)
        )
        hidden = self.embedding(ids) + self.position[:, : ids.shape[1]]
        hidden = self.norm(self.encoder(hidden, src_key_padding_mask=padding))
        keep = (~padding).unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
        return self.classifier(self.dropout(pooled))
