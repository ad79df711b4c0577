"""A runner measured beside its baseline in alternating blocks, and the one rule that confirms a verdict.

Two numbers taken minutes apart on a shared machine differ by the load they met. `side_by_side` runs
the variant and its baseline back to back in short blocks, the first side alternating between blocks
(v b, b v, v b, ...): block i's two sides meet nearly the same load, so their ratio keeps the variant's
own difference, and the median over blocks drops a block that a burst of load hit on one side only.
Stored cells and the bench gates both measure this way (`CellMeasurer.compare`).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable

from drlbench.errors import DrlbenchError
from drlbench.meters import energy, latency

if TYPE_CHECKING:
    from drlbench.meters.energy import EnergyMeter
    from drlbench.runtimes import Runner

LATENCY_STATS = {"latency_us_mean": "mean_us", "latency_us_p50": "p50_us", "latency_us_p90": "p90_us",
                 "latency_us_p99": "p99_us"}  # figure name (as in CellResult) -> LatencyStats field
ENERGY_STAT = "energy_j_per_1k_actions"
METERS = ("latency", "energy")
# Per block and side: calls run untimed first (this runner just sat idle while the other side ran), and
# the fewest timed calls, so a slow policy still gets a usable median while a fast one (~10 µs a call
# here) reaches the block's time first: measure_latency's default 2000 calls would outlast a 0.03 s block.
BLOCK_WARMUP = 20
BLOCK_MIN_CALLS = 100


def median_ratio(num: list[float], den: list[float]) -> float | None:
    """Median over blocks of num[i] / den[i]; blocks whose denominator is not > 0 (a counter that did
    not tick) are left out; None when none is left."""
    ratios = [n / d for n, d in zip(num, den, strict=True) if d > 0]
    return statistics.median(ratios) if ratios else None


@dataclass(frozen=True)
class Comparison:
    """A variant's figures beside its baseline's: per figure (LATENCY_STATS, ENERGY_STAT), the median over
    blocks of each side and of the per-block ratio variant / baseline."""

    variant: dict[str, float]
    baseline: dict[str, float] = field(default_factory=dict)  # {} when the variant was measured alone
    name: str = "variant"
    baseline_name: str | None = None
    ratios: dict[str, float | None] = field(default_factory=dict)  # {} when measured alone
    blocks: int = 0
    energy_source: str | None = None  # the meter energy came from ("estimate-cpu-time": an estimate)
    runtime: str = ""
    baseline_runtime: str | None = None
    batch: int = 1
    threads: int = 1
    attempts: int = 1  # measurements taken under `confirmed`; this is the one kept

    def ratio(self, figure: str) -> float | None:
        return self.ratios.get(figure)

    def to_extra_info(self) -> dict:
        """Flat dict for pytest-benchmark's `extra_info`: the variant's figures under CellResult's names,
        the baseline's prefixed `baseline_`, ratios suffixed `_ratio`."""
        return (dict(self.variant) | {f"baseline_{k}": v for k, v in self.baseline.items()}
                | {f"{k}_ratio": v for k, v in self.ratios.items()}
                | {"variant": self.name, "baseline": self.baseline_name, "energy_source": self.energy_source,
                   "runtime": self.runtime,
                   "baseline_runtime": self.baseline_runtime, "batch": self.batch, "threads": self.threads,
                   "blocks": self.blocks,
                   "attempts": self.attempts})


def _medians(lat: list, en: list) -> dict[str, float]:
    out = {k: statistics.median(getattr(s, f) for s in lat) for k, f in LATENCY_STATS.items()} if lat else {}
    return out | ({ENERGY_STAT: statistics.median(e.joules_per_1k_actions for e in en)} if en else {})


def _ratios(lat: list, en: list, base_lat: list, base_en: list) -> dict[str, float | None]:
    out = {k: median_ratio([getattr(s, f) for s in lat], [getattr(s, f) for s in base_lat])
           for k, f in LATENCY_STATS.items()} if base_lat else {}
    return out | ({ENERGY_STAT: median_ratio([e.joules_per_1k_actions for e in en],
                                             [e.joules_per_1k_actions for e in base_en])} if base_en else {})


def side_by_side(variant: Runner, baseline: Runner | None, observations, *, blocks: int, block_s: float,
                 batch: int = 1, meters=METERS, energy_meter: EnergyMeter | None = None,
                 names: tuple[str, str | None] = ("variant", "baseline")) -> Comparison:
    """`blocks` blocks, each running `variant` and `baseline` back to back for >= block_s per side and
    meter: batch-`batch` latency of both, then (with "energy" in `meters`) batch-1 energy per action of
    both on `energy_meter`. `baseline=None`: the variant alone in the same blocks, so figures measured
    alone and beside a baseline come from one estimator."""
    unknown = set(meters) - set(METERS)
    if unknown or not meters or blocks < 1 or not block_s > 0:
        raise DrlbenchError(f"need meters from {', '.join(METERS)}, blocks >= 1 and block_s > 0; "
                            f"got {list(meters)}, {blocks}, {block_s}")
    if "energy" in meters and (energy_meter is None or batch != 1):
        raise DrlbenchError("energy is measured per action at batch 1, with an energy meter")
    sides = {"v": variant} | ({"b": baseline} if baseline is not None else {})
    lat: dict[str, list] = {k: [] for k in sides}
    en: dict[str, list] = {k: [] for k in sides}
    for i in range(blocks):
        order = list(sides) if i % 2 == 0 else list(sides)[::-1]
        if "latency" in meters:
            for k in order:
                lat[k].append(latency.measure_latency(sides[k], observations, batch=batch, warmup=BLOCK_WARMUP,
                                                      min_iterations=BLOCK_MIN_CALLS, min_time_s=block_s))
        if "energy" in meters:
            for k in order:
                en[k].append(energy.measure_energy(sides[k], observations, energy_meter, n_actions=BLOCK_MIN_CALLS,
                                                   min_time_s=block_s, warmup=BLOCK_WARMUP))
    base_lat, base_en = lat.get("b", []), en.get("b", [])
    return Comparison(
        variant=_medians(lat["v"], en["v"]), baseline=_medians(base_lat, base_en), name=names[0],
        baseline_name=names[1] if baseline is not None else None,
        ratios=_ratios(lat["v"], en["v"], base_lat, base_en) if baseline is not None else {}, blocks=blocks,
        energy_source=energy_meter.source if "energy" in meters else None, runtime=str(variant.runtime),
        baseline_runtime=str(baseline.runtime) if baseline is not None else None, batch=batch,
        threads=int(variant.threads))


def confirmed(measure: Callable[[], Comparison], judge: Callable[[Comparison], object],
              attempts: int) -> Comparison:
    """The one rule before a verdict differs from the one on record (a cell called slower or costlier
    than its budget, or a recorded miss that moved): measure again, up to `attempts` in all, and keep the
    attempt nearest to agreeing. `judge(c)` returns an object with `agrees` (bool) and `margin` (float,
    how far from agreeing; a gates.Verdict).

    Why the nearest and not the median: load on a shared machine hits one side of a pair at random, so
    one attempt can disagree with the record by accident, while a real change disagrees in every attempt.
    Keeping the nearest means a verdict that differs from the record (in either direction) holds in all
    `attempts` measurements, each already a median over its blocks.
    """
    best, best_margin = None, math.inf
    for attempt in range(1, attempts + 1):
        got = measure()
        verdict = judge(got)
        if best is None or verdict.margin < best_margin:
            best, best_margin = got, verdict.margin
        if verdict.agrees:
            best = got
            break
    return replace(best, attempts=attempt)
