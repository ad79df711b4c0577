"""The optional edge runtimes (LiteRT, ExecuTorch; XNNPACK both): every mode builds, runs at any batch
size, and agrees with the float actor it was built from. Skipped, with the install command, without the extra.

The agent is the suite's (conftest.TEST_AGENT, trpo-hopper, 64x64 tanh): calibrated on 768 rollout states,
checked on 256 others. Tolerances and what they leave (errors in units of each dimension's range high - low):
    fp32   max 1e-4 absolute   measured 8e-7 (float rounding)
    int8   max 0.2, mean 0.03  measured max 0.025 dynamic, 0.081 static LiteRT, 0.076 static ExecuTorch;
                               mean 0.004 / 0.013 / 0.012 (a calibration on other states: max 0.12)
A broken conversion (a lost bias, transposed weights, a wrong squash) is off by tens of % on average.
Not td3-hopper: its 400x300 actor is itself fragile under int8 (single states off by 0.8-0.97 of the range
on both runtimes, and on ONNX Runtime's PTDQ/PTSQ too), so no tolerance there separates noise from a
broken conversion.
"""

import os
import re
import sys

import numpy as np
import pytest
import torch

from drlbench.errors import DrlbenchError
from drlbench.runtimes import available, backend, install_hint
from drlbench.runtimes.floor import floor_runner

EDGE = ("litert", "executorch")
MODES = ("fp32", "dynamic", "static")
CALIBRATION, CHECK = 768, 256  # rollout states: the first calibrate, the next are the check's
FP32_TOL = 1e-4  # max abs
INT8_MAX, INT8_MEAN = 0.2, 0.03  # as fractions of each action dimension's range


def _runtime(name):
    if not available(name):
        pytest.skip(f"{name} is not installed: {install_hint(name)}")
    return backend(name)


@pytest.fixture(scope="module")
def states(builder):
    s = builder.calibration_states()
    return s[:CALIBRATION], np.ascontiguousarray(s[CALIBRATION : CALIBRATION + CHECK])


@pytest.fixture(scope="module")
def artifact(agent, states):
    """Built artifacts by (runtime, mode), each built once for the module."""
    cache = {}

    def get(name, mode):
        if (name, mode) not in cache:
            cache[name, mode] = _runtime(name).build(agent.actor, mode, states[0])
        return cache[name, mode]

    return get


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", EDGE)
def test_edge_runner_matches_the_float_actor_at_any_batch(name, mode, agent, states, artifact):
    actor, obs = agent.actor, states[1]
    runner = _runtime(name).Runner(artifact(name, mode), actor.obs_dim, threads=1)
    assert (runner.runtime, runner.threads, runner.obs_dim) == (name, 1, actor.obs_dim)
    with torch.inference_mode():
        ref = actor(torch.from_numpy(obs)).numpy()
    one = np.concatenate([runner.run(obs[i : i + 1]) for i in range(len(obs))])
    # batches of 10 and a last one of 6: the runner follows each change of batch size
    ten = np.concatenate([runner.run(obs[i : i + 10]) for i in range(0, len(obs), 10)])
    assert one.shape == ref.shape and one.dtype == np.float32
    np.testing.assert_allclose(ten, one, rtol=0, atol=1e-6)
    if mode == "fp32":
        assert np.abs(one - ref).max() <= FP32_TOL
    else:
        err = np.abs(one - ref) / (actor.action_high - actor.action_low).numpy()
        assert err.max() <= INT8_MAX and err.mean() <= INT8_MEAN
    assert runner.act(obs[0]).shape == (1, actor.act_dim)  # the checked path takes one observation too


@pytest.mark.parametrize("name", EDGE)
def test_edge_call_floor_runner_passes_observations_through_at_any_batch(name):
    """The latency meter's floor model (runtimes/floor.py) through the same runner: LiteRT converts its
    slice with batch-1 bounds, so its runner goes row by row rather than return one row."""
    _runtime(name)
    runner = floor_runner(name, 11, 3)
    obs = np.arange(33, dtype=np.float32).reshape(3, 11)
    for batch in (1, 3, 2):
        np.testing.assert_array_equal(runner.run(obs[:batch]), obs[:batch, :3])


@pytest.mark.parametrize("name", EDGE)
def test_edge_runner_output_is_the_callers(name, agent, states, artifact):
    """The returned actions are a copy, not the runtime's buffer that the next call overwrites."""
    runner = _runtime(name).Runner(artifact(name, "fp32"), agent.actor.obs_dim)
    obs = states[1]
    first = runner.run(obs[:1])
    kept = first.copy()
    runner.run(obs[1:2])
    np.testing.assert_array_equal(first, kept)


@pytest.mark.parametrize("name", EDGE)
def test_edge_build_names_a_bad_mode_and_a_missing_calibration(name, agent):
    rt = _runtime(name)
    with pytest.raises(DrlbenchError, match=r"unknown .*mode 'int4'; accepted: fp32, dynamic, static"):
        rt.build(agent.actor, "int4", None)
    with pytest.raises(DrlbenchError, match="calibration"):
        rt.build(agent.actor, "static", None)


@pytest.mark.parametrize("name", EDGE)
def test_backend_gives_the_runtime_module(name):
    rt = _runtime(name)
    assert rt.NAME == name and rt.EXTRA == name and rt.MODES == MODES
    assert rt.ARTIFACT == {"litert": "model.tflite", "executorch": "model.pte"}[name]


@pytest.mark.parametrize("name,package", [("litert", "litert_torch"), ("executorch", "torchao")])
def test_backend_without_its_extra_says_how_to_install_it(name, package, monkeypatch):
    monkeypatch.setitem(sys.modules, package, None)  # find_spec now reports it missing
    monkeypatch.delitem(sys.modules, f"drlbench.runtimes.{name}", raising=False)
    with pytest.raises(DrlbenchError, match=f"not installed.*{package}.*" + re.escape(install_hint(name))):
        backend(name)
    assert not available(name)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
@pytest.mark.parametrize("name", EDGE)
def test_edge_runner_adds_no_thread_at_one_thread(name, agent, states, artifact):
    blob = artifact(name, "dynamic")
    before = len(os.listdir("/proc/self/task"))
    runner = _runtime(name).Runner(blob, agent.actor.obs_dim, threads=1)
    runner.run(states[1][:10])
    # ExecuTorch's pool starts at the core count: the runner shrinks it, so the count can drop
    assert len(os.listdir("/proc/self/task")) <= before


def test_a_litert_build_leaves_jax_in_the_mode_it_found(agent):
    """litert_torch's import turns JAX's 64-bit mode on process-wide; sbx (JAX) training and import in the
    same process need it as it was."""
    if not available("litert"):
        pytest.skip(install_hint("litert"))
    import jax

    before = jax.config.jax_enable_x64
    backend("litert").build(agent.actor, "fp32")
    assert jax.config.jax_enable_x64 == before
