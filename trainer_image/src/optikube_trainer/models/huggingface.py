"""Hugging Face sequence classifiers (DistilBERT-style) behind a (token ids) -> logits interface."""

from __future__ import annotations

import torch
from torch import nn

from optikube_operator.api.model import HuggingFaceModel

HEAD_PREFIXES = ("classifier", "pre_classifier", "score")


class SequenceClassifier(nn.Module):
    def __init__(self, model: nn.Module, pad_id: int) -> None:
        super().__init__()
        self.model = model
        self.pad_id = pad_id

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids.long()
        mask = (ids != self.pad_id).long()
        return self.model(input_ids=ids, attention_mask=mask).logits


def build_huggingface(
    config: HuggingFaceModel,
    *,
    num_classes: int,
    max_length: int,
    vocab_size: int | None,
    pad_id: int,
    dropout: float | None = None,
) -> nn.Module:
    from transformers import AutoConfig, AutoModelForSequenceClassification

    source = config.local_path or config.name
    hf_config = AutoConfig.from_pretrained(source, num_labels=num_classes)
    if dropout is not None and dropout > 0:
        for name in ("dropout", "hidden_dropout_prob", "seq_classif_dropout"):
            if hasattr(hf_config, name):
                setattr(hf_config, name, dropout)
    positions = getattr(hf_config, "max_position_embeddings", None)
    if positions is not None and max_length > positions:
        raise ValueError(
            f"data.preprocessing.text.maxLength: {max_length} exceeds the model's {positions} positions"
        )
    if config.pretrained:
        model = AutoModelForSequenceClassification.from_pretrained(
            source, config=hf_config, ignore_mismatched_sizes=True
        )
    else:
        model = AutoModelForSequenceClassification.from_config(hf_config)
    if vocab_size is not None and vocab_size > model.get_input_embeddings().num_embeddings:
        # optikube's word vocabulary can be larger than the model's; new rows are learned
        model.resize_token_embeddings(vocab_size)
    if config.freeze_backbone:
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.startswith(HEAD_PREFIXES))
    return SequenceClassifier(model, pad_id)
