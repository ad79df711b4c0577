"""Latency beside fp32 on the same runtime: batch 1, one call on --latency-batch states, torch eager, and
ONNX Runtime vs torch fp32. The gates are the plugin's (drlbench/pytest_plugin/suite.py)."""

from drlbench.pytest_plugin.suite import (  # noqa: F401
    test_latency,
    test_latency_batched,
    test_latency_torch,
    test_runtime_onnxruntime_vs_torch,
)
