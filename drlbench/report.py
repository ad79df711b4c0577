"""The report: the paper's Tables 1–3 and Figures 1–3 from stored cells, next to the published numbers,
and the paper's findings re-tested on our numbers.

`write_report(store_or_cells, out_dir)` writes report.md and PNG figures. Every verdict is computed
from the cells given; a missing agent or variant is shown as missing, never filled in.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from drlbench.errors import DrlbenchError, unknown
from drlbench.evaluate import paired_difference
from drlbench.names import ALGOS, KEEP_THRESHOLD, RULES
from drlbench.results import CellResult
from drlbench.store import ResultStore
from drlbench.variants import EQ_VARIANTS, PRUNE_RATIOS, QUANT_VARIANTS, VARIANTS, parse_variant

KEEP = KEEP_THRESHOLD
MIN_AGENTS = 3  # fewer agents than this and a finding says "not enough data"
MEANINGFUL = 0.05  # a resource change counts only beyond 5 % and with its 95 % CI off 1.0
QUANT = QUANT_VARIANTS
PRUNE_KINDS = ("prune_l1", "prune_l2")
KIND_LABEL = {"fp32": "fp32", "ptdq": "PTDQ", "ptsq": "PTSQ", "qat": "QAT", "prune_l1": "L1", "prune_l2": "L2",
              "ptdq_eq": "PTDQ-eq", "ptsq_eq": "PTSQ-eq", "qat_eq": "QAT-eq"}
# (key, CellResult field, label); the energy label says ESTIMATE whenever a cell's energy_source does
METRICS = (("latency", "latency_us_p50", "median latency per action"),
           ("energy", "energy_j_per_1k_actions", "energy per action"),
           ("rss", "rss_running_mib", "RSS while running"),
           ("artifact", "artifact_bytes", "artifact bytes"))
AGREE, DISAGREE, NOT_ENOUGH, INCONCLUSIVE = "agree", "disagree", "not enough data", "inconclusive"
MISSING = "missing"


def paper_results() -> dict:
    """The paper's Tables 1–3, transcribed (drlbench/data/paper_results.json)."""
    return json.loads(resources.files("drlbench.data").joinpath("paper_results.json").read_text())


# --- statistics --------------------------------------------------------------------------------

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
    return Stat(cell.return_mean, cell.return_ci95_lo, cell.return_ci95_hi, len(cell.returns))


def show_return(cell: CellResult | None) -> str:
    return MISSING if cell is None else return_stat(cell).show(1)


def score(cell: CellResult, rule: str) -> float:
    value = cell.normalized_score if rule == "normalized" else cell.raw_ratio
    return float("nan") if value is None else float(value)


def keeps(cell: CellResult, rule: str) -> bool:
    s = score(cell, rule)
    return math.isfinite(s) and s >= KEEP


def pct(ratio: float) -> str:
    return f"{round(ratio * 100)} %"


# --- selecting one cell per agent × variant ----------------------------------------------------

@dataclass
class Agent:
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
class Row:
    """A table row: a paper algo × task (with our agent, or None when missing) or an extra agent of ours."""

    label: str
    algo: str
    task: str
    agent: Agent | None


@dataclass
class Selection:
    agents: list[Agent]
    rows: list[Row]
    source: str
    runtime: str
    notes: list[str] = field(default_factory=list)

    @property
    def cells(self) -> list[CellResult]:
        return [c for a in self.agents for c in a.cells.values()]


def select(cells: list[CellResult], runtime: str, source: str, paper: dict) -> Selection:
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
    return Selection(agents, _rows(agents, paper), source, runtime, notes)


def _pick_group(name: str, cells: list[CellResult], notes: list[str]) -> Agent:
    groups: dict[tuple[int, int], list[CellResult]] = {}
    for c in cells:
        groups.setdefault((c.episodes, c.seed), []).append(c)
    best = max(groups, key=lambda g: (len(groups[g]), g[0], -g[1]))
    for other in sorted(set(groups) - {best}):
        notes.append(f"{name}: {len(groups[other])} cells with {other[0]} episodes from seed {other[1]} not shown "
                     f"(shown: {best[0]} episodes from seed {best[1]}).")
    chosen = groups[best]
    return Agent(name, chosen[0].algo, chosen[0].task, {c.variant: c for c in chosen})


def _rows(agents: list[Agent], paper: dict) -> list[Row]:
    rows, placed = [], set()
    for algo in paper["algos"]:
        for task in paper["tasks"]:
            mine = [a for a in agents if (a.algo.lower(), a.task) == (algo, task)]
            rows += [Row(a.agent, algo, task, a) for a in mine] or [Row(f"{algo}-{task.lower()}", algo, task, None)]
            placed.update(a.agent for a in mine)
    return rows + [Row(a.agent, a.algo.lower(), a.task, a) for a in agents if a.agent not in placed]


def _paper_cell(paper: dict, table: str, row: Row) -> dict | None:
    return paper[table].get(row.algo, {}).get(row.task)


# --- quantization and pruning summaries (shared by tables and findings) ------------------------

def best_of(values: dict[str, float]) -> list[str]:
    """Keys with the highest value (several on a tie)."""
    top = max(values.values())
    return [k for k, v in values.items() if v == top]


def worst_of(values: dict[str, float]) -> list[str]:
    low = min(values.values())
    return [k for k, v in values.items() if v == low]


def quant_means(agent: Agent | None) -> dict[str, float] | None:
    """Mean return of PTDQ, PTSQ and QAT, or None unless all three are present."""
    if agent is None or any(agent.get(q) is None for q in QUANT):
        return None
    return {q: agent.get(q).return_mean for q in QUANT}


def kept_cells(agent: Agent, kind: str, rule: str, contiguous: bool = False) -> list[CellResult]:
    """Pruned cells of `kind` that keep >= 90 %. `contiguous`: only the run from the smallest ratio up
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


def max_kept(agent: Agent, kind: str, rule: str) -> str:
    """Highest pruning ratio of `kind` whose score keeps >= 90 %, as table text; when a lower ratio
    fails, the contiguous reading follows in brackets."""
    cells = agent.pruned(kind)
    if not cells:
        return MISSING
    if not any(math.isfinite(score(c, rule)) for c in cells):
        return "n/a (score undefined)"
    kept, run = kept_cells(agent, kind, rule), kept_cells(agent, kind, rule, contiguous=True)
    if not kept:
        return "none"
    top = pct(max(c.ratio for c in kept))
    if len(run) == len(kept):
        return top
    return f"{top} (contiguous: {pct(run[-1].ratio) if run else 'none'})"


def best_pruning(agent: Agent, rule: str, contiguous: bool = False) -> CellResult | None:
    """Table 3's choice: the kept pruned cell with the highest ratio (ties: higher return)."""
    kept = [c for k in PRUNE_KINDS for c in kept_cells(agent, k, rule, contiguous)]
    return max(kept, key=lambda c: (c.ratio, c.return_mean), default=None)


def best_pruned_return(agent: Agent) -> CellResult | None:
    return max((c for k in PRUNE_KINDS for c in agent.pruned(k)), key=lambda c: c.return_mean, default=None)


def show_method(cell: CellResult | None, agent: Agent | None = None, rule: str | None = None) -> str:
    """A pick as table text; with `agent` and `rule`, no pick because no score is defined says so."""
    if cell is not None:
        return f"{KIND_LABEL[cell.kind]} {pct(cell.ratio)}"
    if agent is not None and rule is not None and not any(
            math.isfinite(score(c, rule)) for k in PRUNE_KINDS for c in agent.pruned(k)):
        return "n/a (score undefined)"
    return "none keeps ≥ 90 %"


# --- Markdown helpers --------------------------------------------------------------------------

def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows] + [""]


def bold(text: str, on: bool) -> str:
    return f"**{text}**" if on else text


def num(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def estimated_energy_sources(cells: Iterable[CellResult]) -> list[str]:
    """energy_source values that are estimates (e.g. "estimate-cpu-time"), not meter readings."""
    return sorted({c.energy_source for c in cells if "estimate" in (c.energy_source or "")})


def energy_note(cells: list[CellResult]) -> str:
    estimated = estimated_energy_sources(cells)
    if estimated:
        return f"ESTIMATE, not measured: {', '.join(estimated)}"
    measured = sorted({c.energy_source for c in cells if c.energy_source})
    return f"measured: {', '.join(measured)}" if measured else "source not recorded"


def metric_label(key: str, label: str, cells: list[CellResult]) -> str:
    if key == "energy" and estimated_energy_sources(cells):
        return f"{label} ({energy_note(cells)})"
    return label


# --- Table 1 -----------------------------------------------------------------------------------

def summary_section(sel: Selection, rule: str) -> list[str]:
    """The user's question in one table: per variant, how many agents keep their return and what
    the variant saves (or costs) in latency, file size and memory, relative to each agent's fp32."""
    lines = ["## Summary — return kept vs. resources saved, per variant", "",
             f"Keeps: agents whose {RULES[rule]} ≥ {KEEP} (k of n agents with the cell). Drops: agents "
             "whose return is below fp32's with 95 % confidence, by a paired t-interval of the per-seed "
             "differences R_v − R_fp32 (the same initial states; a cell can keep ≥ 90 % and still drop, or "
             "lose more than 10 % by its mean on seeds too noisy to call it). Score: median (min … max) over "
             "agents. Resource columns: variant ÷ fp32 of the same agent (latency and energy: the ratio the cell "
             "measured beside fp32 in alternating blocks, where recorded), geometric mean [95 % CI] over agents (n); "
             "below 1 is a saving.", ""]
    rows = []
    for variant in VARIANTS[1:]:
        cells = [(a, a.get(variant)) for a in sel.agents if a.get(variant) is not None]
        if not cells:
            continue
        scores = [score(c, rule) for _, c in cells]
        finite = [s for s in scores if math.isfinite(s)]
        spread = (f"{np.median(finite):.2f} ({min(finite):.2f} … {max(finite):.2f})" if finite else "—")
        diffs = [d for d in (a.paired_difference(c) for a, c in cells) if d is not None]
        drops = f"{sum(hi < 0 for _, _, hi in diffs)} of {len(diffs)}" if diffs else "—"
        undefined = len(scores) - len(finite)  # fp32 not above random (normalized) or not above 0 (raw)
        kept = f"{sum(keeps(c, rule) for _, c in cells)} of {len(finite)}" + (
            f" ({undefined} undefined)" if undefined else "")
        rows.append([variant, kept, drops, spread,
                     *(_ratio_text(resource_ratios(sel.agents, _variant_picker(variant), attr))
                       for attr in ("latency_us_p50", "artifact_bytes", "rss_running_mib"))])
    if not rows:
        return lines + ["No compressed cells in the store.", ""]
    return lines + md_table(["variant", f"keeps ≥ {pct(KEEP)}", "drops (paired)", "score", "median latency ÷ fp32",
                             "artifact bytes ÷ fp32", "RSS while running ÷ fp32"], rows) + [""]


# --- by algorithm -----------------------------------------------------------------------------

def threshold(agent: Agent, rule: str, contiguous: bool, kinds: Iterable[str] = PRUNE_KINDS) -> float:
    """The highest pruning ratio (of `kinds`) keeping >= 90 %; 0 when none does."""
    return max((c.ratio for k in kinds for c in kept_cells(agent, k, rule, contiguous)), default=0.0)


def _algorithms(sel: Selection) -> list[str]:
    present = {a.algo for a in sel.agents}
    return [a for a in ALGOS if a in present] + sorted(present - set(ALGOS))


def _spread_pct(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{pct(float(np.median(values)))} ({pct(min(values))} … {pct(max(values))})"


def algorithm_section(sel: Selection, rule: str) -> list[str]:
    """Per algorithm: how many agents keep each int8 recipe, and how far each pruning method goes safely."""
    rows = []
    for algo in _algorithms(sel):
        mine = [a for a in sel.agents if a.algo == algo]
        params = [c.n_params for a in mine for c in [a.get("fp32")] if c is not None and c.n_params]
        sizes = f"{min(params):,} … {max(params):,}" if len(set(params)) > 1 else f"{params[0]:,}" if params else "—"
        row = [algo, str(len(mine)), ", ".join(sorted(a.task for a in mine)), sizes]
        for q in (*QUANT, "prune_l2_10"):
            cells = [c for a in mine for c in [a.get(q)] if c is not None and math.isfinite(score(c, rule))]
            row.append(f"{sum(keeps(c, rule) for c in cells)} of {len(cells)}" if cells else "—")
        for kind in PRUNE_KINDS:
            row.append(_spread_pct([threshold(a, rule, True, (kind,)) for a in mine if a.pruned(kind)]))
        rows.append(row)
    if not rows:
        return []
    return ["## By algorithm", "",
            f"Agents keeping ≥ {pct(KEEP)} ({RULES[rule]}; k of n agents with a defined score) per int8 recipe and "
            "at 10 % L2 pruning, and the safe pruning ratio — the highest ratio up to which every ratio keeps "
            "(contiguous reading; 0 % when 5 % already fails) — median (min … max) over the algorithm's agents.", "",
            *md_table(["algorithm", "agents", "tasks", "actor parameters", "PTDQ keeps", "PTSQ keeps", "QAT keeps",
                       "L2 10 % keeps", "L1 safe ratio", "L2 safe ratio"], rows), "", *_width_note(sel, rule)]


def _width_note(sel: Selection, rule: str) -> list[str]:
    """Whether agents with bigger actors prune further: algorithms here come with their own widths."""
    pairs = [(c.n_params, threshold(a, rule, True)) for a in sel.agents for c in [a.get("fp32")]
             if c is not None and c.n_params and any(a.pruned(k) for k in PRUNE_KINDS)]
    if len(pairs) < MIN_AGENTS or len({p for p, _ in pairs}) < 2 or len({t for _, t in pairs}) < 2:
        return []
    rho, p = stats.spearmanr(*zip(*pairs))
    return [f"Safe ratio of either method vs the actor's parameter count, across agents: Spearman ρ = {rho:.2f} "
            f"(p = {p:.3f}, n = {len(pairs)}) — the algorithms here come with their own widths (rl-baselines3-zoo's "
            "defaults), so a difference between algorithms can be one of width.", ""]


def table1(sel: Selection, paper: dict) -> list[str]:
    header = ["agent", "fp32", "PTDQ", "PTSQ", "QAT", "paper baseline", "paper PTDQ", "paper PTSQ", "paper QAT"]
    return [
        "## Table 1 — quantization: average return",
        "",
        "Ours: mean ± half-width of the 95 % CI (n episodes, paired seeds). Bold: the best quantized version "
        "(highest mean; marked only when PTDQ, PTSQ and QAT are all present). Paper: Table 1, best recomputed "
        "as the highest of its three quantized columns (its bold is lost in the text).",
        "",
        *md_table(header, [_table1_row(r, paper) for r in sel.rows]),
    ]


def _table1_row(row: Row, paper: dict) -> list[str]:
    agent, theirs = row.agent, _paper_cell(paper, "table1", row)
    means = quant_means(agent)
    winners = best_of(means) if means else []
    ours = [show_return(agent.get(v) if agent else None) for v in ("fp32", *QUANT)]
    ours[1:] = [bold(text, q in winners) for q, text in zip(QUANT, ours[1:])]
    if theirs is None:
        return [row.label, *ours, "—", "—", "—", "—"]
    paper_best = best_of({q: theirs[q] for q in QUANT})
    return [row.label, *ours, f"{theirs['baseline']:.2f}",
            *(bold(f"{theirs[q]:.2f}", q in paper_best) for q in QUANT)]


def equalization_section(sel: Selection, rule: str) -> list[str]:
    """Off the paper grid: each int8 recipe beside the same recipe on the input-equalized actor."""
    agents = [a for a in sel.agents if any(a.get(v) for v in EQ_VARIANTS)]
    if not agents:
        return []
    rows = []
    for a in agents:
        base = a.get("fp32")
        info = next((c.build.get("input_equalization", {}) for v in EQ_VARIANTS for c in [a.get(v)] if c), {})
        row = [a.agent, show_return(base), "yes" if info.get("equalized") else "no (already normalized)"]
        for q in QUANT:
            plain, eq = a.get(q), a.get(f"{q}_eq")
            row += [_score_and_drop(a, plain, rule), _score_and_drop(a, eq, rule)]
        rows.append(row)
    header = ["agent", "fp32", "equalized"] + [f"{KIND_LABEL[k]}" for q in QUANT for k in (q, f"{q}_eq")]
    return ["## Beyond the paper — int8 on an input-equalized actor", "",
            "Off the paper grid (`--variants ptdq_eq,ptsq_eq,qat_eq`). Per-tensor int8 shares one scale among "
            "all of the first layer's inputs; an actor trained on raw observations (no VecNormalize) mixes "
            "features of very different ranges there. `*_eq` first rescales each input feature to span about "
            "[−1, 1] on the calibration states and folds the inverse scale into the first layer's weights: the "
            "fp32 function is unchanged, then the same int8 recipe runs. Actors that already normalize their "
            f"input are left as they are. Cells: {RULES[rule]}; ↓ marks a paired drop below fp32 (95 % CI).", "",
            *md_table(header, rows), ""]


def _score_and_drop(agent: Agent, cell: CellResult | None, rule: str) -> str:
    if cell is None:
        return "—"
    s, diff = score(cell, rule), agent.paired_difference(cell)
    return (f"{s:.2f}" if math.isfinite(s) else "n/a") + (" ↓" if diff is not None and diff[2] < 0 else "")


# --- Table 2 -----------------------------------------------------------------------------------

def table2(sel: Selection, paper: dict, rule: str) -> list[str]:
    header = ["agent", "fp32", "highest pruned return (any ratio)", "L1 (score)", "L2 (score)", "L1 (raw)",
              "L2 (raw)", "paper baseline", "paper 'pruned'", "paper L1", "paper L2"]
    return [
        "## Table 2 — pruning: best pruned return and the highest ratio keeping ≥ 90 %",
        "",
        f"L1/L2 columns: the highest pruning ratio whose return keeps ≥ {pct(KEEP)} of the baseline. "
        f"(score) = {RULES['normalized']} ≥ {KEEP}; (raw) = {RULES['raw']} ≥ {KEEP}. "
        f"This report's rule (Table 3 and findings): **{rule}**. 'none' = no ratio keeps it (the paper has no "
        "such entry: its lowest is 5 %). '(contiguous: r)': a lower ratio fails, so the highest ratio up to "
        "which every ratio keeps is r. Highest pruned return: the highest mean among all pruned variants, "
        "kept or not. The paper's 'pruned' column is its own: it does not say at which ratio, and in 10 of "
        "its 25 rows it is below 90 % of its baseline, so it is not comparable with either of ours.",
        "",
        *md_table(header, [_table2_row(r, paper) for r in sel.rows]),
    ]


def _table2_row(row: Row, paper: dict) -> list[str]:
    agent, theirs = row.agent, _paper_cell(paper, "table2", row)
    if agent is None:
        ours = [MISSING] * 6
    else:
        top = best_pruned_return(agent)
        ours = [show_return(agent.get("fp32")), f"{show_return(top)}, {top.variant}" if top else MISSING,
                *(max_kept(agent, k, r) for r in RULES for k in PRUNE_KINDS)]
    if theirs is None:
        return [row.label, *ours, "—", "—", "—", "—"]
    return [row.label, *ours, f"{theirs['baseline']:.2f}", f"{theirs['pruned']:.2f}",
            pct(theirs["l1_ratio"]), pct(theirs["l2_ratio"])]


# --- Table 3 -----------------------------------------------------------------------------------

def table3(sel: Selection, paper: dict, rule: str) -> list[str]:
    other = next(r for r in RULES if r != rule)
    header = ["agent", f"ours ({rule})", "its return", f"its score ({rule})", f"ours ({rule}, contiguous)",
              f"ours ({other})", "paper"]
    return [
        "## Table 3 — best pruning method",
        "",
        f"The method and ratio with the highest pruning ratio keeping ≥ {pct(KEEP)} (rule: {RULES[rule]}); "
        "a tie between L1 and L2 at the same ratio goes to the higher return. Contiguous: the same, counting "
        "only ratios below which every ratio keeps too (what one can prune to safely).",
        "",
        *md_table(header, [_table3_row(r, paper, rule, other) for r in sel.rows]),
    ]


def _table3_row(row: Row, paper: dict, rule: str, other: str) -> list[str]:
    theirs = _paper_cell(paper, "table3", row)
    paper_text = f"{KIND_LABEL[theirs['kind']]} {pct(theirs['ratio'])}" if theirs else "—"
    agent = row.agent
    if agent is None or not any(agent.pruned(k) for k in PRUNE_KINDS):
        return [row.label, MISSING, MISSING, MISSING, MISSING, MISSING, paper_text]
    best = best_pruning(agent, rule)
    return [row.label, show_method(best, agent, rule), show_return(best) if best else "—",
            num(score(best, rule)) if best else "—",
            show_method(best_pruning(agent, rule, contiguous=True), agent, rule),
            show_method(best_pruning(agent, other), agent, other), paper_text]


# --- resource figures and their tables ---------------------------------------------------------

def resource_ratios(agents: list[Agent], pick: Callable[[Agent], CellResult | None], attr: str) -> list[float]:
    """Per agent: metric of the picked variant / metric of fp32 (agents lacking either are left out)."""
    values = []
    for a in agents:
        cell = pick(a)
        ratio = a.ratio_to_fp32(cell, attr) if cell is not None else None
        if ratio is not None:
            values.append(ratio)
    return values


def _variant_picker(variant: str) -> Callable[[Agent], CellResult | None]:
    return lambda a: a.get(variant)


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=90)
    return path


def figure1(sel: Selection, out: Path) -> tuple[list[str], list[Path]]:
    lines = ["## Figure 1 — latency, energy and memory of quantized models", ""]
    if not any(a.get(q) for a in sel.agents for q in QUANT):
        return lines + ["No quantized cells in the store: Figure 1 is not drawn.", ""], []
    fig = Figure(figsize=(16, 4.2))
    for ax, (key, attr, label) in zip(fig.subplots(1, len(METRICS)), METRICS):
        series = [resource_ratios(sel.agents, _variant_picker(q), attr) for q in QUANT]
        _bars(ax, [KIND_LABEL[q] for q in QUANT], series)
        ax.set_title(metric_label(key, label, sel.cells), fontsize=9)
        ax.set_ylabel("÷ fp32 of the same agent")
    fig.suptitle("Quantized ÷ fp32: geometric mean over agents, 95 % CI (dots: agents)")
    fig.tight_layout()
    path = _save(fig, out / "fig1_quantization.png")
    rows = [[KIND_LABEL[q],
             *(_ratio_text(resource_ratios(sel.agents, _variant_picker(q), attr)) for _, attr, _ in METRICS)]
            for q in QUANT]
    rows.append(["fp32 (absolute)", *(_stat_text([getattr(a.get("fp32"), attr) for a in sel.agents if a.get("fp32")])
                                      for _, attr, _ in METRICS)])
    header = ["variant", *(metric_label(k, lbl, sel.cells) for k, _, lbl in METRICS)]
    return lines + [f"![Figure 1]({path.name})", "", "Ratios to fp32 of the same agent, geometric mean [95 % CI] "
                    "over agents (n agents); the last row is fp32's own values in µs, J / 1,000 actions, MiB and "
                    "bytes, arithmetic mean ± 95 % CI.", "",
                    *md_table(header, rows)], [path]


def _stat_text(values: list[float]) -> str:
    stat = mean_ci(values)
    return "—" if stat is None else stat.show(3 if abs(stat.mean) < 10 else 1)


def _ratio_text(values: list[float]) -> str:
    stat = ratio_ci(values)
    return "—" if stat is None else stat.show(3)


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


def figure_pruning(sel: Selection, out: Path, kind: str, number: int) -> tuple[list[str], list[Path]]:
    title = f"## Figure {number} — latency, energy and memory of {KIND_LABEL[kind]}-pruned models, ÷ fp32"
    ratios = sorted({c.ratio for a in sel.agents for c in a.pruned(kind)})
    if not ratios:
        return [title, "", f"No {KIND_LABEL[kind]}-pruned cells in the store: Figure {number} is not drawn.", ""], []
    fig = Figure(figsize=(16, 4.2))
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


def _ratio_picker(kind: str, ratio: float) -> Callable[[Agent], CellResult | None]:
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


def figure_returns(sel: Selection, out: Path, rule: str) -> tuple[list[str], list[Path]]:
    lines = ["## Return vs pruning ratio, per agent", ""]
    if not any(a.pruned(k) for a in sel.agents for k in PRUNE_KINDS):
        return lines + ["No pruned cells in the store: the return curves are not drawn.", ""], []
    ncols = 5
    nrows = math.ceil(len(sel.rows) / ncols)
    fig = Figure(figsize=(4 * ncols, 2.8 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax, row in zip(axes, sel.rows):
        _return_panel(ax, row, rule)
    for ax in axes[len(sel.rows):]:
        ax.set_axis_off()
    fig.suptitle(f"Mean return ± 95 % CI vs pruning ratio; dashed: fp32 ± CI; dotted: keeps-{pct(KEEP)} line ({rule})")
    fig.tight_layout()
    path = _save(fig, out / "fig_returns_vs_ratio.png")
    return lines + [f"![Return vs ratio]({path.name})", ""], [path]


def _return_panel(ax, row: Row, rule: str) -> None:
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
    line = _keep_line(ref, rule)
    if line is not None:
        ax.axhline(line, color="k", ls=":", lw=0.8)
    ax.legend(fontsize=7)


def _keep_line(cell: CellResult, rule: str) -> float | None:
    """The return that scores exactly KEEP under `rule`."""
    base, rand = cell.baseline_return_mean, cell.random_return_mean
    if rule == "raw":
        return KEEP * base if base > 0 else None
    return None if rand is None else rand + KEEP * (base - rand)


# --- findings ----------------------------------------------------------------------------------

@dataclass
class Finding:
    key: str  # stable id: "ptdq_best", "memory_pruning", …
    claim: str
    verdict: str
    evidence: list[str]


def _counts(winners: list[list[str]]) -> dict[str, int]:
    return {q: sum(q in w for w in winners) for q in QUANT}


def _show_counts(counts: dict[str, int], n: int) -> str:
    return ", ".join(f"{KIND_LABEL[q]} {counts[q]}/{n} ({pct(counts[q] / n)})" for q in QUANT)


def _paper_quant(paper: dict) -> list[dict[str, float]]:
    return [{q: cell[q] for q in QUANT} for algo in paper["table1"].values() for cell in algo.values()]


def _clear_wins(sel: Selection) -> int:
    """Agents whose best quantized variant beats each other one on the paired seeds: the 95 % CI of
    the per-seed differences lies above 0."""
    wins = 0
    for a in sel.agents:
        if quant_means(a) is None:
            continue
        ranked = sorted((a.get(q) for q in QUANT), key=lambda c: c.return_mean, reverse=True)
        if ranked[0].episodes < 2 or any((c.seed, c.episodes) != (ranked[0].seed, ranked[0].episodes)
                                         for c in ranked[1:]):
            continue
        wins += all(paired_difference(ranked[0].returns, c.returns)[1] > 0 for c in ranked[1:])
    return wins


def finding_quant(sel: Selection, paper: dict) -> list[Finding]:
    ours = [m for m in (quant_means(a) for a in sel.agents) if m is not None]
    theirs = _paper_quant(paper)
    n, pn = len(ours), len(theirs)
    best, worst = _counts([best_of(m) for m in ours]), _counts([worst_of(m) for m in ours])
    pbest, pworst = _counts([best_of(m) for m in theirs]), _counts([worst_of(m) for m in theirs])
    common = [f"agents with PTDQ, PTSQ and QAT cells: {n}"]
    if n:
        common += [f"best (highest mean return), ours: {_show_counts(best, n)}; "
                   f"{_clear_wins(sel)} of {n} wins are clear (paired per-seed differences to each other "
                   "method, 95 % CI above 0)",
                   f"best, paper Table 1: {_show_counts(pbest, pn)}"]
    ptdq = Finding("ptdq_best", "PTDQ is the best quantization method (most often the highest return).",
                   _strict_max(best, "ptdq", n), common + ["agree when PTDQ is best for more agents than each "
                                                           "other method (a tie disagrees)"])
    ptsq = Finding("ptsq_worst", "PTSQ is the worst quantization method (least often the best; the paper's criterion).",
                   _strict_min(best, "ptsq", n),
                   common + ["agree when PTSQ is best for fewer agents than each other method (a tie disagrees)"]
                   + ([f"most often the lowest, ours: {_show_counts(worst, n)}; paper: "
                       f"{_show_counts(pworst, pn)} (a stricter reading of 'worst', not used for the verdict)"]
                      if n else []))
    return [ptdq, ptsq]


def _strict_max(counts: dict[str, int], key: str, n: int) -> str:
    if n < MIN_AGENTS:
        return NOT_ENOUGH
    return AGREE if all(counts[key] > v for k, v in counts.items() if k != key) else DISAGREE


def _strict_min(counts: dict[str, int], key: str, n: int) -> str:
    if n < MIN_AGENTS:
        return NOT_ENOUGH
    return AGREE if all(counts[key] < v for k, v in counts.items() if k != key) else DISAGREE


READINGS = ((False, "the paper's reading (highest ratio keeping)"),
            (True, "contiguous reading (every lower ratio keeps too)"))
SIGNIFICANT = 0.05  # one-sided rank-test level for the by-algorithm findings


def _both_readings(verdicts: list[str]) -> str:
    """One verdict from the paper's reading and the contiguous one: the same, or inconclusive."""
    if NOT_ENOUGH in verdicts:
        return NOT_ENOUGH
    return verdicts[0] if len(set(verdicts)) == 1 else INCONCLUSIVE


def finding_l2(sel: Selection, paper: dict, rule: str) -> Finding:
    both = [a for a in sel.agents if all(a.pruned(k) for k in PRUNE_KINDS)]
    paper_kinds = [c["kind"] for algo in paper["table3"].values() for c in algo.values()]
    evidence, verdicts = [f"agents with both L1 and L2 cells: {len(both)}"], []
    for contiguous, reading in READINGS:
        picks = [best_pruning(a, rule, contiguous) for a in both]
        l1, l2 = (sum(p is not None and p.kind == k for p in picks) for k in PRUNE_KINDS)
        none = sum(p is None for p in picks)
        evidence.append(f"Table 3 method, ours ({rule} rule, {reading}): L2 {l2}, L1 {l1}, "
                        f"no ratio keeps ≥ {pct(KEEP)}: {none}")
        verdicts.append(NOT_ENOUGH if l1 + l2 < MIN_AGENTS else AGREE if l2 > l1 else DISAGREE)
    evidence += [f"paper Table 3: L2 {paper_kinds.count('prune_l2')}, L1 {paper_kinds.count('prune_l1')}",
                 "agree when Table 3 picks L2 for more agents than L1 (a tie disagrees), under both readings; "
                 "inconclusive when the readings differ"]
    return Finding("l2_over_l1", "L2 pruning is favoured over L1 for most agents.", _both_readings(verdicts),
                   evidence)


def _family_cells(agent: Agent, family: str) -> list[CellResult]:
    kinds = QUANT if family == "quantization" else PRUNE_KINDS
    return [c for c in agent.cells.values() if c.kind in kinds]


def _per_agent(sel: Selection, family: str, ratio: Callable[[Agent, CellResult], float | None]) -> list[float]:
    """One value per agent: the geometric mean of ratio(agent, cell) over its cells of `family`, so the CI
    is over agents (independent) rather than over variants of the same agent."""
    values = []
    for a in sel.agents:
        mine = geometric_mean(ratio(a, c) for c in _family_cells(a, family))
        if mine is not None:
            values.append(mine)
    return values


POOLED = "geometric mean per agent, then over agents [95 % CI] (n agents)"


def _pooled_ratios(sel: Selection, family: str, attr: str) -> list[float]:
    return _per_agent(sel, family, lambda a, c: a.ratio_to_fp32(c, attr))


def _reduced(stat: Stat | None) -> bool:
    return stat is not None and stat.mean < 1 - MEANINGFUL and stat.hi < 1


def _not_reduced_verdict(stat: Stat | None) -> str:
    """The paper's "X does not reduce Y": agree only when the CI rules out a saving beyond 5 %,
    disagree on a saving (mean below 0.95, CI below 1), inconclusive when the CI allows either."""
    if not _enough(stat):
        return NOT_ENOUGH
    if _reduced(stat):
        return DISAGREE
    return AGREE if stat.lo >= 1 - MEANINGFUL else INCONCLUSIVE


def _variants_reducing(sel: Selection, family: str, attr: str) -> str:
    """Variants of `family` whose own ratio over agents shows a saving: an average over all of a family's
    variants can hide a few that save."""
    names = [v for v in VARIANTS if parse_variant(v).family == family]
    hits = [v for v in names if _reduced(ratio_ci(resource_ratios(sel.agents, _variant_picker(v), attr)))]
    return f"{len(hits)} of {len(names)}" + (f" ({', '.join(hits)})" if hits else "")


def _enough(stat: Stat | None) -> bool:
    return stat is not None and stat.n >= MIN_AGENTS


def finding_memory(sel: Selection, family: str) -> Finding:
    rss = ratio_ci(_pooled_ratios(sel, family, "rss_running_mib"))
    size = ratio_ci(_pooled_ratios(sel, family, "artifact_bytes"))
    verdict = _not_reduced_verdict(rss)
    evidence = [f"RSS while running ÷ fp32 ({family} variants: {POOLED}): {rss.show(3) if rss else 'no data'}",
                f"artifact bytes ÷ fp32: {size.show(3) if size else 'no data'}",
                f"variants whose RSS ratio over agents alone shows a saving: "
                f"{_variants_reducing(sel, family, 'rss_running_mib')}",
                f"'reduced' means a mean below {1 - MEANINGFUL:.2f} with the 95 % CI below 1; agree needs the CI "
                f"above {1 - MEANINGFUL:.2f}; otherwise inconclusive"]
    limit = _detection_limit(sel)
    if limit is not None:
        evidence.append(f"detection limit: fp32's model file is {limit * 100:.2f} % of its process's RSS while running "
                        "(mean over agents), so dropping the whole model could not lower RSS by more — the "
                        "runtime and the interpreter dominate the memory of policies this small")
    if rss is not None and rss.lo > 1:
        evidence.append("RSS is higher than fp32's (CI above 1), as the paper saw for PTDQ/PTSQ")
    claim = ("Quantization does not reduce memory usage (process RSS), though the model file shrinks."
             if family == "quantization" else
             "Pruning does not meaningfully reduce memory usage (the paper: about 1 %).")
    return Finding(f"memory_{family}", claim, verdict, evidence)


def _detection_limit(sel: Selection) -> float | None:
    shares = [f.artifact_bytes / (f.rss_running_mib * 2**20) for a in sel.agents for f in [a.get("fp32")]
              if f is not None and f.artifact_bytes and f.rss_running_mib]
    return float(np.mean(shares)) if shares else None


def finding_energy(sel: Selection, family: str) -> Finding:
    per_action = ratio_ci(_pooled_ratios(sel, family, "energy_j_per_1k_actions"))
    per_episode = ratio_ci(_pooled_ratios(sel, family, "energy_j_per_episode"))
    length = ratio_ci(_per_agent(sel, family, _length_ratio))
    verdict = _not_reduced_verdict(per_action)
    evidence = [f"energy per action ÷ fp32 ({energy_note(sel.cells)}; {family} variants: {POOLED}): "
                f"{per_action.show(3) if per_action else 'no data'}",
                f"variants whose per-action energy ratio over agents alone shows a saving: "
                f"{_variants_reducing(sel, family, 'energy_j_per_1k_actions')}",
                f"energy per episode ÷ fp32 (the paper's unit): {per_episode.show(3) if per_episode else 'no data'}; "
                f"episode length ÷ fp32: {length.show(3) if length else 'no data'}",
                f"cells whose per-episode energy fell > {pct(MEANINGFUL)} while per-action energy did not: "
                f"{_confounded(sel, family)} — those savings come from shorter (failed) episodes, not a cheaper policy"]
    if estimated_energy_sources(sel.cells):
        side = [c for a in sel.agents for c in _family_cells(a, family) if c.energy_ratio is not None]
        evidence.append("the estimate is CPU time × watts per busy core: per action it restates the CPU cost of "
                        "a policy call in joules, not a power measurement; "
                        + (f"{len(side)} cells measured it beside fp32 in alternating blocks (same load on both "
                           "sides)" if side else "these cells timed it alone, so their ratios carry whatever "
                           "else the machine ran"))
    claim = f"{family.capitalize()} does not improve energy efficiency (judged per action, not per episode)."
    return Finding(f"energy_{family}", claim, verdict, evidence)


def _length_ratio(agent: Agent, cell: CellResult) -> float | None:
    base = agent.mean_length("fp32")
    return float(np.mean(cell.lengths)) / base if base and cell.lengths else None


def _confounded(sel: Selection, family: str) -> str:
    hits = total = 0
    for a in sel.agents:
        for c in _family_cells(a, family):
            act, ep = a.ratio_to_fp32(c, "energy_j_per_1k_actions"), a.ratio_to_fp32(c, "energy_j_per_episode")
            if act is not None and ep is not None:
                total += 1
                hits += ep < 1 - MEANINGFUL and act >= 1 - MEANINGFUL
    return f"{hits} of {total}"


def finding_lottery(sel: Selection, paper: dict, rule: str) -> Finding:
    tested = [a for a in sel.agents
              if any(c.ratio > 0.5 and math.isfinite(score(c, rule)) for k in PRUNE_KINDS for c in a.pruned(k))]
    def beyond(a: Agent, ratio: float, contiguous: bool) -> bool:
        return threshold(a, rule, contiguous) > ratio

    survive = [a for a in tested if beyond(a, 0.5, False)]
    survive_run = [a for a in tested if beyond(a, 0.5, True)]
    past5 = [a for a in sel.agents if beyond(a, 0.05, False)]
    rows = [c for algo in paper["table2"].values() for c in algo.values()]
    p50 = sum(max(c["l1_ratio"], c["l2_ratio"]) > 0.5 for c in rows)
    p05 = sum(max(c["l1_ratio"], c["l2_ratio"]) > 0.05 for c in rows)
    n = len(tested)
    evidence = [f"agents keeping ≥ {pct(KEEP)} ({rule} rule) at a ratio > 50 %: "
                + (f"{len(survive)}/{n} ({pct(len(survive) / n)}); with every lower ratio keeping too: "
                   f"{len(survive_run)}/{n}" if n else "no agent has cells above 50 %"),
                f"paper Table 2: {p50}/{len(rows)} ({pct(p50 / len(rows))}); agents keeping it past 5 %: "
                f"ours {len(past5)}/{len(sel.agents)}, paper {p05}/{len(rows)}",
                "agree when fewer than half the agents with cells above 50 % keep it there, under both readings",
                "neither study retrains the pruned network, so this tests one-shot pruning tolerance, "
                "not the lottery ticket hypothesis itself"]
    verdict = NOT_ENOUGH if n < MIN_AGENTS else _both_readings(
        [AGREE if len(s) / n < 0.5 else DISAGREE for s in (survive, survive_run)])
    return Finding("lottery_ticket", "Most agents do not keep 90 % of their return beyond 50 % pruning "
                   "(the paper: the lottery ticket hypothesis does not hold for DRL).", verdict, evidence)


def _paper_thresholds(paper: dict) -> dict[str, list[float]]:
    """Per algorithm, the paper's Table 2 highest ratio keeping 90 % of either method, per task."""
    return {algo: [max(c["l1_ratio"], c["l2_ratio"]) for c in tasks.values()]
            for algo, tasks in paper["table2"].items()}


def finding_ppo_prunes_less(sel: Selection, paper: dict, rule: str) -> Finding:
    pruned = [a for a in sel.agents if any(a.pruned(k) for k in PRUNE_KINDS)]
    ppo, rest = [a for a in pruned if a.algo == "ppo"], [a for a in pruned if a.algo != "ppo"]
    evidence, verdicts = [f"agents with pruned cells: PPO {len(ppo)}, other algorithms {len(rest)}"], []
    for contiguous, reading in READINGS:
        p = [threshold(a, rule, contiguous) for a in ppo]
        o = [threshold(a, rule, contiguous) for a in rest]
        if len(p) < MIN_AGENTS or len(o) < MIN_AGENTS:
            verdicts.append(NOT_ENOUGH)
            continue
        lower = stats.mannwhitneyu(p, o, alternative="less").pvalue
        higher = stats.mannwhitneyu(p, o, alternative="greater").pvalue
        verdicts.append(AGREE if lower < SIGNIFICANT else DISAGREE if higher < SIGNIFICANT else INCONCLUSIVE)
        evidence.append(f"highest ratio keeping ≥ {pct(KEEP)}, either method ({rule} rule, {reading}): PPO "
                        f"{_spread_pct(p)}, others {_spread_pct(o)}; one-sided Mann–Whitney U: p = {lower:.3f} "
                        f"(PPO lower), p = {higher:.3f} (PPO higher)")
    theirs = _paper_thresholds(paper)
    others = [x for algo, v in theirs.items() if algo != "ppo" for x in v]
    evidence += [f"paper Table 2: PPO {_spread_pct(theirs.get('ppo', []))}, others {_spread_pct(others)}",
                 f"agree when PPO's ratios are lower by the rank test (p < {SIGNIFICANT}) under both readings, "
                 "disagree when higher by it; otherwise inconclusive"]
    return Finding("ppo_prunes_less", "PPO models exhibit lower pruning thresholds than the other algorithms.",
                   _both_readings(verdicts), evidence)


def finding_l2_10(sel: Selection, paper: dict, rule: str) -> Finding:
    cells = [(a, c) for a in sel.agents for c in [a.get("prune_l2_10")] if c is not None
             and math.isfinite(score(c, rule))]
    kept = [a.agent for a, c in cells if keeps(c, rule)]
    failed = [a.agent for a, c in cells if not keeps(c, rule)]
    drops = [a.agent for a, c in cells if (d := a.paired_difference(c)) is not None and d[2] < 0]
    rows = [c for tasks in paper["table2"].values() for c in tasks.values()]
    n = len(cells)
    evidence = [f"prune_l2_10 keeps ≥ {pct(KEEP)} ({rule} rule): {len(kept)} of {n}"
                + (f"; not: {', '.join(failed)}" if failed else ""),
                f"return below fp32's on the paired seeds (95 % CI): {len(drops)} of {n}"
                + (f" ({', '.join(drops)})" if drops else ""),
                f"paper Table 2: the highest L2 ratio keeping 90 % is ≥ 10 % in "
                f"{sum(c['l2_ratio'] >= 0.1 for c in rows)} of {len(rows)} rows (it lists only that highest "
                "ratio, not whether 10 % itself keeps)",
                "agree when more than half of the agents keep it"]
    verdict = NOT_ENOUGH if n < MIN_AGENTS else AGREE if len(kept) > n / 2 else DISAGREE
    return Finding("l2_10_keeps", "A 10 % L2 pruning keeps the return for most agents (the paper's exceptions: PPO "
                   "on HalfCheetah).", verdict, evidence)


def findings(sel: Selection, paper: dict, rule: str) -> list[Finding]:
    return [*finding_quant(sel, paper), finding_l2(sel, paper, rule),
            finding_memory(sel, "quantization"), finding_memory(sel, "pruning"),
            finding_energy(sel, "quantization"), finding_energy(sel, "pruning"),
            finding_lottery(sel, paper, rule), finding_ppo_prunes_less(sel, paper, rule),
            finding_l2_10(sel, paper, rule)]


def findings_section(items: list[Finding]) -> list[str]:
    lines = ["## Findings — the paper's claims re-tested on our numbers", "",
             f"Verdicts are computed from the cells above; fewer than {MIN_AGENTS} agents with the needed "
             f"cells gives '{NOT_ENOUGH}'; '{INCONCLUSIVE}' where the data allow either answer (a 95 % interval "
             "that neither rules out nor shows a saving; two fair readings of the paper's rule that disagree).",
             ""]
    lines += md_table(["#", "paper's claim", "verdict"],
                      [[str(i), f.claim, f"**{f.verdict}**"] for i, f in enumerate(items, 1)])
    for i, f in enumerate(items, 1):
        lines += [f"### {i}. {f.claim}", "", f"**Verdict: {f.verdict}.**", "", *(f"- {e}" for e in f.evidence), ""]
    return lines


# --- what the sweep cost ----------------------------------------------------------------------

def _wall_s(run: dict) -> float | None:
    from datetime import datetime

    if not run.get("finished_at"):
        return None
    return (datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["started_at"])).total_seconds()


def _run_row(run: dict) -> list[str]:
    args, wall = run["args"], _wall_s(run)
    agents = args.get("agents") or ([args["agent"]] if args.get("agent") else [])  # sweep / compress
    grid = args.get("grid", "paper")
    load, cores = run.get("machine", {}).get("load_1m"), run.get("machine", {}).get("cpu_count")
    shown_load = "—" if load is None else f"{load:.1f} of {cores} cores" if cores else f"{load:.1f}"
    return [str(run["id"]), str(args.get("workers", 1)), shown_load,
            ", ".join(agents) or ("all bundled" if grid == "paper" else f"{grid} grid's"),
            ", ".join(args.get("variants") or []) or f"{grid} grid", run["started_at"],
            "unfinished" if wall is None else f"{wall:.0f}"]


def _cost(cells: list[CellResult]) -> dict:
    secs = [c.cell_s for c in cells]
    return {"agents": len({c.agent for c in cells}), "cells": len(cells),
            "env_steps": sum(sum(c.lengths) for c in cells), "cell_s_median": float(np.median(secs)),
            "cell_s_mean": float(np.mean(secs)), "cell_s_max": max(secs), "cell_s_sum": sum(secs),
            "episode_share": sum(c.eval_s or 0.0 for c in cells) / sum(secs) if sum(secs) > 0 else float("nan")}


def task_costs(cells: list[CellResult]) -> dict[str, dict]:
    """Per task, then "all": cell wall-time statistics of the timed cells (those with cell_s)."""
    timed = [c for c in cells if c.cell_s is not None]
    if not timed:
        return {}
    out = {task: _cost([c for c in timed if c.task == task]) for task in sorted({c.task for c in timed})}
    return out | {"all": _cost(timed)}


def cost_section(sel: Selection, runs: list[dict]) -> list[str]:
    """Per-cell wall time by task (one thread each, as recorded by the sweep) and each run's wall time."""
    lines = ["## Sweep cost", "",
             "Measured wall time of each cell on one thread: the variant's build, its episodes and the meters "
             "(the fp32 cell also pays for the calibration rollouts). The sum is the serial cost; runs with "
             "`--workers N` share it out.", ""]
    timed = [c for c in sel.cells if c.cell_s is not None]
    if not timed:
        return lines + ["Not recorded: these cells come from a version of drlbench that did not time cells.", ""]
    rows = [[task, str(s["agents"]), str(s["cells"]), f"{s['env_steps']:,}", f"{s['cell_s_median']:.2f}",
             f"{s['cell_s_mean']:.2f}", f"{s['cell_s_max']:.2f}", f"{s['cell_s_sum']:.0f}",
             f"{s['episode_share']:.0%}"] for task, s in task_costs(timed).items()]
    lines += md_table(["task", "agents", "cells", "env steps evaluated", "s per cell (median)", "(mean)", "(max)",
                       "total s", "share in episodes"], rows)
    if runs:
        lines += ["", "Sweep runs recorded in the store (wall time from start to finish; a run killed before "
                  "it finished has none). Load: the machine's 1-minute load average when the run started "
                  "(— where not recorded); cell times of a run that shared the CPU are inflated.", ""]
        lines += md_table(["run", "workers", "load at start", "agents", "variants", "started (UTC)", "wall s"],
                          [_run_row(r) for r in runs])
    return lines + [""]


# --- the report --------------------------------------------------------------------------------

def header_section(sel: Selection, paper: dict, rule: str) -> list[str]:
    src = paper["source"]
    present = sum(r.agent is not None for r in sel.rows)
    return ["# drlbench report", "",
            f"- data: {sel.source}; {len(sel.cells)} cells shown, runtime {sel.runtime}",
            f"- agents: {len(sel.agents)}; {present} of {len(sel.rows)} table rows have our data (the others are "
            f"shown as {MISSING})",
            f"- keep rule: {RULES[rule]} ≥ {KEEP}",
            f"- our environments: {', '.join(sorted({c.env_id for c in sel.cells})) or 'none'} (Gymnasium MuJoCo)",
            f"- paper: {src['title']}, {', '.join(src['authors'])}, arXiv:{src['arxiv']} "
            "(MuJoCo v4; the paper's numbers come from its own agents, not ours)", ""]


def _paper_rows_below_random(paper: dict) -> list[str]:
    """Paper baselines no better than a random policy (our measurement on the paper's v4 tasks): their
    raw ratios, and the picks made from them, mean nothing."""
    from drlbench.tasks import random_returns

    rand = random_returns()
    rows = []
    for algo, tasks in paper["table1"].items():
        for task, cell in tasks.items():
            r = rand.get(f"{task}-v4")
            if r is not None and cell["baseline"] <= r["mean"]:
                rows.append(f"{algo}/{task} {cell['baseline']:.2f} vs random {r['mean']:.1f}")
    return rows


def data_notes(sel: Selection, paper: dict) -> list[str]:
    lines = ["## Data notes", ""]
    below = _paper_rows_below_random(paper)
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


def _runtime_drift_notes(sel: Selection) -> list[str]:
    """fp32 here runs the ONNX export; a zoo card's return is the torch actor on the same seeds. The
    actions agree to float rounding, yet on chaotic tasks that moves 10-episode means visibly."""
    from drlbench.zoo import bundled_ids, load_agent

    bundled, drift = set(bundled_ids()), []
    for a in sel.agents:
        fp32 = a.get("fp32")
        if fp32 is None or a.agent not in bundled:
            continue
        ev = load_agent(a.agent).card.get("evaluation", {})
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
    cells, source, runs = _load(store_or_cells)
    paper = paper_results()
    sel = select(cells, runtime, source, paper)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = (header_section(sel, paper, rule) + summary_section(sel, rule) + algorithm_section(sel, rule)
             + table1(sel, paper)
             + equalization_section(sel, rule) + table2(sel, paper, rule) + table3(sel, paper, rule))
    figures: list[Path] = []
    for part, paths in (figure1(sel, out), figure_pruning(sel, out, "prune_l1", 2),
                        figure_pruning(sel, out, "prune_l2", 3), figure_returns(sel, out, rule)):
        lines += part
        figures += paths
    lines += findings_section(findings(sel, paper, rule)) + cost_section(sel, runs) + data_notes(sel, paper)
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return [report, *figures]
