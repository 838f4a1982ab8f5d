"""Transfer learning: a frozen torchvision backbone and a Hugging Face model with its own tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from optikube_operator.api.data import DataSpec
from optikube_operator.api.model import ModelSpec
from optikube_operator.api.training import TrainingSpec
from optikube_trainer.data import load_data
from optikube_trainer.data.synthetic import NEUTRAL_WORDS, TOPICS
from optikube_trainer.data.text import ENGLISH_STOP_WORDS
from optikube_trainer.dist import local_context, seed_everything
from optikube_trainer.models import build_model
from optikube_trainer.recipe import TrainingRecipe
from optikube_trainer.training import evaluate, fit

pytestmark = pytest.mark.slow


def test_frozen_resnet_backbone_stays_fixed_while_the_head_learns(tmp_path: Path) -> None:
    import torchvision

    seed_everything(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet18.pth")
    bundle = load_data(DataSpec.model_validate({"source": {"builtin": "digits"}}), seed=0)
    spec = ModelSpec.model_validate(
        {
            "torchvision": {
                "name": "resnet18",
                "pretrained": True,
                "weightsPath": str(tmp_path / "resnet18.pth"),
                "freezeBackbone": True,
            }
        }
    )
    model = build_model(spec, bundle)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ctx = local_context(seed=0)
    training = TrainingSpec.model_validate({"epochs": 1, "batchSize": 64, "learningRate": 3e-3})
    fit(model, bundle, TrainingRecipe.from_spec(training), ctx)
    after = model.state_dict()
    assert torch.equal(after["layer2.0.conv1.weight"], before["layer2.0.conv1.weight"])  # frozen
    assert not torch.equal(after["fc.weight"], before["fc.weight"])  # the new head learned
    assert not torch.equal(after["conv1.weight"], before["conv1.weight"])  # the adapted stem too
    assert evaluate(model, bundle.loader("val", 256), ctx)["accuracy"] > 0.3  # 10 classes: chance is 0.1


def _word_tokenizer(directory: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for topic in TOPICS for w in topic} | set(NEUTRAL_WORDS) | set(ENGLISH_STOP_WORDS))
    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]").save_pretrained(
        directory
    )


def test_huggingface_model_with_its_tokenizer_learns_the_text_task(tmp_path: Path) -> None:
    import transformers

    _word_tokenizer(tmp_path / "model")  # the model's folder holds its tokenizer, as on the Hub
    config = transformers.DistilBertConfig(
        vocab_size=512,
        dim=32,
        n_layers=1,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=32,
        pad_token_id=0,
    )
    transformers.DistilBertForSequenceClassification(config).save_pretrained(tmp_path / "model")
    data = DataSpec.model_validate(
        {
            "source": {"synthetic": {"kind": "text", "samples": 600, "classes": 3}},
            "preprocessing": {"text": {"tokenizer": "pretrained", "maxLength": 16}},
        }
    )
    bundle = load_data(data, seed=0, pretrained=str(tmp_path / "model"))
    assert bundle.vocab_size is not None and bundle.vocab_size <= 512 and bundle.pad_id == 0
    seed_everything(0)
    model = build_model(
        ModelSpec.model_validate({"huggingface": {"name": "tiny", "localPath": str(tmp_path / "model")}}),
        bundle,
    )
    ctx = local_context(seed=0)
    training = TrainingSpec.model_validate({"epochs": 4, "batchSize": 32, "learningRate": 3e-3})
    result = fit(model, bundle, TrainingRecipe.from_spec(training), ctx)
    assert result.curves["train"]["loss"][-1] < result.curves["train"]["loss"][0]
    assert evaluate(model, bundle.loader("val", 128), ctx)["accuracy"] > 0.7  # 3 classes: chance is 1/3
