"""Which cells the report shows: one per agent × variant, all on one runtime, episodes and seeds, and the
table rows (the paper's algo × task grid, then agents of ours off it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from drlbench.errors import unknown
from drlbench.evaluate import paired_difference
from drlbench.results import CellResult


@dataclass
class AgentCells:
    """One agent's cells, one per variant, all on the same runtime, episodes and seeds."""

    agent: str
    algo: str
    task: str
    cells: dict[str, CellResult]

    def get(self, variant: str) -> CellResult | None:
        return self.cells.get(variant)

    def pruned(self, kind: str) -> list[CellResult]:
        return sorted((c for c in self.cells.values() if c.kind == kind), key=lambda c: c.ratio)

    def ratio_to_fp32(self, cell: CellResult, attr: str) -> float | None:
        """cell ÷ this agent's fp32 cell. Latency and energy use the ratio the cell measured beside fp32
        (alternating blocks, same load) when it has one; dividing two cells timed minutes apart on a
        shared machine is the fallback for stores written before that existed."""
        base = self.get("fp32")
        side_by_side = {"latency_us_p50": cell.latency_ratio_p50, "latency_us_mean": cell.latency_ratio_mean,
                        "energy_j_per_1k_actions": cell.energy_ratio}
        if side_by_side.get(attr) is not None:
            return side_by_side[attr]
        if attr == "energy_j_per_episode" and cell.energy_ratio is not None and base is not None:
            length = self.mean_length("fp32")
            return cell.energy_ratio * float(np.mean(cell.lengths)) / length if length and cell.lengths else None
        value = getattr(cell, attr)
        if base is None or value is None or not getattr(base, attr):
            return None
        return value / getattr(base, attr)

    def paired_difference(self, cell: CellResult) -> tuple[float, float, float] | None:
        """Per-seed R_v - R_fp32 (mean, 95 % CI); None without an fp32 cell on the same seeds."""
        base = self.get("fp32")
        if base is None or (base.seed, base.episodes) != (cell.seed, cell.episodes) or cell.episodes < 2:
            return None
        return paired_difference(cell.returns, base.returns)

    def mean_length(self, variant: str) -> float | None:
        cell = self.get(variant)
        return float(np.mean(cell.lengths)) if cell is not None and cell.lengths else None


@dataclass
class ReportRow:
    """A table row: a paper algo × task (with our agent, or None when missing) or an extra agent of ours."""

    label: str
    algo: str
    task: str
    agent: AgentCells | None


@dataclass
class ReportSelection:
    agents: list[AgentCells]
    rows: list[ReportRow]
    source: str
    runtime: str
    notes: list[str] = field(default_factory=list)

    @property
    def cells(self) -> list[CellResult]:
        return [c for a in self.agents for c in a.cells.values()]


def select_cells(cells: list[CellResult], runtime: str, source: str, paper: dict) -> ReportSelection:
    """Group cells by agent; per agent keep the (episodes, seed) group covering most variants."""
    runtimes = sorted({c.runtime for c in cells})
    if runtime not in runtimes:
        raise unknown("runtime", runtime, runtimes)
    notes = [f"{sum(c.runtime != runtime for c in cells)} cells of other runtimes ({', '.join(runtimes)}) "
             f"not shown; this report uses {runtime}."] if len(runtimes) > 1 else []
    agents = []
    for name in sorted({c.agent for c in cells if c.runtime == runtime}):
        mine = [c for c in cells if c.runtime == runtime and c.agent == name]
        agents.append(_pick_group(name, mine, notes))
    return ReportSelection(agents, _rows(agents, paper), source, runtime, notes)


def _pick_group(name: str, cells: list[CellResult], notes: list[str]) -> AgentCells:
    groups: dict[tuple[int, int], list[CellResult]] = {}
    for c in cells:
        groups.setdefault((c.episodes, c.seed), []).append(c)
    best = max(groups, key=lambda g: (len(groups[g]), g[0], -g[1]))
    for other in sorted(set(groups) - {best}):
        notes.append(f"{name}: {len(groups[other])} cells with {other[0]} episodes from seed {other[1]} not shown "
                     f"(shown: {best[0]} episodes from seed {best[1]}).")
    chosen = groups[best]
    return AgentCells(name, chosen[0].algo, chosen[0].task, {c.variant: c for c in chosen})


def _rows(agents: list[AgentCells], paper: dict) -> list[ReportRow]:
    rows, placed = [], set()
    for algo in paper["algos"]:
        for task in paper["tasks"]:
            mine = [a for a in agents if (a.algo.lower(), a.task) == (algo, task)]
            rows += [ReportRow(a.agent, algo, task, a) for a in mine] or [
                ReportRow(f"{algo}-{task.lower()}", algo, task, None)]
            placed.update(a.agent for a in mine)
    return rows + [ReportRow(a.agent, a.algo.lower(), a.task, a) for a in agents if a.agent not in placed]


def resource_ratios(agents: list[AgentCells], pick: Callable[[AgentCells], CellResult | None],
                    attr: str) -> list[float]:
    """Per agent: metric of the picked variant / metric of fp32 (agents lacking either are left out)."""
    values = []
    for a in agents:
        cell = pick(a)
        ratio = a.ratio_to_fp32(cell, attr) if cell is not None else None
        if ratio is not None:
            values.append(ratio)
    return values


def variant_picker(variant: str) -> Callable[[AgentCells], CellResult | None]:
    return lambda a: a.get(variant)
