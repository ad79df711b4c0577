"""Report: tables with the right marks next to the paper's numbers, figures, data-driven findings.

Every cell here is synthetic test data made by `agent_cells`, not a measurement.
"""

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from drlbench.errors import DrlbenchError
from drlbench.report import paper_results, write_report
from drlbench.report.findings import findings
from drlbench.report.selection import select_cells
from drlbench.report.stats import ratio_ci
from drlbench.results import CellResult
from drlbench.store import ResultStore
from drlbench.variants import PRUNE_RATIOS, parse_variant

RANDOM = {"Hopper": 20.0, "Ant": -50.0, "HumanoidStandup": 33_000.0, "Humanoid": 110.0}
# fp32 resources of every synthetic agent: latency µs, energy J / 1k actions, RSS MiB, artifact bytes
FP32 = {"latency_us_p50": 10.0, "energy_j_per_1k_actions": 0.5, "rss_running_mib": 100.0, "artifact_bytes": 100_000}


def fake_cell(agent, task, variant, ret, base, rand, res, length=1000):
    """One synthetic cell: 10 returns centred on `ret`, resources = FP32 × the factors in `res`."""
    recipe = parse_variant(variant)
    returns = list(ret + np.linspace(-5, 5, 10))
    half = stats.t.ppf(0.975, 9) * np.std(returns, ddof=1) / math.sqrt(10)
    metrics = {k: type(v)(v * res.get(k, 1.0)) for k, v in FP32.items()}
    return CellResult(
        agent=agent, algo=agent.split("-")[0], task=task, env_id=f"{task}-v5", variant=recipe.name,
        family=recipe.family, kind=recipe.kind, ratio=recipe.ratio, runtime="onnxruntime", episodes=10, seed=0,
        returns=returns, lengths=[length] * 10, return_mean=ret, return_std=float(np.std(returns, ddof=1)),
        return_ci95_lo=ret - half, return_ci95_hi=ret + half, baseline_return_mean=base, raw_ratio=ret / base,
        normalized_score=(ret - rand) / (base - rand), random_return_mean=rand, n_params=1000, threads=1,
        energy_source="estimate-cpu-time", energy_j_per_episode=metrics["energy_j_per_1k_actions"] * length / 1000,
        **metrics)


def agent_cells(agent, task, base=3000.0, quant=(0.99, 0.80, 0.90), keep=(0.30, 0.60), quant_res=None,
                prune_res=None, prune_length=1000):
    """A full synthetic grid for one agent.

    quant: PTDQ, PTSQ, QAT returns as a fraction of the baseline. keep: highest L1 / L2 ratio whose
    normalized score is 0.97; the next ratio scores 0.87 (keeps under the raw rule only when R_rand is
    large), the rest 0.3. quant_res / prune_res: resource factors vs fp32; prune_length: episode length.
    """
    rand = RANDOM[task]
    quant_res = quant_res or {"latency_us_p50": 0.8, "rss_running_mib": 1.02, "artifact_bytes": 0.27}
    prune_res = prune_res or {"rss_running_mib": 0.99}
    cells = [fake_cell(agent, task, "fp32", base, base, rand, {})]
    cells += [fake_cell(agent, task, q, base * f, base, rand, quant_res)
              for q, f in zip(("ptdq", "ptsq", "qat"), quant)]
    for p, k in zip((1, 2), keep):
        for r in PRUNE_RATIOS:
            score = 0.97 if r / 100 <= k else 0.87 if r / 100 <= k + 0.1 else 0.3
            factors = prune_res | {"artifact_bytes": 1 - r / 100}
            cells.append(fake_cell(agent, task, f"prune_l{p}_{r:02d}", rand + score * (base - rand), base, rand,
                                   factors, prune_length))
    return cells


def dataset(**overrides):
    """Three synthetic agents: PTDQ best twice, QAT once; L2 keeps more than L1; only sac-hopper keeps 90 %
    past 50 %."""
    spec = {"sac-hopper": dict(task="Hopper"),
            "td3-ant": dict(task="Ant", base=3400.0, keep=(0.30, 0.40)),
            "ppo-humanoidstandup": dict(task="HumanoidStandup", base=100_000.0, quant=(0.95, 0.90, 0.99),
                                        keep=(0.20, 0.40))}
    return [c for agent, kw in spec.items() for c in agent_cells(agent, **(kw | overrides))]


def run_findings(cells, rule="normalized"):
    paper = paper_results()
    return {f.key: f for f in findings(select_cells(cells, "onnxruntime", "test data", paper), paper, rule)}


def verdicts(cells, rule="normalized"):
    return {key: f.verdict for key, f in run_findings(cells, rule).items()}


def row(text, label, table_title):
    """The Markdown row of `label` inside the table under `table_title`."""
    section = text.split(table_title, 1)[1].split("\n## ", 1)[0]
    return next(line for line in section.splitlines() if line.startswith(f"| {label} |"))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    paths = write_report(dataset(), out)
    return paths, paths[0].read_text()


def test_report_writes_markdown_and_png_figures(report):
    paths, _ = report
    assert paths[0].name == "report.md"
    names = {p.name for p in paths[1:]}
    assert names == {"fig1_quantization.png", "fig2_prune_l1.png", "fig3_prune_l2.png", "fig_returns_vs_ratio.png",
                     "fig_frontier.png"}
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths[1:])


def test_importing_the_report_leaves_matplotlib_to_the_figures():
    code = "import sys, drlbench.report; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_table1_marks_our_best_and_the_papers_best(report):
    _, text = report
    cols = [c.strip() for c in row(text, "sac-hopper", "## Table 1").strip("|").split("|")]
    assert cols[1].startswith("3000.0 ± ") and cols[1].endswith("(n=10)")
    assert cols[2].startswith("**2970.0 ± ") and not cols[3].startswith("**") and not cols[4].startswith("**")
    assert cols[5:] == ["2539.05", "**3621.34**", "2525.01", "2998.79"]
    qat_best = row(text, "ppo-humanoidstandup", "## Table 1")
    assert "**99000.0 ± " in qat_best and "**28270.98**" not in qat_best and "**128155.96**" in qat_best


def test_agents_missing_from_the_store_are_shown_missing_with_the_papers_numbers(report):
    _, text = report
    assert row(text, "trpo-halfcheetah", "## Table 1") == (
        "| trpo-halfcheetah | missing | missing | missing | missing | 978.48 | **1004.65** | 909.52 | 287.94 |")
    assert "| trpo-halfcheetah | missing |" in row(text, "trpo-halfcheetah", "## Table 3")


def test_table2_shows_both_keep_rules_next_to_the_paper(report):
    _, text = report
    cols = [c.strip() for c in row(text, "ppo-humanoidstandup", "## Table 2").strip("|").split("|")]
    # normalized: L1 20 %, L2 40 %; raw also keeps the next ratio (R_rand is a third of the baseline)
    assert cols[3:7] == ["20 %", "40 %", "30 %", "50 %"]
    assert cols[7:] == ["128722.71", "117239.65", "10 %", "10 %"]
    assert cols[2].startswith("97990.0 ± ") and cols[2].endswith("(n=10), prune_l1_05")  # first of the ties


def test_table3_best_method_is_the_highest_kept_ratio(report):
    _, text = report
    assert row(text, "sac-hopper", "## Table 3").split("|")[2].strip() == "L2 60 %"
    assert row(text, "sac-hopper", "## Table 3").rstrip(" |").endswith("L2 20 %")  # the paper's Table 3


def test_energy_is_labelled_as_an_estimate_and_means_carry_n_and_ci(report):
    _, text = report
    assert "energy per action (ESTIMATE, not measured: estimate-cpu-time)" in text
    assert "(n=3)" in text and " ± " in text


def test_findings_on_the_default_data(report):
    _, text = report
    assert verdicts(dataset()) == {
        "ptdq_best": "agree", "ptsq_worst": "agree", "l2_over_l1": "agree", "memory_quantization": "agree",
        "memory_pruning": "agree", "energy_quantization": "agree", "energy_pruning": "agree",
        "lottery_ticket": "agree", "ppo_prunes_less": "not enough data", "l2_10_keeps": "agree",
        "int8_collapse": "not enough data"}
    assert "| 1 | PTDQ is the best quantization method (most often the highest return). | **agree** |" in text
    assert "best, paper Table 1: PTDQ 10/25 (40 %), PTSQ 6/25 (24 %), QAT 9/25 (36 %)" in text


def humanoids(quant, eq=None, mixed=None):
    """The paper's three collapsing Humanoid agents (its PTDQ and PTSQ below half the baseline's score), int8
    returns at `quant` × fp32; `eq` / `mixed`: PTDQ and PTSQ returns of the `*_eq` / `*_mixed` recipes as a
    fraction of fp32."""
    agents = ("ddpg-humanoid", "td3-humanoid", "sac-humanoid")
    cells = [c for agent in agents for c in agent_cells(agent, "Humanoid", base=5000.0, quant=quant)]
    for suffix, frac in (("_eq", eq), ("_mixed", mixed)):
        if frac is not None:
            cells += [fake_cell(agent, "Humanoid", f"{q}{suffix}", 5000.0 * frac, 5000.0, RANDOM["Humanoid"], {})
                      for agent in agents for q in ("ptdq", "ptsq")]
    return cells


@pytest.mark.parametrize("quant, eq, verdict, counted", [
    ((0.05, 0.10, 0.9), 0.97, "agree", ["with our cells: 6; collapsed here too: 6", "it lifts 6 above 0.50 and keeps ≥ 90 % on 6"]),
    ((0.05, 0.10, 0.9), 0.60, "agree", ["collapsed here too: 6", "it lifts 6 above 0.50 and keeps ≥ 90 % on 0"]),
    ((0.99, 0.95, 0.9), None, "disagree", ["collapsed here too: 0", "collapsed here: 0 of 0 have"]),
])
def test_int8_collapse_is_re_tested_cell_by_cell_with_the_equalized_recovery(quant, eq, verdict, counted):
    finding = run_findings(humanoids(quant, eq))["int8_collapse"]
    assert finding.verdict == verdict
    text = "\n".join(finding.evidence)
    assert all(c in text for c in counted), text
    assert "td3-humanoid PTDQ: paper 0.07, ours " in text


def test_int8_collapse_counts_what_the_first_layer_in_fp32_recovers():
    text = "\n".join(run_findings(humanoids((0.05, 0.10, 0.9), eq=0.3, mixed=0.95))["int8_collapse"].evidence)
    assert "input equalization on the cells collapsed here: 6 of 6 have a *_eq cell; it lifts 0 above 0.50" in text
    assert ("the first layer in fp32 on the cells collapsed here: 6 of 6 have a *_mixed cell; it lifts 6 above "
            "0.50 and keeps ≥ 90 % on 6") in text


def by_algorithm(ppo_keep, other_keep):
    """Six synthetic agents: three PPO ones keeping 90 % up to ppo_keep (L1 and L2), three others up to other_keep."""
    base = {"Hopper": 3000.0, "Ant": 3400.0, "HumanoidStandup": 100_000.0}
    agents = {"ppo-hopper": "Hopper", "ppo-ant": "Ant", "ppo-humanoidstandup": "HumanoidStandup",
              "sac-hopper": "Hopper", "td3-ant": "Ant", "trpo-humanoidstandup": "HumanoidStandup"}
    return [c for agent, task in agents.items()
            for c in agent_cells(agent, task, base=base[task], quant=(0.99, 0.5, 0.99),
                                 keep=(ppo_keep,) * 2 if agent.startswith("ppo") else (other_keep,) * 2)]


@pytest.mark.parametrize("ppo_keep, other_keep, verdict", [(0.05, 0.40, "agree"), (0.50, 0.10, "disagree"),
                                                           (0.30, 0.30, "inconclusive")])
def test_ppo_pruning_threshold_finding_follows_a_rank_test(ppo_keep, other_keep, verdict):
    finding = run_findings(by_algorithm(ppo_keep, other_keep))["ppo_prunes_less"]
    assert finding.verdict == verdict
    assert f"PPO {round(ppo_keep * 100)} % ({round(ppo_keep * 100)} % … " in finding.evidence[1]


def test_by_algorithm_table_counts_keeps_and_safe_ratios(tmp_path):
    text = write_report(by_algorithm(0.05, 0.40), tmp_path)[0].read_text()
    # PTDQ and QAT keep 99 % of the return, PTSQ half; L2 10 % keeps where 10 % <= keep
    assert row(text, "ppo", "## By algorithm").split(" | ")[1:] == [
        "3", "Ant, Hopper, HumanoidStandup", "1,000", "3 of 3", "0 of 3", "3 of 3", "0 of 3", "5 % (5 % … 5 %)",
        "5 % (5 % … 5 %) |"]
    assert row(text, "sac", "## By algorithm").split(" | ")[7:] == ["1 of 1", "40 % (40 % … 40 %)",
                                                                    "40 % (40 % … 40 %) |"]


def test_safe_ratio_is_correlated_with_actor_size_only_where_sizes_differ(tmp_path):
    cells = by_algorithm(0.05, 0.40)
    assert "Spearman" not in write_report(cells, tmp_path / "same")[0].read_text()  # every actor has 1,000
    for c in cells:  # the three agents that prune further get the bigger actors
        c.n_params = 1000 if c.agent.startswith("ppo") else 100_000
    text = write_report(cells, tmp_path / "wide")[0].read_text()
    rho, p = stats.spearmanr([1000] * 3 + [100_000] * 3, [0.05] * 3 + [0.40] * 3)
    assert f"Spearman ρ = {rho:.2f} (p = {p:.3f}, n = 6)" in text and rho == pytest.approx(1.0)


def test_l2_10_finding_disagrees_when_10_percent_fails():
    finding = run_findings(dataset(keep=(0.30, 0.05)))["l2_10_keeps"]
    assert finding.verdict == "disagree" and finding.evidence[0].startswith("prune_l2_10 keeps ≥ 90 % (normalized "
                                                                             "rule): 0 of 3; not: ")


def test_findings_flip_when_ptsq_is_best():
    got = verdicts(dataset(quant=(0.90, 0.99, 0.80)))
    assert got["ptdq_best"] == "disagree" and got["ptsq_worst"] == "disagree"


def test_findings_flip_when_l1_keeps_more_and_agents_survive_heavy_pruning():
    got = verdicts(dataset(keep=(0.70, 0.40)))
    assert got["l2_over_l1"] == "disagree" and got["lottery_ticket"] == "disagree"


def test_findings_flip_when_memory_and_energy_shrink():
    got = verdicts(dataset(quant_res={"rss_running_mib": 0.5}, prune_res={"energy_j_per_1k_actions": 0.6}))
    assert got["memory_quantization"] == "disagree" and got["energy_pruning"] == "disagree"
    assert got["memory_pruning"] == "agree"  # RSS of pruned cells left at fp32's


def test_energy_per_episode_drop_from_short_episodes_is_not_an_efficiency_gain():
    energy = run_findings(dataset(prune_length=500))["energy_pruning"]
    assert energy.verdict == "agree"  # per action, pruning costs what fp32 costs
    text = "\n".join(energy.evidence)
    assert "energy per episode ÷ fp32 (the paper's unit): 0.500 [0.500, 0.500] (n=3)" in text
    assert "per-action energy did not: 84 of 84" in text


def test_a_no_saving_claim_is_inconclusive_when_the_interval_allows_a_saving():
    cells = dataset()
    spread = {"sac-hopper": 0.7, "td3-ant": 1.0, "ppo-humanoidstandup": 1.3}  # mean 1.0, CI far below 0.95
    for c in cells:
        if c.family == "pruning":
            c.energy_j_per_1k_actions = FP32["energy_j_per_1k_actions"] * spread[c.agent]
    energy = run_findings(cells)["energy_pruning"]
    assert energy.verdict == "inconclusive"
    assert "variants whose per-action energy ratio over agents alone shows a saving: 0 of 28" in energy.evidence


def test_memory_finding_states_its_detection_limit(report):
    _, text = report
    # synthetic fp32: 100,000-byte model, 100 MiB RSS
    assert "detection limit: fp32's model file is 0.10 % of its process's RSS" in text


def test_an_isolated_kept_ratio_above_a_failing_one_is_shown_and_splits_the_readings(tmp_path):
    cells = dataset()
    for c in cells:  # L1 fails from 35 % on, then one lucky ratio: 65 % keeps again on every agent
        if c.kind == "prune_l1" and c.ratio == 0.65:
            c.normalized_score, c.raw_ratio = 0.95, 0.95
    sel_text = write_report(cells, tmp_path)[0].read_text()
    l1 = [col.strip() for col in row(sel_text, "sac-hopper", "## Table 2").strip("|").split("|")][3]
    assert l1 == "65 % (contiguous: 30 %)"
    table3 = [col.strip() for col in row(sel_text, "sac-hopper", "## Table 3").strip("|").split("|")]
    assert table3[1] == "L1 65 %" and table3[4] == "L2 60 %"  # the paper's reading vs the contiguous one
    got = run_findings(cells)["l2_over_l1"]
    assert got.verdict == "inconclusive"  # L1 under the paper's reading, L2 under the contiguous one
    assert any("contiguous reading" in e and "L2 3, L1 0" in e for e in got.evidence)


def test_paper_rows_no_better_than_random_are_flagged(report):
    _, text = report
    notes = text.split("## Data notes")[1]
    assert "ppo/Hopper 8.33 vs random 18.0" in notes and "trpo/Humanoid 74.49 vs random 118.0" in notes
    assert "sac/Hopper" not in notes


def test_undefined_scores_are_not_counted_as_failures(tmp_path):
    cells = dataset()
    for c in cells:
        if c.agent == "sac-hopper":
            c.normalized_score, c.random_return_mean = float("nan"), None  # no random-policy reference
    text = write_report(cells, tmp_path)[0].read_text()
    assert row(text, "ptdq", "## Summary").split(" | ")[1] == "2 of 2 (1 undefined)"
    assert row(text, "sac-hopper", "## Table 3").split(" | ")[1] == "n/a (score undefined)"
    for c in cells:
        c.normalized_score, c.random_return_mean = float("nan"), None
    got = verdicts(cells)
    assert got["lottery_ticket"] == "not enough data" and got["l2_over_l1"] == "not enough data"
    assert verdicts(cells, rule="raw")["l2_over_l1"] == "agree"


def test_other_runtimes_and_seed_groups_are_set_aside_and_noted():
    cells = dataset()
    extra = [dataclasses.replace(c, runtime="torch") for c in cells if c.variant == "fp32"]
    extra += [dataclasses.replace(c, seed=100) for c in cells if c.agent == "td3-ant" and c.variant == "ptdq"]
    sel = select_cells(cells + extra, "onnxruntime", "test data", paper_results())
    assert len(sel.cells) == len(cells)
    assert any("3 cells of other runtimes" in n for n in sel.notes)
    assert any(n.startswith("td3-ant: 1 cells with 10 episodes from seed 100 not shown") for n in sel.notes)


def test_one_agent_is_not_enough_data():
    cells = agent_cells("sac-hopper", "Hopper")
    assert set(verdicts(cells).values()) == {"not enough data"}


def test_missing_variants_are_shown_missing_not_invented(tmp_path):
    cells = [c for c in dataset() if not (c.agent == "sac-hopper" and c.variant == "ptsq")]
    with ResultStore(tmp_path / "r.sqlite") as store:
        for c in cells:
            store.put(c)
    text = write_report(tmp_path / "r.sqlite", tmp_path / "out")[0].read_text()
    line = row(text, "sac-hopper", "## Table 1")
    assert "| missing |" in line and "**" not in line.split("| 2539.05")[0]  # no best marked on partial data
    assert "sac-hopper: 1 of 32 paper-grid variants missing: ptsq" in text
    assert "agents with PTDQ, PTSQ and QAT cells: 2" in text


def test_summary_counts_agents_keeping_the_return_and_the_resource_ratios(report):
    _, text = report
    title = "## Summary"
    # PTDQ keeps 99 / 99 / 95 % of the raw return (ppo-humanoidstandup's 95 % is a 0.93 score, its random
    # return being large), PTSQ 80 / 80 / 90 %: none keeps 0.9 of the score; quantized latency is 0.8x fp32
    # (synthetic variants lose the same amount on every seed, so each loss is a paired drop)
    assert row(text, "ptdq", title).split(" | ")[1:6] == ["3 of 3", "3 of 3", "0.99 (0.93 … 0.99)",
                                                         "0.800 [0.800, 0.800] (n=3)", "0.270 [0.270, 0.270] (n=3)"]
    assert row(text, "ptsq", title).split(" | ")[1] == "0 of 3"
    # L2 keeps up to 60 % on sac-hopper and 40 % on the other two; the next ratio scores 0.87
    assert row(text, "prune_l2_50", title).split(" | ")[1:4] == ["1 of 3", "3 of 3", "0.87 (0.87 … 0.97)"]


def test_summary_counts_a_drop_only_when_the_paired_seeds_agree(tmp_path):
    cells = dataset()
    fp32 = {c.agent: c for c in cells if c.variant == "fp32"}
    for c in cells:
        if c.variant == "ptdq" and c.agent != "sac-hopper":  # noisy: -300 … +300 around fp32, seed by seed
            c.returns = [b + d for b, d in zip(fp32[c.agent].returns, np.linspace(-300, 300, 10))]
            c.return_mean = float(np.mean(c.returns))
    text = write_report(cells, tmp_path)[0].read_text()
    assert row(text, "ptdq", "## Summary").split(" | ")[2] == "1 of 3"


def test_resource_ratios_prefer_the_side_by_side_measurement(tmp_path):
    cells = dataset()
    for c in cells:  # timed beside fp32: half its latency and 0.6x its energy, whatever the cells' own numbers
        if c.variant == "prune_l1_05":
            c.latency_ratio_p50, c.energy_ratio = 0.5, 0.6
    text = write_report(cells, tmp_path)[0].read_text()
    assert row(text, "prune_l1_05", "## Summary").split(" | ")[4] == "0.500 [0.500, 0.500] (n=3)"
    assert row(text, "prune_l1_10", "## Summary").split(" | ")[4] == "1.000 [1.000, 1.000] (n=3)"  # cross-cell fallback
    energy = run_findings(cells)["energy_pruning"]
    assert "1 of 28 (prune_l1_05)" in "\n".join(energy.evidence)


def test_resource_ratios_average_geometrically_over_agents(tmp_path):
    cells = dataset()
    halves = {"sac-hopper": 0.5, "td3-ant": 2.0, "ppo-humanoidstandup": 1.0}  # arithmetic mean 1.17, geometric 1
    for c in cells:
        if c.variant == "prune_l1_05":
            c.latency_ratio_p50 = halves[c.agent]
    text = write_report(cells, tmp_path)[0].read_text()
    shown = row(text, "prune_l1_05", "## Summary").split(" | ")[4]
    logs = np.log(list(halves.values()))
    half = stats.t.ppf(0.975, 2) * logs.std(ddof=1) / math.sqrt(3)
    assert shown == f"1.000 [{math.exp(-half):.3f}, {math.exp(half):.3f}] (n=3)"  # symmetric in log space


def test_ratio_ci_leaves_out_ratios_that_are_not_positive():
    assert ratio_ci([0.0, -1.0, None, float("nan")]) is None
    stat = ratio_ci([0.25, 4.0, 0.0])
    assert stat.n == 2 and stat.mean == pytest.approx(1.0) and stat.lo * stat.hi == pytest.approx(1.0)


def test_sweep_cost_per_task_and_run_wall_time_come_from_the_store(tmp_path):
    cells = dataset()
    for c in cells:  # synthetic cell times: 2 s per Hopper cell, 5 s per Ant / HumanoidStandup cell
        c.cell_s, c.eval_s = (2.0, 1.5) if c.task == "Hopper" else (5.0, 4.0)
    with ResultStore(tmp_path / "r.sqlite") as store:
        run = store.start_run({"workers": 2, "agents": [], "variants": []},
                              machine={"cpu_count": 2, "load_1m": 2.04})  # two trainers were running
        for c in cells:
            store.put(c, run)
        store.finish_run(run, {"efficiency": 0.81, "physics_s": 700.0})
        store.start_run({"workers": 1, "agents": ["sac-hopper"], "variants": []}, machine={})  # killed; no load
    text = write_report(tmp_path / "r.sqlite", tmp_path / "out")[0].read_text()
    hopper = row(text, "Hopper", "## Sweep cost")
    assert hopper.split(" | ")[1:8] == ["1", "32", "320,000", "2.00", "2.00", "2.00", "64"]
    assert hopper.endswith("| 75% |")
    assert row(text, "all", "## Sweep cost").split(" | ")[2:4] == ["96", "960,000"]
    assert row(text, "1", "## Sweep cost").split(" | ")[1:5] == ["2", "2.0 of 2 cores", "all bundled", "paper grid"]
    assert row(text, "1", "## Sweep cost").endswith("| 0.81 |")  # the efficiency the sweep recorded
    assert row(text, "2", "## Sweep cost").split(" | ")[2] == "—" and row(text, "2", "## Sweep cost").endswith(
        "| unfinished | — |")
    assert "More workers, simulated (not measured)" in text


def test_scaling_simulation_replays_the_sweeps_scheduler():
    from drlbench.report.scaling import simulate

    cells = dataset()  # 3 agents × 32 cells
    for c in cells:
        c.cell_s = 10.0 if c.kind == "fp32" else 2.0
    total = 3 * 10.0 + 93 * 2.0
    one = simulate(cells, 1)
    assert one["wall_s"] == pytest.approx(total) and one["efficiency"] == pytest.approx(1.0)
    # 3 workers: the three fp32 leads in parallel (10 s), then 93 two-second cells on 3 workers (62 s)
    assert simulate(cells, 3)["wall_s"] == pytest.approx(10.0 + 62.0)
    # more workers than cells: the critical path (a lead, then one cell) is all that is left
    many = simulate(cells, 500)
    assert many["wall_s"] == pytest.approx(12.0) == pytest.approx(many["critical_s"])
    assert many["ideal_s"] == pytest.approx(total / 500) and many["efficiency"] < 0.1


def test_fp32_far_from_the_zoo_cards_torch_return_is_noted(tmp_path):
    from drlbench.zoo import load_agent

    card_mean = load_agent("trpo-hopper").card["evaluation"]["mean"]
    # synthetic: a bundled agent's fp32 20 % off its card, and an agent of the user's (no card to compare)
    cells = agent_cells("trpo-hopper", "Hopper", base=card_mean * 0.8) + agent_cells("mine-hopper", "Hopper")
    notes = write_report(cells, tmp_path)[0].read_text().split("## Data notes")[1]
    assert f"differ by more than 5 % for: trpo-hopper {card_mean * 0.8:.1f} vs {card_mean:.1f} — " in notes


def test_sweep_cost_of_untimed_cells_says_not_recorded(report):
    _, text = report
    assert "Not recorded: these cells come from a version of drlbench that did not time cells." in text


def test_empty_store_is_an_error(tmp_path):
    with ResultStore(tmp_path / "empty.sqlite") as store:
        with pytest.raises(DrlbenchError, match="store .*empty.sqlite has no finished cells; run drlbench sweep first"):
            write_report(store, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_rule_and_runtime_are_errors(tmp_path):
    with pytest.raises(DrlbenchError, match="unknown rule 'ratio'; accepted: normalized, raw"):
        write_report(dataset(), tmp_path, rule="ratio")
    with pytest.raises(DrlbenchError, match="unknown runtime 'tensorrt'; accepted: onnxruntime"):
        write_report(dataset(), tmp_path, runtime="tensorrt")


def test_paper_results_hold_all_25_cells_of_tables_1_to_3():
    paper = paper_results()
    assert paper["source"]["arxiv"] == "2407.04803"
    for table in ("table1", "table2", "table3"):
        assert sorted(paper[table]) == sorted(paper["algos"])
        assert all(list(paper[table][a]) == paper["tasks"] for a in paper["algos"])
    assert paper["table1"]["sac"]["Humanoid"]["ptdq"] == -84.51
    assert paper["table2"]["trpo"]["HumanoidStandup"] == {"baseline": 35281.42, "pruned": 42314.62,
                                                         "l1_ratio": 0.55, "l2_ratio": 0.6}
    assert paper["table3"]["trpo"]["HumanoidStandup"] == {"kind": "prune_l2", "ratio": 0.55}


def test_equalized_int8_cells_get_their_own_table_and_stay_out_of_the_papers(tmp_path, report):
    rand, base = RANDOM["Hopper"], 3000.0
    eq = [dataclasses.replace(fake_cell("sac-hopper", "Hopper", f"{q}_eq", base * f, base, rand, {}),
                              build={"input_equalization": {"equalized": True}})
          for q, f in (("ptdq", 1.0), ("ptsq", 0.5), ("qat", 0.95))]
    text = write_report(dataset() + eq, tmp_path)[0].read_text()
    line = row(text, "sac-hopper", "## Beyond the paper")
    assert line.split(" | ")[2:] == ["yes", "0.99 ↓", "1.00", "0.80 ↓", "0.50 ↓", "0.90 ↓", "0.95 ↓ |"]
    assert row(text, "sac-hopper", "## Table 1") == row(report[1], "sac-hopper", "## Table 1")  # paper tables unchanged
    assert "## Beyond the paper" not in report[1]  # no eq cells, no section


def test_mixed_precision_cells_get_their_own_table_beside_their_int8_recipe(tmp_path, report):
    rand, base = RANDOM["Hopper"], 3000.0
    mixed = [fake_cell("sac-hopper", "Hopper", f"{q}_mixed", base * f, base, rand, {"artifact_bytes": 0.6})
             for q, f in (("ptdq", 1.0), ("ptsq", 0.95))]
    text = write_report(dataset() + mixed, tmp_path)[0].read_text()
    line = row(text, "sac-hopper", "## Beyond the paper — int8 with the first layer in fp32")
    assert line.split(" | ")[2:] == ["0.99 ↓", "1.00", "0.60×", "0.80 ↓", "0.95 ↓", "0.60× |"]
    assert row(text, "sac-hopper", "## Table 1") == row(report[1], "sac-hopper", "## Table 1")  # paper tables unchanged
    assert "## Beyond the paper — int8 with the first layer in fp32" not in report[1]  # no mixed cells, no section
