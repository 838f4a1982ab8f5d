"""The API's table of built-in model params is the trainer builders' own keyword arguments, and
every param in it reaches the model it names."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch
from pydantic.alias_generators import to_camel

from optikube_operator.api.model import ModelSpec
from optikube_operator.api.model_params import BUILTIN_MODEL_PARAMS
from optikube_trainer.data import DataBundle
from optikube_trainer.models import build_model, count_parameters
from optikube_trainer.models.builtin import CNN, MLP, TextTransformer

BUILDERS = {"mlp": MLP, "cnn": CNN, "textTransformer": TextTransformer}
# keyword arguments the builder gets from elsewhere than model.params
NOT_PARAMS = {"dropout", "pad_id"}
BUNDLES = {
    "mlp": ("tabular", (6,), None),
    "cnn": ("image", (1, 8, 8), None),
    "textTransformer": ("text", (10,), 30),
}


def _bundle(model: str) -> DataBundle:
    task, shape, vocab = BUNDLES[model]
    empty: Any = torch.utils.data.TensorDataset(torch.zeros(0))
    return DataBundle(empty, empty, empty, num_classes=3, input_shape=shape, task=task, vocab_size=vocab)


def test_every_builtin_model_has_a_builder() -> None:
    assert set(BUILTIN_MODEL_PARAMS) == set(BUILDERS)


@pytest.mark.parametrize("model", sorted(BUILDERS))
def test_the_table_is_the_builders_keyword_arguments(model: str) -> None:
    signature = inspect.signature(BUILDERS[model].__init__)
    keywords = {
        to_camel(name): parameter.default
        for name, parameter in signature.parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in NOT_PARAMS
    }
    table = {param.name: param.default for param in BUILTIN_MODEL_PARAMS[model]}
    assert table == keywords


@pytest.mark.parametrize(
    ("model", "name"), [(model, p.name) for model, params in BUILTIN_MODEL_PARAMS.items() for p in params]
)
def test_each_param_changes_the_model(model: str, name: str) -> None:
    param = next(p for p in BUILTIN_MODEL_PARAMS[model] if p.name == name)
    changed: int | bool = (not param.default) if isinstance(param.default, bool) else param.default * 2
    default, default_out = _built(model, {})
    other, other_out = _built(model, {name: changed})
    # the same seed initializes the same shapes alike: only the param can make them differ
    differs = count_parameters(other) != count_parameters(default) or not torch.equal(other_out, default_out)
    assert differs, f"model.params.{name} has no effect on {model}"


def _built(model: str, params: dict[str, Any]) -> tuple[torch.nn.Module, torch.Tensor]:
    bundle = _bundle(model)
    torch.manual_seed(0)
    built = build_model(ModelSpec.model_validate({"builtin": {"name": model}, "params": params}), bundle)
    built.eval()
    generator = torch.Generator().manual_seed(1)
    if bundle.task == "text":
        inputs = torch.randint(1, 30, (2, *bundle.input_shape), generator=generator)
    else:
        inputs = torch.randn(2, *bundle.input_shape, generator=generator)
    with torch.no_grad():
        return built, built(inputs)
