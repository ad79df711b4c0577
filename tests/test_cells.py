"""A cell's latency and energy, measured beside fp32 in alternating blocks (CellMeasurer.compare), and the
one confirm rule a gate measures again under."""

import numpy as np
import pytest

from drlbench.errors import DrlbenchError

from .test_meters import CELL_FIELDS, FakeRunner, FixedMeter

SIDE_BY_SIDE = dict(episodes=1, memory=False, exclusive_cpu=False, ratio_blocks=3, ratio_block_s=0.01)


def side_by_side_measurer(builder, **kw):
    from drlbench.cells import CellMeasurer, MeasureConfig

    return CellMeasurer(builder.agent, MeasureConfig(**(SIDE_BY_SIDE | kw)), builder)


@pytest.mark.parametrize("energy", [True, False], ids=["energy", "no-energy"])
@pytest.mark.parametrize("variant", ["prune_l1_05", "ptdq"])
def test_a_measured_cell_carries_its_side_by_side_ratios_to_fp32(builder, variant, energy):
    m = side_by_side_measurer(builder, energy=energy)
    cell = m.measure(variant)
    assert cell.ratio_blocks == m.config.ratio_blocks
    assert cell.latency_ratio_p50 > 0 and cell.latency_ratio_mean > 0
    assert 0 < cell.latency_us_p50 <= cell.latency_us_p90 <= cell.latency_us_p99  # absolute numbers kept
    if energy:  # the ratio comes from the meter the cell names: on these machines, the CPU-time estimate
        assert cell.energy_ratio > 0 and cell.energy_j_per_1k_actions > 0
        assert cell.energy_source == "estimate-cpu-time"
    else:
        assert (cell.energy_ratio, cell.energy_j_per_1k_actions, cell.energy_source) == (None, None, None)


@pytest.mark.parametrize("energy", [True, False], ids=["energy", "no-energy"])
def test_the_fp32_cell_is_its_own_ratio_one_from_zero_blocks(builder, energy):
    cell = side_by_side_measurer(builder, energy=energy).measure("fp32")
    assert (cell.latency_ratio_p50, cell.latency_ratio_mean, cell.ratio_blocks) == (1.0, 1.0, 0)
    assert cell.energy_ratio == (1.0 if energy else None)
    assert cell.latency_us_p50 > 0 and (cell.energy_j_per_1k_actions > 0 if energy else True)


class FakeMeters:
    """Stands in for measure_latency / measure_energy: a runner's reading is its variant's base cost
    (by n_params: identical architectures, identical cost) × the machine's current `load`, or the next
    value of a scripted per-variant sequence. Records (meter, variant) per call."""

    def __init__(self, measurer, monkeypatch, base=None, script=None):
        from drlbench.meters import energy, latency

        self.m, self.base, self.script, self.load, self.calls = measurer, base, script or {}, 1.0, []
        monkeypatch.setattr(latency, "measure_latency", self.latency)
        monkeypatch.setattr(energy, "measure_energy", self.energy)

    def _reading(self, meter, runner):
        names = [n for (n, _), r in self.m._runners.items() if r is runner]
        if not names:  # the runtime's call floor (runtimes/floor.py), measured on its own once per runtime
            return 1.0
        (name,) = names
        self.calls.append((meter, name))
        if (meter, name) in self.script:
            return self.script[(meter, name)].pop(0)
        return self.base * self.m.variant(name).n_params * self.load

    def latency(self, runner, obs, **kw):
        from drlbench.meters.latency import LatencyStats

        us = self._reading("latency", runner)
        return LatencyStats(mean_us=2 * us, p50_us=us, p90_us=3 * us, p99_us=4 * us, min_us=us / 2, max_us=5 * us,
                            n=100, batch=1, runtime="onnxruntime", threads=1)

    def energy(self, runner, obs, meter, **kw):
        from drlbench.meters.energy import EnergyStats

        j = self._reading("energy", runner)
        return EnergyStats(joules_per_1k_actions=j, joules=j, source=meter.source, is_estimate=meter.is_estimate,
                           n_actions=1000, wall_s=0.01, cpu_s=0.01, runtime="onnxruntime", threads=1)


def test_ratios_and_absolute_numbers_are_medians_over_the_blocks(builder, monkeypatch):
    m = side_by_side_measurer(builder)
    m.evaluation("fp32")  # runners exist before the fake looks them up
    # per block:                  variant / fp32 -> ratio
    script = {("latency", "ptdq"): [10.0, 30.0, 20.0], ("latency", "fp32"): [10.0, 10.0, 40.0],  # 1, 3, 0.5
              ("energy", "ptdq"): [4.0, 1.0, 9.0], ("energy", "fp32"): [2.0, 2.0, 3.0]}  # 2, 0.5, 3
    fake = FakeMeters(m, monkeypatch, script=script)
    cell = m.measure("ptdq")
    assert cell.ratio_blocks == 3
    assert cell.latency_ratio_p50 == cell.latency_ratio_mean == 1.0  # median of 1, 3, 0.5
    assert cell.energy_ratio == 2.0  # median of 2, 0.5, 3
    assert (cell.latency_us_p50, cell.latency_us_mean, cell.latency_us_p99) == (20.0, 40.0, 80.0)  # variant's medians
    assert cell.energy_j_per_1k_actions == 4.0
    assert cell.latency_floor_us_p50 == 1.0 and cell.latency_ratio_ort_fp32_p50 is None  # the floor, stored beside
    assert cell.energy_j_per_episode == pytest.approx(4.0 * cell.lengths[0] / 1000)
    # the first side alternates between blocks, and each meter's two readings are back to back
    assert [n for _, n in fake.calls] == ["ptdq", "fp32"] * 2 + ["fp32", "ptdq"] * 2 + ["ptdq", "fp32"] * 2
    assert [k for k, _ in fake.calls] == ["latency", "latency", "energy", "energy"] * 3


def test_load_that_changes_between_cells_cancels_in_the_side_by_side_ratio(builder, monkeypatch):
    """prune_l1_05 and prune_l2_05 have one architecture: measured under different load (as two cells
    minutes apart on a shared machine are), their cross-cell ratios differ, their side-by-side ones do not."""
    m = side_by_side_measurer(builder)
    names = ("fp32", "prune_l1_05", "prune_l2_05")
    for name in names:
        m.runner(name)
    assert m.variant("prune_l1_05").n_params == m.variant("prune_l2_05").n_params
    fake = FakeMeters(m, monkeypatch, base=1e-3)
    cells = {}
    for name, load in zip(names, (1.0, 1.5, 2.0)):
        fake.load = load
        cells[name] = m.measure(name)
    fp32, l1, l2 = (cells[n] for n in names)
    cross = [c.latency_us_p50 / fp32.latency_us_p50 for c in (l1, l2)]
    assert cross[0] != pytest.approx(cross[1])  # the old report's ratio: noise from the load
    expected = m.variant("prune_l1_05").n_params / m.variant("fp32").n_params
    for c in (l1, l2):
        assert c.latency_ratio_p50 == c.latency_ratio_mean == c.energy_ratio == pytest.approx(expected)


@pytest.mark.parametrize("num, den, expected", [
    ([1.0, 3.0, 0.5], [1.0, 1.0, 1.0], 1.0),
    ([2.0, 4.0], [1.0, 1.0], 3.0),  # an even count: the mean of the middle two
    ([2.0, 9.0, 6.0], [1.0, 0.0, 2.0], 2.5),  # a counter that did not tick: that block is left out
    ([2.0], [0.0], None),
])
def test_median_ratio_over_blocks(num, den, expected):
    from drlbench.meters.compare import median_ratio

    assert median_ratio(num, den) == expected


@pytest.mark.parametrize("kw", [{"ratio_blocks": 0}, {"ratio_block_s": 0.0}, {"ratio_block_s": -1.0},
                                {"confirm_attempts": 0}])
def test_a_config_without_side_by_side_blocks_is_refused(kw):
    from drlbench.cells import MeasureConfig

    with pytest.raises(DrlbenchError, match="need ratio_blocks >= 1, ratio_block_s > 0 and confirm_attempts >= 1"):
        MeasureConfig(**kw)


@pytest.mark.parametrize("kw, needle", [
    ({"episodes": 0}, "episodes must be >= 1, got 0"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"seed": 999_995, "episodes": 10}, "evaluation seeds 999995…1000004 must lie in 0…999999"),
])
def test_a_config_checks_episodes_and_seed_as_every_entry_point_does(kw, needle):
    from drlbench.cells import MeasureConfig

    with pytest.raises(DrlbenchError, match=needle):
        MeasureConfig(**kw)


# Per attempt, the variant's reading (fp32 reads 10 in every block): ratios 1.5, 1.3, 1.4 … The confirm rule
# measures again while the gate's verdict differs from the record, at most confirm_attempts times, and
# keeps the attempt nearest to agreeing.
CONFIRM_CASES = {  # attempts' ratios, expectation (measured, tolerance) or None -> (attempts taken, ratio kept)
    "slower-in-every-attempt": ([1.5, 1.3, 1.4], None, (3, 1.3)),
    "one-hiccup-then-within-budget": ([1.5, 1.1, 1.4], None, (2, 1.1)),
    "within-budget-at-once": ([1.0, 1.5, 1.5], None, (1, 1.0)),
    "recorded-miss-reproduced-after-a-fast-attempt": ([1.1, 1.5, 1.1], (1.5, 0.1), (2, 1.5)),
    "recorded-miss-moved-in-every-attempt": ([2.0, 1.8, 2.2], (1.5, 0.1), (3, 1.8)),
    "recorded-figure-on-the-budgets-passing-side": ([1.2, 2.0, 2.0], (1.27, 0.1), (1, 1.2)),
}


@pytest.mark.parametrize("meter", ["latency", "energy"])
@pytest.mark.parametrize("case", list(CONFIRM_CASES))
def test_one_confirm_rule_for_latency_and_energy(builder, monkeypatch, meter, case):
    from drlbench import gates
    from drlbench.budgets import Expectation

    ratios, expect, (attempts, kept) = CONFIRM_CASES[case]
    m = side_by_side_measurer(builder, ratio_blocks=1, confirm_attempts=3)
    m.runner("fp32"), m.runner("ptdq")
    FakeMeters(m, monkeypatch, script={(meter, "ptdq"): [10.0 * r for r in ratios], (meter, "fp32"): [10.0] * 3})
    e = Expectation("*", "ptdq", meter, expect[0], expect[1], "test data") if expect else None
    if meter == "latency":
        def gate(c):
            return gates.latency_gate(c, 1.25, figure="latency_us_p50", expectation=e)
    else:
        def gate(c):
            return gates.energy_gate(c, 1.25, expectation=e)
    c = m.compare("ptdq", meters=(meter,), confirm=gate)
    figure = "latency_us_p50" if meter == "latency" else "energy_j_per_1k_actions"
    assert (c.attempts, c.ratio(figure)) == (attempts, pytest.approx(kept))
    assert gate(c).agrees == (case != "slower-in-every-attempt" and "moved" not in case)


def test_a_measurement_alone_and_one_beside_fp32_share_the_blocks(builder, monkeypatch):
    """fp32's own cell and a gate's reference: the variant alone, in the same blocks and meters."""
    m = side_by_side_measurer(builder)
    m.runner("fp32")
    fake = FakeMeters(m, monkeypatch, base=1e-3)
    c = m.compare("fp32", baseline=None)
    assert (c.baseline, c.ratios, c.baseline_name) == ({}, {}, None)
    assert [k for k, _ in fake.calls] == ["latency", "energy"] * 3
    assert c.variant["latency_us_p50"] > 0 and c.energy_source == "estimate-cpu-time"


def test_cells_stored_before_the_side_by_side_fields_still_load():
    from drlbench.results import CellResult

    new = ("latency_ratio_p50", "latency_ratio_mean", "energy_ratio", "ratio_blocks")
    data = dict(agent="a", algo="sac", task="Hopper", env_id="Hopper-v5", variant="ptdq", family="quantization",
                kind="ptdq", ratio=None, runtime="onnxruntime", episodes=1, seed=0, returns=[1.0], lengths=[10],
                return_mean=1.0, return_std=0.0, return_ci95_lo=1.0, return_ci95_hi=1.0, baseline_return_mean=1.0,
                raw_ratio=1.0, normalized_score=1.0, random_return_mean=0.0, artifact_bytes=1, n_params=1,
                latency_us_p50=9.0)
    old = CellResult.from_dict(data)
    assert all(getattr(old, k) is None for k in new) and old.latency_us_p50 == 9.0
    assert CellResult.from_dict(old.to_dict() | {"ratio_blocks": 3}).ratio_blocks == 3


# The side-by-side meter itself, on instant fake runners.


@pytest.mark.parametrize("kwargs, match", [
    ({"meters": ("latency", "rss")}, "need meters from latency, energy"),
    ({"meters": ()}, "need meters from latency, energy"),
    ({"blocks": 0}, "blocks >= 1"),
    ({"block_s": 0.0}, "block_s > 0"),
    ({"meters": ("energy",)}, "with an energy meter"),  # none given
    ({"meters": ("energy",), "energy_meter": FixedMeter(), "batch": 2}, "at batch 1"),
])
def test_side_by_side_rejects_what_it_cannot_measure(kwargs, match):
    from drlbench.meters.compare import side_by_side

    with pytest.raises(DrlbenchError, match=match):
        side_by_side(FakeRunner(), FakeRunner(), np.zeros((4, 4)), **({"blocks": 1, "block_s": 0.001} | kwargs))


def test_side_by_side_medians_and_ratios_carry_cell_result_names():
    from drlbench.meters.compare import side_by_side

    c = side_by_side(FakeRunner(), FakeRunner(), np.zeros((4, 4)), blocks=3, block_s=0.001,
                     energy_meter=FixedMeter(), names=("ptdq", "fp32"))
    assert set(c.variant) == set(c.baseline) == set(c.ratios) and set(c.variant) <= CELL_FIELDS
    assert all(r > 0 for r in c.ratios.values())
    assert (c.blocks, c.energy_source, c.name, c.baseline_name) == (3, "fixed", "ptdq", "fp32")


def test_a_simulated_low_bit_cell_says_so_and_is_charged_its_packed_bytes(builder):
    from drlbench.results import CellResult

    cell = side_by_side_measurer(builder, energy=False).measure("qat_w3a8")
    packed = builder.get("qat_w3a8").packed
    assert (cell.variant, cell.kind, cell.family) == ("qat_w3a8", "lowbit", "quantization")
    # the build record travels with the cell (and into the store's JSON): 3 bits has no ORT kernel
    assert cell.build["simulated"] is True and cell.build["packed_bytes"] == len(packed)
    assert cell.artifact_bytes == len(packed)
    assert CellResult.from_dict(cell.to_dict()).build["simulated"] is True
