"""Memory: the artifact (bytes, parameter count) and peak RSS of a fresh process running the policy; two
tests, so an expected miss of one never hides the other. The gates are the plugin's."""

from drlbench.pytest_plugin.suite import test_artifact, test_memory  # noqa: F401
