"""Which variant to ship: the Pareto front of return kept vs artifact bytes and vs batch-1 latency, and the
recommended variant — the smallest (or, optimizing latency, the fastest) among those that keep the return.

Pure functions of finished cells (`CellResult`s of one agent, fp32 among them); `drlbench compress` and the
pytest plugin's summary both call them, so they always name the same variant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from drlbench.evaluate import paired_difference
from drlbench.names import COLLAPSE, KEEP_THRESHOLD
from drlbench.results import CellResult, score
from drlbench.variants import MIXED_VARIANTS

OBJECTIVES = {"size": ("artifact_bytes", "B"), "latency": ("latency_us_p50", "µs")}


def paired_drop(cell: CellResult, baseline: CellResult) -> bool:
    """The seeds agree on a drop: the 95 % interval of the per-seed R_v - R_base lies below 0."""
    if len(cell.returns) < 2 or len(cell.returns) != len(baseline.returns):
        return False
    return paired_difference(cell.returns, baseline.returns)[2] < 0


def _resource(cell: CellResult, baseline: CellResult, objective: str) -> float | None:
    """The variant's bytes, or its latency as measured side by side with fp32 (ratio × fp32's own p50)."""
    if objective == "size":
        return float(cell.artifact_bytes)
    if cell is baseline or cell.variant == baseline.variant:
        return baseline.latency_us_p50
    if cell.latency_ratio_p50 is not None and baseline.latency_us_p50 is not None:
        return cell.latency_ratio_p50 * baseline.latency_us_p50
    return cell.latency_us_p50


def pareto_front(cells: list[CellResult], baseline: CellResult, objective: str, rule: str) -> list[CellResult]:
    """Cells no other cell beats on both the kept return (score) and the resource; cheapest first."""
    points = []
    for c in cells:
        r, s = _resource(c, baseline, objective), score(c, rule)
        if r is not None and math.isfinite(r) and math.isfinite(s):
            points.append((r, -s, c))
    points.sort(key=lambda p: (p[0], p[1]))
    front, best = [], math.inf
    for r, neg_s, c in points:
        if neg_s < best:  # a higher score than every cheaper cell
            front.append(c)
            best = neg_s
    return front


@dataclass(frozen=True)
class Recommendation:
    cell: CellResult | None  # None: no variant keeps the return (fp32 itself is the answer)
    objective: str
    rule: str
    threshold: float
    reason: str
    front: list[CellResult]
    hints: tuple[str, ...] = ()  # what to measure next (int8_hints)

    def to_dict(self) -> dict:
        return {"variant": self.cell.variant if self.cell else None, "objective": self.objective, "rule": self.rule,
                "threshold": self.threshold, "reason": self.reason,
                "pareto_front": [c.variant for c in self.front], "hints": list(self.hints)}


def int8_hints(cells: list[CellResult], rule: str) -> tuple[str, ...]:
    """A post-training int8 cell that collapsed (score below COLLAPSE) while its mixed-precision recipe was not
    measured: name that recipe. On the bundled zoo the first layer's int8 caused every such collapse, and keeping
    it in fp32 lifted every collapsed cell above 0.5 (docs/report, the int8 collapse finding)."""
    measured, hints = {c.variant for c in cells}, []
    for c in cells:
        mixed, s = f"{c.kind}_mixed", score(c, rule)
        if mixed in MIXED_VARIANTS and mixed not in measured and math.isfinite(s) and s < COLLAPSE:
            hints.append(f"{c.variant} collapsed ({rule} score {s:.2f}); the first layer's int8 is the usual cause: "
                         f"measure {mixed} (that layer kept in fp32) too")
    return tuple(hints)


def recommend(cells: list[CellResult], *, objective: str = "size", rule: str = "normalized",
              threshold: float = KEEP_THRESHOLD) -> Recommendation:
    """Among the non-fp32 cells that keep >= threshold (by `rule`) and show no paired drop, the one with the
    smallest artifact (objective size) or the lowest side-by-side p50 latency (objective latency)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; accepted: {', '.join(OBJECTIVES)}")
    baseline = next((c for c in cells if c.kind == "fp32"), None)
    if baseline is None:
        raise ValueError("recommend needs the fp32 cell: every ratio is to fp32")
    front = pareto_front(cells, baseline, objective, rule)
    eligible = [c for c in cells if c.kind != "fp32" and math.isfinite(score(c, rule))
                and score(c, rule) >= threshold and not paired_drop(c, baseline)
                and _resource(c, baseline, objective) is not None]
    key, unit = OBJECTIVES[objective]
    hints = int8_hints(cells, rule)
    if not eligible:
        return Recommendation(None, objective, rule, threshold,
                              f"no variant keeps ≥ {threshold:.0%} ({rule}) without a paired drop: ship fp32", front,
                              hints)
    best = min(eligible, key=lambda c: (_resource(c, baseline, objective), -score(c, rule)))
    base_value = _resource(baseline, baseline, objective)
    value = _resource(best, baseline, objective)
    ratio = f" ({value / base_value:.2f}× fp32's)" if base_value else ""
    reason = (f"{best.variant}: {rule} score {score(best, rule):.3f} ≥ {threshold}, no paired drop, "
              f"{key.split('_')[0]} {value:,.{0 if objective == 'size' else 1}f} {unit}{ratio} — the {'smallest' if objective == 'size' else 'fastest'} "
              f"of {len(eligible)} variant(s) that keep the return")
    return Recommendation(best, objective, rule, threshold, reason, front, hints)
