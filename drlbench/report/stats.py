"""Means with 95 % intervals: arithmetic (Student-t) for values, geometric for ratios to a baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from scipy import stats

from drlbench.results import CellResult


@dataclass(frozen=True)
class Stat:
    mean: float
    lo: float
    hi: float
    n: int
    geometric: bool = False  # a geometric mean with its (asymmetric) interval: see `ratio_ci`

    def show(self, digits: int = 2) -> str:
        if self.n < 2:
            return f"{self.mean:.{digits}f} (n={self.n}, no CI)"
        if self.geometric:
            return f"{self.mean:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}] (n={self.n})"
        return f"{self.mean:.{digits}f} ± {(self.hi - self.lo) / 2:.{digits}f} (n={self.n})"


def mean_ci(values: Iterable[float]) -> Stat | None:
    """Mean and Student-t 95 % interval of the finite values; None when there are none."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return None
    if v.size == 1:
        return Stat(float(v[0]), float(v[0]), float(v[0]), 1)
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return Stat(float(v.mean()), float(v.mean() - half), float(v.mean() + half), int(v.size))


def ratio_ci(values: Iterable[float]) -> Stat | None:
    """Geometric mean and 95 % interval of positive ratios (Student-t on their logs, mapped back).

    Ratios to a baseline multiply: an arithmetic mean of 0.5× and 2× says 1.25×, the geometric mean says
    1×, and the interval is asymmetric around it. Values not > 0 (a counter that did not tick) are left out.
    """
    logs = [math.log(x) for x in values if x is not None and math.isfinite(x) and x > 0]
    stat = mean_ci(logs)
    if stat is None:
        return None
    return Stat(math.exp(stat.mean), math.exp(stat.lo), math.exp(stat.hi), stat.n, geometric=True)


def geometric_mean(values: Iterable[float]) -> float | None:
    stat = ratio_ci(values)
    return stat.mean if stat else None


def return_stat(cell: CellResult) -> Stat:
    """A cell's mean return with the 95 % interval it stored, over its episodes."""
    return Stat(cell.return_mean, cell.return_ci95_lo, cell.return_ci95_hi, len(cell.returns))
