"""The affine int8 quantizer in the paper's convention, r = S (q + Z).

ONNX writes the same map as r = S (q - zp), so zp = -Z. Rounding is half-to-even, as ONNX
QuantizeLinear does, and 0.0 is always exactly representable (the range is widened to hold 0),
which keeps zero-padding and ReLU zeros exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drlbench.errors import DrlbenchError

QRANGES = {"int8": (-128, 127), "uint8": (0, 255)}


@dataclass(frozen=True)
class AffineQuantizer:
    scale: float  # S > 0
    Z: int  # paper's zero point: r = S (q + Z)
    dtype: str = "int8"

    def __post_init__(self):
        if not self.scale > 0 or not np.isfinite(self.scale):
            raise DrlbenchError(f"quantizer scale must be a finite number > 0, got {self.scale}")
        if self.dtype not in QRANGES:
            raise DrlbenchError(f"unknown quantized dtype {self.dtype!r}; accepted: {', '.join(QRANGES)}")

    @property
    def qmin(self) -> int:
        return QRANGES[self.dtype][0]

    @property
    def qmax(self) -> int:
        return QRANGES[self.dtype][1]

    @property
    def onnx_zero_point(self) -> int:
        return -self.Z

    @property
    def range(self) -> tuple[float, float]:
        """The real interval that maps into [qmin, qmax] without saturating."""
        return (self.scale * (self.qmin + self.Z), self.scale * (self.qmax + self.Z))

    @classmethod
    def from_range(cls, rmin: float, rmax: float, dtype: str = "int8") -> "AffineQuantizer":
        """Asymmetric quantizer covering [rmin, rmax] ∪ {0}."""
        if not (np.isfinite(rmin) and np.isfinite(rmax)) or rmin > rmax:
            raise DrlbenchError(f"quantizer range must be finite with rmin <= rmax, got [{rmin}, {rmax}]")
        qmin, qmax = QRANGES[dtype]
        rmin, rmax = min(float(rmin), 0.0), max(float(rmax), 0.0)
        scale = (rmax - rmin) / (qmax - qmin) if rmax > rmin else 1.0
        zp = int(np.clip(np.rint(qmin - rmin / scale), qmin, qmax))  # ONNX zero point
        return cls(float(scale), -zp, dtype)

    def quantize(self, r) -> np.ndarray:
        r = np.asarray(r)
        if r.dtype.kind != "f":
            r = r.astype(np.float64)
        # float32 input is divided in float32, as ONNX Runtime's QuantizeLinear does
        q = np.rint(r / r.dtype.type(self.scale)) - self.Z
        return np.clip(q, self.qmin, self.qmax).astype(np.int8 if self.dtype == "int8" else np.uint8)

    def dequantize(self, q) -> np.ndarray:
        return (self.scale * (np.asarray(q, dtype=np.float64) + self.Z)).astype(np.float32)
