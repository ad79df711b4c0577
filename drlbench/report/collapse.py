"""The paper's post-training int8 collapse (TD3 Humanoid 5,036 → PTDQ 441; SAC Humanoid 4,287 → −85) re-tested
cell by cell, and whether the input-equalized recipe (`*_eq`) or the first layer kept in fp32 (`*_mixed`)
recovers the cells that collapse here."""

from __future__ import annotations

import math

from drlbench.names import COLLAPSE, KEEP_THRESHOLD
from drlbench.report.markdown import KIND_LABEL, pct
from drlbench.report.paper import PTQ, paper_scores
from drlbench.report.selection import ReportSelection
from drlbench.report.verdicts import AGREE, DISAGREE, MIN_AGENTS, NOT_ENOUGH, Finding, score



def _show(value: float | None) -> str:
    return "missing" if value is None or not math.isfinite(value) else f"{value:.2f}"


def finding_collapse(sel: ReportSelection, paper: dict, rule: str) -> Finding:
    theirs = paper_scores(paper, rule)
    mine = {(a.algo.lower(), a.task): a for a in sel.agents}
    paper_collapsed = sorted(k + (q,) for k, s in theirs.items() for q in PTQ if s[q] < COLLAPSE)
    in_paper = set(paper_collapsed)
    tested, reproduced, lines = 0, 0, []
    for algo, task, q in paper_collapsed:
        agent = mine.get((algo, task))
        cell = agent.get(q) if agent else None
        ours = score(cell, rule) if cell is not None else float("nan")
        if math.isfinite(ours):
            tested += 1
            reproduced += ours < COLLAPSE
        eq = agent.get(f"{q}_eq") if agent else None
        lines.append(f"{algo}-{task.lower()} {KIND_LABEL[q]}: paper {theirs[(algo, task)][q]:.2f}, ours "
                     f"{_show(ours)}, ours equalized {_show(score(eq, rule) if eq else None)}")
    ours_collapsed = [(a, q) for a in sel.agents for q in PTQ
                      if a.get(q) is not None and score(a.get(q), rule) < COLLAPSE]
    extra = sorted(f"{a.agent} {KIND_LABEL[q]}" for a, q in ours_collapsed
                   if (a.algo.lower(), a.task, q) not in in_paper)
    basis = "return ÷ baseline" if rule == "raw" else "our random-policy returns on its v4 tasks"
    evidence = [f"collapse: a PTDQ or PTSQ score below {COLLAPSE:.2f} ({rule} rule; the paper's scores: {basis})",
                f"the paper's collapsed cells: {len(paper_collapsed)}; with our cells: {tested}; collapsed here "
                f"too: {reproduced}",
                *lines,
                f"collapsed here but not in the paper: {', '.join(extra) if extra else 'none'}",
                _recovery("input equalization", "_eq", ours_collapsed, rule),
                _recovery("the first layer in fp32", "_mixed", ours_collapsed, rule),
                "agree when most of the paper's collapsed cells we have collapse here too"]
    verdict = NOT_ENOUGH if tested < MIN_AGENTS else AGREE if reproduced > tested / 2 else DISAGREE
    total = len({(a, t) for a, t, _ in paper_collapsed})
    claim = (f"Post-training int8 collapses some agents (the paper: {len(paper_collapsed)} PTDQ/PTSQ cells of "
             f"{total} agents below half the baseline's score, e.g. TD3 Humanoid 5,036 → PTDQ 441).")
    return Finding("int8_collapse", claim, verdict, evidence)


def _recovery(fix: str, suffix: str, collapsed: list, rule: str) -> str:
    """How many of the cells collapsed here the recipe `<q><suffix>` lifts above COLLAPSE and keeps."""
    fixed = [a.get(f"{q}{suffix}") for a, q in collapsed if a.get(f"{q}{suffix}") is not None]
    lifted = sum(score(c, rule) >= COLLAPSE for c in fixed)
    kept = sum(score(c, rule) >= KEEP_THRESHOLD for c in fixed)
    return (f"{fix} on the cells collapsed here: {len(fixed)} of {len(collapsed)} have a *{suffix} cell; it lifts "
            f"{lifted} above {COLLAPSE:.2f} and keeps ≥ {pct(KEEP_THRESHOLD)} on {kept}")
