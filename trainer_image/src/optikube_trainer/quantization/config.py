"""The quantization block of the spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from optikube_operator.api.compression import QuantizationSpec

Method = Literal["dynamic", "static", "weightOnly", "qat"]
METHODS: tuple[str, ...] = ("dynamic", "static", "weightOnly", "qat")


@dataclass(frozen=True)
class QuantizationConfig:
    method: Method = "dynamic"
    calibration_batches: int = 8
    qat_epochs: int = 2
    # "auto": graph-mode (pt2e) QAT for models with convolutions, torchao's Linear QAT otherwise.
    qat_backend: Literal["auto", "pt2e", "torchao"] = "auto"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            choices = ", ".join(METHODS)
            raise ValueError(f"quantization.method: expected one of {choices}, got {self.method!r}")
        if self.calibration_batches < 1:
            raise ValueError(
                f"quantization.calibrationBatches: expected >= 1, got {self.calibration_batches}"
            )
        if self.qat_backend not in ("auto", "pt2e", "torchao"):
            raise ValueError(f"quantization.qatBackend: expected auto|pt2e|torchao, got {self.qat_backend!r}")

    @classmethod
    def from_spec(cls, block: QuantizationSpec) -> QuantizationConfig:
        """The spec's `quantization` block (qatEpochs is set exactly when the method is qat)."""
        qat_epochs = block.qat_epochs if block.qat_epochs is not None else cls.qat_epochs
        return cls(method=block.method, calibration_batches=block.calibration_batches, qat_epochs=qat_epochs)
