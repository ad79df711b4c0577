"""Markdown text shared by the report's sections: tables, numbers, percentages, method and energy labels."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from drlbench.report.stats import mean_ci, ratio_ci, return_stat
from drlbench.results import CellResult

MISSING = "missing"
KIND_LABEL = {"fp32": "fp32", "ptdq": "PTDQ", "ptsq": "PTSQ", "qat": "QAT", "prune_l1": "L1", "prune_l2": "L2",
              "ptdq_eq": "PTDQ-eq", "ptsq_eq": "PTSQ-eq", "qat_eq": "QAT-eq", "ptdq_mixed": "PTDQ-mixed",
              "ptsq_mixed": "PTSQ-mixed", "lowbit": "low-bit",
              "combined": "pruned + int8", "input": "input-quantized", "as_is": "as is"}


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows] + [""]


def section(title: str, intro: str, header: list[str], rows: list[list[str]]) -> list[str]:
    """A "## title" section: an explaining paragraph, then its table."""
    return [f"## {title}", "", intro, "", *md_table(header, rows)]


def bold(text: str, on: bool) -> str:
    return f"**{text}**" if on else text


def num(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def pct(ratio: float) -> str:
    return f"{round(ratio * 100)} %"


def show_return(cell: CellResult | None) -> str:
    return MISSING if cell is None else return_stat(cell).show(1)


def stat_text(values: list[float]) -> str:
    """Arithmetic mean ± 95 % CI of absolute values; more digits for small ones."""
    stat = mean_ci(values)
    return "—" if stat is None else stat.show(3 if abs(stat.mean) < 10 else 1)


def ratio_text(values: list[float]) -> str:
    """Geometric mean [95 % CI] of ratios."""
    stat = ratio_ci(values)
    return "—" if stat is None else stat.show(3)


def spread_pct(values: list[float]) -> str:
    """Median (min … max) of ratios, as percentages."""
    if not values:
        return "—"
    return f"{pct(float(np.median(values)))} ({pct(min(values))} … {pct(max(values))})"


def estimated_energy_sources(cells: Iterable[CellResult]) -> list[str]:
    """energy_source values that are estimates (e.g. "estimate-cpu-time"), not meter readings."""
    return sorted({c.energy_source for c in cells if "estimate" in (c.energy_source or "")})


def energy_note(cells: list[CellResult]) -> str:
    estimated = estimated_energy_sources(cells)
    if estimated:
        return f"ESTIMATE, not measured: {', '.join(estimated)}"
    measured = sorted({c.energy_source for c in cells if c.energy_source})
    return f"measured: {', '.join(measured)}" if measured else "source not recorded"
