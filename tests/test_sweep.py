"""`drlbench sweep`: resumable after SIGKILL, no duplicates, parallel = serial, settings guarded."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from drlbench.errors import DrlbenchError
from drlbench.store import ResultStore
from drlbench.sweep import SweepArgs, sweep

from .conftest import TEST_AGENT

VARIANTS = ["fp32", "ptdq", "prune_l1_10", "prune_l2_10", "prune_l2_20"]


def args(out, **kw):
    base = dict(out=str(out), agents=[TEST_AGENT], variants=VARIANTS, episodes=2, memory=False, progress=False)
    return SweepArgs(**(base | kw))


def returns_by_variant(path):
    with ResultStore(path) as store:
        return {c.variant: c.returns for c in store.cells()}


def test_two_workers_give_the_same_returns_as_one(tmp_path):
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    s1 = sweep(args(one, workers=1))
    s2 = sweep(args(two, workers=2))
    assert s1["cells"] == s2["cells"] == len(VARIANTS)
    assert returns_by_variant(one) == returns_by_variant(two)
    with ResultStore(two) as store:  # each cell's cost is recorded for the report's "Sweep cost"
        assert all(c.cell_s >= c.eval_s > 0 for c in store.cells())


def test_a_cells_cost_holds_its_own_episodes_wherever_they_ran():
    """A worker's first cell plays the fp32 baseline for its score; that time belongs to fp32's cell."""
    from drlbench.cells import CellMeasurer, MeasureConfig
    from drlbench.zoo import load_agent

    m = CellMeasurer(load_agent(TEST_AGENT), MeasureConfig(episodes=2, memory=False, energy=False))
    t0 = time.perf_counter()
    first, fp32 = m.measure("prune_l2_10"), m.measure("fp32")
    wall = time.perf_counter() - t0
    assert fp32.cell_s >= fp32.eval_s > 0 and first.cell_s >= first.eval_s > 0
    assert first.cell_s + fp32.cell_s <= wall  # fp32's episodes counted once


def test_sigkill_then_rerun_loses_nothing_and_duplicates_nothing(tmp_path):
    out = tmp_path / "s.db"
    cmd = [sys.executable, "-m", "drlbench.cli", "sweep", "--agents", TEST_AGENT, "--variants", ",".join(VARIANTS),
           "--episodes", "2", "--no-memory", "--no-progress", "--workers", "2", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill as soon as the first cell is committed
        time.sleep(0.2)
        if out.exists():
            try:
                with sqlite3.connect(out, timeout=1) as db:
                    if db.execute("SELECT count(*) FROM cells").fetchone()[0] >= 1:
                        break
            except sqlite3.OperationalError:
                pass
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with ResultStore(out) as store:
        finished = len(store)
    assert 1 <= finished < len(VARIANTS)
    summary = sweep(args(out, workers=1))
    assert summary["skipped"] == finished and summary["cells"] == len(VARIANTS) - finished
    with sqlite3.connect(out) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        keys = db.execute("SELECT agent, variant FROM cells").fetchall()
    assert sorted(v for _, v in keys) == sorted(VARIANTS)  # each cell once


def test_a_store_measured_with_other_settings_is_refused(tmp_path):
    out = tmp_path / "s.db"
    sweep(args(out, variants=["fp32"]))
    with pytest.raises(DrlbenchError, match="episodes: 2 in the store, 3 now"):
        sweep(args(out, variants=["fp32"], episodes=3))
    # a different selection is fine: finished cells are skipped, the rest measured
    assert sweep(args(out, variants=["fp32", "ptdq"]))["skipped"] == 1


def test_cells_of_a_retrained_agent_are_refused_or_replaced_never_skipped(tmp_path, monkeypatch):
    import torch

    from drlbench import zoo

    out = tmp_path / "s.db"
    sweep(args(out, variants=["fp32"]))
    real = zoo.load_agent

    def retrained(name):
        agent = real(name)
        with torch.no_grad():
            agent.actor.head.bias.add_(0.01)
        return agent

    monkeypatch.setattr(zoo, "load_agent", retrained)
    with pytest.raises(DrlbenchError, match=f"holds cells of {TEST_AGENT} measured on other weights"):
        sweep(args(out, variants=["fp32", "ptdq"]))
    with ResultStore(out) as store:
        old = store.cells()[0]
    # on request, its old cells are replaced: measured again on the new weights, none left behind
    summary = sweep(args(out, variants=["fp32", "ptdq"], remeasure_retrained=True))
    assert (summary["skipped"], summary["cells"]) == (0, 2)
    with ResultStore(out) as store:
        fresh = store.cells()
    assert len(fresh) == 2 and old.agent_fingerprint not in {c.agent_fingerprint for c in fresh}


def test_a_second_sweep_in_one_process_measures_with_its_own_settings(tmp_path):
    sweep(args(tmp_path / "a.db", variants=["fp32"], episodes=2))
    sweep(args(tmp_path / "b.db", variants=["fp32"], episodes=3, seed=5))
    with ResultStore(tmp_path / "b.db") as store:
        (cell,) = store.cells()
    assert (len(cell.returns), cell.episodes, cell.seed) == (3, 3, 5)


def test_unknown_names_are_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "s.db"
    with pytest.raises(DrlbenchError, match="unknown agent"):
        sweep(args(out, agents=["nope-*"]))
    assert not out.exists()


def test_the_sweeps_side_by_side_blocks_stay_short():
    from drlbench.sweep import measure_config

    cfg = measure_config(SweepArgs())
    assert (cfg.ratio_blocks, cfg.ratio_block_s) == (3, 0.03)
    # per variant cell: blocks × (latency + energy) × (variant + fp32) of timed calls
    assert cfg.ratio_blocks * cfg.ratio_block_s * 2 * 2 <= 0.4


def test_the_plan_reads_cards_and_loads_no_weights(monkeypatch):
    from drlbench import actor, zoo
    from drlbench.grid import resolve
    from drlbench.sweep import plan

    def no_weights(*a, **k):
        raise AssertionError("the plan loaded an agent's weights")

    monkeypatch.setattr(actor, "load_actor", no_weights)
    monkeypatch.setattr(zoo, "load_actor", no_weights)
    agents, recipes = resolve([TEST_AGENT, "ppo-halfcheetah"], ["fp32", "ptdq"], "paper")
    units, skipped = plan(SweepArgs(), agents, recipes, done_keys=set())
    assert skipped == 0 and sorted(a for a, _ in units) == sorted(agents)
    assert all(r.kind in ("fp32", "ptdq") for _, rs in units for r in rs)  # Recipes, parsed once in resolve


class ScriptedQueue:
    """A progress queue that raises the given exceptions in turn, then reports one cell."""

    def __init__(self, *raises):
        self.raises, self.reported = list(raises), False

    def get(self, timeout):
        if self.raises:
            raise self.raises.pop(0)
        self.reported = True
        return ("agent", "fp32")

    def empty(self):
        return self.reported


class Done:
    def ready(self):
        return True


class Bar:
    def __init__(self):
        self.n = 0

    def update(self, n):
        self.n += n

    def set_postfix_str(self, *a, **k):
        pass


def test_the_progress_loop_polls_again_when_nothing_was_reported():
    import queue

    from drlbench.sweep import _drain

    bar = Bar()
    _drain(ScriptedQueue(queue.Empty(), queue.Empty()), Done(), bar)
    assert bar.n == 1


@pytest.mark.parametrize("error", [RuntimeError("unpickling failed"), OSError("pipe broken")])
def test_the_progress_loop_swallows_nothing_but_an_empty_queue(error):
    from drlbench.sweep import _drain

    with pytest.raises(type(error)):
        _drain(ScriptedQueue(error), Done(), Bar())
