"""Where a sweep's work units run: `LocalExecutor` (processes on this machine) or `DaskExecutor` (a Dask
cluster: a LocalCluster started here, or a running scheduler joined with --address).

One interface: `submit(unit)`; `as_completed()` yields (unit, result or exception) as units finish, and
units submitted while it runs are waited for too; `in_flight`; `slots` (units that run at once); used as a
context manager that starts, and always stops, its processes or cluster. An executor only runs units
(units.run_unit) and hands their results back: the driver (sweep.py) is the only writer of the store.

Dask is the distributed engine rather than Ray: measured on a 2-core machine here, a LocalCluster of 2
processes starts in 1.25 s against 4.5 s for ray.init, and dask + distributed install ~22 MiB against
Ray's 225 MiB. A unit is a plain function of plain data, which is all the sweep needs of an engine.
Dask is an optional extra (`pip install -e ".[dask]"`); the local executor needs nothing beyond drlbench.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import signal
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from drlbench.errors import DrlbenchError
from drlbench.names import EXECUTORS
from drlbench.units import run_unit

CONNECT_TIMEOUT_S = 5  # an unreachable --address fails this fast
# Attempts after the first: Dask's `retries` (an exception escaping a unit), the local pool's re-run of
# units in flight when a worker process died. Dask reschedules a unit whose worker died by itself, up to
# distributed.scheduler.allowed-failures (3) deaths, then reports KilledWorker.
RETRIES = 2


def make_executor(executor: str, workers: int = 1, address: str | None = None):
    if executor == "local":
        if address:
            raise DrlbenchError("--address joins a Dask scheduler: use it with --executor dask")
        return LocalExecutor(workers)
    if executor == "dask":
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise DrlbenchError('--executor dask needs Dask, an optional extra: pip install -e ".[dask]"') from None
        return DaskExecutor(workers, address)
    raise DrlbenchError(f"unknown executor {executor!r}; accepted: {', '.join(EXECUTORS)}")


def _die_with_parent() -> None:
    """Linux: a worker gets SIGKILL when the sweep process dies, so no orphan keeps measuring."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _init_local_worker() -> None:
    _die_with_parent()
    os.environ["OMP_NUM_THREADS"] = "1"  # before torch is imported; run_unit sets torch's threads


class LocalExecutor:
    """`workers` spawned processes (no inherited torch/ORT thread pools); with 1 worker, the units run in
    this process, one after the other, as they are asked for."""

    name = "local"

    def __init__(self, workers: int = 1, fn=run_unit):
        self.slots, self.startup_s, self._fn = workers, 0.0, fn
        self._pool: ProcessPoolExecutor | None = None
        self._serial: deque = deque()
        self._futures: dict = {}  # future -> (unit, attempt)

    def _start_pool(self) -> None:
        self._pool = ProcessPoolExecutor(self.slots, mp_context=mp.get_context("spawn"),
                                         initializer=_init_local_worker)

    def __enter__(self) -> LocalExecutor:
        if self.slots > 1:
            self._start_pool()
        return self

    def __exit__(self, exc_type, *_) -> None:
        if self._pool is not None:
            if exc_type is not None:  # interrupted: stop the cells in flight rather than wait for them
                kill = getattr(self._pool, "kill_workers", None)  # Python 3.14+; before, its process table
                if kill is not None:
                    kill()
                for proc in list((getattr(self._pool, "_processes", None) or {}).values()):
                    proc.kill()
            self._pool.shutdown(wait=True, cancel_futures=True)

    @property
    def in_flight(self) -> int:
        return len(self._serial) + len(self._futures)

    def submit(self, unit, attempt: int = 0) -> None:
        if self._pool is None:
            self._serial.append(unit)
        else:
            self._futures[self._pool.submit(self._fn, unit)] = (unit, attempt)

    def as_completed(self):
        while self._serial or self._futures:
            if self._serial:
                unit = self._serial.popleft()
                try:
                    outcome = self._fn(unit)
                except Exception as exc:  # noqa: BLE001 — handed to the driver, which reports the unit
                    outcome = exc
                yield unit, outcome
                continue
            done, _ = wait(self._futures, return_when=FIRST_COMPLETED)
            fut = next(iter(done))
            unit, attempt = self._futures.pop(fut)
            exc = fut.exception()
            if isinstance(exc, BrokenProcessPool) and attempt < RETRIES:
                # a worker died (OOM killer, a crash in native code): every unit in flight is lost with
                # the pool; run them again on a fresh one
                try:
                    self.submit(unit, attempt + 1)
                except BrokenProcessPool:  # the first of them to come back replaces the pool
                    self._pool.shutdown(wait=True)
                    self._start_pool()
                    self.submit(unit, attempt + 1)
                continue
            yield unit, exc if exc is not None else fut.result()


class DaskExecutor:
    """Units as Dask tasks: on a LocalCluster of `workers` processes of one thread (dashboard off), or on
    the cluster of the scheduler at `address` (its workers need drlbench installed; `workers` is unused)."""

    name = "dask"

    def __init__(self, workers: int = 2, address: str | None = None, fn=run_unit):
        self.workers, self.address, self._fn = workers, address, fn
        self.slots, self.startup_s = 0, 0.0
        self._client = self._cluster = None
        self._futures: dict = {}

    def __enter__(self) -> DaskExecutor:
        from distributed import Client, LocalCluster, as_completed

        t0 = time.perf_counter()
        try:
            if self.address:
                self._client = Client(self.address, timeout=CONNECT_TIMEOUT_S)
                self._client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
            else:
                self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                             dashboard_address=None, silence_logs=logging.ERROR)
                self._client = Client(self._cluster)
        except (OSError, TimeoutError) as exc:
            self.__exit__(None)
            where = f"the Dask scheduler at {self.address}" if self.address else "a local Dask cluster"
            raise DrlbenchError(f"cannot use {where}: {exc}") from None
        self.slots = sum(self._client.nthreads().values())  # the cluster's size when the sweep starts
        self._done = as_completed()
        self.startup_s = time.perf_counter() - t0
        return self

    def __exit__(self, *_) -> None:
        for part in (self._client, self._cluster):
            if part is not None:
                part.close()
        self._client = self._cluster = None

    @property
    def in_flight(self) -> int:
        return len(self._futures)

    def submit(self, unit) -> None:
        fut = self._client.submit(self._fn, unit, pure=False, retries=RETRIES)
        self._futures[fut] = unit
        self._done.add(fut)

    def as_completed(self):
        while self._futures:
            fut = next(self._done)
            unit = self._futures.pop(fut)
            try:
                outcome = fut.result()
            except Exception as exc:  # noqa: BLE001 — the unit's error, KilledWorker, a lost scheduler
                outcome = exc
            fut.release()
            yield unit, outcome
