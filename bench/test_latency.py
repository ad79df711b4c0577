"""Latency of every agent × variant, fp32 on the same runtime in the same group: batch 1 (a control
loop) and one call on `--latency-batch` states (vectorized envs, batched evaluation).

pytest-benchmark times `runner.run(obs)` (mean/median gate via --benchmark-compare-fail); our own
check gates the tail: the variant's p90 over the fp32 p90, measured side by side in this run, and
re-measured (up to 3 times) before a cell is called slower.
"""

import pytest


def _record(benchmark, stats, **extra):
    benchmark.extra_info.update(stats.to_extra_info() | extra)


def test_latency(benchmark, measurers, cell, budgets, expect):
    agent, variant = cell
    m = measurers(agent)
    runner = m.runner(variant)
    obs = m.observations()[:1]
    benchmark.group = f"{agent} latency onnxruntime batch=1"
    limit = budgets["latency_p90_ratio"]
    v, b, p90_ratio, p50_ratio, attempts = m.latency_confirmed(variant, limit)
    _record(benchmark, v, fp32_p90_us=b.p90_us, p90_ratio_vs_fp32=p90_ratio, p50_ratio_vs_fp32=p50_ratio,
            artifact_bytes=m.variant(variant).artifact_bytes, latency_attempts=attempts)
    benchmark(runner.run, obs)
    if variant == "fp32":
        return  # the reference of its group
    expect(agent, variant, "latency")
    assert p90_ratio <= limit, (f"{agent}/{variant}: p90 {v.p90_us:.1f} µs is {p90_ratio:.2f}× "
                                f"fp32's {b.p90_us:.1f} µs "
                                f"(budget {limit}×, onnxruntime, batch 1)")


def test_latency_batched(benchmark, measurers, cell, budgets, expect, pytestconfig):
    """One call on a batch of states: int8 GEMMs have more work to amortize their fixed costs over."""
    agent, variant = cell
    batch = pytestconfig.getoption("latency_batch")
    m = measurers(agent)
    obs = m.observations()  # conftest keeps --latency-batch within their number
    benchmark.group = f"{agent} latency onnxruntime batch={batch}"
    limit = budgets["latency_batched_p90_ratio"]
    v, b, p90_ratio, p50_ratio, attempts = m.latency_confirmed(variant, limit, batch=batch)
    _record(benchmark, v, fp32_p90_us=b.p90_us, p90_ratio_vs_fp32=p90_ratio, p50_ratio_vs_fp32=p50_ratio,
            p50_us_per_action=v.p50_us / batch, latency_attempts=attempts)
    benchmark(m.runner(variant).run, obs[:batch])
    if variant == "fp32":
        return
    expect(agent, variant, "latency_batched")
    assert p90_ratio <= limit, (f"{agent}/{variant}: p90 {v.p90_us:.1f} µs per {batch}-state call is "
                                f"{p90_ratio:.2f}× fp32's {b.p90_us:.1f} µs (budget {limit}×, onnxruntime)")


@pytest.mark.torch_runtime
def test_latency_torch(benchmark, measurers, cell, budgets, expect):
    """fp32 and pruned policies in torch eager: what a PyTorch user deploys without exporting."""
    agent, variant = cell
    m = measurers(agent)
    runner = m.runner(variant, "torch")
    benchmark.group = f"{agent} latency torch batch=1"
    limit = budgets["latency_p90_ratio"]
    v, b, p90_ratio, p50_ratio, attempts = m.latency_confirmed(variant, limit, runtime="torch")
    _record(benchmark, v, fp32_p90_us=b.p90_us, p90_ratio_vs_fp32=p90_ratio, p50_ratio_vs_fp32=p50_ratio,
            latency_attempts=attempts)
    benchmark(runner.run, m.observations()[:1])
    if variant == "fp32":
        return
    expect(agent, variant, "latency")
    assert p90_ratio <= limit, f"{agent}/{variant} (torch): p90 {p90_ratio:.2f}× fp32's (budget {limit}×)"


def test_runtime_onnxruntime_vs_torch(measurers, agent_id, budgets, expect, record_property):
    """ONNX Runtime fp32 against torch eager fp32, the same actor, side by side."""
    m = measurers(agent_id)
    ort, torch_, _, p50_ratio = m.latency("fp32", runtime="onnxruntime", baseline_runtime="torch")
    record_property("ort_fp32_p50_us", ort.p50_us)
    record_property("torch_fp32_p50_us", torch_.p50_us)
    expect(agent_id, "fp32", "runtime")
    limit = budgets["ort_vs_torch_fp32"]
    assert p50_ratio <= limit, (f"{agent_id}: ONNX Runtime fp32 p50 {ort.p50_us:.1f} µs is "
                                f"{p50_ratio:.2f}× torch eager's "
                                f"{torch_.p50_us:.1f} µs (budget {limit}×)")
