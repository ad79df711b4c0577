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

ARTIFACT_NAMES = {"onnxruntime": "model.onnx", "torch": "actor.safetensors"}  # as Variant.save writes them
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


def measure_memory(model, runtime: str = "onnxruntime", *, steps: int = 1000, timeout_s: float = 300.0) -> MemoryStats:
    """Peak RSS of a fresh process that imports `runtime`, loads `model` and runs `steps` actions.

    `model` is a Variant, an Actor, or a path: an .onnx file for onnxruntime, an actor .safetensors
    file for torch, or a folder written by `Variant.save` holding one of them.
    """
    if runtime not in RUNTIMES:
        raise DrlbenchError(f"unknown runtime {runtime!r}; accepted: {', '.join(RUNTIMES)}")
    if steps < 1:
        raise DrlbenchError(f"steps must be >= 1, got {steps}")
    with tempfile.TemporaryDirectory(prefix="drlbench-memory-") as tmp:
        path = _artifact(model, runtime, Path(tmp))
        readings = _run_probe(path, runtime, steps, timeout_s, cwd=Path(tmp))
        size = path.stat().st_size
    return MemoryStats(
        runtime=runtime,
        steps=steps,
        artifact_bytes=size,
        rss_python_mib=readings["rss_python_mib"],
        rss_runtime_mib=readings["rss_runtime_mib"],
        rss_loaded_mib=readings["rss_loaded_mib"],
        rss_running_mib=readings["rss_running_mib"],
        weights_mib=readings["rss_loaded_mib"] - readings["rss_runtime_mib"],
        inference_mib=readings["rss_running_mib"] - readings["rss_loaded_mib"],
    )


def _artifact(model, runtime: str, tmp: Path) -> Path:
    """A file the probe can load with `runtime`: the given path, or `model` written into `tmp`."""
    from drlbench.actor import Actor, save_actor
    from drlbench.variants import Variant

    name = ARTIFACT_NAMES[runtime]
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if path.is_dir():
            path = path / name
        if not path.is_file():
            raise DrlbenchError(f"artifact not found: {path} (expected {name!r}-style file for runtime {runtime!r})")
        if path.suffix != Path(name).suffix:
            raise DrlbenchError(f"runtime {runtime!r} loads a {Path(name).suffix} file; got {path}")
        return path
    if isinstance(model, Variant):
        if runtime == "onnxruntime":
            (tmp / name).write_bytes(model.onnx)
            return tmp / name
        if model.module is None:
            accepted = ", ".join(model.runtimes)
            raise DrlbenchError(f"variant {model.name} has no {runtime!r} runtime; accepted: {accepted}")
        model = model.module
    if isinstance(model, Actor):
        if runtime == "torch":
            save_actor(model, tmp / name)
        else:
            from drlbench.compress.onnx_export import export_onnx

            (tmp / name).write_bytes(export_onnx(model, model.obs_dim))
        return tmp / name
    raise DrlbenchError(
        f"cannot measure the memory of a {type(model).__name__}; accepted: Variant, Actor, or an artifact path"
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
