"""Per-call latency of a policy runner: every call timed on its own, so the tail is visible.

pytest-benchmark reports mean/median of rounds; a control loop cares about the p99 of single
calls, so we time each `run` with `perf_counter_ns` and keep all samples. Inputs cycle through real
observations (rows of the given array), not one repeated input: dynamic int8 quantization computes
its scales from the values it gets, and a single input would leave caches warmer than a control loop
leaves them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from drlbench.errors import DrlbenchError

if TYPE_CHECKING:  # the runner protocol, without importing torch here
    from drlbench.runtimes import Runner


@dataclass(frozen=True)
class LatencyStats:
    """Wall time of one `run` call, microseconds (per call, i.e. per `batch` actions)."""

    mean_us: float
    p50_us: float
    p90_us: float
    p99_us: float
    min_us: float
    max_us: float
    n: int  # timed calls
    batch: int
    runtime: str
    threads: int

    def to_extra_info(self) -> dict:
        """Flat dict for pytest-benchmark's `extra_info`; keys match CellResult's latency fields."""
        return {
            "latency_us_mean": self.mean_us,
            "latency_us_p50": self.p50_us,
            "latency_us_p90": self.p90_us,
            "latency_us_p99": self.p99_us,
            "latency_us_min": self.min_us,
            "latency_us_max": self.max_us,
            "latency_n": self.n,
            "batch": self.batch,
            "runtime": self.runtime,
            "threads": self.threads,
        }


def batches(observations, obs_dim: int, batch: int) -> list[np.ndarray]:
    """Consecutive [batch, obs_dim] float32 slices of `observations`, made contiguous up front so
    no copy or dtype conversion lands inside a timed call."""
    obs = np.asarray(observations, dtype=np.float32)
    if obs.ndim != 2 or obs.shape[1] != obs_dim:
        raise DrlbenchError(f"observations have shape {obs.shape}; expected (n, {obs_dim}) rows of real states")
    if not np.isfinite(obs).all():
        raise DrlbenchError("observations contain NaN or Inf; expected finite values")
    if batch < 1 or len(obs) < batch:
        raise DrlbenchError(f"batch must be in 1 … {len(obs)} (the number of observation rows); got {batch}")
    return [np.ascontiguousarray(obs[i : i + batch]) for i in range(0, len(obs) - batch + 1, batch)]


def measure_latency(
    runner: Runner,
    observations,
    *,
    batch: int = 1,
    warmup: int = 200,
    min_iterations: int = 2000,
    min_time_s: float = 0.5,
) -> LatencyStats:
    """Time `runner.run` call by call until both `min_iterations` calls and `min_time_s` have passed.

    `runner` is an OrtRunner / TorchRunner (anything with `run`, `runtime`, `threads`, `obs_dim`).
    The garbage collector stays on: a deployed control loop runs with it, so its pauses belong
    in the tail.
    """
    if warmup < 0 or min_iterations < 1 or min_time_s < 0:
        raise DrlbenchError(
            f"need warmup >= 0, min_iterations >= 1, min_time_s >= 0; got {warmup}, {min_iterations}, {min_time_s}"
        )
    inputs = batches(observations, runner.obs_dim, batch)
    k = len(inputs)
    run, clock = runner.run, time.perf_counter_ns
    for i in range(warmup):
        run(inputs[i % k])
    samples: list[int] = []
    deadline = clock() + int(min_time_s * 1e9)
    t1, i = 0, 0
    while i < min_iterations or t1 < deadline:
        x = inputs[i % k]
        t0 = clock()
        run(x)
        t1 = clock()
        samples.append(t1 - t0)
        i += 1
    us = np.asarray(samples, dtype=np.float64) / 1e3
    p50, p90, p99 = np.percentile(us, [50, 90, 99])
    return LatencyStats(
        mean_us=float(us.mean()),
        p50_us=float(p50),
        p90_us=float(p90),
        p99_us=float(p99),
        min_us=float(us.min()),
        max_us=float(us.max()),
        n=len(us),
        batch=batch,
        runtime=str(runner.runtime),
        threads=int(runner.threads),
    )
