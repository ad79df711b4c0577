"""The report's tables: the per-variant summary, by algorithm, the paper's Tables 1–3 beside its numbers,
and int8 on an input-equalized actor or with its first layer in float (off the paper grid)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from drlbench.names import ALGOS, KEEP_THRESHOLD, RULES
from drlbench.report.markdown import KIND_LABEL, MISSING, bold, num, pct, ratio_text, section, show_return, spread_pct
from drlbench.report.paper import paper_cell, paper_cells
from drlbench.report.selection import AgentCells, ReportRow, ReportSelection, resource_ratios, variant_picker
from drlbench.report.verdicts import (
    MIN_AGENTS,
    PRUNE_KINDS,
    best_of,
    best_pruned_return,
    best_pruning,
    has_score,
    keeps,
    max_kept,
    paired_drop,
    quant_means,
    score,
    threshold,
)
from drlbench.results import CellResult
from drlbench.variants import EQ_VARIANTS, MIXED_VARIANTS, QUANT_VARIANTS, VARIANTS

SUMMARY = "Summary — return kept vs. resources saved, per variant"


def summary_section(sel: ReportSelection, rule: str) -> list[str]:
    """The user's question in one table: per variant, how many agents keep their return and what
    the variant saves (or costs) in latency, file size and memory, relative to each agent's fp32."""
    intro = (f"Keeps: agents whose {RULES[rule]} ≥ {KEEP_THRESHOLD} (k of n agents with the cell). Drops: agents "
             "whose return is below fp32's with 95 % confidence, by a paired t-interval of the per-seed "
             f"differences R_v − R_fp32 (the same initial states; a cell can keep ≥ {pct(KEEP_THRESHOLD)} and still "
             f"drop, or lose more than {pct(1 - KEEP_THRESHOLD)} by its mean on seeds too noisy to call it). Score: "
             "median (min … max) over agents. Resource columns: variant ÷ fp32 of the same agent (latency and "
             "energy: the ratio the cell measured beside fp32 in alternating blocks, where recorded), geometric "
             "mean [95 % CI] over agents (n); below 1 is a saving.")
    rows = []
    for variant in VARIANTS[1:]:
        cells = [(a, a.get(variant)) for a in sel.agents if a.get(variant) is not None]
        if not cells:
            continue
        finite = [score(c, rule) for _, c in cells if has_score(c, rule)]
        spread = (f"{np.median(finite):.2f} ({min(finite):.2f} … {max(finite):.2f})" if finite else "—")
        paired = [d for d in (paired_drop(a, c) for a, c in cells) if d is not None]
        drops = f"{sum(paired)} of {len(paired)}" if paired else "—"
        undefined = len(cells) - len(finite)
        kept = f"{sum(keeps(c, rule) for _, c in cells)} of {len(finite)}" + (
            f" ({undefined} undefined)" if undefined else "")
        rows.append([variant, kept, drops, spread,
                     *(ratio_text(resource_ratios(sel.agents, variant_picker(variant), attr))
                       for attr in ("latency_us_p50", "artifact_bytes", "rss_running_mib"))])
    header = ["variant", f"keeps ≥ {pct(KEEP_THRESHOLD)}", "drops (paired)", "score", "median latency ÷ fp32",
              "artifact bytes ÷ fp32", "RSS while running ÷ fp32"]
    if not rows:
        return [f"## {SUMMARY}", "", intro, "", "No compressed cells in the store.", ""]
    return section(SUMMARY, intro, header, rows) + [""]


def _algorithms(sel: ReportSelection) -> list[str]:
    present = {a.algo for a in sel.agents}
    return [a for a in ALGOS if a in present] + sorted(present - set(ALGOS))


def algorithm_section(sel: ReportSelection, rule: str) -> list[str]:
    """Per algorithm: how many agents keep each int8 recipe, and how far each pruning method goes safely."""
    rows = []
    for algo in _algorithms(sel):
        mine = [a for a in sel.agents if a.algo == algo]
        params = [c.n_params for a in mine for c in [a.get("fp32")] if c is not None and c.n_params]
        sizes = f"{min(params):,} … {max(params):,}" if len(set(params)) > 1 else f"{params[0]:,}" if params else "—"
        row = [algo, str(len(mine)), ", ".join(sorted(a.task for a in mine)), sizes]
        for q in (*QUANT_VARIANTS, "prune_l2_10"):
            cells = [c for a in mine for c in [a.get(q)] if c is not None and has_score(c, rule)]
            row.append(f"{sum(keeps(c, rule) for c in cells)} of {len(cells)}" if cells else "—")
        for kind in PRUNE_KINDS:
            row.append(spread_pct([threshold(a, rule, True, (kind,)) for a in mine if a.pruned(kind)]))
        rows.append(row)
    if not rows:
        return []
    intro = (f"Agents keeping ≥ {pct(KEEP_THRESHOLD)} ({RULES[rule]}; k of n agents with a defined score) per int8 "
             "recipe and at 10 % L2 pruning, and the safe pruning ratio — the highest ratio up to which every ratio "
             "keeps (contiguous reading; 0 % when 5 % already fails) — median (min … max) over the algorithm's "
             "agents.")
    header = ["algorithm", "agents", "tasks", "actor parameters", "PTDQ keeps", "PTSQ keeps", "QAT keeps",
              "L2 10 % keeps", "L1 safe ratio", "L2 safe ratio"]
    return section("By algorithm", intro, header, rows) + ["", *_width_note(sel, rule)]


def _width_note(sel: ReportSelection, rule: str) -> list[str]:
    """Whether agents with bigger actors prune further: algorithms here come with their own widths."""
    pairs = [(c.n_params, threshold(a, rule, True)) for a in sel.agents for c in [a.get("fp32")]
             if c is not None and c.n_params and any(a.pruned(k) for k in PRUNE_KINDS)]
    if len(pairs) < MIN_AGENTS or len({p for p, _ in pairs}) < 2 or len({t for _, t in pairs}) < 2:
        return []
    rho, p = stats.spearmanr(*zip(*pairs))
    return [f"Safe ratio of either method vs the actor's parameter count, across agents: Spearman ρ = {rho:.2f} "
            f"(p = {p:.3f}, n = {len(pairs)}) — the algorithms here come with their own widths (rl-baselines3-zoo's "
            "defaults), so a difference between algorithms can be one of width.", ""]


def table1(sel: ReportSelection, paper: dict) -> list[str]:
    header = ["agent", "fp32", "PTDQ", "PTSQ", "QAT", "paper baseline", "paper PTDQ", "paper PTSQ", "paper QAT"]
    intro = ("Ours: mean ± half-width of the 95 % CI (n episodes, paired seeds). Bold: the best quantized version "
             "(highest mean; marked only when PTDQ, PTSQ and QAT are all present). Paper: Table 1, best recomputed "
             "as the highest of its three quantized columns (its bold is lost in the text).")
    return section("Table 1 — quantization: average return", intro, header,
                   [_table1_row(r, paper) for r in sel.rows])


def _table1_row(row: ReportRow, paper: dict) -> list[str]:
    agent, theirs = row.agent, paper_cell(paper, "table1", row.algo, row.task)
    means = quant_means(agent)
    winners = best_of(means) if means else []
    ours = [show_return(agent.get(v) if agent else None) for v in ("fp32", *QUANT_VARIANTS)]
    ours[1:] = [bold(text, q in winners) for q, text in zip(QUANT_VARIANTS, ours[1:])]
    if theirs is None:
        return [row.label, *ours, "—", "—", "—", "—"]
    paper_best = best_of({q: theirs[q] for q in QUANT_VARIANTS})
    return [row.label, *ours, f"{theirs['baseline']:.2f}",
            *(bold(f"{theirs[q]:.2f}", q in paper_best) for q in QUANT_VARIANTS)]


def equalization_section(sel: ReportSelection, rule: str) -> list[str]:
    """Off the paper grid: each int8 recipe beside the same recipe on the input-equalized actor."""
    agents = [a for a in sel.agents if any(a.get(v) for v in EQ_VARIANTS)]
    if not agents:
        return []
    rows = []
    for a in agents:
        info = next((c.build.get("input_equalization", {}) for v in EQ_VARIANTS for c in [a.get(v)] if c), {})
        row = [a.agent, show_return(a.get("fp32")), "yes" if info.get("equalized") else "no (already normalized)"]
        for q in QUANT_VARIANTS:
            row += [_score_and_drop(a, a.get(q), rule), _score_and_drop(a, a.get(f"{q}_eq"), rule)]
        rows.append(row)
    header = ["agent", "fp32", "equalized"] + [KIND_LABEL[k] for q in QUANT_VARIANTS for k in (q, f"{q}_eq")]
    intro = ("Off the paper grid (`--variants ptdq_eq,ptsq_eq,qat_eq`). Per-tensor int8 shares one scale among "
             "all of the first layer's inputs; an actor trained on raw observations (no VecNormalize) mixes "
             "features of very different ranges there. `*_eq` first rescales each input feature to span about "
             "[−1, 1] on the calibration states and folds the inverse scale into the first layer's weights: the "
             "fp32 function is unchanged, then the same int8 recipe runs. Actors that already normalize their "
             f"input are left as they are. Cells: {RULES[rule]}; ↓ marks a paired drop below fp32 (95 % CI).")
    return section("Beyond the paper — int8 on an input-equalized actor", intro, header, rows) + [""]


def mixed_precision_section(sel: ReportSelection, rule: str) -> list[str]:
    """Off the paper grid: each post-training int8 recipe beside the same recipe with the first layer in fp32."""
    agents = [a for a in sel.agents if any(a.get(v) for v in MIXED_VARIANTS)]
    if not agents:
        return []
    rows = []
    for a in agents:
        fp32, row = a.get("fp32"), [a.agent, show_return(a.get("fp32"))]
        for mixed in MIXED_VARIANTS:
            cell = a.get(mixed)
            size = f"{cell.artifact_bytes / fp32.artifact_bytes:.2f}×" if cell and fp32 else "—"
            row += [_score_and_drop(a, a.get(mixed.removesuffix("_mixed")), rule), _score_and_drop(a, cell, rule), size]
        rows.append(row)
    header = ["agent", "fp32"]
    for m in MIXED_VARIANTS:
        header += [KIND_LABEL[m.removesuffix("_mixed")], KIND_LABEL[m], f"{KIND_LABEL[m]} bytes ÷ fp32"]
    intro = ("Off the paper grid (`--variants ptdq_mixed,ptsq_mixed`): the same post-training int8 recipe with the "
             "first layer — the one that reads the observation — left in fp32 (ONNX Runtime's nodes_to_exclude), "
             "a common mixed-precision fix where one layer's int8 error dominates. It gives up part of the size "
             "saving: the first layer holds most of the weights of an actor with many inputs (Humanoid's 348). "
             f"Cells: {RULES[rule]}; ↓ marks a paired drop below fp32 (95 % CI).")
    return section("Beyond the paper — int8 with the first layer in fp32", intro, header, rows) + [""]


def _score_and_drop(agent: AgentCells, cell: CellResult | None, rule: str) -> str:
    if cell is None:
        return "—"
    return (f"{score(cell, rule):.2f}" if has_score(cell, rule) else "n/a") + (
        " ↓" if paired_drop(agent, cell) else "")


def table2(sel: ReportSelection, paper: dict, rule: str) -> list[str]:
    header = ["agent", "fp32", "highest pruned return (any ratio)", "L1 (score)", "L2 (score)", "L1 (raw)",
              "L2 (raw)", "paper baseline", "paper 'pruned'", "paper L1", "paper L2"]
    rows = paper_cells(paper, "table2")
    lowest = min(min(c["l1_ratio"], c["l2_ratio"]) for c in rows)
    below = sum(c["pruned"] < KEEP_THRESHOLD * c["baseline"] for c in rows)
    intro = (f"L1/L2 columns: the highest pruning ratio whose return keeps ≥ {pct(KEEP_THRESHOLD)} of the baseline. "
             f"(score) = {RULES['normalized']} ≥ {KEEP_THRESHOLD}; (raw) = {RULES['raw']} ≥ {KEEP_THRESHOLD}. "
             f"This report's rule (Table 3 and findings): **{rule}**. 'none' = no ratio keeps it (the paper has no "
             f"such entry: its lowest is {pct(lowest)}). '(contiguous: r)': a lower ratio fails, so the highest "
             "ratio up to which every ratio keeps is r. Highest pruned return: the highest mean among all pruned "
             "variants, kept or not. The paper's 'pruned' column is its own: it does not say at which ratio, and "
             f"in {below} of its {len(rows)} rows it is below {pct(KEEP_THRESHOLD)} of its baseline, so it is not "
             "comparable with either of ours.")
    return section(f"Table 2 — pruning: best pruned return and the highest ratio keeping ≥ {pct(KEEP_THRESHOLD)}",
                   intro, header, [_table2_row(r, paper) for r in sel.rows])


def _table2_row(row: ReportRow, paper: dict) -> list[str]:
    agent, theirs = row.agent, paper_cell(paper, "table2", row.algo, row.task)
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


def table3(sel: ReportSelection, paper: dict, rule: str) -> list[str]:
    other = next(r for r in RULES if r != rule)
    header = ["agent", f"ours ({rule})", "its return", f"its score ({rule})", f"ours ({rule}, contiguous)",
              f"ours ({other})", "paper"]
    intro = (f"The method and ratio with the highest pruning ratio keeping ≥ {pct(KEEP_THRESHOLD)} (rule: "
             f"{RULES[rule]}); a tie between L1 and L2 at the same ratio goes to the higher return. Contiguous: the "
             "same, counting only ratios below which every ratio keeps too (what one can prune to safely).")
    return section("Table 3 — best pruning method", intro, header,
                   [_table3_row(r, paper, rule, other) for r in sel.rows])


def _table3_row(row: ReportRow, paper: dict, rule: str, other: str) -> list[str]:
    theirs = paper_cell(paper, "table3", row.algo, row.task)
    paper_text = f"{KIND_LABEL[theirs['kind']]} {pct(theirs['ratio'])}" if theirs else "—"
    agent = row.agent
    if agent is None or not any(agent.pruned(k) for k in PRUNE_KINDS):
        return [row.label, MISSING, MISSING, MISSING, MISSING, MISSING, paper_text]
    best = best_pruning(agent, rule)
    return [row.label, show_method(best, agent, rule), show_return(best) if best else "—",
            num(score(best, rule)) if best else "—",
            show_method(best_pruning(agent, rule, contiguous=True), agent, rule),
            show_method(best_pruning(agent, other), agent, other), paper_text]


def show_method(cell: CellResult | None, agent: AgentCells, rule: str) -> str:
    """A Table 3 pick as text; no pick because no score is defined says so."""
    if cell is not None:
        return f"{KIND_LABEL[cell.kind]} {pct(cell.ratio)}"
    if not any(has_score(c, rule) for k in PRUNE_KINDS for c in agent.pruned(k)):
        return "n/a (score undefined)"
    return f"none keeps ≥ {pct(KEEP_THRESHOLD)}"
