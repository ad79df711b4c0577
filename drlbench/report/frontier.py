"""Beyond the paper: each agent's frontier over every variant measured for it, of every kind (the paper's
grid, int8 on the equalized actor, low-bit, pruned + int8, input-quantized).

Per agent: the Pareto fronts of return kept vs artifact bytes and vs batch-1 latency (recommend.pareto_front,
the same fronts `drlbench compress` reports), the smallest variant keeping ≥ KEEP_THRESHOLD and its bytes
against fp32, beside the smallest int8 (PTDQ/PTSQ/QAT) and pruned ones that keep; over agents, how often
≤ 4, ≤ 3 and 2-bit weights keep the return.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drlbench.names import KEEP_THRESHOLD, RULES
from drlbench.recommend import pareto_front
from drlbench.report.markdown import md_table, num, pct
from drlbench.report.selection import AgentCells, ReportSelection
from drlbench.report.verdicts import PRUNE_KINDS, keeps, score
from drlbench.results import CellResult
from drlbench.variants import COMBINED_KIND, EQ_VARIANTS, LOWBIT_KIND, QUANT_VARIANTS

TITLE = "## Frontier per agent — return kept vs bytes and latency, every kind (beyond the paper)"
LOW_BITS = (4, 3, 2)
# 4-bit weights take 1/8 of fp32's bytes; per-channel scales, fp32 biases and the graph add the rest
SMALL_RATIO = 0.16
FAMILIES = {"int8": QUANT_VARIANTS, "pruning": PRUNE_KINDS}


def weight_bits(cell: CellResult) -> int | None:
    """Bits per stored weight: a low-bit scheme's own (fp16: 16), int8 recipes (also after pruning) 8, float
    networks and mixed precision (its first layer is fp32) 32; None for a user's own file (unknown)."""
    if cell.kind == LOWBIT_KIND:
        from drlbench.compress.lowbit.scheme import parse_scheme  # onnx and torch only where low-bit cells exist

        return parse_scheme(cell.variant).weight_bits
    if cell.kind in (*QUANT_VARIANTS, *EQ_VARIANTS, COMBINED_KIND):
        return 8
    return None if cell.kind == "as_is" else 32


@dataclass
class AgentFrontier:
    agent: str
    fp32: CellResult
    cells: list[CellResult]
    size_front: list[CellResult]
    latency_front: list[CellResult]
    smallest: CellResult | None  # the smallest non-fp32 variant keeping the return
    best: dict[str, CellResult | None] = field(default_factory=dict)  # FAMILIES key -> its smallest keeping
    at_bits: dict[int, CellResult | None] = field(default_factory=dict)  # b -> smallest keeping with ≤ b-bit weights
    measured: set = field(default_factory=set)  # FAMILIES keys and LOW_BITS b with a cell measured

    def bytes_ratio(self, cell: CellResult | None) -> float:
        """The cell's bytes ÷ fp32's; no cell (nothing keeps): 1.0, fp32 is what ships."""
        return 1.0 if cell is None else cell.artifact_bytes / self.fp32.artifact_bytes


def _smallest_keeping(cells: list[CellResult], rule: str) -> CellResult | None:
    kept = [c for c in cells if c.kind != "fp32" and keeps(c, rule)]
    return min(kept, key=lambda c: (c.artifact_bytes, -score(c, rule)), default=None)


def agent_frontier(agent: AgentCells, rule: str) -> AgentFrontier | None:
    """The agent's frontier; None without an fp32 cell (every ratio is to fp32)."""
    fp32 = agent.get("fp32")
    if fp32 is None:
        return None
    cells = list(agent.cells.values())
    bits = {c.variant: weight_bits(c) for c in cells}

    groups = {name: [c for c in cells if c.kind in kinds] for name, kinds in FAMILIES.items()} | {
        b: [c for c in cells if bits[c.variant] is not None and bits[c.variant] <= b] for b in LOW_BITS}
    return AgentFrontier(
        agent.agent, fp32, cells, pareto_front(cells, fp32, "size", rule), pareto_front(cells, fp32, "latency", rule),
        _smallest_keeping(cells, rule), {name: _smallest_keeping(groups[name], rule) for name in FAMILIES},
        {b: _smallest_keeping(groups[b], rule) for b in LOW_BITS}, {k for k, g in groups.items() if g})


def frontier_summary(frontiers: list[AgentFrontier]) -> dict:
    """Over agents: median bytes ratio of the smallest keeping variant, of int8's and of pruning's (over the
    agents with such cells; one where none keeps counts 1.0); agents keeping at ≤ b bits, and with such a cell."""
    def median(values: list[float]) -> float | None:
        return float(np.median(values)) if values else None

    return {
        "agents": len(frontiers),
        "smallest_ratio": median([f.bytes_ratio(f.smallest) for f in frontiers]),
        **{f"{name}_ratio": median([f.bytes_ratio(f.best[name]) for f in frontiers if name in f.measured])
           for name in FAMILIES},
        "keeps_at_bits": {b: sum(f.at_bits[b] is not None for f in frontiers) for b in LOW_BITS},
        "measured_at_bits": {b: sum(b in f.measured for f in frontiers) for b in LOW_BITS},
        "keeps_at_4_small": sum(f.at_bits[4] is not None and f.bytes_ratio(f.at_bits[4]) <= SMALL_RATIO
                                for f in frontiers),
    }


def _named(f: AgentFrontier, cell: CellResult | None, group=None) -> str:
    if group is not None and group not in f.measured:
        return "—"  # none measured, which is not "none keeps"
    return "none keeps" if cell is None else f"{cell.variant} ({f.bytes_ratio(cell):.2f}×)"


def frontier_section(sel: ReportSelection, out_dir, rule: str) -> tuple[list[str], list[Path]]:
    """The section's markdown lines and its figure (return kept vs bytes ratio, one marker set per agent)."""
    frontiers = [f for f in (agent_frontier(a, rule) for a in sel.agents) if f is not None]
    if not frontiers:
        return [TITLE, "", "No agent has an fp32 cell: no frontier to draw.", ""], []
    rows = [[f.agent, str(len(f.cells)), f"{f.fp32.artifact_bytes:,}", ", ".join(c.variant for c in f.size_front),
             ", ".join(c.variant for c in f.latency_front), _named(f, f.smallest), _named(f, f.best["int8"], "int8"),
             _named(f, f.best["pruning"], "pruning"), _named(f, f.at_bits[4], 4)] for f in frontiers]
    header = ["agent", "variants", "fp32 bytes", "front: return vs bytes", "front: return vs latency",
              f"smallest keeping ≥ {pct(KEEP_THRESHOLD)} (× fp32 bytes)", "smallest int8 keeping",
              "smallest pruned keeping", "smallest ≤ 4-bit keeping"]
    s, n = frontier_summary(frontiers), len(frontiers)
    bits = "; ".join(f"≤ {b} bits: {s['keeps_at_bits'][b]} of {n} ({s['measured_at_bits'][b]} with such a cell)"
                     for b in LOW_BITS)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    path = _figure_frontier(frontiers, Path(out_dir), rule)
    intro = (f"Every variant measured for an agent, of every kind, on one runtime. A variant is on a front when no "
             f"other is both smaller (or faster: latency beside fp32, batch 1) and keeps more ({RULES[rule]}); "
             f"fronts cheapest first. Keeping: score ≥ {KEEP_THRESHOLD}. Ratios: artifact bytes ÷ the agent's fp32.")
    summary = [f"- median over {n} agents of the smallest keeping variant's bytes ratio: "
               f"{num(s['smallest_ratio'])} (int8's smallest: {num(s['int8_ratio'])}; pruning's smallest: "
               f"{num(s['pruning_ratio'])}; each over the agents with such cells); an agent where none keeps "
               "counts 1.00: it ships fp32",
               f"- agents keeping the return with low-bit weights — {bits}; at ≤ 4 bits and ≤ {SMALL_RATIO}× fp32's "
               f"bytes: {s['keeps_at_4_small']} of {n}"]
    return [TITLE, "", intro, "", f"![Frontier]({path.name})", "", *md_table(header, rows), *summary, ""], [path]


def _figure_frontier(frontiers: list[AgentFrontier], out: Path, rule: str) -> Path:
    from drlbench.report.figures import _figure, _save  # the one module that imports matplotlib

    fig = _figure(9, 5.5)
    ax = fig.subplots()
    for i, f in enumerate(frontiers):
        color, marker = f"C{i % 10}", "os^Dv"[i // 10 % 5]
        pts = [(f.bytes_ratio(c), score(c, rule)) for c in f.cells]
        pts = [p for p in pts if math.isfinite(p[1]) and p[0] > 0]
        if pts:
            ax.scatter(*zip(*pts), s=10, color=color, marker=marker, alpha=0.35)
        front = [(f.bytes_ratio(c), score(c, rule)) for c in f.size_front]
        if front:
            # a step: at any budget the front offers the score of its last point within it
            ax.plot(*zip(*front), "-", marker=marker, ms=6, color=color, label=f.agent, drawstyle="steps-post")
    ax.axhline(KEEP_THRESHOLD, color="k", ls=":", lw=0.8)
    ax.axvline(1.0, color="grey", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("artifact bytes ÷ fp32 (log)")
    ax.set_ylabel(f"return kept ({rule})")
    ax.set_title(f"Per agent: every variant (faint) and its front (line); dotted: keeps {pct(KEEP_THRESHOLD)}",
                 fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _save(fig, out / "fig_frontier.png")
