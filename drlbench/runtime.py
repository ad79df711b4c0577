"""Policy runners: one protocol, `act(obs[B, obs_dim]) -> action[B, act_dim]`, two backends.

Threads are pinned (default 1) and session options are explicit, so latency numbers say what
they measured. `act` validates its input (shape, dtype, NaN); `run` is the unchecked hot path that
the latency meter and the evaluation loop call.
"""

from __future__ import annotations

import copy
from typing import Protocol

import numpy as np
import torch

from drlbench.errors import DrlbenchError


class Runner(Protocol):
    """The extension point for a new backend (TensorRT, OpenVINO …): what the meters and the
    evaluation loop call."""

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


class _Checked:
    obs_dim: int

    def act(self, obs) -> np.ndarray:
        return self.run(check_obs(obs, self.obs_dim))


class TorchRunner(_Checked):
    runtime = "torch"

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


class OrtRunner(_Checked):
    runtime = "onnxruntime"

    def __init__(self, model: bytes, obs_dim: int, threads: int = 1):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        self.obs_dim, self.threads = obs_dim, threads
        # our exports name the input "obs"; a user's own file (measured as it is) has its own name, and
        # its first output is the action
        self.input = self.session.get_inputs()[0].name
        self.outputs = [self.session.get_outputs()[0].name]

    def run(self, obs: np.ndarray) -> np.ndarray:
        return self.session.run(self.outputs, {self.input: obs})[0]
