"""Which variant to ship: the recommended variant and the Pareto fronts, on hand-made cells."""

import pytest

from drlbench.recommend import pareto_front, recommend
from drlbench.results import CellResult

FP32_RETURNS = [1000.0, 1010.0, 990.0, 1005.0, 995.0]


def cell(variant, kind, returns, nbytes, latency_ratio, fp32_p50=10.0):
    mean = sum(returns) / len(returns)
    base = sum(FP32_RETURNS) / len(FP32_RETURNS)
    return CellResult(agent="a", algo="sac", task="Hopper", env_id="Hopper-v5", variant=variant, family="x",
                      kind=kind, ratio=None, runtime="onnxruntime", episodes=len(returns), seed=0,
                      returns=returns, lengths=[1000] * len(returns), return_mean=mean, return_std=0.0,
                      return_ci95_lo=mean, return_ci95_hi=mean, baseline_return_mean=base, raw_ratio=mean / base,
                      normalized_score=mean / base, random_return_mean=0.0, artifact_bytes=nbytes, n_params=1,
                      latency_us_p50=fp32_p50 * latency_ratio, latency_ratio_p50=latency_ratio)


FP32 = cell("fp32", "fp32", FP32_RETURNS, 100_000, 1.0)
# keeps 99 %, smallest, but slower than fp32
PTDQ = cell("ptdq", "ptdq", [1005.0, 1000.0, 995.0, 1000.0, 990.0], 30_000, 1.2)
# keeps 95 % but every seed drops: a paired drop rules it out
PTSQ = cell("ptsq", "ptsq", [950.0, 960.0, 940.0, 955.0, 945.0], 28_000, 0.7)
# keeps 100 %, half the bytes, fastest of the keepers
PRUNE = cell("prune_l2_30", "prune_l2", FP32_RETURNS, 50_000, 0.6)
# smallest and fastest of all, but loses half the return
BROKEN = cell("prune_l2_70", "prune_l2", [500.0, 510.0, 490.0, 505.0, 495.0], 10_000, 0.3)
CELLS = [FP32, PTDQ, PTSQ, PRUNE, BROKEN]


@pytest.mark.parametrize("objective, expected", [("size", "ptdq"), ("latency", "prune_l2_30")])
def test_recommended_variant_keeps_the_return_without_a_paired_drop(objective, expected):
    rec = recommend(CELLS, objective=objective)
    assert rec.cell.variant == expected
    assert "ptsq" not in rec.reason and expected in rec.reason
    assert rec.to_dict()["variant"] == expected


@pytest.mark.parametrize("objective, expected", [("size", ["prune_l2_70", "ptsq", "ptdq", "prune_l2_30"]),
                                                 ("latency", ["prune_l2_70", "prune_l2_30"])])
def test_pareto_front_holds_only_undominated_variants_cheapest_first(objective, expected):
    assert [c.variant for c in pareto_front(CELLS, FP32, objective, "normalized")] == expected


def test_no_keeping_variant_recommends_fp32():
    rec = recommend([FP32, BROKEN], objective="size")
    assert rec.cell is None and "ship fp32" in rec.reason


def test_recommendation_needs_the_baseline_and_a_known_objective():
    with pytest.raises(ValueError, match="fp32 cell"):
        recommend([PTDQ])
    with pytest.raises(ValueError, match="accepted: size, latency"):
        recommend(CELLS, objective="energy")


COLLAPSED = cell("ptdq", "ptdq", [60.0, 70.0, 50.0, 65.0, 55.0], 30_000, 1.0)  # keeps 6 %: int8 collapsed
MIXED = cell("ptdq_mixed", "ptdq_mixed", FP32_RETURNS, 68_000, 1.0)


@pytest.mark.parametrize("cells, hinted", [
    ([FP32, COLLAPSED, PRUNE], ["ptdq"]),  # collapsed, its mixed-precision recipe not measured: named
    ([FP32, COLLAPSED, MIXED], []),  # already measured: nothing to add
    ([FP32, PTDQ, PTSQ], []),  # kept (or merely dropped): no hint
])
def test_a_collapsed_int8_cell_hints_at_its_mixed_precision_recipe(cells, hinted):
    rec = recommend(cells)
    assert [h.split(" ")[0] for h in rec.hints] == hinted
    assert all("measure ptdq_mixed (that layer kept in fp32)" in h for h in rec.hints)
    assert rec.to_dict()["hints"] == list(rec.hints)


def test_the_hint_reaches_the_compress_report(tmp_path):
    from drlbench.agent_bench import ship

    (tmp_path / "variants" / "prune_l2_30").mkdir(parents=True)
    rec, _ = ship([FP32, COLLAPSED, PRUNE], tmp_path)
    assert rec.cell.variant == "prune_l2_30"
    assert "Hint: ptdq collapsed (normalized score 0.06)" in (tmp_path / "report.md").read_text()
