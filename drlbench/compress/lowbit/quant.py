"""The quantizers of a low-bit scheme, applied in float: per-channel symmetric weights, per-tensor
activations, the normalized input (the forms are in scheme.py). Gradients pass straight through."""

from __future__ import annotations

import torch
from torch import nn

from drlbench.errors import DrlbenchError


def weight_qmax(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def quantize_weight(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(q int8 [out, in] in [-qmax, qmax], scale float32 [out]), S_c = max|w_c| / qmax, half-to-even."""
    w = w.detach().float()
    qmax = weight_qmax(bits)
    scale = w.abs().amax(dim=1) / qmax
    # an all-zero row (or one whose scale underflows) is exactly 0 at any scale: 1 keeps w / S finite
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.clamp(torch.round(w / scale[:, None]), -qmax, qmax).to(torch.int8)
    return q, scale


def dequantize_weight(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale[:, None]


def to_fp16(w: torch.Tensor) -> torch.Tensor:
    h = w.detach().half()
    if not torch.isfinite(h).all():
        raise DrlbenchError("a weight exceeds the float16 range (|w| > 65504): fp16 cannot store this actor")
    return h


def ste(x: torch.Tensor, xq: torch.Tensor) -> torch.Tensor:
    """xq in the forward pass, identity gradient to x (straight-through). The value is xq exactly:
    x - x.detach() is 0, so the fake-quant model and the packed/exported one agree bit for bit."""
    if not (torch.is_grad_enabled() and x.requires_grad):
        return xq  # inference and ONNX export: no extra ops in the graph
    return xq.detach() + (x - x.detach())


class RangeQuant(nn.Module):
    """Observed [lo, hi] → quantization parameters. mode: 'uncalibrated' (refuses to run), 'off' (passes
    through, while upstream quantizers are being calibrated), 'observe' (records the range, passes
    through), 'on'."""

    def __init__(self, bits: int, features: int):
        super().__init__()
        self.bits, self.mode = bits, "uncalibrated"
        self.qmax = 2 ** bits - 1
        self.register_buffer("scale", torch.ones(features))
        self.register_buffer("offset", torch.zeros(features))  # ActQuant: zero point; InputQuant: lo

    def set_range(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        raise NotImplementedError

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "on":
            return self.quantize(x)
        if self.mode == "observe":
            self._observe(x)
        elif self.mode == "uncalibrated":
            raise DrlbenchError("FakeQuantActor has activation/input quantizers without ranges: call "
                                "calibrate(states) first")
        return x

    def _observe(self, x: torch.Tensor) -> None:
        raise NotImplementedError


class ActQuant(RangeQuant):
    """Per-tensor asymmetric a-bit activation quantizer, r = S (q - zp), 0 exactly representable."""

    def __init__(self, bits: int):
        super().__init__(bits, 1)

    def _observe(self, x):
        self.set_range(x.min().reshape(1), x.max().reshape(1))

    @torch.no_grad()
    def set_range(self, lo, hi):
        lo, hi = torch.clamp(lo.float(), max=0.0), torch.clamp(hi.float(), min=0.0)
        scale = torch.where(hi > lo, (hi - lo) / self.qmax, torch.ones_like(lo))
        self.scale.copy_(scale)
        self.offset.copy_(torch.clamp(torch.round(-lo / scale), 0, self.qmax))
        self.mode = "on"

    def quantize(self, x):
        xq = (torch.clamp(torch.round(x / self.scale) + self.offset, 0, self.qmax) - self.offset) * self.scale
        if not (torch.is_grad_enabled() and x.requires_grad):
            return xq
        # clipped straight-through: no gradient where the value saturates
        lo, hi = -self.offset * self.scale, (self.qmax - self.offset) * self.scale
        return ste(torch.maximum(torch.minimum(x, hi), lo), xq)


class InputQuant(RangeQuant):
    """k-bit quantizer of the normalized observation, per feature or per tensor, r = lo + S q over [lo, hi]."""

    def __init__(self, bits: int, obs_dim: int, per_feature: bool):
        super().__init__(bits, obs_dim if per_feature else 1)
        self.per_feature = per_feature

    def _observe(self, x):
        if self.per_feature:
            self.set_range(x.amin(dim=0), x.amax(dim=0))
        else:
            self.set_range(x.min().reshape(1), x.max().reshape(1))

    @torch.no_grad()
    def set_range(self, lo, hi):
        lo, hi = lo.float(), hi.float()
        # a constant feature is exact at any scale (q = 0 gives lo): 1 keeps the division finite
        self.scale.copy_(torch.where(hi > lo, (hi - lo) / self.qmax, torch.ones_like(lo)))
        self.offset.copy_(lo)
        self.mode = "on"

    def quantize(self, x):
        # the input has no trainable upstream: no straight-through needed
        return torch.clamp(torch.round((x - self.offset) / self.scale), 0, self.qmax) * self.scale + self.offset


