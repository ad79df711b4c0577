"""Fixtures for the built-in gates and for users' own tests (documented in the README).

    drlbench_cell     one agent × variant: .agent, .recipe, .variant (built), .measurer, .expectation(check)
    drlbench_agent    one --drlbench-agent, as a drlbench Agent (actor + card)
    drlbench_variant  the cell's compressed policy (Variant: artifact bytes, .runner(), .save())
    drlbench_budgets  the budgets in force (--drlbench-budgets or the shipped defaults)
    drlbench_gate     record a gates.Verdict (extra_info, the summary) and assert it

A test that asks for `drlbench_cell` (or `drlbench_variant`) runs once per agent × variant, with ids
`<agent>-<variant>`; one that asks for `drlbench_agent` runs once per agent.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from drlbench.pytest_plugin.plugin import session_of

NOT_IN_USE = ("drlbench is not in use in this run: pass --drlbench-agent SPEC (and --drlbench-task ENV_ID for a "
              "policy file), or implement pytest_drlbench_options in a conftest")


@dataclass
class Cell:
    label: str  # the agent's label in test ids
    recipe: object  # drlbench.variants.Recipe
    agent: object  # drlbench.zoo.Agent
    measurer: object  # drlbench.cells.CellMeasurer
    budgets: object

    @property
    def name(self) -> str:
        return self.recipe.name

    @property
    def variant(self):
        return self.measurer.variant(self.recipe)

    def expectation(self, check: str):
        """The budgets file's [[expect]] entry for this cell and check, or None."""
        return self.budgets.expectation(self.agent.id, self.recipe.name, check)


@pytest.fixture(scope="session")
def drlbench_session(pytestconfig):
    session = session_of(pytestconfig)
    if session is None:
        pytest.fail(NOT_IN_USE, pytrace=False)
    return session


@pytest.fixture
def drlbench_cell_id():
    """Parametrized by the plugin (pytest_generate_tests) when drlbench is in use."""
    pytest.fail(NOT_IN_USE, pytrace=False)


@pytest.fixture
def drlbench_agent_label():
    """Parametrized by the plugin (pytest_generate_tests) when drlbench is in use."""
    pytest.fail(NOT_IN_USE, pytrace=False)


@pytest.fixture
def drlbench_cell(drlbench_session, drlbench_cell_id) -> Cell:
    label, recipe = drlbench_cell_id
    return Cell(label, recipe, drlbench_session.agent(label).agent, drlbench_session.measurer(label),
                drlbench_session.budgets)


@pytest.fixture
def drlbench_agent(drlbench_session, drlbench_agent_label):
    return drlbench_session.agent(drlbench_agent_label).agent


@pytest.fixture
def drlbench_variant(drlbench_cell):
    return drlbench_cell.variant


@pytest.fixture(scope="session")
def drlbench_budgets(drlbench_session):
    return drlbench_session.budgets


@pytest.fixture
def drlbench_gate(request, record_property, drlbench_session):
    """Record a gate's verdict (drlbench.gates) and assert it. A verdict that shows its [[expect]] entry's
    figure is marked xfail: XFAIL when it misses the budget (raises=AssertionError: only the gate's own
    assert, never a crash, counts as the expected miss), XPASS when a figure at the budget falls on its
    passing side. Any other verdict that did not pass fails the test."""

    def check(verdict, benchmark=None):
        for key, value in verdict.extra_info.items():
            if benchmark is not None:
                benchmark.extra_info[key] = value
            else:
                record_property(key, value)
        callspec = getattr(request.node, "callspec", None)
        label, recipe = callspec.params.get("drlbench_cell_id", (None, None)) if callspec else (None, None)
        drlbench_session.verdicts.append((label, getattr(recipe, "name", None), verdict))
        if verdict.expected:
            request.node.add_marker(pytest.mark.xfail(raises=AssertionError, strict=False, reason=verdict.message))
        assert verdict.passed, verdict.message

    return check
