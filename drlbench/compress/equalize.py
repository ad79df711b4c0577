"""Input equalization before int8: standardize the first layer's input, fold the scale into its weights.

Per-tensor int8 gives one scale to all of a tensor's values. An actor trained on raw observations
(SAC/TD3/DDPG here, no VecNormalize) feeds its first layer features of very different ranges: on
HalfCheetah, joint angles within ±1 and joint velocities up to ±31; one uint8 scale for both leaves the
angles a handful of levels, and ddpg-halfcheetah's PTDQ return fell from 10,151 to 4,223 — keeping that one
layer in float brought it back to 9,941 (docs/measurements/int8_first_layer_ddpg_halfcheetah.json).

The fix changes no fp32 output: with μ, σ the per-feature centre and half-width of the first layer's
input on calibration states (between its 0.1 % and 99.9 % quantiles, so one outlying state does not set the
scale), the actor's normalization becomes (x − m − μ/r) · r/σ and the first Linear's weights W·diag(σ),
bias b + W·μ: every feature then spans about [−1, 1], the int8 grid is shared evenly, and the fp32 function
is the same up to float rounding. (Standardizing by the std instead left ddpg-halfcheetah's PTDQ at
8,647 ± 2,448; by quantile range 10,044 ± 230, by the plain min/max 9,998 ± 92 — 10 episodes each.)

Where it does not help: Humanoid. The int8 first layer is what fails there — PTDQ with only that layer
kept in float keeps 5,395 / 5,177 / 1,180 on td3- / sac- / ddpg-humanoid (fp32 5,403 / 5,159 / 1,439; plain
PTDQ 452 / 314 / 282), PTDQ_eq only 528 / 2,259 / 764 (docs/measurements/int8_first_layer_*_humanoid.json).
Likeliest reason: td3-humanoid's 348 inputs include 79 constant on the calibration states and widths spanning
1.8e5, and the fold only moves that spread into the first layer's weight columns, quantized per tensor too.
Clipping the equalized input to its calibration range was tried and did not help (td3-humanoid PTDQ 536).

Exact only where the actor's clip never acts (raw-observation actors: clip 1e9). A VecNormalize actor
already standardizes its input, and its clip at ±10 in the old coordinates cannot be moved into new ones
with one scalar; it is returned unchanged, with the reason.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from drlbench.actor import Actor
from drlbench.errors import DrlbenchError

NO_CLIP = 1e6  # an obs_clip at or above this never acts on a real observation
MIN_WIDTH = 1e-6  # features this constant on the calibration states keep their scale
QUANTILE = 0.999  # the range spans quantiles 1 - QUANTILE … QUANTILE of each feature


@torch.no_grad()
def equalize_input(actor: Actor, states: np.ndarray) -> tuple[Actor, dict]:
    """(actor whose first Linear sees standardized inputs, build info). The actor is not modified."""
    states = np.asarray(states, dtype=np.float32)
    if states.ndim != 2 or states.shape[1] != actor.obs_dim or len(states) < 2:
        raise DrlbenchError(f"calibration states have shape {states.shape}; expected (n >= 2, {actor.obs_dim})")
    if actor.obs_clip < NO_CLIP:
        return actor, {"equalized": False,
                       "reason": f"observations already normalized (clip ±{actor.obs_clip:g}): nothing to fold"}
    z = actor.normalize(torch.as_tensor(states)).double()
    lo, hi = torch.quantile(z, 1 - QUANTILE, dim=0), torch.quantile(z, QUANTILE, dim=0)
    mu, sigma = (hi + lo) / 2, (hi - lo) / 2
    sigma = torch.where(sigma > MIN_WIDTH, sigma, torch.ones_like(sigma))
    out = copy.deepcopy(actor)
    first = out.first_layer
    r = torch.rsqrt(actor.obs_var + actor.obs_eps)  # the actor's own 1/std, float64
    out.obs_mean.copy_(actor.obs_mean + mu / r)
    out.obs_var.copy_((sigma / r) ** 2 - actor.obs_eps)
    w = first.weight.double()
    first.bias.copy_((first.bias.double() + w @ mu).float())
    first.weight.copy_((w * sigma).float())
    spread = sigma.max().item() / sigma.min().item()
    return out.eval(), {"equalized": True, "quantiles": [round(1 - QUANTILE, 6), QUANTILE],
                        "input_width_max_over_min": round(spread, 1), "calibration_states": int(len(states))}
