"""Every artifact is checked against the float actor it was made from before it is timed or evaluated.

fp32 artifacts must agree to float rounding: max error <= 1e-3 of each action dimension's range. int8
ones may not, by design: measured on the 17 bundled agents with ORT's int8, the mean error is 0.2-1.5 % of
the range on the on-policy agents but 5-15 % on the off-policy ones (saturated tanh actors, where a small
shift flips an action between its bounds), with R² (action variance across states explained) of 0.57-1.0.
So an int8 artifact must explain at least a quarter of it (R² >= 0.25): quantization noise passes, a broken
conversion (transposed weights, a lost bias or squash: R² <= 0) does not. A variant whose int8 loses
return is measured, not refused: the return gate judges it. The errors are recorded in the build.
"""

from __future__ import annotations

import numpy as np
import torch

from drlbench.errors import DrlbenchError

VERIFY_STATES = 256  # rollout states (the calibration set's first rows)
FP32_MAX_ERR = 1e-3  # × range, on every state and dimension
INT8_MIN_R2 = 0.25  # 1 - mean squared error / mean per-dimension variance of the float actions


def verify(runner, actor, states: np.ndarray, mode: str, *, what: str) -> dict:
    """Compare `runner` with `actor` (torch, fp32) on rollout states; raise when off; return the errors."""
    obs = np.ascontiguousarray(states[:VERIFY_STATES], dtype=np.float32)
    with torch.inference_mode():
        ref = actor(torch.from_numpy(obs)).numpy()
    got = np.concatenate([runner.run(obs[i : i + 1]) for i in range(len(obs))])  # batch 1, as it is timed
    span = (actor.action_high - actor.action_low).numpy().astype(np.float64)
    err = np.abs(got.astype(np.float64) - ref) / np.where(span > 0, span, 1.0)
    var = float(ref.astype(np.float64).var(axis=0).mean())
    r2 = 1.0 - float(((got.astype(np.float64) - ref) ** 2).mean()) / var if var > 0 else float("nan")
    out = {"states": len(obs), "max_err": float(err.max()), "mean_err": float(err.mean()), "r2": r2,
           "unit": "errors: fraction of the action range"}
    if mode == "fp32":
        ok, rule = out["max_err"] <= FP32_MAX_ERR, f"max error <= {FP32_MAX_ERR} of the range"
    else:  # a constant float policy has no variance to explain: then only the error bound of fp32 × 100
        ok = r2 >= INT8_MIN_R2 if var > 1e-12 else out["max_err"] <= 100 * FP32_MAX_ERR
        rule = f"R² >= {INT8_MIN_R2}"
    out["rule"] = rule
    if not ok:
        raise DrlbenchError(f"{what}: the artifact disagrees with the float actor it was built from on "
                            f"{len(obs)} rollout states (max {out['max_err']:.3g}, mean {out['mean_err']:.3g} "
                            f"of the action range, R² {r2:.3g}; accepted: {rule}): a broken conversion, not measured")
    return out
