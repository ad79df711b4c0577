"""Memory: the artifact (bytes, parameter count) and peak RSS of loading and running the policy in a
fresh process. Two tests, so an expected miss of one check (budgets.toml) never hides the other."""

from drlbench.compress.prune import expected_hidden, mlp_params

FP32_FILE_OVERHEAD = 64 * 1024  # graph, names and normalization constants around the fp32 weights


def test_artifact(measurers, cell, budgets, expect):
    agent, variant = cell
    m = measurers(agent)
    v, base = m.variant(variant), m.variant("fp32")
    if v.recipe.family == "quantization":  # ptdq, ptsq, qat and their input-equalized forms
        expect(agent, variant, "artifact")
        limit = budgets["int8_artifact_ratio"]
        ratio = v.artifact_bytes / base.artifact_bytes
        assert ratio <= limit, (f"{agent}/{variant}: int8 artifact {v.artifact_bytes:,} B is {ratio:.2f}× fp32's "
                                f"{base.artifact_bytes:,} B (budget {limit}×)")
    elif v.recipe.ratio is not None:
        a = m.agent.actor
        want = mlp_params(a.obs_dim, expected_hidden(a.hidden, v.recipe.ratio), a.act_dim)
        assert v.n_params == want, f"{agent}/{variant}: {v.n_params} parameters, {want} implied by the ratio"
        assert v.artifact_bytes < base.artifact_bytes
    else:
        # The fp32 export holds every weight as 4 bytes, plus a small graph: nothing dropped or re-typed.
        weights = 4 * m.agent.actor.n_params()
        assert weights <= v.artifact_bytes <= weights + FP32_FILE_OVERHEAD, (
            f"{agent}/fp32: ONNX file {v.artifact_bytes:,} B for {weights:,} B of fp32 weights")


def test_memory(benchmark, measurers, cell, budgets, expect):
    agent, variant = cell
    m = measurers(agent)
    v, base = m.variant(variant), m.variant("fp32")
    benchmark.group = f"{agent} memory probe (fresh process)"
    mem = benchmark.pedantic(m.memory, args=(variant,), rounds=1, iterations=1)
    benchmark.extra_info.update(mem.to_extra_info())
    benchmark.extra_info.update(artifact_bytes=v.artifact_bytes, fp32_artifact_bytes=base.artifact_bytes,
                                artifact_ratio=v.artifact_bytes / base.artifact_bytes, n_params=v.n_params)
    # A compressed policy must not cost more memory than fp32 where it runs (the paper: it saves none).
    rss_ratio = mem.rss_running_mib / m.memory("fp32").rss_running_mib
    benchmark.extra_info["rss_running_ratio_vs_fp32"] = rss_ratio
    if variant == "fp32":
        return
    expect(agent, variant, "memory")
    limit = budgets["rss_running_ratio"]
    assert rss_ratio <= limit, (f"{agent}/{variant}: peak RSS while running {mem.rss_running_mib:.1f} MiB is "
                                f"{rss_ratio:.3f}× fp32's (budget {limit}×)")
