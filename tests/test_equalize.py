"""Input equalization (`*_eq` variants): the fp32 function is kept, int8 error on raw observations shrinks."""

import numpy as np
import pytest
import torch

from drlbench.actor import Actor
from drlbench.compress import onnx_export, ptq
from drlbench.compress.equalize import equalize_input
from drlbench.errors import DrlbenchError
from drlbench.runtimes import OrtRunner
from drlbench.variants import EQ_VARIANTS, VARIANTS, parse_variant, select

# HalfCheetah-like raw observations: angles within ±1 beside velocities up to ±30 (ddpg-halfcheetah's span)
SCALES = np.array([0.2, 0.5, 1.0, 0.8, 0.8, 1.2, 1.0, 0.6, 10, 3, 6, 20, 25, 27, 30, 30, 22], dtype=np.float32)


def raw_actor(seed=0) -> Actor:
    """An off-policy-style actor on raw observations: identity normalization, a clip that never acts."""
    torch.manual_seed(seed)
    actor = Actor(17, 6, [64, 64], squash="tanh", obs_clip=1e9, obs_eps=0.0)
    with torch.no_grad():  # weights sized to the inputs, as training would leave them
        actor.body[0].weight.div_(torch.as_tensor(SCALES))
    return actor.eval()


def raw_states(n=2048, seed=0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(size=(n, 17)) * SCALES / 2).astype(np.float32)


def test_equalization_keeps_the_fp32_actions_and_spreads_the_first_layer_input_evenly():
    actor, states = raw_actor(), raw_states()
    eq, info = equalize_input(actor, states)
    np.testing.assert_allclose(eq.act(states), actor.act(states), atol=1e-5, rtol=0)
    width = eq.normalize(torch.as_tensor(states)).abs().quantile(0.99, dim=0)
    assert info["equalized"] and info["input_width_max_over_min"] > 50
    assert float(width.max() / width.min()) < 1.5  # was 150 before: every feature now spans ~[-1, 1]
    assert torch.equal(actor.body[0].weight, raw_actor().body[0].weight)  # the given actor is not modified


@pytest.mark.parametrize("method", ["ptdq", "ptsq"])
def test_equalized_int8_is_closer_to_fp32_on_raw_observations(method):
    actor, states = raw_actor(), raw_states()
    eq, _ = equalize_input(actor, states)
    errors = []
    for a in (actor, eq):
        fp32 = onnx_export.export_onnx(a, 17)
        int8 = ptq.ptdq(fp32) if method == "ptdq" else ptq.ptsq(fp32, states)
        errors.append(np.abs(OrtRunner(int8, 17, 1).run(states) - actor.act(states)).mean())
    plain, equalized = errors
    assert equalized < plain / 2, f"mean |action error| plain {plain:.4f}, equalized {equalized:.4f}"


def test_a_normalized_actor_is_left_as_it_is_and_says_why(agent):
    assert agent.actor.obs_clip == 10.0  # the bundled test agent normalizes its observations (VecNormalize)
    eq, info = equalize_input(agent.actor, raw_states(64)[:, :agent.actor.obs_dim])
    assert eq is agent.actor and not info["equalized"] and "already normalized" in info["reason"]


@pytest.mark.parametrize("shape", [(10, 5), (1, 17), (17,)])
def test_equalization_refuses_states_of_the_wrong_shape(shape):
    with pytest.raises(DrlbenchError, match=r"expected \(n >= 2, 17\)"):
        equalize_input(raw_actor(), np.zeros(shape, dtype=np.float32))


def test_eq_variants_are_named_but_off_the_paper_grid():
    assert [parse_variant(v).family for v in EQ_VARIANTS] == ["quantization"] * 3
    assert parse_variant("PTDQ-EQ").name == "ptdq_eq" and parse_variant("qat_eq").runtimes == ("onnxruntime", "litert", "executorch")
    assert not set(EQ_VARIANTS) & set(VARIANTS)
    assert select(["ptdq*"], list(VARIANTS), "variant") == ["ptdq"]  # a glob keeps meaning the paper's ptdq
    assert select(["ptsq_eq"], list(VARIANTS), "variant") == ["ptsq_eq"]  # the exact name is accepted


def test_eq_variant_of_a_normalized_agent_records_that_nothing_was_folded(builder):
    v = builder.get("ptdq_eq")
    assert v.build["input_equalization"]["equalized"] is False
    assert v.build["method"] == "quantize_dynamic"
