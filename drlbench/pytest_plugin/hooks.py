"""Extension points of the drlbench pytest plugin (hookspecs, as pytest-benchmark declares its own).

A project's conftest.py implements them; this repository's own conftest uses `pytest_drlbench_grid`
to gate the bundled zoo with its --grid / --agents / --variants options.
"""

import pluggy

hookspec = pluggy.HookspecMarker("pytest")


@hookspec(firstresult=True)
def pytest_drlbench_options(config, options):
    """Return the `PluginOptions` to use instead of `options` (read from the --drlbench-* flags): a
    conftest maps its own options onto the plugin's here. Return None to keep `options`."""
