"""What a quantization step changed, in results.json's `stages[].changes` shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class QuantizationSummary:
    method: str
    backend: str
    quantized_layers: int
    weight_bytes_before: int
    weight_bytes_after: int

    def changes(self) -> dict[str, Any]:
        ratio = self.weight_bytes_before / self.weight_bytes_after if self.weight_bytes_after else 0.0
        return {
            "method": self.method,
            "backend": self.backend,
            "quantizedLayers": self.quantized_layers,
            "weightBytesBefore": self.weight_bytes_before,
            "weightBytesAfter": self.weight_bytes_after,
            "weightCompression": round(ratio, 3),
        }
