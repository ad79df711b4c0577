"""`drlbench sweep --executor dask`: a local cluster of 2 worker processes gives the local executor's numbers,
survives a worker killed mid-run and a driver killed mid-run, and fails fast on an unreachable scheduler.
Every cluster started here is shut down; no test leaves a process behind."""

import functools
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drlbench.store import ResultStore
from drlbench.sweep import sweep

from .conftest import TEST_AGENT
from .test_sweep import args as sweep_args
from .test_sweep import returns_by_variant

pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

VARIANTS = ["fp32", "ptdq", "prune_l2_30"]


def args(out, **kw):
    return sweep_args(out, **({"variants": VARIANTS} | kw))


@pytest.fixture(autouse=True)
def no_process_left_behind():
    def ours():  # multiprocessing's resource tracker lives as long as this process, by design
        def tracker(p):
            try:
                return "resource_tracker" in " ".join(p.cmdline())
            except psutil.Error:  # exited meanwhile
                return True
        return [p for p in psutil.Process().children(recursive=True) if not tracker(p)]

    before = {p.pid for p in ours()}
    yield
    new = [p for p in ours() if p.pid not in before]
    _, alive = psutil.wait_procs(new, timeout=15)
    for p in alive:  # ours: end them, then fail
        p.kill()
    assert not alive, f"left behind: {[' '.join(p.cmdline())[:80] for p in alive]}"


@pytest.fixture(scope="module")
def local_returns(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "s.db"
    sweep(args(out, workers=1))
    return returns_by_variant(out)


def test_a_dask_cluster_of_two_gives_the_local_executors_returns(tmp_path, local_returns):
    out = tmp_path / "s.db"
    summary = sweep(args(out, executor="dask", workers=2))
    assert (summary["executor"], summary["workers"], summary["cells"], summary["failed"]) == ("dask", 2, 3, [])
    assert 0 < summary["startup_s"] < summary["wall_s"] and 0 < summary["efficiency"] < 1
    assert returns_by_variant(out) == local_returns  # bit for bit, one thread each
    with ResultStore(out) as store:
        assert store.runs()[-1]["args"]["executor"] == "dask"


def _dies_once(marker: str, unit):
    """Measure the unit, then — the first time a ptdq unit gets here — kill the worker before it reports."""
    from drlbench.units import run_unit

    result = run_unit(unit)
    if unit.variants == ("ptdq",) and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    return result


def test_a_unit_whose_worker_died_runs_again_and_its_cell_is_stored_once(tmp_path, local_returns):
    from drlbench.executors import DaskExecutor

    marker, out = tmp_path / "died", tmp_path / "s.db"
    summary = sweep(args(out, executor="dask", workers=2),
                    executor=DaskExecutor(2, fn=functools.partial(_dies_once, str(marker))))
    assert marker.exists()  # a worker did die, with ptdq measured and not yet handed back
    assert (summary["cells"], summary["failed"]) == (3, [])
    with sqlite3.connect(out) as db:
        assert sorted(r[0] for r in db.execute("SELECT variant FROM cells")) == sorted(VARIANTS)
    assert returns_by_variant(out) == local_returns


def _cells(path) -> int:
    try:
        with sqlite3.connect(path, timeout=1) as db:
            return db.execute("SELECT count(*) FROM cells").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet, or a commit under way
        return 0


def test_the_driver_killed_mid_run_resumes_with_nothing_lost_or_duplicated(tmp_path, local_returns):
    out = tmp_path / "s.db"
    cmd = [sys.executable, "-m", "drlbench.cli", "sweep", "--agents", TEST_AGENT, "--variants", ",".join(VARIANTS),
           "--episodes", "2", "--no-memory", "--no-progress", "--executor", "dask", "--workers", "2",
           "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and _cells(out) < 1:  # kill as soon as the first cell is committed
        time.sleep(0.1)
    cluster = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)  # the driver alone: its cluster's processes must follow it
    proc.wait()
    _, alive = psutil.wait_procs(cluster, timeout=15)
    for p in alive:
        p.kill()
    assert not alive, "the cluster outlived its driver"
    finished = _cells(out)
    assert 1 <= finished < len(VARIANTS)
    done = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=300)  # the same command
    assert done.returncode == 0, done.stderr
    assert f"{finished} cells already finished, {len(VARIANTS) - finished} to go" in done.stderr
    with sqlite3.connect(out) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert sorted(r[0] for r in db.execute("SELECT variant FROM cells")) == sorted(VARIANTS)  # each once
    assert returns_by_variant(out) == local_returns


def test_an_unreachable_scheduler_fails_in_seconds_with_one_line_and_writes_nothing(tmp_path, capsys):
    from drlbench.cli import main

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    code = main(["sweep", "--agents", TEST_AGENT, "--variants", "fp32", "--executor", "dask",
                 "--address", f"tcp://127.0.0.1:{port}", "--out", str(tmp_path / "s.db")])
    err = capsys.readouterr().err
    assert code == 2 and time.perf_counter() - t0 < 15
    assert f"cannot use the Dask scheduler at tcp://127.0.0.1:{port}" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
