"""The 90 %-of-baseline return gate on paired seeds (fp32: its ONNX export acts as the torch actor does).
The gate is the plugin's (drlbench/pytest_plugin/suite.py); this suite runs it on the bundled zoo."""

from drlbench.pytest_plugin.suite import test_return  # noqa: F401
