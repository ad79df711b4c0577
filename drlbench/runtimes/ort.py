"""ONNX Runtime (CPU execution provider): the paper's runtime and the default.

`run` goes through ORT's C-level IO binding on buffers bound once per batch size: the observation is
copied into the bound input and the bound output is copied out. `session.run` builds the feeds dict and
new OrtValues on every call (~6 µs more per batch-1 call here, a third of a 348-64-64-17 actor's time),
and ORT 1.32's Python `run_with_iobinding` wrapper adds tens of µs; neither is what a deployed control
loop pays. `run_session` is the plain path, kept to check that both give the same actions."""

from __future__ import annotations

import numpy as np

from drlbench.runtimes.base import Checked

NAME = "onnxruntime"
ARTIFACT = "model.onnx"
EXTRA = None
MODES = ("fp32",)  # int8 ONNX graphs are built by compress/ptq.py and compress/qat.py


def session_options(ort, threads: int = 1):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return opts


def build(actor, mode: str = "fp32", calibration=None) -> bytes:
    from drlbench.compress.onnx_export import export_onnx

    return export_onnx(actor, actor.obs_dim)


class Runner(Checked):
    runtime = NAME

    def __init__(self, model: bytes, obs_dim: int, threads: int = 1):
        import onnxruntime as ort

        self._ort = ort
        self.session = ort.InferenceSession(model, session_options(ort, threads), providers=["CPUExecutionProvider"])
        self.obs_dim, self.threads = obs_dim, threads
        # our exports name the input "obs"; a user's own file (measured as it is) has its own name, and
        # its first output is the action
        self.input = self.session.get_inputs()[0].name
        self.outputs = [self.session.get_outputs()[0].name]
        self._bound: dict[int, tuple] = {}  # batch size -> (io binding, input buffer, output buffer)

    def _binding(self, batch: int) -> tuple:
        bound = self._bound.get(batch)
        if bound is None:
            ort = self._ort
            first = self.run_session(np.zeros((batch, self.obs_dim), np.float32))  # the output's shape and dtype
            inp, out = np.zeros((batch, self.obs_dim), np.float32), np.empty_like(first)
            io = self.session.io_binding()
            io.bind_ortvalue_input(self.input, ort.OrtValue.ortvalue_from_numpy(inp))
            io.bind_ortvalue_output(self.outputs[0], ort.OrtValue.ortvalue_from_numpy(out))
            bound = self._bound[batch] = (io._iobinding, inp, out)
        return bound

    def run(self, obs: np.ndarray) -> np.ndarray:
        io, inp, out = self._binding(obs.shape[0])
        np.copyto(inp, obs)
        self.session._sess.run_with_iobinding(io, None)
        return out.copy()  # the buffer is overwritten by the next call

    def run_session(self, obs: np.ndarray) -> np.ndarray:
        return self.session.run(self.outputs, {self.input: obs})[0]
