"""Gates: pure verdicts on measured figures, a budget and a recorded expectation (drlbench.gates)."""

import math

import pytest

from drlbench import gates
from drlbench.budgets import Expectation
from drlbench.meters.compare import Comparison


def expect(measured, tolerance=0.1, check="latency"):
    return Expectation("trpo-hopper", "ptdq", check, measured, tolerance, "test data", "made up")


# figure, expectation (recorded, tolerance) -> outcome; budget 1.25, lower is better
OUTCOMES = {
    "within-budget": (1.10, None, "pass"),
    "at-the-budget": (1.25, None, "pass"),
    "over-budget": (1.40, None, "fail"),
    "recorded-miss-reproduced": (1.45, (1.40, 0.1), "expected"),
    "recorded-miss-got-worse": (1.80, (1.40, 0.1), "fail"),
    "recorded-miss-got-better-still-over": (1.27, (1.40, 0.1), "fail"),
    "recorded-miss-got-better-into-budget": (1.10, (1.40, 0.1), "fail"),
    # a figure that sits at its budget, on the passing side this time: the recorded figure (XPASS)
    "recorded-figure-on-the-passing-side": (1.20, (1.27, 0.1), "xpass"),
    "nan-without-expectation": (math.nan, None, "fail"),
    "nan-is-never-the-recorded-miss": (math.nan, (1.40, math.inf), "fail"),
    "missing-ratio": (None, None, "fail"),
}


@pytest.mark.parametrize("case", list(OUTCOMES))
def test_a_verdict_follows_the_budget_and_the_recorded_figure(case):
    figure, rec, outcome = OUTCOMES[case]
    e = expect(*rec) if rec else None
    v = gates.judge("latency", figure, 1.25, "p90 ratio measured", expectation=e)
    assert (v.passed, v.expected) == (outcome in ("pass", "xpass"), outcome in ("expected", "xpass"))
    assert v.agrees == (v.margin <= 0)  # the margin ranks attempts under the confirm rule
    assert "1.25" in v.message and v.extra_info["latency_budget"] == 1.25
    if rec and outcome == "fail" and figure is not None and math.isfinite(figure):
        assert "moved beyond [[expect]] records 1.4 ± 0.1 (test data): update the entry to" in v.message
        assert ("remove it: the cell passes now" in v.message) == (figure <= 1.25)


@pytest.mark.parametrize("score, rule, outcome", [
    ({"normalized_score": 0.95, "raw_ratio": 0.96}, "normalized", "pass"),
    ({"normalized_score": 0.95, "raw_ratio": 0.85}, "raw", "fail"),  # the paper's rule reads the raw ratio
    ({"normalized_score": math.nan, "raw_ratio": 0.5}, "normalized", "fail"),  # fp32 not above random
])
def test_the_return_gate_reads_the_rules_figure_and_names_both_numbers(score, rule, outcome):
    scores = {"mean": 950.0, "baseline": 1000.0, "random": 10.0} | score
    v = gates.return_gate(scores, 0.9, rule=rule, n=10, paired=(-50.0, -80.0, -20.0))
    assert v.passed == (outcome == "pass")
    for needle in ("return 950.0 vs fp32 1000.0 on the same 10 seeds", "normalized score", "raw ratio", "0.9",
                   "per-seed difference -50.0"):
        assert needle in v.message
    if math.isnan(score["normalized_score"]) and rule == "normalized":
        assert "undefined" in v.message
        # an undefined score is never absorbed by an expectation, however wide
        assert not gates.return_gate(scores, 0.9, rule=rule, expectation=expect(0.0, math.inf, "return")).expected


def comparison(v_us, b_us, ratio, **kw):
    return Comparison(variant={"latency_us_p90": v_us}, baseline={"latency_us_p90": b_us},
                      ratios={"latency_us_p90": ratio}, blocks=3, name="ptdq", baseline_name="fp32",
                      runtime="onnxruntime", baseline_runtime="onnxruntime", **kw)


def test_the_latency_gate_names_both_numbers_and_the_budget():
    v = gates.latency_gate(comparison(30.0, 20.0, 1.5, attempts=3), 1.25)
    assert not v.passed
    for needle in ("ptdq p90 ratio to fp32 1.50× (30.0 µs vs 20.0 µs", "batch 1", "attempt 3", "budget ≤ 1.25"):
        assert needle in v.message
    assert v.extra_info["latency_us_p90_ratio"] == 1.5 and v.extra_info["latency_figure"] == 1.5


@pytest.mark.parametrize("gate, args, passed", [
    (gates.artifact_gate, (3_000, 10_000, 0.3), True),
    (gates.artifact_gate, (5_000, 10_000, 0.3), False),
    (gates.memory_gate, (110.0, 100.0, 1.10), True),
    (gates.memory_gate, (120.0, 100.0, 1.10), False),
    (gates.parity_gate, (5e-5, 2048), True),
    (gates.parity_gate, (1e-3, 2048), False),
    (gates.parity_gate, (math.nan, 2048), False),
    (gates.pruned_size_gate, (3_000, 3_000, 12_000, 20_000), True),
    (gates.pruned_size_gate, (3_001, 3_000, 12_000, 20_000), False),
    (gates.packed_size_gate, (2_600, 2_600, 4_100, 20_000), True),
    (gates.packed_size_gate, (2_601, 2_600, 4_100, 20_000), False),  # a byte more than the scheme implies
    (gates.packed_size_gate, (2_600, 2_600, 20_100, 20_000), False),  # a graph larger than fp32's
    (gates.fp32_size_gate, (4 * 5_123 + 1_000, 5_123), True),
    (gates.fp32_size_gate, (4 * 5_123 - 1, 5_123), False),  # fewer bytes than the fp32 weights need
])
def test_size_memory_and_parity_gates(gate, args, passed):
    v = gate(*args)
    assert v.passed == passed and not v.expected
    assert f"{args[0]:,}" in v.message or f"{args[0]:.2e}" in v.message or f"{args[0]:.1f}" in v.message


@pytest.mark.parametrize("figures, passed", [
    ({"latency_us_p50": 12.0, "latency_us_p90": 15.0}, True),
    ({"latency_us_p50": 12.0, "latency_us_p90": math.nan}, False),
    ({"energy_j_per_1k_actions": 0.0}, False),  # a counter that never ticked
    ({"energy_j_per_1k_actions": None}, False),
    ({}, False),
])
def test_sanity_before_any_budget(figures, passed):
    assert gates.measured("latency", figures).passed == passed


def test_gates_load_without_pytest():
    """A pytest plugin is to reuse the gates; they must not pull pytest (or a runtime) in themselves."""
    import subprocess
    import sys

    code = "import sys, drlbench.gates; print(sorted({'pytest', 'torch', 'onnxruntime'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


ENTRY = 'agent = "trpo-hopper"\nvariant = "ptdq"\ncheck = "latency"\nmeasured = 1.3\nrun = "test data"\n'


@pytest.mark.parametrize("tolerance, needle", [
    (None, "missing 'tolerance'"),
    ("-0.1", "tolerance: must be a finite number >= 0, got -0.1"),
    ("nan", "tolerance: must be a finite number >= 0, got nan"),
    ('"wide"', "tolerance: must be a finite number >= 0, got 'wide'"),
])
def test_an_expectation_states_its_tolerance(tmp_path, tolerance, needle):
    from drlbench.budgets import load_budgets
    from drlbench.errors import DrlbenchError

    path = tmp_path / "budgets.toml"
    path.write_text("[[expect]]\n" + ENTRY + (f"tolerance = {tolerance}\n" if tolerance else ""))
    with pytest.raises(DrlbenchError, match=needle):
        load_budgets(path)
    path.write_text("[[expect]]\n" + ENTRY + "tolerance = 0.2\n")
    assert load_budgets(path).expectation("trpo-hopper", "ptdq", "latency").tolerance == 0.2
