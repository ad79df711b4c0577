"""PyTorch eager: the fp32 and pruned actors as they are (the reference every artifact is verified against)."""

from __future__ import annotations

import copy

import numpy as np
import torch

from drlbench.runtimes.base import Checked

NAME = "torch"
ARTIFACT = "actor.safetensors"
EXTRA = None
MODES = ("fp32",)


def build(actor, mode: str = "fp32", calibration=None):
    """The actor itself: eager torch runs the module, so there is nothing to convert."""
    return actor


class Runner(Checked):
    runtime = NAME

    def __init__(self, module: torch.nn.Module, obs_dim: int, threads: int = 1, device: str = "cpu"):
        self.device = torch.device(device)
        # a copy on an accelerator: the caller's module (shared by CPU runners) stays where it is
        self.module = (module if self.device.type == "cpu" else copy.deepcopy(module)).eval().to(self.device)
        self.obs_dim, self.threads = obs_dim, threads
        torch.set_num_threads(threads)

    @torch.inference_mode()
    def run(self, obs: np.ndarray) -> np.ndarray:
        # on CUDA the copies in and out are part of what an act() costs, so they stay in the timing
        return self.module(torch.from_numpy(obs).to(self.device)).cpu().numpy()
