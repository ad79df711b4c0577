"""ExecuTorch with the XNNPACK backend.

build: torch.export (dynamic batch 1 … MAX_BATCH) -> XnnpackPartitioner -> to_executorch() -> .pte bytes.
The int8 modes quantize the exported graph first with the XNNPACKQuantizer (pt2e):
    dynamic  per-channel int8 weights, activations quantized on the fly (is_dynamic=True)
    static   per-channel int8 weights and int8 activations (min/max observers run on the calibration
             states) for every linear layer and its fused ReLU; the normalization, clip and action bounds
             stay float, so the model takes and returns float32 as a control loop does
The actor's float64 normalization constants are folded to float32 in torch first (base.folded): left
in, they run outside the delegate, in ExecuTorch's portable kernels, on every call.

Runner: ExecuTorch sizes its threadpool from the machine's cores, not the process's affinity (2 threads
under `taskset -c 0` here), and XNNPACK runs on it, so the Runner resets it to `threads`. The pool is
process-wide: the last Runner built sets it (resetting it while another thread runs a method is unsafe).
"""

from __future__ import annotations

import contextlib
import logging
import warnings

import numpy as np
import torch

from drlbench.errors import DrlbenchError
from drlbench.runtimes.base import Checked, folded, require

require("executorch", "torchao")  # the extra missing: backend() says how to install it

NAME = "executorch"
ARTIFACT = "model.pte"
EXTRA = "executorch"
MODES = ("fp32", "dynamic", "static")
# upper bound of the exported batch dimension; `run` splits larger batches. Memory planning allocates the
# input and output buffers for it when the program loads (4096 would add 5.7 MB to ppo-humanoid's RSS),
# so it is kept to the batches the benchmark runs (evaluation: one row per episode)
MAX_BATCH = 256


@contextlib.contextmanager
def _quiet():
    """Silence torchao's import-time warnings (missing CUDA kernels, a deprecated pytree registration) and
    torch.export's FutureWarnings."""
    loggers = [logging.getLogger(n) for n in ("torchao", "torch.utils._pytree")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _export(module, obs_dim: int):
    # sample batch 2: export specializes a size-1 dimension to the constant 1
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    return torch.export.export(module, (torch.zeros(2, obs_dim),), dynamic_shapes=({0: batch},))


def build(actor, mode: str = "fp32", calibration=None) -> bytes:
    if mode not in MODES:
        raise DrlbenchError(f"unknown executorch mode {mode!r}; accepted: {', '.join(MODES)}")
    if mode == "static" and calibration is None:
        raise DrlbenchError("executorch static int8 needs calibration states ([N, obs_dim] float32); got none")
    with _quiet():
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        obs_dim = actor.obs_dim
        ep = _export(folded(actor), obs_dim)
        if mode != "fp32":
            ep = _export(_quantized(ep.module(), mode, calibration, obs_dim), obs_dim)
        return to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch().buffer


def _quantized(module, mode: str, calibration, obs_dim: int):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    config = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=mode == "dynamic")
    # linear layers only (with their fused ReLU): a global config also quantizes the normalization's mul,
    # whose input is the raw observation (humanoid's reach ±200): 0.35 of the action range off on average
    quantizer = XNNPACKQuantizer().set_operator_type(torch.ops.aten.linear.default, config)
    prepared = prepare_pt2e(module, quantizer)
    states = np.zeros((2, obs_dim), np.float32) if mode == "dynamic" else np.asarray(calibration, np.float32)
    with torch.no_grad():
        for i in range(0, len(states), MAX_BATCH):  # min/max observers: the chunking changes nothing
            prepared(torch.from_numpy(np.ascontiguousarray(states[i : i + MAX_BATCH])))
    return convert_pt2e(prepared)


class Runner(Checked):
    runtime = NAME

    def __init__(self, artifact: bytes, obs_dim: int, threads: int = 1):
        with _quiet():  # the pybindings import torchao
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime

        if portable_lib._threadpool_get_thread_count() != threads:
            portable_lib._unsafe_reset_threadpool(threads)
        self.program = Runtime.get().load_program(bytes(artifact))
        # the pybind method itself: Method.execute is one more Python frame per call
        self._forward = self.program.load_method("forward")._method
        self.obs_dim, self.threads = obs_dim, threads

    def run(self, obs: np.ndarray) -> np.ndarray:
        if obs.shape[0] > MAX_BATCH:
            return np.concatenate([self.run(obs[i : i + MAX_BATCH]) for i in range(0, len(obs), MAX_BATCH)])
        # clone_outputs=False: a view of the method's output buffer, copied out here by numpy (the clone
        # ExecuTorch would make goes through torch and costs ~4 µs more per call)
        return self._forward((torch.from_numpy(np.ascontiguousarray(obs)),), False)[0].numpy().copy()
