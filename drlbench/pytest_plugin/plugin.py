"""The hooks pytest calls (registered by the `pytest11` entry point `drlbench`).

Import-light on purpose: this module imports only pytest and the options module. The library (torch,
onnxruntime, gymnasium) is imported in `pytest_configure` only when a --drlbench-* option or a conftest's
`pytest_drlbench_options` asks for drlbench; otherwise the plugin changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drlbench.pytest_plugin.options import PluginOptions, add_options

SUITE = Path(__file__).with_name("suite.py")
SESSION = pytest.StashKey["object"]()


def pytest_addhooks(pluginmanager):
    from drlbench.pytest_plugin import hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser):
    add_options(parser)


def session_of(config):
    """The DrlbenchSession, or None when drlbench is not in use in this run."""
    return config.stash.get(SESSION, None)


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    """Bad options fail here, as usage errors, before anything is collected or built."""
    config.addinivalue_line("markers", "torch_runtime: only variants with a torch form (fp32, pruned)")
    config.pluginmanager.import_plugin("drlbench.pytest_plugin.fixtures")  # light: pytest only
    options = PluginOptions.from_config(config)
    options = config.hook.pytest_drlbench_options(config=config, options=options) or options
    if not options.used:
        return
    from drlbench.errors import DrlbenchError
    from drlbench.pytest_plugin.session import DrlbenchSession

    try:
        config.stash[SESSION] = DrlbenchSession.create(options)
    except DrlbenchError as exc:
        raise pytest.UsageError(str(exc)) from None
    if options.agents and options.builtin:
        # the built-in gates need no test file of the user's: collect the plugin's own suite module
        config.args.append(str(SUITE))


def pytest_generate_tests(metafunc):
    session = session_of(metafunc.config)
    if session is None:
        return
    if "drlbench_cell_id" in metafunc.fixturenames:
        cells = session.cells(torch_only=metafunc.definition.get_closest_marker("torch_runtime") is not None)
        metafunc.parametrize("drlbench_cell_id", cells, ids=[f"{a}-{r.name}" for a, r in cells])
    elif "drlbench_agent_label" in metafunc.fixturenames:
        labels = [g.label for g in session.agents]
        metafunc.parametrize("drlbench_agent_label", labels, ids=labels)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = session_of(config)
    if session is None or not session.agents:
        return
    from drlbench.pytest_plugin.summary import summary_lines

    lines = summary_lines(session)
    if lines:
        terminalreporter.write_sep("-", "drlbench")
        for line in lines:
            terminalreporter.write_line(line)
