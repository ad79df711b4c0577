"""The paper's resource claims re-tested: quantization and pruning do not reduce memory (process RSS) or
improve energy efficiency. Judged on each agent's ratios to its own fp32, averaged geometrically."""

from __future__ import annotations

from typing import Callable

import numpy as np

from drlbench.report.markdown import energy_note, estimated_energy_sources, pct
from drlbench.report.selection import AgentCells, ReportSelection, resource_ratios, variant_picker
from drlbench.report.stats import Stat, geometric_mean, ratio_ci
from drlbench.report.verdicts import AGREE, DISAGREE, INCONCLUSIVE, MIN_AGENTS, NOT_ENOUGH, PRUNE_KINDS, Finding
from drlbench.results import CellResult
from drlbench.variants import QUANT_VARIANTS, VARIANTS, parse_variant

MEANINGFUL = 0.05  # a resource change counts only beyond 5 % and with its 95 % CI off 1.0
POOLED = "geometric mean per agent, then over agents [95 % CI] (n agents)"


def _family_cells(agent: AgentCells, family: str) -> list[CellResult]:
    kinds = QUANT_VARIANTS if family == "quantization" else PRUNE_KINDS
    return [c for c in agent.cells.values() if c.kind in kinds]


def _per_agent(sel: ReportSelection, family: str,
               ratio: Callable[[AgentCells, CellResult], float | None]) -> list[float]:
    """One value per agent: the geometric mean of ratio(agent, cell) over its cells of `family`, so the CI
    is over agents (independent) rather than over variants of the same agent."""
    values = []
    for a in sel.agents:
        mine = geometric_mean(ratio(a, c) for c in _family_cells(a, family))
        if mine is not None:
            values.append(mine)
    return values


def _pooled_ratios(sel: ReportSelection, family: str, attr: str) -> list[float]:
    return _per_agent(sel, family, lambda a, c: a.ratio_to_fp32(c, attr))


def _reduced(stat: Stat | None) -> bool:
    return stat is not None and stat.mean < 1 - MEANINGFUL and stat.hi < 1


def _enough(stat: Stat | None) -> bool:
    return stat is not None and stat.n >= MIN_AGENTS


def _not_reduced_verdict(stat: Stat | None) -> str:
    """The paper's "X does not reduce Y": agree only when the CI rules out a saving beyond 5 %,
    disagree on a saving (mean below 0.95, CI below 1), inconclusive when the CI allows either."""
    if not _enough(stat):
        return NOT_ENOUGH
    if _reduced(stat):
        return DISAGREE
    return AGREE if stat.lo >= 1 - MEANINGFUL else INCONCLUSIVE


def _variants_reducing(sel: ReportSelection, family: str, attr: str) -> str:
    """Variants of `family` whose own ratio over agents shows a saving: an average over all of a family's
    variants can hide a few that save."""
    names = [v for v in VARIANTS if parse_variant(v).family == family]
    hits = [v for v in names if _reduced(ratio_ci(resource_ratios(sel.agents, variant_picker(v), attr)))]
    return f"{len(hits)} of {len(names)}" + (f" ({', '.join(hits)})" if hits else "")


def finding_memory(sel: ReportSelection, family: str) -> Finding:
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


def _detection_limit(sel: ReportSelection) -> float | None:
    shares = [f.artifact_bytes / (f.rss_running_mib * 2**20) for a in sel.agents for f in [a.get("fp32")]
              if f is not None and f.artifact_bytes and f.rss_running_mib]
    return float(np.mean(shares)) if shares else None


def finding_energy(sel: ReportSelection, family: str) -> Finding:
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


def _length_ratio(agent: AgentCells, cell: CellResult) -> float | None:
    base = agent.mean_length("fp32")
    return float(np.mean(cell.lengths)) / base if base and cell.lengths else None


def _confounded(sel: ReportSelection, family: str) -> str:
    hits = total = 0
    for a in sel.agents:
        for c in _family_cells(a, family):
            act, ep = a.ratio_to_fp32(c, "energy_j_per_1k_actions"), a.ratio_to_fp32(c, "energy_j_per_episode")
            if act is not None and ep is not None:
                total += 1
                hits += ep < 1 - MEANINGFUL and act >= 1 - MEANINGFUL
    return f"{hits} of {total}"
