"""Result store: round trip, no duplicates, resume keys, refusing foreign files, surviving SIGKILL.

All cells here are synthetic test data built below, not measurements.
"""

import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from drlbench.errors import DrlbenchError
from drlbench.results import CellResult
from drlbench.store import ABSENT, SCHEMA_VERSION, CellKey, DuplicateCellError, ResultStore
from drlbench.variants import parse_variant


def fake_cell(agent="sac-hopper", variant="fp32", runtime="onnxruntime", episodes=3, seed=0, ret=100.0):
    """A synthetic CellResult (test data)."""
    recipe = parse_variant(variant)
    return CellResult(
        agent=agent, algo=agent.split("-")[0], task="Hopper", env_id="Hopper-v5", variant=recipe.name,
        family=recipe.family, kind=recipe.kind, ratio=recipe.ratio, runtime=runtime, episodes=episodes, seed=seed,
        returns=[ret - 1, ret, ret + 1][:episodes], lengths=[1000] * episodes, return_mean=ret, return_std=1.0,
        return_ci95_lo=ret - 2.5, return_ci95_hi=ret + 2.5, baseline_return_mean=100.0, raw_ratio=ret / 100.0,
        normalized_score=(ret - 10.0) / 90.0, random_return_mean=10.0, artifact_bytes=1234, n_params=5678,
        latency_us_mean=12.5, energy_j_per_1k_actions=0.4, energy_source="estimate-cpu-time",
        build={"note": "synthetic"})


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "results.sqlite") as s:
        yield s


def test_round_trip_returns_the_same_cell(store):
    cell = fake_cell(variant="prune_l2_30", ret=93.25)
    key = store.put(cell)
    assert key == CellKey("sac-hopper", "prune_l2_30", "onnxruntime", 3, 0)
    assert store.get(key) == cell
    assert store.has(key) and len(store) == 1
    assert store.get(("sac-hopper", "fp32", "onnxruntime", 3, 0)) is None


def test_numpy_values_are_stored_as_plain_numbers(store):
    import numpy as np

    cell = fake_cell()
    cell.return_mean, cell.n_params = np.float32(100.0), np.int64(5678)
    back = store.get(store.put(cell))
    assert back.return_mean == 100.0 and back.n_params == 5678 and type(back.n_params) is int


def test_duplicate_put_is_refused_unless_replace(store):
    store.put(fake_cell(ret=100.0))
    with pytest.raises(DuplicateCellError, match="already in result store"):
        store.put(fake_cell(ret=50.0))
    assert store.get(CellKey.of(fake_cell())).return_mean == 100.0  # the refused put changed nothing
    store.put(fake_cell(ret=50.0), replace=True)
    assert store.get(CellKey.of(fake_cell())).return_mean == 50.0 and len(store) == 1


def test_variant_spelling_does_not_make_a_second_key(store):
    store.put(fake_cell(variant="prune_l1_05"))
    assert store.has(("sac-hopper", "prune-l1-05", "onnxruntime", 3, 0))
    with pytest.raises(DuplicateCellError):
        store.put(fake_cell(variant="PRUNE-L1-05"))


def test_every_key_column_separates_cells(store):
    for kwargs in ({}, {"agent": "td3-hopper"}, {"variant": "ptdq"}, {"runtime": "torch"}, {"episodes": 2},
                   {"seed": 7}):
        store.put(fake_cell(**kwargs))
    assert len(store) == 6
    assert [c.agent for c in store.cells(agent="td3-hopper")] == ["td3-hopper"]
    assert {c.runtime for c in store.cells(runtime="torch")} == {"torch"}
    assert len(store.cells(variant="ptdq")) == 1 and len(store.cells(seed=0, episodes=3)) == 4


def test_done_keys_survive_reopening_for_resume(tmp_path):
    path = tmp_path / "results.sqlite"
    with ResultStore(path) as s:
        keys = {s.put(fake_cell(variant=v)) for v in ("fp32", "ptdq", "prune_l2_70")}
    with ResultStore(path, create=False) as s:
        assert s.done_keys() == keys
        assert all(s.has(k) for k in keys)


def test_runs_record_args_machine_versions_and_times(store):
    run = store.start_run({"agents": ("sac-hopper",), "episodes": 10})
    store.put(fake_cell(), run_id=run)
    store.finish_run(run)
    (rec,) = store.runs()
    assert rec["args"] == {"agents": ["sac-hopper"], "episodes": 10}  # tuples come back as lists
    assert rec["machine"]["cpu_count"] and "numpy" in rec["versions"]
    assert rec["started_at"] <= rec["finished_at"]


def test_check_args_reports_what_differs(store):
    assert store.check_args({"episodes": 10}) == {}  # nothing recorded yet
    store.start_run({"agents": ["sac-hopper"], "episodes": 10, "progress": True})
    assert store.check_args({"agents": ("sac-hopper",), "episodes": 10, "progress": False}, ignore=["progress"]) == {}
    diff = store.check_args({"agents": ["sac-hopper"], "episodes": 20, "seed": 3}, ignore=["progress"])
    assert diff == {"episodes": (10, 20), "seed": (ABSENT, 3)}


def test_other_schema_version_is_refused(tmp_path):
    path = tmp_path / "old.sqlite"
    ResultStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    with pytest.raises(DrlbenchError, match=f"old.sqlite has schema version 999.*schema version {SCHEMA_VERSION}"):
        ResultStore(path)


def test_non_sqlite_file_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n")
    with pytest.raises(DrlbenchError, match="notes.txt is not a SQLite file; expected a drlbench result store"):
        ResultStore(path)
    assert path.read_text() == "not a database\n"


def test_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE things (x)")
    with pytest.raises(DrlbenchError, match="not a drlbench result store.*things"):
        ResultStore(path)


def test_a_reader_does_not_turn_an_empty_file_into_a_store(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(DrlbenchError, match="empty.db is an empty file, not a drlbench result store"):
        ResultStore(path, create=False)
    assert path.stat().st_size == 0


def test_missing_store_is_not_created_when_create_is_false(tmp_path):
    path = tmp_path / "nope.sqlite"
    with pytest.raises(DrlbenchError, match="no result store at .*nope.sqlite; run drlbench sweep first"):
        ResultStore(path, create=False)
    assert not path.exists()


def test_put_survives_sigkill_right_after_it_returns(tmp_path):
    """A child puts cells in a loop and says so after each put returns; we SIGKILL it mid-stream."""
    path = tmp_path / "results.sqlite"
    child = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parent)!r})
        from test_store import fake_cell
        from drlbench.store import ResultStore
        store = ResultStore({str(path)!r})
        for seed in range(100_000):
            store.put(fake_cell(seed=seed))
            print(seed, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    acknowledged = [int(proc.stdout.readline()) for _ in range(5)]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with ResultStore(path, create=False) as s:
        done = {k.seed for k in s.done_keys()}
        assert set(acknowledged) <= done
        assert s._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert all(c == fake_cell(seed=c.seed) for c in s.cells())  # no torn rows


@pytest.mark.parametrize("stored, replace, outcome", [
    ([], False, 0),  # nothing stored: nothing to check
    (["aaaa"], False, 0),  # measured on these weights
    (["bbbb"], False, "refused"),
    (["bbbb"], True, 2),  # replaced on request: every cell of the agent goes, the other agent's stay
])
def test_cells_measured_on_other_weights_are_refused_or_replaced(store, stored, replace, outcome):
    for fp in stored:
        for variant in ("fp32", "ptdq"):
            cell = fake_cell(variant=variant)
            cell.agent_fingerprint = fp
            store.put(cell)
    store.put(fake_cell(agent="td3-hopper"))
    if outcome == "refused":
        with pytest.raises(DrlbenchError, match=r"holds cells of sac-hopper measured on other weights \(fingerprint "
                                                r"bbbb, now aaaa\).*; start over elsewhere"):
            store.check_weights("sac-hopper", "aaaa", replace=replace, hint="start over elsewhere")
        assert len(store) == 3
        return
    assert store.check_weights("sac-hopper", "aaaa", replace=replace, hint="start over elsewhere") == outcome
    assert len(store) == 1 + len(stored) * 2 - outcome


def test_the_committed_store_still_reads(tmp_path):
    """docs/report/results.db, written by earlier versions: every cell loads (read from a copy)."""
    import shutil
    from pathlib import Path

    copy = tmp_path / "results.db"
    shutil.copy(Path(__file__).resolve().parents[1] / "docs" / "report" / "results.db", copy)
    with ResultStore(copy, create=False) as s:
        cells = s.cells()
        assert cells and len(cells) == len(s.done_keys())
        assert all(CellKey.of(c) in s.done_keys() for c in cells)
