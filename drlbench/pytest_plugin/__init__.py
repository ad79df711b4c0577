"""drlbench as a pytest plugin (entry point `pytest11: drlbench = drlbench.pytest_plugin.plugin`).

Split by concern, as pytest-benchmark is:
    plugin.py    the hooks pytest calls: options, configure, parametrization, terminal summary
    hooks.py     the extension points a conftest may implement (declared hookspecs)
    options.py   the --drlbench-* options, read and checked without importing torch
    session.py   per-session state: resolved agents, measurers, recorded verdicts
    fixtures.py  drlbench_agent / drlbench_variant / drlbench_cell for users' own tests
    suite.py     the built-in gates (return, latency, artifact, memory, energy), one test per gate

Inert unless used: importing the plugin imports neither torch, onnxruntime nor gymnasium, and it
collects nothing until a --drlbench-* option (or a conftest's `pytest_drlbench_grid`) asks for it.
"""
