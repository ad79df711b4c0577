"""The paper's claims re-tested on our numbers, and the report's Findings section. The six on returns are
here (best and worst int8 recipe, L2 over L1, one-shot pruning tolerance, PPO's thresholds, 10 % L2 pruning);
the four on memory and energy are in resource_findings, int8's collapse (Table 1's, cell by cell) in collapse."""

from __future__ import annotations

import operator
from typing import Callable

from scipy import stats

from drlbench.evaluate import paired_difference
from drlbench.names import KEEP_THRESHOLD
from drlbench.report.collapse import finding_collapse
from drlbench.report.markdown import KIND_LABEL, md_table, pct, spread_pct
from drlbench.report.paper import paper_cells, paper_quant, paper_threshold, paper_thresholds
from drlbench.report.resource_findings import finding_energy, finding_memory
from drlbench.report.selection import ReportSelection
from drlbench.report.verdicts import (
    AGREE,
    DISAGREE,
    INCONCLUSIVE,
    MIN_AGENTS,
    NOT_ENOUGH,
    PRUNE_KINDS,
    Finding,
    best_of,
    best_pruning,
    has_score,
    keeps,
    paired_drop,
    quant_means,
    threshold,
    worst_of,
)
from drlbench.variants import QUANT_VARIANTS

READINGS = ((False, "the paper's reading (highest ratio keeping)"),
            (True, "contiguous reading (every lower ratio keeps too)"))
SIGNIFICANT = 0.05  # one-sided rank-test level for the by-algorithm findings


def _counts(winners: list[list[str]]) -> dict[str, int]:
    return {q: sum(q in w for w in winners) for q in QUANT_VARIANTS}


def _show_counts(counts: dict[str, int], n: int) -> str:
    return ", ".join(f"{KIND_LABEL[q]} {counts[q]}/{n} ({pct(counts[q] / n)})" for q in QUANT_VARIANTS)


def _clear_wins(sel: ReportSelection) -> int:
    """Agents whose best quantized variant beats each other one on the paired seeds: the 95 % CI of
    the per-seed differences lies above 0."""
    wins = 0
    for a in sel.agents:
        if quant_means(a) is None:
            continue
        ranked = sorted((a.get(q) for q in QUANT_VARIANTS), key=lambda c: c.return_mean, reverse=True)
        if ranked[0].episodes < 2 or any((c.seed, c.episodes) != (ranked[0].seed, ranked[0].episodes)
                                         for c in ranked[1:]):
            continue
        wins += all(paired_difference(ranked[0].returns, c.returns)[1] > 0 for c in ranked[1:])
    return wins


def _strictly(counts: dict[str, int], key: str, n: int, beats: Callable[[int, int], bool]) -> str:
    """Agree when `key`'s count beats every other one (a tie disagrees)."""
    if n < MIN_AGENTS:
        return NOT_ENOUGH
    return AGREE if all(beats(counts[key], v) for k, v in counts.items() if k != key) else DISAGREE


def finding_quant(sel: ReportSelection, paper: dict) -> list[Finding]:
    ours = [m for m in (quant_means(a) for a in sel.agents) if m is not None]
    theirs = paper_quant(paper)
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
                   _strictly(best, "ptdq", n, operator.gt),
                   common + ["agree when PTDQ is best for more agents than each other method (a tie disagrees)"])
    ptsq = Finding("ptsq_worst", "PTSQ is the worst quantization method (least often the best; the paper's criterion).",
                   _strictly(best, "ptsq", n, operator.lt),
                   common + ["agree when PTSQ is best for fewer agents than each other method (a tie disagrees)"]
                   + ([f"most often the lowest, ours: {_show_counts(worst, n)}; paper: "
                       f"{_show_counts(pworst, pn)} (a stricter reading of 'worst', not used for the verdict)"]
                      if n else []))
    return [ptdq, ptsq]


def _both_readings(verdicts: list[str]) -> str:
    """One verdict from the paper's reading and the contiguous one: the same, or inconclusive."""
    if NOT_ENOUGH in verdicts:
        return NOT_ENOUGH
    return verdicts[0] if len(set(verdicts)) == 1 else INCONCLUSIVE


def finding_l2(sel: ReportSelection, paper: dict, rule: str) -> Finding:
    both = [a for a in sel.agents if all(a.pruned(k) for k in PRUNE_KINDS)]
    paper_kinds = [c["kind"] for c in paper_cells(paper, "table3")]
    evidence, verdicts = [f"agents with both L1 and L2 cells: {len(both)}"], []
    for contiguous, reading in READINGS:
        picks = [best_pruning(a, rule, contiguous) for a in both]
        l1, l2 = (sum(p is not None and p.kind == k for p in picks) for k in PRUNE_KINDS)
        none = sum(p is None for p in picks)
        evidence.append(f"Table 3 method, ours ({rule} rule, {reading}): L2 {l2}, L1 {l1}, "
                        f"no ratio keeps ≥ {pct(KEEP_THRESHOLD)}: {none}")
        verdicts.append(NOT_ENOUGH if l1 + l2 < MIN_AGENTS else AGREE if l2 > l1 else DISAGREE)
    evidence += [f"paper Table 3: L2 {paper_kinds.count('prune_l2')}, L1 {paper_kinds.count('prune_l1')}",
                 "agree when Table 3 picks L2 for more agents than L1 (a tie disagrees), under both readings; "
                 "inconclusive when the readings differ"]
    return Finding("l2_over_l1", "L2 pruning is favoured over L1 for most agents.", _both_readings(verdicts),
                   evidence)


def finding_lottery(sel: ReportSelection, paper: dict, rule: str) -> Finding:
    tested = [a for a in sel.agents
              if any(c.ratio > 0.5 and has_score(c, rule) for k in PRUNE_KINDS for c in a.pruned(k))]
    survive = [a for a in tested if threshold(a, rule, False) > 0.5]
    survive_run = [a for a in tested if threshold(a, rule, True) > 0.5]
    past5 = [a for a in sel.agents if threshold(a, rule, False) > 0.05]
    rows = paper_cells(paper, "table2")
    p50 = sum(paper_threshold(c) > 0.5 for c in rows)
    p05 = sum(paper_threshold(c) > 0.05 for c in rows)
    n = len(tested)
    evidence = [f"agents keeping ≥ {pct(KEEP_THRESHOLD)} ({rule} rule) at a ratio > 50 %: "
                + (f"{len(survive)}/{n} ({pct(len(survive) / n)}); with every lower ratio keeping too: "
                   f"{len(survive_run)}/{n}" if n else "no agent has cells above 50 %"),
                f"paper Table 2: {p50}/{len(rows)} ({pct(p50 / len(rows))}); agents keeping it past 5 %: "
                f"ours {len(past5)}/{len(sel.agents)}, paper {p05}/{len(rows)}",
                "agree when fewer than half the agents with cells above 50 % keep it there, under both readings",
                "neither study retrains the pruned network, so this tests one-shot pruning tolerance, "
                "not the lottery ticket hypothesis itself"]
    verdict = NOT_ENOUGH if n < MIN_AGENTS else _both_readings(
        [AGREE if len(s) / n < 0.5 else DISAGREE for s in (survive, survive_run)])
    return Finding("lottery_ticket", f"Most agents do not keep {pct(KEEP_THRESHOLD)} of their return beyond 50 % "
                   "pruning (the paper: the lottery ticket hypothesis does not hold for DRL).", verdict, evidence)


def finding_ppo_prunes_less(sel: ReportSelection, paper: dict, rule: str) -> Finding:
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
        evidence.append(f"highest ratio keeping ≥ {pct(KEEP_THRESHOLD)}, either method ({rule} rule, {reading}): PPO "
                        f"{spread_pct(p)}, others {spread_pct(o)}; one-sided Mann–Whitney U: p = {lower:.3f} "
                        f"(PPO lower), p = {higher:.3f} (PPO higher)")
    theirs = paper_thresholds(paper)
    others = [x for algo, v in theirs.items() if algo != "ppo" for x in v]
    evidence += [f"paper Table 2: PPO {spread_pct(theirs.get('ppo', []))}, others {spread_pct(others)}",
                 f"agree when PPO's ratios are lower by the rank test (p < {SIGNIFICANT}) under both readings, "
                 "disagree when higher by it; otherwise inconclusive"]
    return Finding("ppo_prunes_less", "PPO models exhibit lower pruning thresholds than the other algorithms.",
                   _both_readings(verdicts), evidence)


def finding_l2_10(sel: ReportSelection, paper: dict, rule: str) -> Finding:
    cells = [(a, c) for a in sel.agents for c in [a.get("prune_l2_10")] if c is not None and has_score(c, rule)]
    kept = [a.agent for a, c in cells if keeps(c, rule)]
    failed = [a.agent for a, c in cells if not keeps(c, rule)]
    drops = [a.agent for a, c in cells if paired_drop(a, c)]
    rows = paper_cells(paper, "table2")
    n = len(cells)
    evidence = [f"prune_l2_10 keeps ≥ {pct(KEEP_THRESHOLD)} ({rule} rule): {len(kept)} of {n}"
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


def findings(sel: ReportSelection, paper: dict, rule: str) -> list[Finding]:
    return [*finding_quant(sel, paper), finding_l2(sel, paper, rule),
            finding_memory(sel, "quantization"), finding_memory(sel, "pruning"),
            finding_energy(sel, "quantization"), finding_energy(sel, "pruning"),
            finding_lottery(sel, paper, rule), finding_ppo_prunes_less(sel, paper, rule),
            finding_l2_10(sel, paper, rule), finding_collapse(sel, paper, rule)]


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
