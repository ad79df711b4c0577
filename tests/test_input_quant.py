"""Input-sensitivity variants (input_i<k>[t]): only the normalized observation quantized, the network in fp32."""

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from drlbench.compress.lowbit import InputQuantActor, parse_input_name
from drlbench.errors import DrlbenchError
from drlbench.variants import VARIANTS, parse_variant, select

from .conftest import env_observations


@pytest.mark.parametrize("name, canonical, bits, per_feature", [
    ("input_i8", "input_i8", 8, True), ("INPUT-I6", "input_i6", 6, True), ("input_i4t", "input_i4t", 4, False),
    ("input_i2", "input_i2", 2, True)])
def test_input_names_parse_off_the_paper_grid(name, canonical, bits, per_feature):
    recipe = parse_variant(name)
    assert recipe == canonical and recipe.kind == "input" and recipe.family == "quantization"
    assert recipe.ratio is None and recipe.runtimes == ("onnxruntime",) and canonical not in VARIANTS
    assert parse_input_name(canonical) == (bits, per_feature)
    assert select([name], list(VARIANTS), "variant") == [canonical]


@pytest.mark.parametrize("bad", ["input_i9", "input_i1", "input_8", "input_i8x", "input"])
def test_bad_input_names_are_refused_listing_the_form(bad):
    with pytest.raises(DrlbenchError, match=r"unknown variant .*input_i<k>\[t\] with k in 2\.\.8"):
        parse_variant(bad)
    with pytest.raises(DrlbenchError, match="unknown input-quantization variant"):
        parse_input_name(bad)


def _gemm_weights(data: bytes) -> list[np.ndarray]:
    model = onnx.load_from_string(data)
    return sorted((numpy_helper.to_array(i) for i in model.graph.initializer if len(i.dims) == 2),
                  key=lambda w: (w.shape, float(w.sum())))


@pytest.mark.parametrize("bits", [8, 6, 4])
def test_input_variant_quantizes_the_input_only(builder, bits):
    v, fp32, actor = builder.get(f"input_i{bits}"), builder.get("fp32"), builder.actor
    # the network's weights are fp32's, bit for bit; the quantizer is float ops in the graph ORT runs
    assert all(np.array_equal(a, b) for a, b in zip(_gemm_weights(v.onnx), _gemm_weights(fp32.onnx)))
    assert "Round" in {n.op_type for n in onnx.load_from_string(v.onnx).graph.node}
    assert v.build["simulated"] is False and v.artifact_bytes == len(v.onnx) and v.n_params == actor.n_params()
    assert v.build["input_bits"] == bits and v.build["calibration_states"] == len(builder.calibration_states())
    obs = env_observations(builder.agent.env_id)  # states the calibration never saw
    model = InputQuantActor(actor, bits, True, builder.calibration_states())
    np.testing.assert_allclose(v.runner().run(obs), model.act(obs), atol=1e-4, rtol=0)


def test_fewer_input_bits_move_the_actions_further_from_fp32(builder):
    # the agent's own states: random-action ones leave the calibrated range, where clipping, not bits, dominates
    obs = builder.calibration_states()
    base = builder.get("fp32").runner().run(obs)
    span = float((builder.actor.action_high - builder.actor.action_low).max())
    err = {b: float(np.abs(builder.get(f"input_i{b}").runner().run(obs) - base).mean()) / span for b in (8, 6, 4)}
    assert 0 < err[8] < 0.01, err  # 8 bits: a small move
    assert err[8] < err[6] < err[4] and err[4] > 4 * err[8], err


def test_input_quantizer_takes_at_most_2_to_the_k_levels_per_feature(builder):
    model = InputQuantActor(builder.actor, 4, True, builder.calibration_states())
    with torch.no_grad():
        x = model.input_q(model.actor.normalize(torch.as_tensor(env_observations(builder.agent.env_id))))
    assert all(len(np.unique(col)) <= 16 for col in x.numpy().T)
