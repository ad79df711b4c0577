"""Memory of loading and running a policy, measured in a fresh process.

The benchmark process already holds torch, onnxruntime, gymnasium and every variant, so its RSS
says nothing about one policy. A fresh probe process (`_memory_probe`) imports one runtime, loads one
artifact and runs it, reporting the peak RSS after each stage; the differences tell the runtime's
own overhead from the weights and from the first inferences' buffers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from drlbench.errors import DrlbenchError
from drlbench.names import RUNTIMES

SUFFIXES = {"onnxruntime": ".onnx", "torch": ".safetensors", "litert": ".tflite", "executorch": ".pte"}  # probe loads
STDERR_TAIL_CHARS = 2000


@dataclass(frozen=True)
class MemoryStats:
    """Peak RSS of the probe process, MiB, stage by stage (each includes the stages before)."""

    runtime: str
    steps: int  # batch-1 actions run before the last reading
    artifact_bytes: int  # size of the file the probe loaded
    rss_python_mib: float  # interpreter only
    rss_runtime_mib: float  # + the runtime imported
    rss_loaded_mib: float  # + the model loaded
    rss_running_mib: float  # + `steps` actions run
    # loaded - runtime: the model's cost, peak of loading included (a parsed protobuf or a fresh
    # module beside the weights), plus per-model setup (an ORT session, torch's first tensors):
    # ~8-10 MiB even for a 17->64->64 actor, so compare variants within one runtime.
    weights_mib: float
    inference_mib: float  # running - loaded: buffers and arenas the first inferences allocate

    def to_extra_info(self) -> dict:
        """Flat dict for pytest-benchmark's `extra_info`: rss_* as in CellResult, the rest prefixed
        (the probe's artifact is the .safetensors file for torch, not CellResult's ONNX size)."""
        return {k if k.startswith("rss_") else f"memory_{k}": v for k, v in asdict(self).items()}


def measure_memory(path: str | os.PathLike, runtime: str = "onnxruntime", *, steps: int = 1000,
                   timeout_s: float = 300.0) -> MemoryStats:
    """Peak RSS of a fresh process that imports `runtime`, loads the file `path` and runs `steps` actions.

    `path` is an .onnx file for onnxruntime, an actor .safetensors file for torch: what
    `Variant.write_artifact` writes.
    """
    if runtime not in RUNTIMES:
        raise DrlbenchError(f"unknown runtime {runtime!r}; accepted: {', '.join(RUNTIMES)}")
    if steps < 1:
        raise DrlbenchError(f"steps must be >= 1, got {steps}")
    if not isinstance(path, (str, os.PathLike)):
        raise DrlbenchError(f"measure_memory takes the path of an artifact file (Variant.write_artifact writes "
                            f"one); got a {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise DrlbenchError(f"artifact not found: {path} (expected a {SUFFIXES[runtime]} file for runtime {runtime!r})")
    if path.suffix != SUFFIXES[runtime]:
        raise DrlbenchError(f"runtime {runtime!r} loads a {SUFFIXES[runtime]} file; got {path}")
    with tempfile.TemporaryDirectory(prefix="drlbench-memory-") as tmp:
        readings = _run_probe(path.resolve(), runtime, steps, timeout_s, cwd=Path(tmp))
    return MemoryStats(
        runtime=runtime,
        steps=steps,
        artifact_bytes=path.stat().st_size,
        rss_python_mib=readings["rss_python_mib"],
        rss_runtime_mib=readings["rss_runtime_mib"],
        rss_loaded_mib=readings["rss_loaded_mib"],
        rss_running_mib=readings["rss_running_mib"],
        weights_mib=readings["rss_loaded_mib"] - readings["rss_runtime_mib"],
        inference_mib=readings["rss_running_mib"] - readings["rss_loaded_mib"],
    )


def _run_probe(path: Path, runtime: str, steps: int, timeout_s: float, cwd: Path) -> dict:
    # The probe imports drlbench by module name: make sure this copy of the package is the one found,
    # and run it in the empty temp dir so nothing in the caller's working directory shadows a module.
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    cmd = [sys.executable, "-m", "drlbench.meters._memory_probe", "--runtime", runtime, "--steps", str(steps)]
    try:
        proc = subprocess.run([*cmd, str(path)], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise DrlbenchError(f"memory probe for {path} ({runtime}) did not finish in {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        tail = proc.stderr.strip()[-STDERR_TAIL_CHARS:]
        raise DrlbenchError(f"memory probe could not load/run {path} with {runtime} (exit {proc.returncode}): {tail}")
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise DrlbenchError(f"memory probe for {path} ({runtime}) printed no result: {proc.stdout[-500:]!r}") from None
