"""Every artifact is checked against the float actor it was made from before it is timed or evaluated.

fp32 artifacts must agree to float rounding: max error <= 1e-3 of each action dimension's range, else the
conversion is broken and the cell is refused. int8 artifacts may not agree, by design, and how far they
drift is itself a finding (the paper's int8 collapses on Humanoid): measured with ORT's int8 on the bundled
agents, the mean error is 0.2-1.5 % of the range on the on-policy agents, 5-15 % on the off-policy ones
(saturated tanh actors, where a small shift flips an action between its bounds) and on ddpg-humanoidstandup
PTSQ explains none of the action variance (R² -1.5). So an int8 artifact is never refused for its error:
it must return finite actions of the right shape, and its errors are recorded with `within_tolerance`
(mean error <= 5 % of the range) for the report to show; the return gate judges what the error costs.
A broken int8 conversion path is caught by the runtime tests, on an agent whose int8 is well behaved.
"""

from __future__ import annotations

import numpy as np
import torch

from drlbench.errors import DrlbenchError

VERIFY_STATES = 256  # rollout states (the calibration set's first rows)
FP32_MAX_ERR = 1e-3  # × range, on every state and dimension
INT8_MEAN_ERR = 0.05  # × range, averaged over states and dimensions: recorded, not enforced


def verify(runner, actor, states: np.ndarray, mode: str, *, what: str) -> dict:
    """Compare `runner` with `actor` (torch, fp32) on rollout states at batch 1; raise when an fp32 artifact
    is off or any artifact returns non-finite or misshapen actions; return the errors."""
    obs = np.ascontiguousarray(states[:VERIFY_STATES], dtype=np.float32)
    with torch.inference_mode():
        ref = actor(torch.from_numpy(obs)).numpy().astype(np.float64)
    got = np.concatenate([runner.run(obs[i : i + 1]) for i in range(len(obs))]).astype(np.float64)
    if got.shape != ref.shape or not np.isfinite(got).all():
        raise DrlbenchError(f"{what}: the artifact returns {'non-finite actions' if got.shape == ref.shape else got.shape}"
                            f" on rollout states; expected finite actions of shape {ref.shape}: a broken conversion")
    span = (actor.action_high - actor.action_low).numpy().astype(np.float64)
    err = np.abs(got - ref) / np.where(span > 0, span, 1.0)
    var = float(ref.var(axis=0).mean())
    out = {"states": len(obs), "max_err": float(err.max()), "mean_err": float(err.mean()),
           "r2": 1.0 - float(((got - ref) ** 2).mean()) / var if var > 0 else None,
           "unit": "errors: fraction of the action range"}
    if mode == "fp32":
        out["rule"] = f"max error <= {FP32_MAX_ERR} of the range"
        if out["max_err"] > FP32_MAX_ERR:
            raise DrlbenchError(f"{what}: the fp32 artifact disagrees with the actor it was converted from on "
                                f"{len(obs)} rollout states (max error {out['max_err']:.3g} of the action range; "
                                f"accepted: {FP32_MAX_ERR}): a broken conversion, not measured")
    else:
        out["rule"] = f"recorded: mean error <= {INT8_MEAN_ERR} of the range"
        out["within_tolerance"] = out["mean_err"] <= INT8_MEAN_ERR
    return out
