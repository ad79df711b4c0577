"""Each agent's frontier (report/frontier.py) over every kind of variant, on synthetic cells (not measurements)."""

import pytest

from drlbench.agent_bench import ship
from drlbench.report import write_report
from drlbench.report.frontier import agent_frontier, frontier_section, frontier_summary, weight_bits
from drlbench.report.markdown import KIND_LABEL
from drlbench.report.paper import paper_results
from drlbench.report.selection import select_cells
from drlbench.variants import KINDS

from .test_report import RANDOM, dataset, fake_cell, row

# agent -> task, baseline return, {variant: (normalized score, bytes ÷ fp32, latency ÷ fp32)}
AGENTS = {
    "sac-hopper": ("Hopper", 3000.0, {
        "fp32": (1.0, 1.0, 1.0), "ptdq": (0.98, 0.27, 0.8), "ptsq": (0.80, 0.27, 0.8), "qat": (0.95, 0.27, 0.8),
        "prune_l1_30": (0.97, 0.5, 0.7), "prune_l1_30+ptdq": (0.93, 0.15, 0.6), "qat_w4a8": (0.92, 0.14, 1.5),
        "qat_w3a8": (0.91, 0.11, 1.5), "qat_w2a8": (0.5, 0.08, 1.5), "input_i8": (0.99, 1.02, 1.1)}),
    "td3-ant": ("Ant", 3400.0, {
        "fp32": (1.0, 1.0, 1.0), "ptdq": (0.95, 0.3, 0.9), "prune_l2_20": (0.96, 0.6, 0.8),
        "qat_w4a8": (0.85, 0.14, 1.4)}),
    "ppo-humanoidstandup": ("HumanoidStandup", 100_000.0, {"fp32": (1.0, 1.0, 1.0), "ptdq": (0.5, 0.3, 0.9)}),
}


def cells(agents=AGENTS):
    out = []
    for agent, (task, base, variants) in agents.items():
        rand = RANDOM[task]
        for name, (s, size, lat) in variants.items():
            out.append(fake_cell(agent, task, name, rand + s * (base - rand), base, rand,
                                 {"artifact_bytes": size, "latency_us_p50": lat}))
    return out


def frontiers(rule="normalized"):
    sel = select_cells(cells(), "onnxruntime", "test data", paper_results())
    return sel, {a.agent: agent_frontier(a, rule) for a in sel.agents}


@pytest.mark.parametrize("variant, bits", [("fp32", 32), ("prune_l2_30", 32), ("input_i4", 32), ("ptdq", 8),
                                           ("qat_eq", 8), ("prune_l1_30+qat", 8), ("fp16", 16), ("qat_w4a8", 4),
                                           ("qat_w3a6i4", 3), ("qat_w2af", 2)])
def test_weight_bits_per_kind(variant, bits):
    assert weight_bits(fake_cell("sac-hopper", "Hopper", variant, 1.0, 1.0, 0.0, {})) == bits


def test_every_kind_has_a_report_label():
    assert set(KINDS) <= set(KIND_LABEL)


@pytest.mark.parametrize("objective, expected", [
    ("size", ["qat_w2a8", "qat_w3a8", "qat_w4a8", "prune_l1_30+ptdq", "ptdq", "fp32"]),
    ("latency", ["prune_l1_30+ptdq", "prune_l1_30", "ptdq", "fp32"])])
def test_the_front_holds_every_variant_no_other_beats_on_both(objective, expected):
    f = frontiers()[1]["sac-hopper"]
    front = f.size_front if objective == "size" else f.latency_front
    assert [c.variant for c in front] == expected


def test_smallest_keeping_variant_and_the_best_of_each_family():
    fs = frontiers()[1]
    hopper, ant, standup = fs["sac-hopper"], fs["td3-ant"], fs["ppo-humanoidstandup"]
    assert hopper.smallest.variant == "qat_w3a8" and hopper.bytes_ratio(hopper.smallest) == pytest.approx(0.11)
    assert hopper.best["int8"].variant == "ptdq"  # ties on bytes go to the higher score
    assert hopper.best["pruning"].variant == "prune_l1_30"
    assert ant.smallest.variant == "ptdq" and ant.at_bits[4] is None  # its 4-bit variant drops below 90 %
    assert standup.smallest is None and standup.bytes_ratio(None) == 1.0  # nothing keeps: fp32 ships


def test_summary_medians_and_the_counts_at_4_3_and_2_bits():
    s = frontier_summary(list(frontiers()[1].values()))
    assert s["agents"] == 3
    assert s["smallest_ratio"] == pytest.approx(0.3)  # median of 0.11, 0.30 and 1.0 (none keeps)
    assert s["int8_ratio"] == pytest.approx(0.3)  # 0.27, 0.30, 1.0
    assert s["pruning_ratio"] == pytest.approx(0.55)  # 0.5, 0.6: standup has no pruned cell
    assert s["keeps_at_bits"] == {4: 1, 3: 1, 2: 0}  # at ≤ b bits: hopper's 3-bit keeps, its 2-bit does not
    assert s["measured_at_bits"] == {4: 2, 3: 1, 2: 1}
    assert s["keeps_at_4_small"] == 1  # 0.11 ≤ 0.16


def test_frontier_section_writes_one_table_and_one_figure(tmp_path):
    sel, _ = frontiers()
    lines, paths = frontier_section(sel, tmp_path, "normalized")
    text = "\n".join(lines)
    assert [p.name for p in paths] == ["fig_frontier.png"] and paths[0].read_bytes()[:4] == b"\x89PNG"
    hopper = row(text, "sac-hopper", "## Frontier per agent")
    assert "qat_w2a8, qat_w3a8, qat_w4a8, prune_l1_30+ptdq, ptdq, fp32" in hopper and "qat_w3a8 (0.11×)" in hopper
    standup = row(text, "ppo-humanoidstandup", "## Frontier per agent")
    assert standup.endswith("| none keeps | none keeps | — | — |")  # no pruned, no ≤ 4-bit cell: not "none keeps"
    assert "≤ 4 bits: 1 of 3 (2 with such a cell)" in text and "≤ 0.16× fp32's bytes: 1 of 3" in text


def test_no_fp32_cell_no_frontier(tmp_path):
    sel = select_cells([c for c in cells() if c.variant != "fp32"], "onnxruntime", "test data", paper_results())
    lines, paths = frontier_section(sel, tmp_path, "normalized")
    assert paths == [] and "No agent has an fp32 cell" in "\n".join(lines)


def sections(text: str) -> dict[str, str]:
    return {part.split("\n", 1)[0]: part for part in text.split("\n## ")[1:]}


def test_off_grid_kinds_leave_the_papers_tables_as_they_were(tmp_path):
    extra = [c for c in cells() if c.variant in ("prune_l1_30+ptdq", "qat_w3a8", "input_i8")]
    base = sections(write_report(dataset(), tmp_path / "a")[0].read_text())
    text = sections(write_report(dataset() + extra, tmp_path / "b")[0].read_text())
    added = [t for t in text if t not in base]
    assert [t.split(" —")[0] for t in added] == ["Input sensitivity"]  # where input_i8 belongs
    assert set(base) <= set(text)
    for title in base:  # grouped by kind and the paper grid: the extra kinds change no table, figure or finding
        if not title.startswith(("Data notes", "Frontier")):  # the frontier is where they belong
            assert text[title] == base[title], title


def test_compress_names_the_fronts_with_every_kind(tmp_path):
    hopper = [c for c in cells() if c.agent == "sac-hopper"]
    _, fronts = ship(hopper, tmp_path)
    assert fronts["size"] == ["qat_w2a8", "qat_w3a8", "qat_w4a8", "prune_l1_30+ptdq", "ptdq", "fp32"]
    assert "prune_l1_30+ptdq" in (tmp_path / "report.md").read_text()


def test_input_sensitivity_shows_each_agents_score_per_input_precision():
    from drlbench.report.sensitivity import input_sensitivity_section

    extra = {"sac-hopper": ("Hopper", 3000.0, {"fp32": (1.0, 1.0, 1.0), "input_i8": (0.99, 1.02, 1.1),
                                               "input_i4": (0.6, 1.02, 1.1)}),
             "td3-ant": ("Ant", 3400.0, {"fp32": (1.0, 1.0, 1.0), "input_i6": (0.93, 1.0, 1.0)})}
    sel = select_cells(cells(extra), "onnxruntime", "test data", paper_results())
    text = "\n".join(input_sensitivity_section(sel, "normalized"))
    assert "Agents keeping: input_i8: 1 of 2, input_i6: 1 of 2, input_i4: 0 of 2." in text  # most bits first
    assert row(text, "sac-hopper", "## Input sensitivity").split(" | ")[1:] == ["0.99", "—", "**0.60** |"]
    assert input_sensitivity_section(select_cells(cells({"td3-ant": extra["td3-ant"]}) [:1], "onnxruntime",
                                                  "test data", paper_results()), "normalized") == []
