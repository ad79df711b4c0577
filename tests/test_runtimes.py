"""The runtime package: ORT's fast call path, the registry's errors, the call floor, artifact verification,
and a store holding two runtimes' cells that the report shows side by side."""

import numpy as np
import pytest
import torch

from drlbench.errors import DrlbenchError
from drlbench.runtimes import OrtRunner, available, backend, install_hint
from drlbench.runtimes.floor import floor_runner
from drlbench.runtimes.verify import verify


@pytest.mark.parametrize("variant", ["fp32", "ptdq", "ptsq"])
@pytest.mark.parametrize("batch", [1, 10])
def test_ort_fast_path_gives_session_runs_actions(builder, variant, batch):
    runner = OrtRunner(builder.get(variant).onnx, builder.actor.obs_dim)
    states = builder.calibration_states()
    for i in range(0, 5 * batch, batch):  # buffers bound once per batch size are refilled each call
        obs = np.ascontiguousarray(states[i : i + batch])
        fast = runner.run(obs)
        assert fast.shape == (batch, builder.actor.act_dim)
        np.testing.assert_array_equal(fast, runner.run_session(obs))
    first = runner.run(states[:batch])
    runner.run(states[batch : 2 * batch])
    np.testing.assert_array_equal(first, runner.run_session(states[:batch]))  # a returned action is a copy


def test_unknown_runtime_names_the_accepted_ones():
    with pytest.raises(DrlbenchError, match=r"unknown runtime 'tensorrt'; accepted: torch, onnxruntime, litert"):
        backend("tensorrt")


@pytest.mark.parametrize("name", ["litert", "executorch"])
def test_a_missing_edge_runtime_says_how_to_install_it(name):
    if available(name):
        pytest.skip(f"{name} is installed here")
    with pytest.raises(DrlbenchError, match=rf"runtime '{name}' is not installed .*pip install .*drlbench\[{name}\]"):
        backend(name)
    assert f"drlbench[{name}]" in install_hint(name)


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_floor_model_has_the_actor_shapes_and_passes_the_input_through(runtime):
    runner = floor_runner(runtime, obs_dim=11, act_dim=3)
    obs = np.arange(22, dtype=np.float32).reshape(2, 11)
    np.testing.assert_array_equal(runner.run(obs), obs[:, :3])


class _Broken:
    """A runner whose artifact lost the squash and scrambled the output order: a broken conversion."""

    def __init__(self, actor):
        self.actor = actor

    def run(self, obs):
        with torch.inference_mode():
            return self.actor(torch.from_numpy(obs)).numpy()[:, ::-1] * 3.0


class _NaN(_Broken):
    def run(self, obs):
        return np.full((len(obs), self.actor.act_dim), np.nan, dtype=np.float32)


def test_verification_refuses_a_broken_fp32_conversion_and_records_int8_errors(builder):
    states, actor = builder.calibration_states(), builder.actor
    fp32 = verify(OrtRunner(builder.get("fp32").onnx, actor.obs_dim), actor, states, "fp32", what="fp32")
    assert fp32["max_err"] < 1e-5 and fp32["states"] == 256
    with pytest.raises(DrlbenchError, match=r"broken on onnx: the fp32 artifact disagrees .*accepted: 0.001"):
        verify(_Broken(actor), actor, states, "fp32", what="broken on onnx")
    ok = verify(OrtRunner(builder.get("ptsq").onnx, actor.obs_dim), actor, states, "static", what="ptsq")
    assert ok["r2"] > 0.9 and ok["within_tolerance"]
    # an int8 artifact far off (here: scrambled) is measured, not refused: the return gate judges it
    off = verify(_Broken(actor), actor, states, "static", what="scrambled int8")
    assert off["r2"] < 0 and not off["within_tolerance"]
    with pytest.raises(DrlbenchError, match=r"non-finite actions .*expected finite actions of shape \(256, 3\)"):
        verify(_NaN(actor), actor, states, "static", what="nan int8")


def test_every_built_variant_is_verified_before_it_runs(builder):
    runner = builder.get("ptdq").runner("onnxruntime")
    check = builder.get("ptdq").build["verified"]["onnxruntime"]
    assert runner.runtime == "onnxruntime" and check["within_tolerance"] and check["r2"] > 0.9


def test_one_store_holds_two_runtimes_and_the_report_sets_them_side_by_side(tmp_path, capsys):
    from drlbench.report import write_report
    from drlbench.store import ResultStore
    from drlbench.sweep import SweepArgs, sweep

    out = str(tmp_path / "s.db")
    common = dict(out=out, agents=["trpo-hopper"], variants=["fp32", "ptdq", "prune_l1_30"], episodes=2,
                  memory=False, energy=False, progress=False)
    sweep(SweepArgs(**common))
    summary = sweep(SweepArgs(**common, runtime="torch"))  # the same store: runtime is part of each cell's key
    assert summary["cells"] == 2 and "no torch form and are left out: ptdq" in capsys.readouterr().err
    with ResultStore(out, create=False) as store:
        cells = store.cells()
    assert sorted((c.runtime, c.variant) for c in cells) == [
        ("onnxruntime", "fp32"), ("onnxruntime", "prune_l1_30"), ("onnxruntime", "ptdq"),
        ("torch", "fp32"), ("torch", "prune_l1_30")]
    torch_fp32 = next(c for c in cells if c.runtime == "torch" and c.variant == "fp32")
    assert torch_fp32.latency_floor_us_p50 > 0 and torch_fp32.latency_ratio_ort_fp32_p50 > 0
    paths = write_report(out, tmp_path / "report")
    text = paths[0].read_text()
    assert "## Runtimes: where int8 pays" in text and "| trpo-hopper | 64 |" in text
    assert (tmp_path / "report" / "torch" / "report.md").exists()


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch", "litert", "executorch"])
def test_the_memory_probe_loads_the_file_each_runtime_writes(runtime):
    from drlbench.meters.memory import SUFFIXES

    if not available(runtime):
        pytest.skip(install_hint(runtime))
    assert backend(runtime).ARTIFACT.endswith(SUFFIXES[runtime])


@pytest.mark.parametrize("name, package", [("litert", "litert_torch"), ("executorch", "torchao")])
def test_an_extra_missing_one_package_is_named_with_the_install_command(monkeypatch, name, package):
    """Installed or not here: the runtime module is imported afresh with one of its packages hidden."""
    import importlib.util
    import sys

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda mod, *a: None if mod == package else real(mod, *a))
    monkeypatch.delitem(sys.modules, f"drlbench.runtimes.{name}", raising=False)
    with pytest.raises(DrlbenchError, match=rf"runtime '{name}' is not installed \(No module named '{package}'\); "
                                            rf'install it with: pip install -c constraints.txt "drlbench\[{name}\]"'):
        backend(name)
