"""This repository's bench suite on the drlbench pytest plugin: the bundled zoo's grid options.

Options (all apply to bench/; tests/ ignore them):
  --grid smoke|paper     smoke: a few agents × one variant of every kind (CI); paper: all bundled
                         agents × all 32 variants
  --agents A[,B]         agent ids or globs (`sac-*`), repeatable
  --variants V[,W]       variant names or globs (`prune_l2_*`), repeatable
  --episodes N           evaluation episodes per cell (paired seeds)
  --eval-seed S          first evaluation seed
  --budgets FILE         budgets and expectations (default bench/budgets.toml)
  --return-rule R        normalized (default) | raw: override the budgets file's rule
  --latency-batch N      states per call in test_latency_batched (default 64)

They map onto the plugin's options (drlbench/pytest_plugin) through its `pytest_drlbench_options` hook;
the gates, fixtures and test ids (`<agent>-<variant>`: `-k prune_l2`, `-k ptdq`) are the plugin's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from drlbench.names import GRIDS, RULES

ROOT = Path(__file__).parent


def pytest_addoption(parser):
    g = parser.getgroup("drlbench-zoo", "drlbench's bench suite on the bundled zoo")
    g.addoption("--grid", default="smoke", choices=GRIDS, help="smoke (CI) or paper grid")
    g.addoption("--agents", action="append", default=[], help="agent ids or globs, comma-separated")
    g.addoption("--variants", action="append", default=[], help="variant names or globs, comma-separated")
    g.addoption("--episodes", type=int, default=10, help="evaluation episodes per cell (default 10)")
    g.addoption("--eval-seed", type=int, default=0, help="first evaluation seed (default 0)")
    g.addoption("--budgets", default=str(ROOT / "bench" / "budgets.toml"), help="budgets TOML file")
    g.addoption("--return-rule", default=None, choices=list(RULES), help="override the return rule")
    g.addoption("--latency-batch", type=int, default=64,
                help="states per policy call in test_latency_batched (default 64, e.g. vectorized envs)")


def pytest_drlbench_options(config, options):
    """The zoo grid as the plugin's agents and variants, unless --drlbench-agent names a policy itself."""
    if options.agents:
        return None
    from dataclasses import replace

    from drlbench.errors import DrlbenchError
    from drlbench.grid import resolve
    from drlbench.names import CALIBRATION_STATES
    from drlbench.tasks import check_episodes_and_seed

    try:  # checked under this suite's option names before the plugin checks them under its own
        check_episodes_and_seed(config.getoption("episodes"), config.getoption("eval_seed"),
                                names=("--episodes", "--eval-seed"))
        agents, recipes = resolve(config.getoption("agents"), config.getoption("variants"), config.getoption("grid"))
    except DrlbenchError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not 1 <= config.getoption("latency_batch") <= CALIBRATION_STATES:
        raise pytest.UsageError(f"--latency-batch must be in 1 … {CALIBRATION_STATES} (the calibration states it "
                                f"draws from), got {config.getoption('latency_batch')}")
    return replace(options, agents=agents, variants=[r.name for r in recipes], episodes=config.getoption("episodes"),
                   seed=config.getoption("eval_seed"), budgets=config.getoption("budgets"),
                   return_rule=config.getoption("return_rule"), latency_batch=config.getoption("latency_batch"),
                   builtin=False, task=None)
