"""The quantization block of the spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from optikube_operator.api.compression import QuantizationSpec
from optikube_trainer.spec_fields import SpecConfig, spec_default

Method = Literal["dynamic", "static", "weightOnly", "qat"]


@dataclass(frozen=True)
class QuantizationConfig(SpecConfig, block=QuantizationSpec, path="quantization"):
    """The spec's `quantization` block (`qat_epochs` exactly with qat), plus `qat_backend`, not in the
    spec: "auto" is graph-mode (pt2e) QAT for models with convolutions, torchao's Linear QAT otherwise."""

    method: Method
    calibration_batches: int = spec_default(QuantizationSpec, "calibration_batches")
    qat_epochs: int | None = spec_default(QuantizationSpec, "qat_epochs")
    qat_backend: Literal["auto", "pt2e", "torchao"] = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.qat_backend not in ("auto", "pt2e", "torchao"):
            raise ValueError(f"quantization.qatBackend: expected auto|pt2e|torchao, got {self.qat_backend!r}")
