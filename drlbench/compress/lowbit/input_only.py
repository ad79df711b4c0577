"""Input sensitivity (`input_i<k>[t]`): the normalized observation alone quantized to k bits, post-training,
the network left in fp32 — how much precision the input needs, apart from the weights.

The quantizer is scheme.py's input form (`InputQuant`, r = lo + S q over the [lo, hi] observed on the
builder's calibration states, per feature by default, `t`: per tensor). Its float ops (Sub, Div, Round,
Clip, Mul, Add) export to ONNX as they are, so ONNX Runtime runs the quantized input exactly (not
simulated); QuantizeLinear/DequantizeLinear would need an integer zero point, which lo / S is not.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import torch
from torch import nn

from drlbench.actor import Actor
from drlbench.compress.lowbit.quant import InputQuant
from drlbench.compress.lowbit.scheme import INPUT_BITS
from drlbench.compress.onnx_export import export_onnx
from drlbench.errors import DrlbenchError, unknown

INPUT_ONLY_FORMS = ["input_i<k>[t] with k in 2..8 = bits of the normalized observation, per feature (t: per "
                    "tensor), fp32 network; e.g. input_i8, input_i6, input_i4"]
_NAME_RE = re.compile(r"^input_i(\d+)(t)?$")


def parse_input_name(name: str) -> tuple[int, bool]:
    """(bits, per_feature) of an input-quantization variant name."""
    canon = str(name).strip().lower().replace("-", "_")
    m = _NAME_RE.match(canon)
    if m and int(m.group(1)) in INPUT_BITS:
        return int(m.group(1)), m.group(2) is None
    raise unknown("input-quantization variant", name, INPUT_ONLY_FORMS)


def is_input_name(name: str) -> bool:
    try:
        parse_input_name(name)
    except DrlbenchError:
        return False
    return True


class InputQuantActor(nn.Module):
    """`actor` (copied) with its normalized observation through a calibrated `InputQuant`; nothing else changes."""

    def __init__(self, actor: Actor, bits: int, per_feature: bool, calibration_states):
        super().__init__()
        self.actor = copy.deepcopy(actor).eval()
        self.input_q = InputQuant(bits, actor.obs_dim, per_feature)
        obs = torch.as_tensor(np.asarray(calibration_states, dtype=np.float32))
        if obs.ndim != 2 or obs.shape[1] != actor.obs_dim or len(obs) < 1:
            raise DrlbenchError(f"calibration states have shape {tuple(obs.shape)}; expected (n >= 1, {actor.obs_dim})")
        self.input_q.mode = "observe"
        with torch.no_grad():
            self.input_q(self.actor.normalize(obs))  # records [lo, hi] and turns the quantizer on

    obs_dim = property(lambda self: self.actor.obs_dim)
    act_dim = property(lambda self: self.actor.act_dim)
    squash = property(lambda self: self.actor.squash)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor.head(self.actor.body(self.input_q(self.actor.normalize(obs))))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor.postprocess(self.features(obs))

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        return self(torch.as_tensor(np.asarray(obs, dtype=np.float32))).numpy()


def build_input_only(actor: Actor, name: str, calibration_states) -> tuple[bytes, dict]:
    """(ONNX bytes, build record): calibrate the input quantizer, export, check ORT against torch."""
    from drlbench.runtimes import OrtRunner

    bits, per_feature = parse_input_name(name)
    states = np.asarray(calibration_states, dtype=np.float32)
    model = InputQuantActor(actor, bits, per_feature, states)
    with torch.no_grad():
        data = export_onnx(model, actor.obs_dim)
    check = states[:512]
    ours = model.act(check)
    diff = np.abs(OrtRunner(data, actor.obs_dim).run(check) - ours)
    span = float((actor.action_high - actor.action_low).max())
    # same float ops; a different summation order can move a rare value across a rounding boundary
    if float(np.median(diff)) > 1e-5 * span + 1e-6:
        raise RuntimeError(f"{name}: the ONNX graph differs from the input-quantized actor (median |Δaction| "
                           f"{float(np.median(diff)):.3g}); the export is wrong")
    vs_fp32 = np.abs(ours - actor.act(check))
    return data, {"method": "post-training quantization of the normalized observation only (fp32 network)",
                  "input_bits": bits, "input_per_feature": per_feature, "simulated": False,
                  "kernel": "float ops (Sub, Div, Round, Clip, Mul, Add) before the fp32 Gemms",
                  "calibration_states": int(len(states)), "onnx_bytes": len(data),
                  "onnx_vs_torch_max_abs": float(diff.max()),
                  "action_vs_fp32_mean_abs": float(vs_fp32.mean()), "action_vs_fp32_max_abs": float(vs_fp32.max())}
