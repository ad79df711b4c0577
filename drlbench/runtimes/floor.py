"""The call floor of a runtime: what one call costs with (almost) no model, through the same call path.

A latency figure is binding + kernels. A deployer calling from C++ skips most of the binding, so each
cell stores the floor of its runtime beside its latency: the part of the figure the model did not cause.
The floor model passes the first act_dim observation entries through (one slice, same input and output
shapes as the actor, so the copies in and out are the actor's too).
"""

from __future__ import annotations

import torch
from torch import nn


class FloorModel(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int):
        super().__init__()
        self.obs_dim, self.act_dim = obs_dim, min(act_dim, obs_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[:, : self.act_dim] * 1.0  # one op: some converters drop a graph that is only a slice


def floor_runner(runtime: str, obs_dim: int, act_dim: int, threads: int = 1):
    """A runner of `runtime` over the floor model, built the way the runtime builds an fp32 actor."""
    from drlbench.runtimes import backend

    model = FloorModel(obs_dim, act_dim).eval()
    rt = backend(runtime)
    return rt.Runner(rt.build(model, "fp32", None), obs_dim, threads)
