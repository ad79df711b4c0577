"""The plugin's terminal summary: per agent, what each measured variant kept and cost, the gates that
failed, the Pareto fronts and the variant to ship (drlbench.recommend, as `drlbench compress` names it)."""

from __future__ import annotations

import math

from drlbench.recommend import pareto_front, recommend
from drlbench.results import CellResult


def _latency(session, label: str, variant: str) -> tuple[float | None, float | None]:
    """Batch-1 ONNX Runtime p50 (µs) and its side-by-side ratio to the baseline, from the latency gate."""
    p50, ratio = None, 1.0 if variant == "fp32" else None
    for lab, name, verdict in session.verdicts:  # the sanity verdict has the figures, the gate's the ratio too
        if lab == label and name == variant and verdict.check == "latency":
            p50 = verdict.extra_info.get("latency_us_p50", p50)
            ratio = verdict.extra_info.get("latency_us_p50_ratio", ratio)
    return p50, ratio


def _cell(agent, m, recipe, kind: str, p50, ratio) -> CellResult:
    """A CellResult from what the session measured (only the fields the recommendation reads are real)."""
    ev, scores, v = m.evaluation(recipe), m.return_scores(recipe), m.variant(recipe)
    return CellResult(agent=agent.id, algo=agent.algo or "unknown", task=agent.card.get("task", ""),
                      env_id=agent.env_id, variant=recipe.name, family=recipe.family, kind=kind, ratio=recipe.ratio,
                      runtime=m.config.runtime, episodes=ev.n, seed=m.config.seed, returns=ev.returns,
                      lengths=ev.lengths, return_mean=ev.mean, return_std=ev.std, return_ci95_lo=ev.ci95[0],
                      return_ci95_hi=ev.ci95[1], baseline_return_mean=scores["baseline"], raw_ratio=scores["raw_ratio"],
                      normalized_score=scores["normalized_score"], random_return_mean=scores["random"],
                      artifact_bytes=v.artifact_bytes, n_params=v.n_params, latency_us_p50=p50, latency_ratio_p50=ratio)


def _baseline_cell(session, label: str, m) -> CellResult | None:
    base = m.baseline
    if not base.has_evaluation("fp32"):
        return None
    from drlbench.variants import parse_variant

    p50 = None
    if m.reference is None:
        p50, _ = _latency(session, label, "fp32")
    cell = _cell(base.agent, base, parse_variant("fp32"), "fp32", p50, 1.0)
    if m.reference is not None:
        cell.variant = "reference"
        # the reference's own p50: any candidate's p50 over its ratio (both from one side-by-side block set)
        for lab, name, verdict in session.verdicts:
            info = verdict.extra_info
            if lab == label and verdict.check == "latency" and info.get("baseline_latency_us_p50"):
                cell.latency_us_p50 = info["baseline_latency_us_p50"]
                break
    return cell


def _fmt(x, spec: str) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def agent_lines(session, label: str) -> list[str]:
    m = session._measurers.get(label)
    if m is None:
        return []
    baseline = _baseline_cell(session, label, m)
    if baseline is None:
        return [f"{label}: no return measured (select test_return to get a recommendation)"]
    rule = session.budgets["return_rule"]
    cells = [baseline]
    for recipe in session.recipes:
        if m.has_evaluation(recipe):
            kind = "candidate" if (recipe.kind == "fp32" and m.reference is not None) else recipe.kind
            cells.append(_cell(m.agent, m, recipe, kind, *_latency(session, label, recipe.name)))
    against = "the reference" if m.reference is not None else "fp32"
    lines = [f"{label} ({m.agent.env_id}): {len(cells) - 1} variant(s) against {against}, {rule} rule"]
    for c in cells[1:]:
        failed = [v.check for lab, name, v in session.verdicts if lab == label and name == c.variant and not v.agrees]
        lines.append(f"  {c.variant:14s} return {c.return_mean:10.1f}  score {_fmt(c.normalized_score, '.3f'):>6s}  "
                     f"bytes {c.artifact_bytes / baseline.artifact_bytes:5.2f}×  "
                     f"p50 {_fmt(c.latency_ratio_p50, '.2f'):>5s}×  {'FAILED ' + ', '.join(failed) if failed else ''}")
    rec = recommend(cells, objective=session.options.optimize, rule=rule, threshold=session.budgets["return_threshold"])
    lines.append(f"  recommended ({session.options.optimize}): {rec.reason}")
    lines += [f"  hint: {h}" for h in rec.hints]
    for objective in ("size", "latency"):
        front = pareto_front(cells, baseline, objective, rule)
        lines.append(f"  Pareto front, return kept vs {'bytes' if objective == 'size' else 'latency'}: "
                     + (", ".join(c.variant for c in front) or "n/a"))
    return lines


def summary_lines(session) -> list[str]:
    return [line for g in session.agents for line in agent_lines(session, g.label)]
