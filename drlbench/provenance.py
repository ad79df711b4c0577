"""Where a number came from: the machine and the library versions, recorded with cards and runs."""

from __future__ import annotations

import os
import platform
from importlib import metadata

_VERSIONED = ("drlbench", "numpy", "torch", "onnx", "onnxruntime", "gymnasium", "mujoco",
              "stable-baselines3", "sb3-contrib", "torch-pruning")


def machine_info() -> dict:
    """Includes the 1-minute load average when recorded: timings from a busy machine are not comparable."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"node": platform.node(), "system": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "load_1m": load}


def library_versions() -> dict:
    """Installed versions of the libraries that shape a cell's numbers (None when absent)."""
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
