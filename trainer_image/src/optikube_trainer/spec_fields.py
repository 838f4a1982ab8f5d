"""Technique configs take their spec fields' defaults, ranges and rules from the API model of their
block, so that the API is the only place a default or a bound is written.

    @dataclass(frozen=True)
    class PruningConfig(SpecConfig, block=Pruning, path="compression.pruning"):
        sparsity: float = spec_default(Pruning, "sparsity")

A config built by hand (`PruningConfig(sparsity=0.3)`) is checked exactly as the same block in a
spec would be, and gets what the block resolves (LowRank's rankRatio when neither it nor energy is
set); `PruningConfig.from_spec(block)` builds one from a parsed block.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self, TypeVar

from optikube_operator.api.base import ApiModel
from optikube_operator.api.validation import model_errors, rule_errors

Config = TypeVar("Config")


def spec_default(block: type[ApiModel], name: str) -> Any:
    """The default the API gives `block`'s field `name`."""
    return block.model_fields[name].get_default(call_default_factory=True)


def _spec_names(config: Any, block: type[ApiModel]) -> list[str]:
    fields = {field.name for field in dataclasses.fields(config)}
    return [name for name in block.model_fields if name in fields]


def resolve(config: Any, block: type[ApiModel], path: str) -> None:
    """Check the config's spec fields as `block` (types, ranges, cross-field rules), raising a
    ValueError that names each offending field under `path`; then set on the config what the block
    resolves them to. Call from a frozen dataclass's ``__post_init__``."""
    names = _spec_names(config, block)
    written = {block.model_fields[name].alias or name: getattr(config, name) for name in names}
    parsed, errors = model_errors(block, written, path)
    if parsed is not None:
        errors = list(rule_errors(parsed, path))
    if errors:
        raise ValueError("; ".join(str(error) for error in errors))
    assert parsed is not None
    for name in names:
        value = getattr(parsed, name)
        if not isinstance(value, ApiModel):  # nested blocks (a student model) stay as written
            object.__setattr__(config, name, value)


def from_block(config_type: type[Config], block: ApiModel) -> Config:
    """The config of a parsed spec block: its spec fields as the block holds them (nested blocks as
    their camelCase dicts), the config's own knobs at their defaults."""
    names = _spec_names(config_type, type(block))
    values = {name: getattr(block, name) for name in names}
    values = {
        name: value.to_dict() if isinstance(value, ApiModel) else value for name, value in values.items()
    }
    return config_type(**values)


class SpecConfig:
    """Base of a technique config, a frozen dataclass of its spec block's fields (and knobs of its
    own): built, it checks and resolves them as the block would (`resolve`); `from_spec` builds it
    from a parsed block. A subclass names its block and where the spec holds it, for the messages."""

    spec_block: ClassVar[type[ApiModel]]
    spec_path: ClassVar[str]

    def __init_subclass__(cls, *, block: type[ApiModel], path: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.spec_block, cls.spec_path = block, path

    def __post_init__(self) -> None:
        resolve(self, self.spec_block, self.spec_path)

    @classmethod
    def from_spec(cls, block: ApiModel) -> Self:
        """The config of the spec's block, its own knobs at their defaults."""
        return from_block(cls, block)
