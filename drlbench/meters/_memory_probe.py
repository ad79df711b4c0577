"""Isolated-process memory probe: `python -m drlbench.meters._memory_probe --runtime R ARTIFACT`.

Prints one JSON line with the process's peak RSS (MiB) after each stage:
    python   the interpreter and this probe, nothing else
    runtime  + numpy and the runtime (onnxruntime, or torch and the actor loader): no model yet
    loaded   + the model loaded from ARTIFACT (ONNX file, or actor .safetensors for torch)
    running  + STEPS batch-1 actions
Peaks only grow, so each stage's figure includes the ones before it. Only the standard library is
imported at module level, and nothing from drlbench that would pull in the other runtime
(drlbench.runtimes imports torch and onnx), so the `runtime` stage holds exactly one runtime.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys

from drlbench.names import RUNTIMES  # light: no runtime imported

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
OBS_POOL = 64  # distinct observations cycled through while running


def peak_rss_mib() -> float:
    """Peak RSS of this process so far, MiB.

    Linux: VmHWM from /proc/self/status, not getrusage's ru_maxrss. ru_maxrss survives fork and
    exec (the kernel keeps the larger of the parent's peak and ours), so a probe started from a
    benchmark holding torch would report the benchmark's RSS at every stage.
    """
    try:
        with open("/proc/self/status") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        return kib / 2**10
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


def session_options(ort):
    """The same options as drlbench.runtimes.OrtRunner (tests check that they agree)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return opts


def import_runtime(runtime: str) -> None:
    import numpy  # noqa: F401  both runners need it, so it belongs to the runtime's cost

    if runtime == "onnxruntime":
        import onnxruntime  # noqa: F401
    elif runtime == "litert":
        from ai_edge_litert import interpreter  # noqa: F401
    elif runtime == "executorch":
        # the C++ runtime's bindings, which link libtorch (inputs are torch tensors). Not executorch.runtime:
        # its portable_lib imports executorch.exir, the compiler (+130 MiB with torchao), for a warning class.
        import torch  # noqa: F401
        from executorch.extension.pybindings import _C

        _C._unsafe_reset_threadpool(1)  # its pool starts at the machine's core count
    else:
        import torch

        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
        import drlbench.actor  # noqa: F401  the loader code, without weights


def load(runtime: str, path: str):
    """(act, obs_dim): act runs one [1, obs_dim] float32 batch, as the runners' `run` does."""
    if runtime == "onnxruntime":
        import onnxruntime as ort

        session = ort.InferenceSession(path, session_options(ort), providers=["CPUExecutionProvider"])
        inp = session.get_inputs()[0]
        return (lambda x: session.run(None, {inp.name: x})[0]), int(inp.shape[1])
    if runtime == "litert":
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=path, num_threads=1)  # converted at batch 1: no resize
        it.allocate_tensors()
        inp, out = it.get_input_details()[0], it.get_output_details()[0]["index"]

        def act_litert(x):
            it.set_tensor(inp["index"], x)
            it.invoke()
            return it.get_tensor(out)

        return act_litert, int(inp["shape"][1])
    import torch

    if runtime == "executorch":
        from executorch.extension.pybindings import _C

        program = _C._load_program(path)
        method = program.load_method("forward")

        def act_executorch(x):
            return method((torch.from_numpy(x),))[0].numpy()

        act_executorch.program = program  # the method's program must outlive it
        return act_executorch, int(method.method_meta().input_tensor_meta(0).sizes()[1])

    from drlbench.actor import load_actor

    actor = load_actor(path)

    def act(x):
        with torch.inference_mode():
            return actor(torch.from_numpy(x)).numpy()

    return act, actor.obs_dim


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m drlbench.meters._memory_probe")
    parser.add_argument("--runtime", choices=RUNTIMES, required=True)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("artifact")
    args = parser.parse_args(argv)
    for var in THREAD_VARS:  # before the runtime is imported, so its thread pools start at one thread
        os.environ[var] = "1"

    stages = {"rss_python_mib": peak_rss_mib()}
    import_runtime(args.runtime)
    stages["rss_runtime_mib"] = peak_rss_mib()
    act, obs_dim = load(args.runtime, args.artifact)
    stages["rss_loaded_mib"] = peak_rss_mib()

    import numpy as np

    pool = np.random.default_rng(0).standard_normal((OBS_POOL, obs_dim)).astype(np.float32)
    rows = [np.ascontiguousarray(pool[i : i + 1]) for i in range(OBS_POOL)]
    for i in range(args.steps):
        act(rows[i % OBS_POOL])
    stages["rss_running_mib"] = peak_rss_mib()
    print(json.dumps(stages | {"obs_dim": obs_dim}))


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # one line for the parent's error message, not a traceback
        sys.exit(f"{type(exc).__name__}: {exc}")
