"""A sweep on more workers than this machine has, simulated from the cells' own recorded times.

The sweep's scheduler (sweep.py) is replayed: each agent's lead unit (its fp32 cell, which computes the
baseline returns and calibration states the agent's other cells share) runs first; when it finishes, the
agent's other cells become ready; a free worker always takes the ready unit with the largest *estimated*
cost (sweep.cell_cost, as the real scheduler sees it), and each unit lasts its cell's *recorded* cell_s.
The ideal is Σ cell_s / N; the critical path (the longest agent's lead plus its longest other cell) bounds
any schedule from below. A simulation, not a measurement: it leaves out start-up and the driver's stores,
and assumes N workers each as fast as the one that recorded the cell.
"""

from __future__ import annotations

import heapq
import itertools

from drlbench.results import CellResult


def simulate(cells: list[CellResult], workers: int) -> dict:
    """{"wall_s", "ideal_s", "critical_s", "efficiency"} of a sweep of `cells` on `workers` workers."""
    from drlbench.sweep import cell_cost
    from drlbench.variants import parse_variant

    by_agent: dict[str, list[CellResult]] = {}
    for c in cells:
        if c.cell_s is not None:
            by_agent.setdefault(c.agent, []).append(c)
    tick = itertools.count()
    ready: list = []  # (-estimated cost, tie, duration, agent or None)
    held: dict[str, list] = {}
    for agent, mine in by_agent.items():
        lead = [c for c in mine if c.kind == "fp32"]
        rest = [c for c in mine if c.kind != "fp32"]
        est = {c.variant: cell_cost(c.task, parse_variant(c.variant), c.episodes) for c in mine}
        held[agent] = [(-est[c.variant], next(tick), c.cell_s, None) for c in rest]
        heapq.heappush(ready, (-sum(est.values()), next(tick), sum(c.cell_s for c in lead), agent))
    running: list = []  # (finish time, tie, agent whose cells it unlocks or None)
    now = 0.0
    while ready or running:
        while ready and len(running) < workers:
            _, _, duration, agent = heapq.heappop(ready)
            heapq.heappush(running, (now + duration, next(tick), agent))
        now, _, agent = heapq.heappop(running)
        for unit in held.pop(agent, []) if agent else []:
            heapq.heappush(ready, unit)
    total = sum(c.cell_s for mine in by_agent.values() for c in mine)
    critical = max((sum(c.cell_s for c in mine if c.kind == "fp32")
                    + max((c.cell_s for c in mine if c.kind != "fp32"), default=0.0)
                    for mine in by_agent.values()), default=0.0)
    return {"workers": workers, "wall_s": now, "ideal_s": total / workers, "critical_s": critical,
            "efficiency": total / (now * workers) if now > 0 else float("nan")}


def scaling_table(cells: list[CellResult], workers=(1, 2, 4, 16, 64)) -> list[list[str]]:
    rows = []
    for n in workers:
        s = simulate(cells, n)
        rows.append([str(n), f"{s['wall_s']:.0f}", f"{s['ideal_s']:.0f}", f"{s['critical_s']:.0f}",
                     f"{s['efficiency']:.2f}"])
    return rows
