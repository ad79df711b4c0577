"""LiteRT (TFLite) with its default XNNPACK delegate.

build: litert-torch converts the actor to a float .tflite at batch 1 (its JAX lowering rejects a dynamic
batch dimension; the interpreter resizes the input instead, which these graphs allow), and
ai-edge-quantizer rewrites that flatbuffer for the int8 modes:
    dynamic  int8 per-channel weights, float activations quantized on the fly (XNNPACK's qd8 kernels)
    static   int8 per-channel weights and int8 activations (min/max calibrated) for every FULLY_CONNECTED
             and TANH layer; the observation normalization, clip and action bounds stay float, so the
             model takes and returns float32 as a control loop does (int8 I/O would only move the
             (de)quantization into the caller)
The actor's float64 normalization constants are folded to float32 in torch first (base.folded).

Runner: one interpreter, resized only when the batch size changes (the evaluation loop's batch shrinks
as episodes end), then set_tensor / invoke / get_tensor (get_tensor copies the output out).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

import numpy as np
import torch

from drlbench.errors import DrlbenchError
from drlbench.runtimes.base import Checked, folded, require

require("ai_edge_litert", "litert_torch", "ai_edge_quantizer")  # the extra missing: backend() says how to install it

NAME = "litert"
ARTIFACT = "model.tflite"
EXTRA = "litert"
MODES = ("fp32", "dynamic", "static")
STATIC_OPS = ("FULLY_CONNECTED", "TANH")  # ReLU is fused into FULLY_CONNECTED


@contextlib.contextmanager
def _jax_x64():
    """JAX's 64-bit mode on for the converter and restored after: importing litert_torch turns it on for the
    whole process, which breaks JAX code run later in it (sbx's SAC fails on a float32/float64 mismatch)."""
    import jax

    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)  # as litert_torch's import sets it, for every build after the first
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


@contextlib.contextmanager
def _quiet():
    """Silence litert-torch's progress lines, torchao's missing-CUDA-kernel warnings and Python warnings."""
    # the converter's C++ INFO lines (op counts) obey TF_CPP_MIN_LOG_LEVEL
    env = {"LITERT_TORCH_SHOW_PROGRESS": "n", "TF_CPP_MIN_LOG_LEVEL": "2"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    loggers = [logging.getLogger(n) for n in ("torchao", "torch.utils._pytree", "absl")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():  # the calibrator's "preserve_all_tensors is for debugging" warning
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def build(actor, mode: str = "fp32", calibration=None) -> bytes:
    if mode not in MODES:
        raise DrlbenchError(f"unknown litert mode {mode!r}; accepted: {', '.join(MODES)}")
    if mode == "static" and calibration is None:
        raise DrlbenchError("litert static int8 needs calibration states ([N, obs_dim] float32); got none")
    with _quiet(), _jax_x64():
        import litert_torch

        fp32 = litert_torch.convert(folded(actor), (torch.zeros(1, actor.obs_dim),)).model_content()
        return fp32 if mode == "fp32" else _quantize(bytes(fp32), mode, calibration)


def _quantize(fp32: bytes, mode: str, calibration) -> bytes:
    from ai_edge_quantizer import qtyping, quantizer, recipe, recipe_manager

    if mode == "dynamic":
        q = quantizer.Quantizer(fp32, recipe.dynamic_wi8_afp32())
        return bytes(q.quantize(enable_progress_report=False).quantized_model)
    rm = recipe_manager.RecipeManager()
    for op in STATIC_OPS:
        rm.add_static_config(".*", qtyping.TFLOperationName[op], activation_num_bits=8, weight_num_bits=8)
    q = quantizer.Quantizer(fp32, rm.get_quantization_recipe())
    (signature,) = _signatures(fp32)
    name, inputs = signature
    states = np.ascontiguousarray(calibration, dtype=np.float32)
    # one batch of every state: the calibrator keeps a moving average of per-call min/max, so per-state
    # calls would narrow the ranges to a typical state's and clip the rest (2x the error here)
    qsv = q.calibrate({name: [{inputs[0]: states}]}, num_threads=1)
    if not qsv:  # no layer to quantize (the call-floor model): the float graph is the int8 one
        return fp32
    return bytes(q.quantize(qsv, enable_progress_report=False).quantized_model)


def _signatures(model: bytes) -> list[tuple[str, list[str]]]:
    from ai_edge_litert.interpreter import Interpreter

    return [(k, v["inputs"]) for k, v in Interpreter(model_content=model).get_signature_list().items()]


class Runner(Checked):
    runtime = NAME

    def __init__(self, artifact: bytes, obs_dim: int, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        # the default op resolver applies the XNNPACK delegate, which takes the interpreter's thread count
        self.interpreter = Interpreter(model_content=bytes(artifact), num_threads=threads)
        self.obs_dim, self.threads = obs_dim, threads
        self._in = self.interpreter.get_input_details()[0]["index"]
        self._out = self.interpreter.get_output_details()[0]["index"]
        self._batch, self._rows = 0, False
        self._resize(1)

    def _resize(self, batch: int) -> None:
        it = self.interpreter
        it.resize_tensor_input(self._in, [batch, self.obs_dim], strict=False)
        it.allocate_tensors()
        self._batch, self._rows = batch, False
        if it.get_output_details()[0]["shape"][0] != batch:
            # an actor's graph (fully connected, elementwise) follows the new batch; one whose slice was
            # converted with batch-1 bounds (the call-floor model) would return one row: run it row by row
            it.resize_tensor_input(self._in, [1, self.obs_dim], strict=False)
            it.allocate_tensors()
            self._rows = True

    def run(self, obs: np.ndarray) -> np.ndarray:
        if obs.shape[0] != self._batch:
            self._resize(obs.shape[0])
        if self._rows:
            return np.concatenate([self._invoke(obs[i : i + 1]) for i in range(len(obs))])
        # the C++ wrapper's own SetTensor / Invoke / GetTensor (shape and dtype still checked): the Python
        # methods add a frame each and a check for live tensor() views, which this runner never makes
        # (~0.3 µs of a ~3 µs call floor). Not kept in an attribute: that reference would fail the check.
        w = self.interpreter._interpreter
        w.SetTensor(self._in, obs)
        w.Invoke()
        return w.GetTensor(self._out)  # a copy: the interpreter's buffer is reused by the next call

    def _invoke(self, obs: np.ndarray) -> np.ndarray:
        w = self.interpreter._interpreter
        w.SetTensor(self._in, obs)
        w.Invoke()
        return w.GetTensor(self._out)
