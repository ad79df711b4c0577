"""The 90 %-of-baseline return gate, on paired seeds (the same episodes for fp32 and the variant).

Default rule: random-normalized score (R_v - R_rand) / (R_base - R_rand) >= threshold; the
paper's raw ratio R_v / R_base with --return-rule raw. A failing cell is a finding: the message
carries both numbers.
"""

import math

import numpy as np

from drlbench.evaluate import paired_difference


def test_return(benchmark, measurers, cell, budgets, expect):
    agent, variant = cell
    m = measurers(agent)
    benchmark.group = f"{agent} evaluation ({m.config.episodes} episodes)"
    result = benchmark.pedantic(m.evaluation, args=(variant,), rounds=1, iterations=1)
    s = m.return_scores(variant)
    lo, hi = result.ci95
    benchmark.extra_info.update(return_mean=result.mean, return_std=result.std, return_ci95=[lo, hi],
                                returns=result.returns, lengths=result.lengths, baseline_return=s["baseline"],
                                raw_ratio=s["raw_ratio"], normalized_score=s["normalized_score"],
                                random_return=s["random"], seeds=result.seeds)
    if variant == "fp32":
        # The baseline gate: the ONNX export acts as the torch actor does. Compared action by action:
        # returns would amplify float rounding through 1,000 chaotic steps (recorded, not gated).
        torch_result = m.evaluation("fp32", runtime="torch")
        obs = m.observations()
        gap = float(np.abs(m.runner("fp32").run(obs) - m.runner("fp32", "torch").run(obs)).max())
        benchmark.extra_info.update(torch_return_mean=torch_result.mean, max_action_gap_onnx_vs_torch=gap)
        assert gap <= 1e-4, f"{agent}: fp32 ONNX actions differ from torch's by up to {gap:.2e} on {len(obs)} states"
        return
    paired = ""
    if result.n >= 2:  # per-seed R_v - R_fp32: whether the seeds agree on a drop, whatever the gate says
        d, d_lo, d_hi = paired_difference(result.returns, m.evaluation("fp32").returns)
        benchmark.extra_info.update(paired_diff_mean=d, paired_diff_ci95=[d_lo, d_hi])
        paired = f"; per-seed difference {d:+.1f} (95 % CI {d_lo:+.1f} … {d_hi:+.1f})"
    rule, threshold = budgets["return_rule"], budgets["return_threshold"]
    value = s["normalized_score"] if rule == "normalized" else s["raw_ratio"]
    expect(agent, variant, "return")
    assert math.isfinite(value), (
        f"{agent}/{variant}: the {rule} return rule is undefined here — fp32 returns {s['baseline']:.1f}, "
        f"random policy {s['random']:.1f} (normalized needs fp32 above random; raw needs fp32 > 0)")
    assert value >= threshold, (
        f"{agent}/{variant}: return {result.mean:.1f} ± {result.std:.1f} vs fp32 {s['baseline']:.1f} on the same "
        f"{result.n} seeds — normalized score {s['normalized_score']:.3f}, raw ratio {s['raw_ratio']:.3f}{paired}; "
        f"rule {rule} >= {threshold}")
