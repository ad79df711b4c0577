"""Energy per 1,000 batch-1 actions beside fp32 (RAPL where readable, else a labelled CPU-time estimate).
The gate is the plugin's (drlbench/pytest_plugin/suite.py)."""

from drlbench.pytest_plugin.suite import test_energy  # noqa: F401
