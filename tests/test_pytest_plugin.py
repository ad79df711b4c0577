"""The pytest plugin, tested the way pytest-benchmark tests its own: pytester runs pytest in a throw-away
project in a temp folder outside this repository, with the plugin loaded from its `pytest11` entry point.

The project's policies are made here the way users make them: an SB3 SAC model saved with `model.save`
(sac-hopper's trained weights copied in, so its returns mean something), the same actor exported to ONNX
by SB3's export-guide recipe, and an int8 copy made by the user's own pipeline (ORT quantize_dynamic).
"""

import re
import sys

import pytest

pytest_plugins = ["pytester"]

GATES = ["--drlbench-task", "Hopper-v5", "--drlbench-trust-pickle", "--drlbench-episodes", "2",
         "-p", "no:randomly"]


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    """policy.zip (SB3), policy.onnx (SB3 export guide), policy_int8.onnx (the user's own quantization)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from stable_baselines3 import SAC

    from drlbench.zoo import load_agent

    folder = tmp_path_factory.mktemp("policies")
    trained = load_agent("sac-hopper").actor
    model = SAC("MlpPolicy", "Hopper-v5", seed=0, device="cpu", policy_kwargs=dict(net_arch=trained.hidden))
    src = [m for m in trained.body if isinstance(m, torch.nn.Linear)] + [trained.head]
    dst = [m for m in model.policy.actor.latent_pi if isinstance(m, torch.nn.Linear)] + [model.policy.actor.mu]
    with torch.no_grad():
        for d, s in zip(dst, src, strict=True):
            d.weight.copy_(s.weight)
            d.bias.copy_(s.bias)
    model.save(folder / "policy.zip")

    class OnnxableSB3Policy(torch.nn.Module):  # SB3's export guide, verbatim in spirit
        def __init__(self, actor):
            super().__init__()
            self.actor = actor

        def forward(self, observation):
            return self.actor(observation, deterministic=True)

    torch.onnx.export(OnnxableSB3Policy(model.policy.actor), torch.zeros(1, 11), str(folder / "policy.onnx"),
                      input_names=["input"], dynamic_axes={"input": {0: "batch"}}, opset_version=17, dynamo=False)
    quantize_dynamic(str(folder / "policy.onnx"), str(folder / "policy_int8.onnx"), weight_type=QuantType.QInt8)
    return folder


@pytest.fixture
def project(pytester, policies):
    for name in ("policy.zip", "policy.onnx", "policy_int8.onnx"):
        (pytester.path / name).write_bytes((policies / name).read_bytes())
    return pytester


def outcomes(result) -> dict:
    return result.parseoutcomes()


def test_builtin_gates_pass_on_a_faithful_variant_and_fail_on_a_broken_one(project):
    """No test file of the user's: the gates are collected from the plugin; a broken variant fails the run
    (exit 1) with both numbers; the summary names the variant to ship."""
    result = project.runpytest_subprocess("--drlbench-agent", "policy.zip", "--drlbench-variants",
                                          "fp32,ptdq,prune_l2_35", "-k", "return or artifact", *GATES)
    assert result.ret == 1, result.stdout.str()
    out = result.stdout.str()
    assert re.search(r"test_return\[policy-ptdq\] PASSED|test_return\[policy-ptdq\]", out)
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "test_return[policy-prune_l2_35]" in failed[0], failed
    assert re.search(r"return -?[\d.]+ vs fp32 [\d.]+ on the same 2 seeds", out)  # both numbers in the message
    assert outcomes(result)["passed"] == 5  # fp32 return + artifact, ptdq return + artifact, prune artifact
    assert "recommended (size): ptdq" in out and "Pareto front, return kept vs bytes" in out


def test_a_mixed_precision_variant_is_held_to_its_own_artifact_gate_not_int8s(project):
    """ptdq_mixed's file is ~0.7x fp32's on a wide first layer, far above int8's 0.30 budget: its gate checks
    that exactly the first layer stayed fp32 instead."""
    result = project.runpytest_subprocess("--drlbench-agent", "policy.zip", "--drlbench-variants", "fp32,ptdq_mixed",
                                          "-k", "artifact", "-v", *GATES)
    assert result.ret == 0, result.stdout.str()
    assert outcomes(result)["passed"] == 2 and "test_artifact[policy-ptdq_mixed] PASSED" in result.stdout.str()


def test_k_selects_cells_by_agent_and_variant(project):
    result = project.runpytest_subprocess("--drlbench-agent", "policy.zip", "--collect-only", "-q", "-k", "ptdq",
                                          *GATES)
    ids = [line for line in result.stdout.lines if "::" in line]
    assert ids and all("policy-ptdq" in line for line in ids), ids
    names = {line.split("::")[1].split("[")[0] for line in ids}
    assert {"test_return", "test_latency", "test_artifact", "test_memory", "test_energy"} <= names


def test_autosave_then_compare_against_the_projects_own_benchmarks(project):
    args = ["--drlbench-agent", "policy.onnx", "--drlbench-variants", "ptdq", "-k", "test_latency and not batched",
            *GATES]
    first = project.runpytest_subprocess(*args, "--benchmark-autosave")
    assert first.ret == 0, first.stdout.str()
    saved = list((project.path / ".benchmarks").rglob("*.json"))
    assert len(saved) == 1 and "policy-ptdq" in saved[0].read_text()
    second = project.runpytest_subprocess(*args, "--benchmark-compare")
    assert second.ret == 0, second.stdout.str()
    assert "Comparing against benchmarks from" in second.stdout.str() + second.stderr.str()


def test_reference_is_the_baseline_of_a_candidate_compressed_by_the_users_own_pipeline(project):
    """Candidate policy_int8.onnx (not an actor drlbench can rebuild: measured as it is) against the
    reference policy.zip, on the same paired seeds."""
    result = project.runpytest_subprocess("--drlbench-agent", "policy_int8.onnx", "--drlbench-reference",
                                          "policy.zip", "-k", "return or artifact", "-v", *GATES)
    out = result.stdout.str()
    assert result.ret == 0, out
    assert "test_return[policy_int8-as_is] PASSED" in out and "test_artifact[policy_int8-as_is] PASSED" in out
    assert "against the reference" in out


def test_an_unrelated_suite_runs_as_before_and_imports_nothing_heavy(pytester):
    pytester.makepyfile(test_mine="""
        import sys

        def test_arithmetic():
            assert 1 + 1 == 2

        def test_no_heavy_import():
            heavy = {"torch", "onnxruntime", "gymnasium", "drlbench.cells"} & set(sys.modules)
            assert not heavy, heavy
    """)
    with_plugin = pytester.runpytest_subprocess("-v")
    without = pytester.runpytest_subprocess("-v", "-p", "no:drlbench")
    assert with_plugin.ret == without.ret == 0
    assert outcomes(with_plugin) == outcomes(without) == {"passed": 2}
    assert "drlbench" not in with_plugin.stdout.str().split("=" * 10)[-1]  # no summary section of ours


@pytest.mark.parametrize("args, message", [
    (["--drlbench-agent", "nope-hopper"], "no such bundled agent, folder or file"),
    (["--drlbench-agent", "policy.onnx"], "needs --drlbench-task"),
    (["--drlbench-agent", "policy.zip", "--drlbench-task", "Hopper-v5"], "--trust-pickle"),
    (["--drlbench-agent", "trpo-hopper", "--drlbench-reference", "trpo-ant"],
     "a reference must act in the same env with the same spaces"),
    (["--drlbench-agent", "policy.onnx", "--drlbench-task", "Hopper-v5", "--drlbench-reference", "trpo-ant"],
     "--drlbench-reference trpo-ant acts in Ant-v5, but --drlbench-task says Hopper-v5"),
    (["--drlbench-agent", "policy.onnx", "--drlbench-task", "Hopper-v5", "--drlbench-variants", "int3"],
     "unknown variant"),
    (["--drlbench-agent", "trpo-hopper", "--drlbench-episodes", "0"], "--drlbench-episodes must be >= 1"),
])
def test_bad_input_is_a_usage_error_before_anything_is_built(project, args, message):
    result = project.runpytest_subprocess(*args, "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str(), result.stderr.str()


def test_plugin_module_is_import_light():
    import subprocess

    code = ("import sys, drlbench.pytest_plugin.plugin, drlbench.pytest_plugin.fixtures; "
            "print(sorted({'torch', 'onnxruntime', 'gymnasium', 'numpy'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
