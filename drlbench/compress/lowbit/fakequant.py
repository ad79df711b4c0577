"""`FakeQuantActor`: an actor with every quantizer of its scheme applied in float (straight-through
gradients), for QAT and for measuring errors; its frozen form is what export and packing read."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from drlbench.actor import Actor
from drlbench.compress.lowbit.quant import (
    ActQuant,
    InputQuant,
    RangeQuant,
    dequantize_weight,
    quantize_weight,
    ste,
    to_fp16,
)
from drlbench.compress.lowbit.scheme import LowBitScheme, parse_scheme
from drlbench.errors import DrlbenchError


class FakeQuantActor(nn.Module):
    """`actor` (copied) under `scheme`: weights fake-quantized per channel on every forward (so QAT trains
    the float weights underneath), activations and input through their quantizers.

    Activation/input quantizers need `calibrate(states)` (or `calibration_states=`) before use.
    `freeze()` gives the inference form, whose Linear weights hold the dequantized values."""

    def __init__(self, actor: Actor, scheme: LowBitScheme | str, calibration_states=None):
        super().__init__()
        self.scheme = parse_scheme(scheme)
        self.actor = copy.deepcopy(actor.actor if isinstance(actor, FakeQuantActor) else actor)
        n_linear = len(self.linears())
        s = self.scheme
        self.input_q = InputQuant(s.input_bits, self.actor.obs_dim, s.input_per_feature) \
            if s.input_bits is not None else None
        self.act_q = nn.ModuleList([ActQuant(s.act_bits) for _ in range(n_linear - 1)] if s.act_bits else [])
        self.frozen = False
        if calibration_states is not None:
            self.calibrate(calibration_states)

    # the Actor interface that distillation, export and runners use
    obs_dim = property(lambda self: self.actor.obs_dim)
    act_dim = property(lambda self: self.actor.act_dim)
    squash = property(lambda self: self.actor.squash)

    def linears(self) -> list[nn.Linear]:
        return [m for m in self.actor.body if isinstance(m, nn.Linear)] + [self.actor.head]

    def quantizers(self) -> list[RangeQuant]:
        """In forward order: the input quantizer, then the activation quantizers."""
        return ([self.input_q] if self.input_q is not None else []) + list(self.act_q)

    def weight(self, layer: nn.Linear) -> torch.Tensor:
        if self.frozen:
            return layer.weight
        if self.scheme.is_fp16:
            return ste(layer.weight, to_fp16(layer.weight).float())
        return ste(layer.weight, dequantize_weight(*quantize_weight(layer.weight, self.scheme.weight_bits)))

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.actor.normalize(obs)
        if self.input_q is not None:
            x = self.input_q(x)
        i = 0
        for m in self.actor.body:
            if isinstance(m, nn.Linear):
                if i > 0 and len(self.act_q):
                    x = self.act_q[i - 1](x)
                x = nn.functional.linear(x, self.weight(m), m.bias)
                i += 1
            else:
                x = m(x)
        if i > 0 and len(self.act_q):
            x = self.act_q[i - 1](x)
        head = self.actor.head
        return nn.functional.linear(x, self.weight(head), head.bias)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor.postprocess(self.features(obs))

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        return self(torch.as_tensor(np.asarray(obs, dtype=np.float32))).numpy()

    def n_params(self) -> int:
        return self.actor.n_params()

    @torch.no_grad()
    def calibrate(self, states) -> "FakeQuantActor":
        """Observe every quantizer's range (min/max) on `states`, in forward order, each with the
        quantizers before it already on, so a range is the one its quantized input actually has."""
        obs = torch.as_tensor(np.asarray(states, dtype=np.float32))
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim or len(obs) < 1:
            raise DrlbenchError(f"calibration states have shape {tuple(obs.shape)}; expected (n >= 1, {self.obs_dim})")
        quantizers = self.quantizers()
        for q in quantizers:
            q.mode = "off"
        for q in quantizers:
            q.mode = "observe"
            self.features(obs)  # leaves q "on"
        return self

    def weight_codes(self) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Per Linear: (int8 codes, fp32 scales) or, for fp16, (float16 weights, None)."""
        if self.frozen:
            return [(getattr(self, f"_codes{i}"), getattr(self, f"_scales{i}", None))
                    for i in range(len(self.linears()))]
        if self.scheme.is_fp16:
            return [(to_fp16(m.weight), None) for m in self.linears()]
        return [quantize_weight(m.weight, self.scheme.weight_bits) for m in self.linears()]

    def freeze(self) -> "FakeQuantActor":
        """Inference copy: weights replaced by their dequantized values, codes kept, no gradients."""
        if any(q.mode != "on" for q in self.quantizers()):
            raise DrlbenchError("calibrate(states) before freezing: some quantizers have no range")
        out = copy.deepcopy(self).eval()
        if not self.frozen:
            out.set_codes(self.weight_codes())
        return out

    def set_codes(self, codes) -> None:
        """Freeze in place on `codes` (as `weight_codes` gives them): each Linear holds their dequantized
        weights, the codes are kept as buffers, nothing trains."""
        with torch.no_grad():
            for i, (layer, (q, scale)) in enumerate(zip(self.linears(), codes)):
                self.register_buffer(f"_codes{i}", q.clone())
                if scale is not None:
                    self.register_buffer(f"_scales{i}", scale.clone())
                    layer.weight.copy_(dequantize_weight(q, scale))
                else:
                    layer.weight.copy_(q.float())
        for p in self.parameters():
            p.requires_grad_(False)
        self.frozen = True
