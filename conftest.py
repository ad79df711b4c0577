"""drlbench's pytest options and the parametrized fixtures of the bench suite.

Options (all apply to bench/; tests/ ignore them):
  --grid smoke|paper     smoke: a few agents × one variant of every kind (CI); paper: all bundled
                         agents × all 32 variants
  --agents A[,B]         agent ids or globs (`sac-*`), repeatable
  --variants V[,W]       variant names or globs (`prune_l2_*`), repeatable
  --episodes N           evaluation episodes per cell (paired seeds)
  --eval-seed S          first evaluation seed
  --budgets FILE         budgets and expectations (default bench/budgets.toml)
  --return-rule R        normalized (default) | raw: override the budgets file's rule

Test ids are `<agent>-<variant>`, so `-k prune_l2`, `-k ptdq`, `-k hopper` select as expected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drlbench.names import CALIBRATION_STATES, GRIDS, RULES

ROOT = Path(__file__).parent


def pytest_addoption(parser):
    g = parser.getgroup("drlbench", "drlbench bench suite")
    g.addoption("--grid", default="smoke", choices=GRIDS, help="smoke (CI) or paper grid")
    g.addoption("--agents", action="append", default=[], help="agent ids or globs, comma-separated")
    g.addoption("--variants", action="append", default=[], help="variant names or globs, comma-separated")
    g.addoption("--episodes", type=int, default=10, help="evaluation episodes per cell (default 10)")
    g.addoption("--eval-seed", type=int, default=0, help="first evaluation seed (default 0)")
    g.addoption("--budgets", default=str(ROOT / "bench" / "budgets.toml"), help="budgets TOML file")
    g.addoption("--return-rule", default=None, choices=list(RULES), help="override the return rule")
    g.addoption("--latency-batch", type=int, default=64,
                help="states per policy call in test_latency_batched (default 64, e.g. vectorized envs)")


def _grid(config):
    if not hasattr(config, "_drlbench_grid"):
        from drlbench.errors import DrlbenchError
        from drlbench.grid import resolve

        try:
            config._drlbench_grid = resolve(config.getoption("agents"), config.getoption("variants"),
                                            config.getoption("grid"))
        except DrlbenchError as exc:
            raise pytest.UsageError(str(exc)) from None
    return config._drlbench_grid


def pytest_generate_tests(metafunc):
    if ROOT / "bench" not in Path(metafunc.definition.path).parents:
        return  # the grid options parametrize the bench suite only
    if "cell" in metafunc.fixturenames:
        agents, variants = _grid(metafunc.config)
        if metafunc.definition.get_closest_marker("torch_runtime"):
            from drlbench.variants import parse_variant

            variants = [v for v in variants if "torch" in parse_variant(v).runtimes]
        cells = [(a, v) for a in agents for v in variants]
        metafunc.parametrize("cell", cells, ids=[f"{a}-{v}" for a, v in cells])
    elif "agent_id" in metafunc.fixturenames:
        agents, _ = _grid(metafunc.config)
        metafunc.parametrize("agent_id", agents)


def pytest_configure(config):
    """Bad options fail here, as usage errors, before anything is collected or measured."""
    from drlbench.budgets import load_budgets
    from drlbench.errors import DrlbenchError

    config.addinivalue_line("markers", "torch_runtime: only variants with a torch form (fp32, pruned)")
    try:
        config._drlbench_budgets = load_budgets(config.getoption("budgets"))
    except DrlbenchError as exc:
        raise pytest.UsageError(str(exc)) from None
    for name, low in (("episodes", 1), ("eval_seed", 0), ("latency_batch", 1)):
        if config.getoption(name) < low:
            raise pytest.UsageError(f"--{name.replace('_', '-')} must be >= {low}, got {config.getoption(name)}")
    if config.getoption("latency_batch") > CALIBRATION_STATES:
        raise pytest.UsageError(f"--latency-batch must be <= {CALIBRATION_STATES} (the calibration states it "
                                f"draws from), got {config.getoption('latency_batch')}")
    from drlbench.tasks import check_eval_seeds

    try:
        check_eval_seeds(config.getoption("eval_seed"), config.getoption("episodes"))
    except DrlbenchError as exc:
        raise pytest.UsageError(f"--eval-seed: {exc}") from None
    if config.getoption("return_rule"):
        config._drlbench_budgets.values["return_rule"] = config.getoption("return_rule")
    if config.getoption("agents") or config.getoption("variants"):
        _grid(config)


@pytest.fixture(scope="session")
def budgets(pytestconfig):
    return pytestconfig._drlbench_budgets


@pytest.fixture(scope="session")
def measurers(pytestconfig):
    """agent id -> CellMeasurer, created on first use; every artifact is built once per session."""
    import torch

    from drlbench.cells import CellMeasurer, MeasureConfig
    from drlbench.zoo import load_agent

    torch.set_num_threads(1)
    cfg = MeasureConfig(episodes=pytestconfig.getoption("episodes"), seed=pytestconfig.getoption("eval_seed"))
    cache: dict = {}

    def get(agent_id: str) -> CellMeasurer:
        if agent_id not in cache:
            cache[agent_id] = CellMeasurer(load_agent(agent_id), cfg)
        return cache[agent_id]

    return get


@pytest.fixture
def expect(request, budgets):
    """Mark the running cell xfail when budgets.toml records that it fails `check`."""

    def mark(agent: str, variant: str, check: str):
        e = budgets.expectation(agent, variant, check)
        if e is not None:
            request.node.add_marker(pytest.mark.xfail(reason=e.describe(), strict=False))
        return e

    return mark
