"""`spec.model` (and the distillation student): which network to build and with which arguments."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from optikube_operator.api.base import ApiModel, FreeValue, exactly_one
from optikube_operator.api.model_params import (
    BuiltinName,
    builtin_param_errors,
    describe_params,
)


class BuiltinModel(ApiModel):
    """A network that ships with optikube; its size is set by `params` (e.g. width, depth)."""

    name: BuiltinName = Field(
        description=f"mlp: fully connected (params {describe_params('mlp')}); cnn: small convolutional"
        f" net (params {describe_params('cnn')}); textTransformer: small transformer encoder (params"
        f" {describe_params('textTransformer')}). Defaults in brackets; dropout is"
        " training.regularization.dropout."
    )


class TorchvisionModel(ApiModel):
    """A torchvision classification model, optionally pretrained, for transfer learning."""

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$",
        max_length=64,
        description="Builder name in torchvision.models, e.g. resnet18, mobilenet_v3_small.",
    )
    pretrained: bool = Field(
        True, description="Start from ImageNet weights (from weightsPath or a download)."
    )
    weights_path: str | None = Field(
        None, max_length=1024, description="Local state_dict file with the pretrained weights (no download)."
    )
    freeze_backbone: bool = Field(
        False, description="Train only the new classification head; the pretrained layers stay fixed."
    )


class HuggingFaceModel(ApiModel):
    """A Hugging Face sequence-classification model (e.g. DistilBERT), optionally pretrained."""

    name: str = Field(
        min_length=1, max_length=256, description="Model id on the Hub, e.g. distilbert-base-uncased."
    )
    pretrained: bool = Field(True, description="Load pretrained weights (else only the architecture).")
    local_path: str | None = Field(
        None, max_length=1024, description="Folder with a saved model and tokenizer (no download)."
    )
    freeze_backbone: bool = Field(False, description="Train only the classification head.")


class ModelSpec(ApiModel):
    """A network: exactly one of builtin, torchvision, huggingface or importPath; params go to its builder."""

    builtin: BuiltinModel | None = Field(None, description="A built-in network.")
    torchvision: TorchvisionModel | None = Field(None, description="A torchvision model.")
    huggingface: HuggingFaceModel | None = Field(None, description="A Hugging Face model.")
    import_path: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$",
        max_length=256,
        description="`module:function` in the trainer image, called as function(num_classes=...,"
        " input_shape=...,"
        " **params) and must return a torch.nn.Module.",
    )
    params: dict[str, FreeValue] = Field(
        default_factory=dict,
        max_length=64,
        description="Keyword arguments of the model builder; each is tunable as model.params.<name>."
        " A built-in model takes only its own (see builtin.name), a torchvision or Hugging Face model"
        " none, an importPath builder any.",
    )

    RULES = (exactly_one("model source", "builtin", "torchvision", "huggingface", "importPath"),)

    def field_errors(self) -> Iterator[tuple[str, str]]:
        # Python only: the apiserver's CEL cannot see `params`, whose values are untyped (a rule
        # on it fails with `undefined field 'params'` and the whole CRD is refused), so the
        # operator's validation refuses such a job with InvalidSpec, naming the key.
        if self.builtin is not None:
            for name, problem in builtin_param_errors(self.builtin.name, self.params):
                yield f"params.{name}", problem
        elif self.torchvision is not None or self.huggingface is not None:
            source = "torchvision" if self.torchvision is not None else "huggingface"
            for name in self.params:
                yield f"params.{name}", f"a {source} model takes no params"
