"""Gates: pure verdicts on measured figures, against a budget and the cell's [[expect]] entry if it has one.

Each gate takes the measured numbers, the budget (from budgets.toml) and the expectation (or None) and
returns a `Verdict`: passed, a message naming the figure and the budget, and extra_info to record. No
pytest here: the bench suite asserts these verdicts, and a pytest plugin for users' own policies is to
reuse the same gates.

An expectation is a recorded figure, not a blanket: a cell that has one must show a figure within the
entry's tolerance of the recorded one; the verdict is then `expected`, and the bench reports the
recorded miss as XFAIL (and, for a figure that sits at its budget, a run on the passing side as XPASS).
A figure that moved beyond the tolerance, better or worse, fails and asks for the entry to be updated.
A figure that is not a number never matches one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:  # types only: gates import nothing heavy
    from drlbench.budgets import Expectation
    from drlbench.meters.compare import Comparison

PARITY_TOLERANCE = 1e-4  # largest |action difference| of the fp32 ONNX export vs the torch actor
FP32_FILE_OVERHEAD = 64 * 1024  # graph, names and normalization constants around the fp32 weights


@dataclass(frozen=True)
class Verdict:
    check: str
    passed: bool
    message: str
    extra_info: dict = field(default_factory=dict)
    expected: bool = False  # the figure its [[expect]] entry records (within tolerance); passed: on the budget's
    # passing side this time
    # how far the figure is from agreeing with the record (the budget, or the expectation), in the check's
    # unit; <= 0 when it agrees. `meters.compare.confirmed` keeps the attempt with the smallest.
    margin: float = 0.0

    @property
    def agrees(self) -> bool:
        """Agrees with the record: within budget (no expectation), or the recorded figure."""
        return self.passed or self.expected


def _f(x, spec: str = ".3g") -> str:
    return "nan" if x is None or not math.isfinite(x) else format(x, spec)


def judge(check: str, figure: float | None, budget: float, describe: str, *, at_most: bool = True,
          expectation: Expectation | None = None, extra: Mapping | None = None) -> Verdict:
    """The verdict on one figure: within `budget` (<= when `at_most`, else >=), or, with an expectation,
    the figure it records. `describe` states the measurement with its numbers."""
    figure = math.nan if figure is None else float(figure)
    info = {f"{check}_figure": figure, f"{check}_budget": budget} | dict(extra or {})
    rule = f"budget {'≤' if at_most else '≥'} {budget:g}"
    if not math.isfinite(figure):  # a crash or an undefined figure: no budget or expectation applies
        return Verdict(check, False, f"{describe}: {check} figure {figure} is not a number ({rule})", info,
                       margin=math.inf)
    miss = figure - budget if at_most else budget - figure  # > 0: misses the budget
    if expectation is None:
        return Verdict(check, miss <= 0, f"{describe} ({rule})", info, margin=miss)
    rec, tol = expectation.measured, expectation.tolerance
    info |= {"expect_measured": rec, "expect_tolerance": tol, "expect_run": expectation.run}
    moved = abs(figure - rec) - tol  # > 0: beyond the recorded figure's tolerance
    record = f"[[expect]] records {rec:g} ± {tol:g} ({expectation.run})"
    if moved > 0:
        fix = f"update the entry to {figure:.3g}" + (", or remove it: the cell passes now" if miss <= 0 else "")
        return Verdict(check, False, f"{describe} ({rule}); moved beyond {record}: {fix}", info, margin=moved)
    if miss > 0:
        why = f": {expectation.reason}" if expectation.reason else ""
        return Verdict(check, False, f"{describe} ({rule}); expected, {record}{why}", info, expected=True,
                       margin=moved)
    # the recorded figure on the passing side of a budget it sits at (noise): reported, not red (XPASS)
    return Verdict(check, True, f"{describe}: within the {rule} this time, and within {record}", info,
                   expected=True, margin=moved)


def measured(check: str, figures: Mapping[str, float | None]) -> Verdict:
    """Sanity before any budget or expectation: every figure was measured, finite and > 0."""
    bad = {k: v for k, v in figures.items() if v is None or not math.isfinite(v) or v <= 0}
    if not figures or bad:
        shown = ", ".join(f"{k}={v}" for k, v in bad.items()) or "none"
        return Verdict(check, False, f"{check}: figures not measured as finite numbers > 0: {shown}", dict(figures),
                       margin=math.inf)
    return Verdict(check, True, f"{check}: {', '.join(f'{k}={_f(v)}' for k, v in figures.items())}", dict(figures))


def latency_gate(c: Comparison, budget: float, *, expectation: Expectation | None = None,
                 figure: str = "latency_us_p90", check: str = "latency") -> Verdict:
    """The variant's `figure` (a latency percentile or mean) over its baseline's, measured side by side."""
    stat = figure.removeprefix("latency_us_")
    v, b, ratio = c.variant.get(figure), c.baseline.get(figure), c.ratio(figure)
    vs = f" vs {c.baseline_runtime}" if c.baseline_runtime != c.runtime else ""
    describe = (f"{c.name} {stat} ratio to {c.baseline_name} {_f(ratio, '.2f')}× ({_f(v, '.1f')} µs vs "
                f"{_f(b, '.1f')} µs; {_where(c)}, {c.runtime}{vs}, batch {c.batch})")
    return judge(check, ratio, budget, describe, expectation=expectation, extra=c.to_extra_info())


def energy_gate(c: Comparison, budget: float, *, expectation: Expectation | None = None) -> Verdict:
    """Energy per 1,000 actions over the baseline's, measured side by side with one meter."""
    figure = "energy_j_per_1k_actions"
    v, b, ratio = c.variant.get(figure), c.baseline.get(figure), c.ratio(figure)
    describe = (f"{c.name} energy ratio to {c.baseline_name} {_f(ratio, '.2f')}× ({_f(v, '.4f')} J vs "
                f"{_f(b, '.4f')} J per 1k actions; {_where(c)}, {c.energy_source}, {c.runtime})")
    return judge("energy", ratio, budget, describe, expectation=expectation, extra=c.to_extra_info())


def _where(c: Comparison) -> str:
    """How a side-by-side figure was taken: the ratio is the median of per-block ratios, the absolute
    figures each side's median, so the two need not divide exactly."""
    return f"medians of {c.blocks} alternating blocks, attempt {c.attempts}"


def artifact_gate(artifact_bytes: int, baseline_bytes: int, budget: float, *,
                  expectation: Expectation | None = None) -> Verdict:
    """An int8 artifact's bytes over fp32's."""
    ratio = artifact_bytes / baseline_bytes
    describe = f"int8 artifact {artifact_bytes:,} B is {ratio:.2f}× fp32's {baseline_bytes:,} B"
    return judge("artifact", ratio, budget, describe, expectation=expectation,
                 extra={"artifact_bytes": artifact_bytes, "fp32_artifact_bytes": baseline_bytes})


def memory_gate(rss_mib: float, baseline_rss_mib: float, budget: float, *,
                expectation: Expectation | None = None) -> Verdict:
    """Peak RSS while running, fresh process, over fp32's: a compressed policy must not cost more."""
    ratio = rss_mib / baseline_rss_mib
    describe = f"peak RSS while running {rss_mib:.1f} MiB is {ratio:.3f}× fp32's {baseline_rss_mib:.1f} MiB"
    return judge("memory", ratio, budget, describe, expectation=expectation,
                 extra={"rss_running_ratio_vs_fp32": ratio})


def return_gate(scores: Mapping[str, float], threshold: float, *, rule: str = "normalized",
                expectation: Expectation | None = None, n: int | None = None,
                paired: tuple[float, float, float] | None = None) -> Verdict:
    """The keep-90 % gate on paired seeds: `scores` as CellMeasurer.return_scores gives them (mean,
    baseline, random, raw_ratio, normalized_score); the rule picks normalized_score or raw_ratio."""
    value = scores["normalized_score"] if rule == "normalized" else scores["raw_ratio"]
    seeds = f" on the same {n} seeds" if n else ""
    describe = (f"return {scores['mean']:.1f} vs fp32 {scores['baseline']:.1f}{seeds} — normalized score "
                f"{_f(scores['normalized_score'], '.3f')}, raw ratio {_f(scores['raw_ratio'], '.3f')}")
    if paired is not None:  # per-seed R_v - R_fp32: whether the seeds agree on a drop
        describe += f"; per-seed difference {paired[0]:+.1f} (95 % CI {paired[1]:+.1f} … {paired[2]:+.1f})"
    if not math.isfinite(value):
        describe += (f"; the {rule} rule is undefined here: random policy {scores['random']:.1f} (normalized "
                     "needs fp32 above random; raw needs fp32 > 0)")
    extra = {k: scores[k] for k in ("mean", "baseline", "random", "raw_ratio", "normalized_score")}
    return judge("return", value, threshold, f"{describe}; rule {rule}", at_most=False, expectation=expectation,
                 extra=extra)


def parity_gate(max_gap: float, n_states: int, tolerance: float = PARITY_TOLERANCE) -> Verdict:
    """fp32: the ONNX export acts as the torch actor does, action by action on `n_states` states (returns
    would amplify float rounding through 1,000 chaotic steps)."""
    return judge("parity", max_gap, tolerance, f"fp32 ONNX actions differ from torch's by up to {max_gap:.2e} on "
                 f"{n_states} states", extra={"max_action_gap_onnx_vs_torch": max_gap})


def pruned_size_gate(n_params: int, implied_params: int, artifact_bytes: int, baseline_bytes: int) -> Verdict:
    """A pruned variant has exactly the parameters its channel ratio implies, in a smaller file."""
    ok = n_params == implied_params and artifact_bytes < baseline_bytes
    return Verdict("artifact", ok, f"{n_params:,} parameters ({implied_params:,} implied by the ratio), "
                   f"{artifact_bytes:,} B vs fp32's {baseline_bytes:,} B",
                   {"n_params": n_params, "artifact_bytes": artifact_bytes, "fp32_artifact_bytes": baseline_bytes},
                   margin=0.0 if ok else math.inf)


def packed_size_gate(packed_bytes: int, expected_bytes: int, artifact_bytes: int, baseline_bytes: int) -> Verdict:
    """A low-bit variant's packed payload has exactly the bytes its scheme implies, and the artifact it is
    charged (payload, or MatMulNBits graph) is smaller than fp32's."""
    ok = packed_bytes == expected_bytes and artifact_bytes < baseline_bytes
    return Verdict("artifact", ok, f"packed payload {packed_bytes:,} B ({expected_bytes:,} B implied by the scheme), "
                   f"artifact {artifact_bytes:,} B vs fp32's {baseline_bytes:,} B",
                   {"packed_bytes": packed_bytes, "artifact_bytes": artifact_bytes, "fp32_artifact_bytes": baseline_bytes},
                   margin=0.0 if ok else math.inf)


def mixed_size_gate(weight_types: Mapping[str, list], first_shape: tuple[int, int], n_layers: int,
                    artifact_bytes: int, baseline_bytes: int) -> Verdict:
    """Mixed precision keeps exactly its first layer's weight matrix in fp32 and every other one int8, in a
    smaller file than fp32's. `weight_types`: the graph's weight matrices by element type (ptq.weight_types)."""
    floats, int8s = weight_types.get("FLOAT", []), weight_types.get("INT8", [])
    first_kept = [tuple(s) for s in floats] in ([tuple(first_shape)], [tuple(first_shape)[::-1]])
    ok = first_kept and len(int8s) == n_layers - 1 and artifact_bytes < baseline_bytes
    return Verdict("artifact", ok, f"weight matrices in fp32 {floats or 'none'} (the first layer's: "
                   f"{list(first_shape)}), int8 {len(int8s)} of the other {n_layers - 1}; file {artifact_bytes:,} B "
                   f"vs fp32's {baseline_bytes:,} B", {"artifact_bytes": artifact_bytes,
                                                     "fp32_artifact_bytes": baseline_bytes},
                   margin=0.0 if ok else math.inf)


def fp32_size_gate(artifact_bytes: int, n_params: int, overhead: int = FP32_FILE_OVERHEAD) -> Verdict:
    """The fp32 export holds every weight as 4 bytes, plus a small graph: nothing dropped or re-typed."""
    weights = 4 * n_params
    ok = weights <= artifact_bytes <= weights + overhead
    return Verdict("artifact", ok, f"fp32 ONNX file {artifact_bytes:,} B for {weights:,} B of fp32 weights "
                   f"(allowed overhead {overhead:,} B)", {"artifact_bytes": artifact_bytes, "n_params": n_params},
                   margin=0.0 if ok else math.inf)
