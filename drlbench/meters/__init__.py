"""Meters: per-call latency, isolated-process memory, energy (measured or a labelled estimate), and a
runner measured beside its baseline in alternating blocks (`side_by_side` -> `Comparison`).

Names are imported lazily: the memory probe runs as `python -m drlbench.meters._memory_probe`,
which imports this package first, and an eager import here would load torch and onnxruntime into
the process whose RSS it is about to measure.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "LatencyStats": "latency",
    "measure_latency": "latency",
    "MemoryStats": "memory",
    "measure_memory": "memory",
    "EnergyMeter": "energy",
    "EnergyStats": "energy",
    "MeterUnavailable": "energy",
    "NvmlMeter": "energy",
    "RaplMeter": "energy",
    "CpuTimeEstimate": "energy",
    "select_meter": "energy",
    "measure_energy": "energy",
    "Comparison": "compare",
    "side_by_side": "compare",
    "confirmed": "compare",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
