"""Keep rules: a cell's score under a rule, whether it keeps ≥ KEEP_THRESHOLD of fp32, how far an agent
prunes while keeping it, and the words and record of a finding's verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from drlbench.names import KEEP_THRESHOLD
from drlbench.report.markdown import MISSING, pct
from drlbench.report.selection import AgentCells
from drlbench.results import CellResult, score  # noqa: F401  (score: re-exported for the report)
from drlbench.variants import QUANT_VARIANTS

PRUNE_KINDS = ("prune_l1", "prune_l2")
MIN_AGENTS = 3  # fewer agents than this and a finding says "not enough data"
AGREE, DISAGREE, NOT_ENOUGH, INCONCLUSIVE = "agree", "disagree", "not enough data", "inconclusive"


@dataclass
class Finding:
    key: str  # stable id: "ptdq_best", "memory_pruning", …
    claim: str
    verdict: str
    evidence: list[str]


def has_score(cell: CellResult, rule: str) -> bool:
    """False where the rule is undefined: fp32 not above random (normalized) or not above 0 (raw)."""
    return math.isfinite(score(cell, rule))


def keeps(cell: CellResult, rule: str) -> bool:
    s = score(cell, rule)
    return math.isfinite(s) and s >= KEEP_THRESHOLD


def paired_drop(agent: AgentCells, cell: CellResult) -> bool | None:
    """Whether the cell's return is below fp32's on the paired seeds (95 % CI); None when not paired."""
    diff = agent.paired_difference(cell)
    return None if diff is None else diff[2] < 0


def keep_line(cell: CellResult, rule: str) -> float | None:
    """The return that scores exactly KEEP_THRESHOLD under `rule`."""
    base, rand = cell.baseline_return_mean, cell.random_return_mean
    if rule == "raw":
        return KEEP_THRESHOLD * base if base > 0 else None
    return None if rand is None else rand + KEEP_THRESHOLD * (base - rand)


def best_of(values: dict[str, float]) -> list[str]:
    """Keys with the highest value (several on a tie)."""
    top = max(values.values())
    return [k for k, v in values.items() if v == top]


def worst_of(values: dict[str, float]) -> list[str]:
    low = min(values.values())
    return [k for k, v in values.items() if v == low]


def quant_means(agent: AgentCells | None) -> dict[str, float] | None:
    """Mean return of PTDQ, PTSQ and QAT, or None unless all three are present."""
    if agent is None or any(agent.get(q) is None for q in QUANT_VARIANTS):
        return None
    return {q: agent.get(q).return_mean for q in QUANT_VARIANTS}


def kept_cells(agent: AgentCells, kind: str, rule: str, contiguous: bool = False) -> list[CellResult]:
    """Pruned cells of `kind` that keep the return. `contiguous`: only the run from the smallest ratio up
    to the first that does not keep — the ratio one can prune to safely. The paper's reading ("the
    highest possible pruning percentage" keeping 90 %) also takes an isolated lucky ratio above a
    failing one; on 10 noisy episodes that happens, so the report shows both readings."""
    cells = agent.pruned(kind)
    if not contiguous:
        return [c for c in cells if keeps(c, rule)]
    run = []
    for c in cells:
        if not keeps(c, rule):
            break
        run.append(c)
    return run


def threshold(agent: AgentCells, rule: str, contiguous: bool, kinds: Iterable[str] = PRUNE_KINDS) -> float:
    """The highest pruning ratio (of `kinds`) that keeps the return; 0 when none does."""
    return max((c.ratio for k in kinds for c in kept_cells(agent, k, rule, contiguous)), default=0.0)


def max_kept(agent: AgentCells, kind: str, rule: str) -> str:
    """Highest pruning ratio of `kind` that keeps the return, as table text; when a lower ratio fails,
    the contiguous reading follows in brackets."""
    cells = agent.pruned(kind)
    if not cells:
        return MISSING
    if not any(has_score(c, rule) for c in cells):
        return "n/a (score undefined)"
    kept, run = kept_cells(agent, kind, rule), kept_cells(agent, kind, rule, contiguous=True)
    if not kept:
        return "none"
    top = pct(max(c.ratio for c in kept))
    if len(run) == len(kept):
        return top
    return f"{top} (contiguous: {pct(run[-1].ratio) if run else 'none'})"


def best_pruning(agent: AgentCells, rule: str, contiguous: bool = False) -> CellResult | None:
    """Table 3's choice: the kept pruned cell with the highest ratio (ties: higher return)."""
    kept = [c for k in PRUNE_KINDS for c in kept_cells(agent, k, rule, contiguous)]
    return max(kept, key=lambda c: (c.ratio, c.return_mean), default=None)


def best_pruned_return(agent: AgentCells) -> CellResult | None:
    return max((c for k in PRUNE_KINDS for c in agent.pruned(k)), key=lambda c: c.return_mean, default=None)
