"""`drlbench sweep`: resumable after SIGKILL, no duplicates, parallel = serial, settings guarded, shared inputs
computed once, failures reported, physics timed. The Dask executor: tests/test_sweep_dask.py."""

import json
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
    todo, skipped = plan(SweepArgs(), agents, recipes, done_keys=set())
    assert skipped == 0 and sorted(a for a, _ in todo) == sorted(agents)
    assert all(r.kind in ("fp32", "ptdq") for _, rs in todo for r in rs)  # Recipes, parsed once in resolve


def test_fp32_is_played_and_calibration_rolled_out_once_per_agent(tmp_path, monkeypatch):
    """Every cell is a unit of its own and may land on any worker: it gets fp32's returns and the calibration
    states from its agent's lead unit instead of making them again."""
    from drlbench import cells, evaluate, units

    monkeypatch.setattr(units, "_KEEP", 0)  # no measurer kept between units: as if each ran on another worker
    played, rolled = [], []
    real_eval, real_roll = cells.evaluate, evaluate.rollout_observations
    monkeypatch.setattr(cells, "evaluate", lambda *a, **k: played.append(1) or real_eval(*a, **k))
    monkeypatch.setattr(evaluate, "rollout_observations", lambda *a, **k: rolled.append(1) or real_roll(*a, **k))
    summary = sweep(args(tmp_path / "s.db", variants=["fp32", "ptdq", "ptsq", "prune_l2_30"]))
    assert (summary["cells"], summary["failed"]) == (4, [])
    assert (len(played), len(rolled)) == (4, 1)  # one evaluation per cell (fp32's once), one calibration rollout
    # fp32 not asked for: its episodes are still played once, for every cell's score, and not stored
    played.clear()
    summary = sweep(args(tmp_path / "t.db", variants=["ptdq", "prune_l2_30"]))
    assert summary["cells"] == 2 and len(played) == 3
    with ResultStore(tmp_path / "t.db") as store:
        assert sorted(c.variant for c in store.cells()) == ["prune_l2_30", "ptdq"]


def test_a_cell_that_raises_is_reported_the_sweep_goes_on_and_the_exit_code_says_so(tmp_path, monkeypatch, capsys):
    from drlbench.cells import CellMeasurer
    from drlbench.cli import main

    real = CellMeasurer.measure

    def measure(self, variant):
        if str(variant) == "ptdq":
            raise RuntimeError("boom\nand a second line")
        return real(self, variant)

    monkeypatch.setattr(CellMeasurer, "measure", measure)
    out = tmp_path / "s.db"
    code = main(["sweep", "--agents", TEST_AGENT, "--variants", "fp32,ptdq,prune_l2_30", "--episodes", "2",
                 "--no-memory", "--no-progress", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 1
    assert f"{TEST_AGENT} × ptdq failed: RuntimeError: boom\n" in printed.err  # when it happens, one line
    assert printed.out.splitlines()[-1].endswith(f"1 cells failed (rerun the same command to retry them): "
                                                 f"{TEST_AGENT} × ptdq")
    with ResultStore(out) as store:
        assert sorted(c.variant for c in store.cells()) == ["fp32", "prune_l2_30"]
    monkeypatch.setattr(CellMeasurer, "measure", real)
    summary = sweep(args(out, variants=["fp32", "ptdq", "prune_l2_30"]))  # the rerun measures only it
    assert (summary["cells"], summary["skipped"], summary["failed"]) == (1, 2, [])


def test_an_agent_whose_fp32_baseline_fails_has_each_of_its_cells_reported(tmp_path, monkeypatch):
    from drlbench.cells import CellMeasurer

    def evaluation(self, variant, runtime=None):
        raise ValueError("the env would not reset")

    monkeypatch.setattr(CellMeasurer, "evaluation", evaluation)
    summary = sweep(args(tmp_path / "s.db", variants=["fp32", "ptdq"]))
    assert summary["cells"] == 0
    assert {f["variant"]: f["error"] for f in summary["failed"]} == {
        "fp32": "ValueError: the env would not reset",
        "ptdq": "not measured: its fp32 baseline failed (ValueError: the env would not reset)"}


def test_each_cell_records_its_physics_time_and_stores_without_it_still_load(tmp_path):
    out = tmp_path / "s.db"
    summary = sweep(args(out, variants=["fp32", "ptdq"]))
    with ResultStore(out) as store:
        cells, recorded = store.cells(), store.runs()[-1]["summary"]
    assert all(0 < c.physics_s < c.eval_s for c in cells)
    assert summary["physics_s"] == pytest.approx(sum(c.physics_s for c in cells))
    assert summary["efficiency"] == pytest.approx(summary["physics_s"] / summary["wall_s"])  # 1 worker
    assert recorded["efficiency"] == summary["efficiency"] and recorded["cells"] == 2  # the report's cost section
    with sqlite3.connect(out) as db:  # as a store written before physics_s was timed
        for key, payload in db.execute("SELECT variant, result_json FROM cells").fetchall():
            old = {k: v for k, v in json.loads(payload).items() if k != "physics_s"}
            db.execute("UPDATE cells SET result_json=? WHERE variant=?", (json.dumps(old), key))
    with ResultStore(out) as store:
        assert [c.physics_s for c in store.cells()] == [None, None]


def test_a_unit_carries_an_agent_that_is_not_bundled_as_its_bytes_and_card(tmp_path):
    """Nothing assumes a shared filesystem: the unit is plain data, the agent folder may be gone."""
    import pickle
    import shutil
    from dataclasses import asdict

    from drlbench.sweep import measure_config
    from drlbench.units import AgentSpec, Unit, run_unit
    from drlbench.zoo import Agent, load_agent, save_agent

    src = load_agent(TEST_AGENT)
    folder = save_agent(Agent("my-hopper", src.actor, src.card | {"id": "my-hopper"}), tmp_path / "mine")
    spec = AgentSpec.of(str(folder))
    assert AgentSpec.of(TEST_AGENT) == AgentSpec(TEST_AGENT)  # a bundled agent travels as its id
    unit = pickle.loads(pickle.dumps(Unit("t", spec, asdict(measure_config(args(tmp_path / "x.db"))), ("fp32",),
                                          lead=True)))
    shutil.rmtree(folder)
    out = run_unit(unit)
    (cell,) = out["cells"]
    assert (cell["agent"], cell["agent_fingerprint"]) == ("my-hopper", src.fingerprint)
    assert out["shared"]["baseline"]["returns"] == cell["returns"] and len(out["shared"]["calibration"]) == 2048


def test_executor_choices_and_their_errors_are_one_line_and_write_nothing(capsys, tmp_path, monkeypatch):
    from drlbench.cli import main

    base = ["sweep", "--agents", TEST_AGENT, "--variants", "fp32", "--out", str(tmp_path / "s.db")]
    with pytest.raises(SystemExit) as exc:
        main(base + ["--executor", "ray"])
    assert exc.value.code == 2 and "invalid choice: 'ray'" in capsys.readouterr().err
    assert main(base + ["--address", "tcp://127.0.0.1:8786"]) == 2
    err = capsys.readouterr().err
    assert "--address joins a Dask scheduler: use it with --executor dask" in err and err.count("\n") == 1
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    assert main(base + ["--executor", "dask"]) == 2
    err = capsys.readouterr().err
    assert 'pip install -e ".[dask]"' in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def _dies_once(marker: str, unit):
    """Measure the unit, then — the first time a ptdq unit gets here — kill the worker before it reports."""
    from drlbench.units import run_unit

    result = run_unit(unit)
    if unit.variants == ("ptdq",) and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return result


def test_a_local_worker_that_dies_has_its_units_run_again_on_a_fresh_pool(tmp_path):
    import functools

    from drlbench.executors import LocalExecutor

    marker, out = tmp_path / "died", tmp_path / "s.db"
    summary = sweep(args(out, variants=["fp32", "ptdq"], workers=2),
                    executor=LocalExecutor(2, fn=functools.partial(_dies_once, str(marker))))
    assert marker.exists() and (summary["cells"], summary["failed"]) == (2, [])
    with ResultStore(out) as store:
        assert sorted(c.variant for c in store.cells()) == ["fp32", "ptdq"]
