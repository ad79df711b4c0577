"""What every runtime shares: the Runner protocol the meters and the evaluation loop call, and the input
check. A runtime module (pytorch, ort, litert, executorch) has the same shape: NAME, ARTIFACT (the file it
loads), EXTRA (the pip extra that installs it, None when core), MODES (the quantization modes its `build`
makes), `build(actor, mode, calibration) -> bytes`, and `Runner(artifact, obs_dim, threads)`."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from drlbench.errors import DrlbenchError


class Runner(Protocol):
    """The extension point for a new backend: `run` is the unchecked hot path the latency meter and the
    evaluation loop call, `act` validates its input (shape, dtype, NaN) first."""

    runtime: str
    threads: int
    obs_dim: int

    def run(self, obs: np.ndarray) -> np.ndarray: ...

    def act(self, obs: np.ndarray) -> np.ndarray: ...


def check_obs(obs, obs_dim: int) -> np.ndarray:
    obs = np.asarray(obs, dtype=np.float32)
    if obs.ndim == 1:
        obs = obs[None]
    if obs.ndim != 2 or obs.shape[1] != obs_dim:
        raise DrlbenchError(f"observation has shape {obs.shape}; expected ({obs_dim},) or (batch, {obs_dim})")
    if not np.isfinite(obs).all():
        raise DrlbenchError("observation contains NaN or Inf; expected finite values")
    return obs


class Checked:
    """Mix-in: `act` = check the input, then `run`."""

    obs_dim: int

    def act(self, obs) -> np.ndarray:
        return self.run(check_obs(obs, self.obs_dim))


def require(*modules: str) -> None:
    """Raise ImportError for the first of `modules` that is not installed, without importing any (the edge
    runtimes' converters are heavy): a runtime module calls it at import, and backend() turns the error into
    the extra's install hint."""
    import importlib.util

    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise ImportError(f"No module named {module!r}", name=module)


def folded(module: torch.nn.Module) -> torch.nn.Module:
    """The module with its constant subgraphs computed once in torch (exactly, float64 included), for the
    converters of the edge runtimes.

    Actor.normalize splits its float64 mean into a float32 head and tail at run time. LiteRT's converter
    downcasts float64 to float32 before folding, which zeroes the tail (1e-4 of the action range on
    ppo-humanoid, whose means reach 220); left in an ExecuTorch program, the float64 ops run outside the
    delegate on every call. Folded in torch first, both see float32 constants."""
    from torch.fx.experimental.const_fold import split_const_subgraphs

    try:
        return split_const_subgraphs(torch.fx.symbolic_trace(module.eval()))
    except Exception:  # not symbolically traceable: convert it as it is
        return module.eval()
