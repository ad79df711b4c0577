"""The built-in gates: one test per gate, run for every agent × variant (ids `<agent>-<variant>`).

Collected with no test file of the user's when --drlbench-agent is given; this repository's bench/
imports the same functions. Each test measures through the library (CellMeasurer), records the figures
in pytest-benchmark's extra_info, and asserts a pure verdict from drlbench.gates: the gate logic is the
library's, here only measuring and asserting. Budgets are relative to the baseline measured in the same
run: the agent's own fp32, or the --drlbench-reference policy's.

    test_return        the 90 %-of-baseline rule on paired seeds (fp32 without a reference: ONNX vs torch parity)
    test_latency       batch-1 p90 over the baseline's, side by side; test_latency_batched, test_latency_torch
    test_artifact      int8 bytes, pruned parameter count, fp32 file size
    test_memory        peak RSS of a fresh process running the policy
    test_energy        energy per 1,000 actions (RAPL or NVML, else a labelled CPU-time estimate)
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from drlbench import gates


def _own_baseline(cell) -> bool:
    """fp32 measured against itself: no ratio to take, its own sanity checks instead."""
    return cell.name == "fp32" and cell.measurer.reference is None


def test_return(benchmark, drlbench_cell, drlbench_budgets, drlbench_gate):
    from drlbench.evaluate import paired_difference

    c, m = drlbench_cell, drlbench_cell.measurer
    benchmark.group = f"{c.label} evaluation ({m.config.episodes} episodes)"
    result = benchmark.pedantic(m.evaluation, args=(c.recipe,), rounds=1, iterations=1)
    lo, hi = result.ci95
    benchmark.extra_info.update(return_mean=result.mean, return_std=result.std, return_ci95=[lo, hi],
                                returns=result.returns, lengths=result.lengths, seeds=result.seeds)
    if c.name == "fp32":
        # compared action by action: returns would amplify float rounding through 1,000 chaotic steps
        benchmark.extra_info["torch_return_mean"] = m.evaluation("fp32", runtime="torch").mean
        obs = m.observations()
        gap = float(np.abs(m.runner("fp32").run(obs) - m.runner("fp32", "torch").run(obs)).max())
        drlbench_gate(gates.parity_gate(gap, len(obs)), benchmark)
        if _own_baseline(c):
            return
    paired = None
    if result.n >= 2:  # per-seed R_v - R_base: whether the seeds agree on a drop, whatever the gate says
        paired = paired_difference(result.returns, m.baseline.evaluation("fp32").returns)
        benchmark.extra_info.update(paired_diff_mean=paired[0], paired_diff_ci95=list(paired[1:]))
    drlbench_gate(gates.return_gate(m.return_scores(c.recipe), drlbench_budgets["return_threshold"],
                                    rule=drlbench_budgets["return_rule"], expectation=c.expectation("return"),
                                    n=result.n, paired=paired), benchmark)


def _gate_latency(benchmark, cell, budgets, gate_check, *, check, budget, runtime=None, batch=1):
    m = cell.measurer
    runtime = runtime or m.config.runtime
    benchmark.group = f"{cell.label} latency {runtime} batch={batch}"
    benchmark(m.runner(cell.recipe, runtime).run, m.observations()[:batch])
    if _own_baseline(cell):  # the reference of its group: measured alone, and it must be a real number
        cmp = m.compare(cell.recipe, baseline=None, runtime=runtime, batch=batch, meters=("latency",))
        gate_check(gates.measured("latency", cmp.variant), benchmark)
        return
    gate = partial(gates.latency_gate, budget=budgets[budget], check=check, expectation=cell.expectation(check))
    cmp = m.compare(cell.recipe, runtime=runtime, batch=batch, meters=("latency",), confirm=gate)
    gate_check(gates.measured("latency", cmp.variant | {f"baseline_{k}": v for k, v in cmp.baseline.items()}),
               benchmark)
    gate_check(gate(cmp), benchmark)


def test_latency(benchmark, drlbench_cell, drlbench_budgets, drlbench_gate):
    _gate_latency(benchmark, drlbench_cell, drlbench_budgets, drlbench_gate, check="latency",
                  budget="latency_p90_ratio")


def test_latency_batched(benchmark, drlbench_cell, drlbench_budgets, drlbench_gate, drlbench_session):
    """One call on a batch of states: int8 GEMMs have more work to amortize their fixed costs over."""
    _gate_latency(benchmark, drlbench_cell, drlbench_budgets, drlbench_gate, check="latency_batched",
                  budget="latency_batched_p90_ratio", batch=drlbench_session.options.latency_batch)


@pytest.mark.torch_runtime
def test_latency_torch(benchmark, drlbench_cell, drlbench_budgets, drlbench_gate):
    """fp32 and pruned policies in torch eager: what a PyTorch user deploys without exporting."""
    if drlbench_cell.measurer.reference is not None:
        pytest.skip("a reference policy runs on ONNX Runtime; torch eager is gated against the agent's own fp32")
    _gate_latency(benchmark, drlbench_cell, drlbench_budgets, drlbench_gate, check="latency_torch",
                  budget="latency_p90_ratio", runtime="torch")


def test_runtime_onnxruntime_vs_torch(drlbench_session, drlbench_agent_label, drlbench_budgets, drlbench_gate):
    """ONNX Runtime fp32 against torch eager fp32, the same actor, side by side: the p50 ratio."""
    if drlbench_session.agent(drlbench_agent_label).as_is is not None:
        pytest.skip("a policy file measured as it is has no torch form")
    m = drlbench_session.measurer(drlbench_agent_label)
    gate = partial(gates.latency_gate, budget=drlbench_budgets["ort_vs_torch_fp32"], figure="latency_us_p50",
                   check="runtime", expectation=drlbench_budgets.expectation(m.agent.id, "fp32", "runtime"))
    own = m.reference
    m.reference = None  # the agent's own actor on both runtimes, whatever the run's reference
    try:
        cmp = m.compare("fp32", baseline="fp32", runtime="onnxruntime", baseline_runtime="torch",
                        meters=("latency",), confirm=gate)
    finally:
        m.reference = own
    drlbench_gate(gates.measured("latency", cmp.variant | {f"torch_{k}": v for k, v in cmp.baseline.items()}))
    drlbench_gate(gate(cmp))


def test_artifact(drlbench_cell, drlbench_budgets, drlbench_gate):
    from drlbench.compress.prune import expected_hidden, mlp_params
    from drlbench.compress.ptq import weight_types
    from drlbench.variants import INPUT_KIND, LOWBIT_KIND, MIXED_VARIANTS

    c, m = drlbench_cell, drlbench_cell.measurer
    v, base = c.variant, m.baseline.variant("fp32")
    if c.recipe.kind == INPUT_KIND:  # only the input quantized: the fp32 weights and a few float ops
        drlbench_gate(gates.fp32_size_gate(v.artifact_bytes, m.agent.actor.n_params()))
    elif c.recipe.kind == LOWBIT_KIND:  # 2-4-bit or fp16: not int8's budget; the payload's size is exact
        from drlbench.compress.lowbit import packed_size

        drlbench_gate(gates.packed_size_gate(len(v.packed), packed_size(m.agent.actor, c.recipe.name),
                                             v.artifact_bytes, base.artifact_bytes))
    elif c.recipe.kind in MIXED_VARIANTS:  # the first layer in fp32: not int8's budget; its bytes follow
        a = m.agent.actor
        drlbench_gate(gates.mixed_size_gate(weight_types(v.onnx), tuple(a.first_layer.weight.shape),
                                            len(a.hidden) + 1, v.artifact_bytes, base.artifact_bytes))
    elif c.recipe.family in ("quantization", "as_is"):  # int8 (ptdq, ptsq, qat, *_eq) or the user's own file
        drlbench_gate(gates.artifact_gate(v.artifact_bytes, base.artifact_bytes, drlbench_budgets["int8_artifact_ratio"],
                                          expectation=c.expectation("artifact")))
    elif c.recipe.family in ("pruning", "combined"):  # combined: the pruned parameter count, then int8
        a = m.agent.actor
        implied = mlp_params(a.obs_dim, expected_hidden(a.hidden, c.recipe.ratio), a.act_dim)
        drlbench_gate(gates.pruned_size_gate(v.n_params, implied, v.artifact_bytes, base.artifact_bytes))
    else:
        drlbench_gate(gates.fp32_size_gate(v.artifact_bytes, m.agent.actor.n_params()))


def test_memory(benchmark, drlbench_cell, drlbench_budgets, drlbench_gate):
    c, m = drlbench_cell, drlbench_cell.measurer
    v = c.variant
    benchmark.group = f"{c.label} memory probe (fresh process)"
    mem = benchmark.pedantic(m.memory, args=(c.recipe,), rounds=1, iterations=1)
    benchmark.extra_info.update(mem.to_extra_info() | {"artifact_bytes": v.artifact_bytes, "n_params": v.n_params})
    stages = {k: getattr(mem, k) for k in ("rss_runtime_mib", "rss_loaded_mib", "rss_running_mib")}
    drlbench_gate(gates.measured("memory", stages), benchmark)
    assert mem.rss_runtime_mib <= mem.rss_loaded_mib <= mem.rss_running_mib, f"peaks must only grow: {stages}"
    if _own_baseline(c):
        return  # the reference: measured, finite, its stages in order
    # A compressed policy must not cost more memory than its baseline where it runs (the paper: it saves none).
    drlbench_gate(gates.memory_gate(mem.rss_running_mib, m.baseline.memory("fp32").rss_running_mib,
                                    drlbench_budgets["rss_running_ratio"], expectation=c.expectation("memory")),
                  benchmark)


def test_energy(benchmark, drlbench_cell, drlbench_budgets, drlbench_gate):
    """Energy per 1,000 batch-1 actions: RAPL where readable, else an estimate from CPU time, labelled
    (`energy_source` in extra_info); measured beside the baseline in alternating blocks, like latency."""
    c, m = drlbench_cell, drlbench_cell.measurer
    benchmark.group = f"{c.label} energy per 1k actions"
    if _own_baseline(c):  # measured alone: a real number, from a named meter
        cmp = benchmark.pedantic(m.compare, args=(c.recipe,), kwargs=dict(baseline=None, meters=("energy",)),
                                 rounds=1, iterations=1)
        drlbench_gate(gates.measured("energy", cmp.variant), benchmark)
        assert cmp.energy_source, "energy without the meter it came from"
        return
    gate = partial(gates.energy_gate, budget=drlbench_budgets["energy_ratio"], expectation=c.expectation("energy"))
    cmp = benchmark.pedantic(m.compare, args=(c.recipe,), kwargs=dict(meters=("energy",), confirm=gate),
                             rounds=1, iterations=1)
    drlbench_gate(gates.measured("energy", cmp.variant | {f"baseline_{k}": v for k, v in cmp.baseline.items()}),
                  benchmark)
    drlbench_gate(gate(cmp), benchmark)
