"""The report assembled: load the cells, select them, and write report.md with its sections in order and
the figures beside it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from drlbench.errors import DrlbenchError, unknown
from drlbench.names import KEEP_THRESHOLD, RULES
from drlbench.report.cost import cost_section
from drlbench.report.figures import figure1, figure_pruning, figure_returns
from drlbench.report.findings import findings, findings_section
from drlbench.report.frontier import frontier_section
from drlbench.report.markdown import MISSING, estimated_energy_sources
from drlbench.report.paper import paper_results, paper_rows_below_random
from drlbench.report.runtimes import runtimes_section
from drlbench.report.sensitivity import input_sensitivity_section
from drlbench.report.selection import ReportSelection, select_cells
from drlbench.report.tables import (
    algorithm_section,
    equalization_section,
    mixed_precision_section,
    summary_section,
    table1,
    table2,
    table3,
)
from drlbench.results import CellResult
from drlbench.store import ResultStore
from drlbench.variants import PRUNE_RATIOS, VARIANTS


def header_section(sel: ReportSelection, paper: dict, rule: str) -> list[str]:
    src = paper["source"]
    present = sum(r.agent is not None for r in sel.rows)
    return ["# drlbench report", "",
            f"- data: {sel.source}; {len(sel.cells)} cells shown, runtime {sel.runtime}",
            f"- agents: {len(sel.agents)}; {present} of {len(sel.rows)} table rows have our data (the others are "
            f"shown as {MISSING})",
            f"- keep rule: {RULES[rule]} ≥ {KEEP_THRESHOLD}",
            f"- our environments: {', '.join(sorted({c.env_id for c in sel.cells})) or 'none'} (Gymnasium MuJoCo)",
            f"- paper: {src['title']}, {', '.join(src['authors'])}, arXiv:{src['arxiv']} "
            "(MuJoCo v4; the paper's numbers come from its own agents, not ours)", ""]


def data_notes(sel: ReportSelection, paper: dict) -> list[str]:
    lines = ["## Data notes", ""]
    below = paper_rows_below_random(paper)
    if below:
        lines.append("- paper baselines at or below a random policy's return (random: ours, 100 seeded episodes on "
                     f"the v4 task): {'; '.join(below)} — the paper's ratios and picks on these rows mean nothing")
    for a in sel.agents:
        absent = [v for v in VARIANTS if v not in a.cells]
        if absent:
            shown = ", ".join(absent[:12]) + (" …" if len(absent) > 12 else "")
            lines.append(f"- {a.agent}: {len(absent)} of {len(VARIANTS)} paper-grid variants missing: {shown}")
    sources = sorted({c.energy_source for c in sel.cells if c.energy_source})
    lines.append(f"- energy source(s): {', '.join(sources) or 'none recorded'}"
                 + (" — energy numbers are ESTIMATES, not measurements" if estimated_energy_sources(sel.cells)
                    else ""))
    lines.append(f"- paper pruning grid: {', '.join(map(str, PRUNE_RATIOS))} %")
    lines += _runtime_drift_notes(sel)
    return lines + [f"- {n}" for n in sel.notes] + [""]


def _runtime_drift_notes(sel: ReportSelection) -> list[str]:
    """fp32 here runs the ONNX export; a zoo card's return is the torch actor on the same seeds. The
    actions agree to float rounding, yet on chaotic tasks that moves 10-episode means visibly."""
    from drlbench.zoo import bundled_ids, load_card

    bundled, drift = set(bundled_ids()), []
    for a in sel.agents:
        fp32 = a.get("fp32")
        if fp32 is None or a.agent not in bundled:
            continue
        ev = load_card(a.agent).get("evaluation", {})
        if ev.get("seeds") == [fp32.seed + i for i in range(fp32.episodes)] and ev.get("mean"):
            if abs(fp32.return_mean - ev["mean"]) > 0.05 * abs(ev["mean"]):
                drift.append(f"{a.agent} {fp32.return_mean:.1f} vs {ev['mean']:.1f}")
    if not drift:
        return []
    return [f"- fp32 on {sel.runtime} vs the zoo card's torch evaluation on the same seeds differ by more than "
            f"5 % for: {'; '.join(drift)} — float rounding alone (the export's actions match torch's within "
            "1e-4, a bench-suite gate) changes trajectories on these tasks; compare variants with the fp32 of "
            "the same runtime, as every table here does"]


def _load(store_or_cells) -> tuple[list[CellResult], str, list[dict]]:
    if isinstance(store_or_cells, (str, os.PathLike)):
        with ResultStore(store_or_cells, create=False) as store:
            return _load(store)
    if isinstance(store_or_cells, ResultStore):
        cells, source, runs = store_or_cells.cells(), f"store {store_or_cells.path}", store_or_cells.runs()
    else:
        cells, source, runs = list(store_or_cells), "cells given in memory", []
    if not cells:
        raise DrlbenchError(f"{source} has no finished cells; run drlbench sweep first")
    return cells, source, runs


def write_report(store_or_cells: ResultStore | str | os.PathLike | Iterable[CellResult], out_dir: str | os.PathLike,
                 runtime: str = "onnxruntime", rule: str = "normalized") -> list[Path]:
    """Write report.md and the figures into out_dir; returns their paths, report.md first."""
    if rule not in RULES:
        raise unknown("rule", rule, RULES)
    return _write(*_load(store_or_cells), Path(out_dir), runtime, rule)


def _write(cells: list[CellResult], source: str, runs: list[dict], out: Path, runtime: str, rule: str) -> list[Path]:
    """report.md of `runtime`; from onnxruntime's, one sub-report per other runtime in the cells (<out>/<runtime>/)."""
    paper = paper_results()
    sel = select_cells(cells, runtime, source, paper)
    out.mkdir(parents=True, exist_ok=True)
    lines = (header_section(sel, paper, rule) + summary_section(sel, rule) + algorithm_section(sel, rule)
             + table1(sel, paper)
             + equalization_section(sel, rule) + mixed_precision_section(sel, rule)
             + table2(sel, paper, rule) + table3(sel, paper, rule))
    figures: list[Path] = []
    for part, paths in (figure1(sel, out), figure_pruning(sel, out, "prune_l1", 2),
                        figure_pruning(sel, out, "prune_l2", 3), figure_returns(sel, out, rule),
                        frontier_section(sel, out, rule)):
        lines += part
        figures += paths
    others = sorted({c.runtime for c in cells} - {runtime}) if runtime == "onnxruntime" else []
    sels = {runtime: sel} | {rt: select_cells(cells, rt, source, paper) for rt in others}
    lines += input_sensitivity_section(sel, rule) + runtimes_section(sels, rule)
    lines += findings_section(findings(sel, paper, rule)) + cost_section(sel, runs) + data_notes(sel, paper)
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    subreports = [p for rt in others for p in _write(cells, source, runs, out / rt, rt, rule)]
    return [report, *figures, *subreports]
