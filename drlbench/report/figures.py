"""The paper's Figures 1–3 (resources ÷ fp32) and the return-vs-ratio curves, as PNGs with their tables.

The only module that draws: matplotlib is imported when a figure is made, so `import drlbench.report`
stays light.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

from drlbench.names import KEEP_THRESHOLD
from drlbench.report.markdown import (
    KIND_LABEL,
    MISSING,
    energy_note,
    estimated_energy_sources,
    md_table,
    pct,
    ratio_text,
    stat_text,
)
from drlbench.report.selection import AgentCells, ReportRow, ReportSelection, resource_ratios, variant_picker
from drlbench.report.stats import Stat, ratio_ci
from drlbench.report.verdicts import PRUNE_KINDS, keep_line
from drlbench.results import CellResult
from drlbench.variants import QUANT_VARIANTS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# (key, CellResult field, label); the energy label says ESTIMATE whenever a cell's energy_source does
METRICS = (("latency", "latency_us_p50", "median latency per action"),
           ("energy", "energy_j_per_1k_actions", "energy per action"),
           ("rss", "rss_running_mib", "RSS while running"),
           ("artifact", "artifact_bytes", "artifact bytes"))


def metric_label(key: str, label: str, cells: list[CellResult]) -> str:
    if key == "energy" and estimated_energy_sources(cells):
        return f"{label} ({energy_note(cells)})"
    return label


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _save(fig: Figure, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=90)
    return path


def figure1(sel: ReportSelection, out: Path) -> tuple[list[str], list[Path]]:
    lines = ["## Figure 1 — latency, energy and memory of quantized models", ""]
    if not any(a.get(q) for a in sel.agents for q in QUANT_VARIANTS):
        return lines + ["No quantized cells in the store: Figure 1 is not drawn.", ""], []
    fig = _figure(16, 4.2)
    for ax, (key, attr, label) in zip(fig.subplots(1, len(METRICS)), METRICS):
        series = [resource_ratios(sel.agents, variant_picker(q), attr) for q in QUANT_VARIANTS]
        _bars(ax, [KIND_LABEL[q] for q in QUANT_VARIANTS], series)
        ax.set_title(metric_label(key, label, sel.cells), fontsize=9)
        ax.set_ylabel("÷ fp32 of the same agent")
    fig.suptitle("Quantized ÷ fp32: geometric mean over agents, 95 % CI (dots: agents)")
    fig.tight_layout()
    path = _save(fig, out / "fig1_quantization.png")
    rows = [[KIND_LABEL[q],
             *(ratio_text(resource_ratios(sel.agents, variant_picker(q), attr)) for _, attr, _ in METRICS)]
            for q in QUANT_VARIANTS]
    rows.append(["fp32 (absolute)", *(stat_text([getattr(a.get("fp32"), attr) for a in sel.agents if a.get("fp32")])
                                      for _, attr, _ in METRICS)])
    header = ["variant", *(metric_label(k, lbl, sel.cells) for k, _, lbl in METRICS)]
    return lines + [f"![Figure 1]({path.name})", "", "Ratios to fp32 of the same agent, geometric mean [95 % CI] "
                    "over agents (n agents); the last row is fp32's own values in µs, J / 1,000 actions, MiB and "
                    "bytes, arithmetic mean ± 95 % CI.", "",
                    *md_table(header, rows)], [path]


def _bars(ax, labels: list[str], series: list[list[float]]) -> None:
    for i, values in enumerate(series):
        stat = ratio_ci(values)
        if stat is None:
            ax.text(i, 1.0, "no data", ha="center", fontsize=8)
            continue
        ax.bar(i, stat.mean, color="C0", alpha=0.6)
        ax.errorbar(i, stat.mean, yerr=[[stat.mean - stat.lo], [stat.hi - stat.mean]], color="k", capsize=4)
        ax.scatter(i + np.linspace(-0.2, 0.2, len(values)), values, s=8, color="k", zorder=3)
        ax.annotate(f"n={stat.n}", (i, stat.hi), textcoords="offset points", xytext=(0, 4), ha="center", fontsize=8)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(labels)), labels)


def figure_pruning(sel: ReportSelection, out: Path, kind: str, number: int) -> tuple[list[str], list[Path]]:
    title = f"## Figure {number} — latency, energy and memory of {KIND_LABEL[kind]}-pruned models, ÷ fp32"
    ratios = sorted({c.ratio for a in sel.agents for c in a.pruned(kind)})
    if not ratios:
        return [title, "", f"No {KIND_LABEL[kind]}-pruned cells in the store: Figure {number} is not drawn.", ""], []
    fig = _figure(16, 4.2)
    table = {r: [pct(r)] for r in ratios}
    for ax, (key, attr, label) in zip(fig.subplots(1, len(METRICS)), METRICS):
        stats_by_ratio = {r: ratio_ci(resource_ratios(sel.agents, _ratio_picker(kind, r), attr)) for r in ratios}
        _curve(ax, stats_by_ratio)
        ax.text(0.02, 0.02, _n_label(stats_by_ratio.values()), transform=ax.transAxes, fontsize=8)
        for a in sel.agents:  # faint per-agent lines: nothing hidden behind the mean
            pts = [(c.ratio, a.ratio_to_fp32(c, attr)) for c in a.pruned(kind)]
            pts = [p for p in pts if p[1] is not None]
            if pts:
                ax.plot(*zip(*pts), color="grey", lw=0.5, alpha=0.5)
        ax.set_title(metric_label(key, label, sel.cells), fontsize=9)
        ax.set_xlabel("pruning ratio")
        for r, s in stats_by_ratio.items():
            table[r].append("—" if s is None else s.show(3))
    fig.suptitle(f"{KIND_LABEL[kind]} pruning ÷ fp32: geometric mean over agents, 95 % CI band (grey: agents)")
    fig.tight_layout()
    path = _save(fig, out / f"fig{number}_prune_{KIND_LABEL[kind].lower()}.png")
    header = ["ratio", *(metric_label(k, lbl, sel.cells) for k, _, lbl in METRICS)]
    return [title, "", f"![Figure {number}]({path.name})", "", "Geometric mean [95 % CI] over agents (n "
            "agents) of the ratio to fp32 of the same agent.", "", *md_table(header, list(table.values()))], [path]


def _n_label(points: Iterable[Stat | None]) -> str:
    ns = sorted({p.n for p in points if p is not None})
    if not ns:
        return ""
    return f"n = {ns[0]} agents" if len(ns) == 1 else f"n = {ns[0]}–{ns[-1]} agents per point"


def _ratio_picker(kind: str, ratio: float) -> Callable[[AgentCells], CellResult | None]:
    return lambda a: next((c for c in a.pruned(kind) if c.ratio == ratio), None)


def _curve(ax, by_x: dict[float, Stat | None]) -> None:
    pts = [(x, s) for x, s in by_x.items() if s is not None]
    if not pts:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center")
        return
    xs = [x for x, _ in pts]
    ax.plot(xs, [s.mean for _, s in pts], "o-", color="C0", ms=3)
    ax.fill_between(xs, [s.lo for _, s in pts], [s.hi for _, s in pts], color="C0", alpha=0.25)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")


def figure_returns(sel: ReportSelection, out: Path, rule: str) -> tuple[list[str], list[Path]]:
    lines = ["## Return vs pruning ratio, per agent", ""]
    if not any(a.pruned(k) for a in sel.agents for k in PRUNE_KINDS):
        return lines + ["No pruned cells in the store: the return curves are not drawn.", ""], []
    ncols = 5
    nrows = math.ceil(len(sel.rows) / ncols)
    fig = _figure(4 * ncols, 2.8 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax, row in zip(axes, sel.rows):
        _return_panel(ax, row, rule)
    for ax in axes[len(sel.rows):]:
        ax.set_axis_off()
    fig.suptitle(f"Mean return ± 95 % CI vs pruning ratio; dashed: fp32 ± CI; dotted: "
                 f"keeps-{pct(KEEP_THRESHOLD)} line ({rule})")
    fig.tight_layout()
    path = _save(fig, out / "fig_returns_vs_ratio.png")
    return lines + [f"![Return vs ratio]({path.name})", ""], [path]


def _return_panel(ax, row: ReportRow, rule: str) -> None:
    agent = row.agent
    if agent is None or not any(agent.pruned(k) for k in PRUNE_KINDS):
        ax.set_title(row.label, fontsize=9)
        ax.text(0.5, 0.5, MISSING, transform=ax.transAxes, ha="center", color="red")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    ax.set_title(f"{row.label} (n={next(iter(agent.cells.values())).episodes} episodes)", fontsize=9)
    for i, kind in enumerate(PRUNE_KINDS):
        cells = agent.pruned(kind)
        if cells:
            xs = [c.ratio for c in cells]
            ax.plot(xs, [c.return_mean for c in cells], "o-", ms=3, color=f"C{i}", label=KIND_LABEL[kind])
            ax.fill_between(xs, [c.return_ci95_lo for c in cells], [c.return_ci95_hi for c in cells],
                            color=f"C{i}", alpha=0.2)
    ref = next(c for k in PRUNE_KINDS for c in agent.pruned(k))
    ax.axhline(ref.baseline_return_mean, color="k", ls="--", lw=0.8)
    base = agent.get("fp32")
    if base is not None:
        ax.axhspan(base.return_ci95_lo, base.return_ci95_hi, color="k", alpha=0.08)
    line = keep_line(ref, rule)
    if line is not None:
        ax.axhline(line, color="k", ls=":", lw=0.8)
    ax.legend(fontsize=7)
