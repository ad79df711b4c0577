"""Low-bit quantization (compress/lowbit/): the weight quantizer, the packed size, the variant names,
the fake-quant actor, the build record and QAT fine-tuning."""

import math

import numpy as np
import onnx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from drlbench.actor import Actor
from drlbench.compress import lowbit as lb
from drlbench.compress.qat import QATConfig
from drlbench.errors import DrlbenchError

FAST = settings(max_examples=40, deadline=None)
weight_values = st.floats(-100, 100, allow_nan=False, width=32)


def random_actor(obs_dim=9, act_dim=3, hidden=(32, 24), seed=0, activation="relu", squash="tanh") -> Actor:
    torch.manual_seed(seed)
    actor = Actor(obs_dim, act_dim, list(hidden), activation=activation, squash=squash)
    g = torch.Generator().manual_seed(seed)
    actor.obs_mean.copy_(torch.randn(obs_dim, generator=g, dtype=torch.float64))
    actor.obs_var.copy_(torch.rand(obs_dim, generator=g, dtype=torch.float64) * 4 + 0.25)
    return actor.eval()


def random_obs(actor: Actor, n=512, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    std = np.sqrt(actor.obs_var.numpy())
    return (actor.obs_mean.numpy() + rng.normal(size=(n, actor.obs_dim)) * std).astype(np.float32)


schemes = st.builds(
    lb.LowBitScheme, st.sampled_from(lb.WEIGHT_BITS), st.sampled_from((None, *lb.ACT_BITS)),
    st.sampled_from((None, *lb.INPUT_BITS)), st.booleans()) | st.just(lb.parse_scheme("fp16"))


# ------------------------------------------------------------------------------------ weights


@FAST
@given(arrays(np.float32, st.tuples(st.integers(1, 8), st.integers(1, 40)), elements=weight_values),
       st.sampled_from(lb.WEIGHT_BITS))
def test_round_trip_error_at_most_half_a_step_per_channel(w, bits):
    q, scale = lb.quantize_weight(torch.from_numpy(w), bits)
    qmax = lb.weight_qmax(bits)
    assert q.dtype == torch.int8 and int(q.abs().max()) <= qmax
    err = np.abs(lb.dequantize_weight(q, scale).numpy().astype(np.float64) - w)
    s = scale.numpy().astype(np.float64)[:, None]
    # S_c/2 from rounding, plus float32 rounding of w / S and of q * S
    assert (err <= s / 2 + np.abs(w) * 2**-21 + 1e-30).all()
    # the scale is max|w_c| / qmax (where that does not underflow float32: such a row is all zeros)
    expected = np.abs(w).max(axis=1) / np.float32(qmax)
    np.testing.assert_allclose(s[expected > 0, 0], expected[expected > 0], rtol=1e-6)
    assert (q[torch.from_numpy(expected == 0)] == 0).all()


@FAST
@given(arrays(np.float32, (4, 16), elements=st.floats(-1, 1, allow_nan=False, width=32)),
       st.integers(0, 3), st.sampled_from(lb.WEIGHT_BITS))
def test_scaling_one_channel_by_1000_leaves_the_others_untouched(w, row, bits):
    big = w.copy()
    big[row] *= 1000
    q, s = lb.quantize_weight(torch.from_numpy(w), bits)
    qb, sb = lb.quantize_weight(torch.from_numpy(big), bits)
    others = [i for i in range(4) if i != row]
    # per channel: the other rows keep their codes and scales exactly (a per-tensor scale would grow 1000x)
    assert torch.equal(q[others], qb[others]) and torch.equal(s[others], sb[others])
    if np.abs(w[row]).max() > 0:
        assert float(sb[row]) == pytest.approx(1000 * float(s[row]), rel=1e-5)


def test_per_channel_error_is_smaller_than_per_tensor_with_one_outlying_row():
    # the point of per-channel scales: a per-tensor 4-bit scale set by a 1000x row zeroes the others
    w = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    w[0] *= 1000
    q, s = lb.quantize_weight(w, 4)
    per_channel = (lb.dequantize_weight(q, s) - w)[1:].abs().max()
    per_tensor_scale = w.abs().max() / 7
    per_tensor = (torch.round(w / per_tensor_scale) * per_tensor_scale - w)[1:].abs().max()
    assert per_channel < 0.3 and per_tensor > 2.0


# ------------------------------------------------------------------------------------- packing


@st.composite
def actors_and_schemes(draw):
    obs_dim, act_dim = draw(st.integers(1, 17)), draw(st.integers(1, 5))
    hidden = draw(st.lists(st.integers(1, 33), max_size=3))
    actor = random_actor(obs_dim, act_dim, hidden, seed=draw(st.integers(0, 99)),
                         activation=draw(st.sampled_from(["relu", "tanh"])),
                         squash=draw(st.sampled_from(["tanh", "clip"])))
    return actor, draw(schemes)


@FAST
@given(actors_and_schemes())
def test_packed_size_is_exact_and_the_payload_unpacks_to_the_same_network(actor_scheme):
    actor, s = actor_scheme
    states = random_obs(actor, 64)
    fq = lb.FakeQuantActor(actor, s, states).eval()
    data = lb.pack(fq)
    widths = [actor.obs_dim, *actor.hidden, actor.act_dim]
    layers = list(zip(widths[1:], widths[:-1]))
    # the formula, written out: fp32 normalization and bounds, input (lo, scale), per layer the codes
    # (b bits each, padded to a byte) + fp32 scales + fp32 biases, per activation quantizer 4 + 1 bytes
    b = s.weight_bits
    expected = 8 * (actor.obs_dim + actor.act_dim)
    expected += 0 if s.input_bits is None else 8 * (actor.obs_dim if s.input_per_feature else 1)
    expected += sum((2 * n * k if s.is_fp16 else math.ceil(n * k * b / 8) + 4 * n) + 4 * n for n, k in layers)
    expected += 0 if s.act_bits is None else 5 * (len(layers) - 1)
    assert len(data) == lb.packed_size(actor, s) == expected
    back = lb.unpack(data, actor.config(), s)
    for (q, sc), (q2, sc2) in zip(fq.weight_codes(), back.weight_codes()):
        assert torch.equal(q, q2) and (sc is None or torch.equal(sc, sc2))
    # the payload holds the normalization in fp32 (the actor: float64); with it rounded so, bit-exact
    with torch.no_grad():
        for buf in (fq.actor.obs_mean, fq.actor.obs_var):
            buf.copy_(buf.float().double())
    np.testing.assert_array_equal(back.act(states), fq.act(states))


def test_two_bit_weights_take_a_quarter_byte_each():
    actor = random_actor(obs_dim=8, act_dim=2, hidden=(16,))  # 128 + 32 weights
    assert lb.packed_size(actor, "qat_w4af") - lb.packed_size(actor, "qat_w2af") == (128 + 32) // 4
    assert lb.packed_size(actor, "qat_w8af") - lb.packed_size(actor, "qat_w3af") == (128 + 32) * 5 // 8


def test_pack_refuses_uncalibrated_quantizers_and_a_plain_actor_without_scheme():
    actor = random_actor()
    assert len(lb.pack(actor, "qat_w4af")) == lb.packed_size(actor, "qat_w4af")
    with pytest.raises(DrlbenchError, match="calibrate"):
        lb.pack(actor, "qat_w4a8")
    with pytest.raises(DrlbenchError, match="scheme"):
        lb.pack(actor)
    with pytest.raises(DrlbenchError, match="calibrate"):
        lb.FakeQuantActor(actor, "qat_w4a8")(torch.zeros(1, actor.obs_dim))


# ------------------------------------------------------------------------------------- names


@pytest.mark.parametrize("name,expected", [
    ("qat_w4", lb.LowBitScheme(4, 8, None)),
    ("qat_w2a8", lb.LowBitScheme(2, 8, None)),
    ("qat_w3a6", lb.LowBitScheme(3, 6, None)),
    ("QAT-W4A8I6", lb.LowBitScheme(4, 8, 6, True)),
    ("qat_w3a4i4t", lb.LowBitScheme(3, 4, 4, False)),
    ("qat_w8af", lb.LowBitScheme(8, None, None)),
    ("qat_w4i2", lb.LowBitScheme(4, 8, 2)),
    ("fp16", lb.LowBitScheme(16, None, None)),
])
def test_names_parse(name, expected):
    assert lb.parse_scheme(name) == expected and lb.is_lowbit_name(name)


@pytest.mark.parametrize("name", ["qat", "qat_eq", "fp32", "ptdq", "qat_w5", "qat_w1", "qat_w16", "qat_w4a7",
                                  "qat_w4a2", "qat_w4i9", "qat_w4i1", "qat_w4a8t", "qat_w4a8i6x", "qat_w4_a8",
                                  "w4a8", "fp16a8", "qat_w4a", "prune_l1_05", ""])
def test_other_names_are_refused_in_one_line_listing_the_forms(name):
    with pytest.raises(DrlbenchError) as exc:
        lb.parse_scheme(name)
    msg = str(exc.value)
    assert "\n" not in msg and "qat_w<b>[a<a>][i<k>[t]]" in msg and "fp16" in msg
    assert not lb.is_lowbit_name(name)


@FAST
@given(schemes)
def test_canonical_names_parse_back_to_their_scheme(s):
    assert lb.parse_scheme(s.name) == s


# ---------------------------------------------------------------------------- fake-quant actor


def test_8_bit_stays_close_to_fp32_and_2_bit_differs_measurably():
    actor = random_actor(obs_dim=12, act_dim=4, hidden=(64, 64))
    obs, calib = random_obs(actor, 1024, seed=1), random_obs(actor, 1024, seed=2)
    ref = actor.act(obs)
    span = 2.0  # default bounds [-1, 1]
    e8 = np.abs(lb.FakeQuantActor(actor, "qat_w8a8", calib).act(obs) - ref)
    e2 = np.abs(lb.FakeQuantActor(actor, "qat_w2a8", calib).act(obs) - ref)
    assert e8.max() < 0.01 * span and e8.mean() < 0.001 * span
    assert e2.mean() > 20 * e8.mean() and e2.mean() > 0.01 * span


def test_gradients_reach_the_float_weights_straight_through_and_the_teacher_is_untouched():
    actor = random_actor()
    before = actor.body[0].weight.clone()
    fq = lb.FakeQuantActor(actor, "qat_w2a4i4", random_obs(actor, 256)).train()
    fq(torch.as_tensor(random_obs(actor, 32, seed=5))).sum().backward()
    grads = [m.weight.grad for m in fq.linears()]
    # round() has zero gradient: without the straight-through estimator these would be None or 0
    assert all(g is not None and float(g.abs().sum()) > 0 for g in grads)
    assert torch.equal(actor.body[0].weight, before) and actor.body[0].weight.grad is None


def test_activation_ranges_come_from_the_calibration_states():
    actor = random_actor(activation="relu")
    states = random_obs(actor, 256)
    fq = lb.FakeQuantActor(actor, "qat_w8a6i5t", states)
    z = actor.normalize(torch.as_tensor(states))
    assert fq.input_q.scale.item() == pytest.approx(float(z.max() - z.min()) / 31, rel=1e-5)
    with torch.no_grad():  # the second Linear's input: the (quantized-upstream) first ReLU output
        q_in = fq.input_q(z)
        h = torch.relu(torch.nn.functional.linear(q_in, fq.weight(fq.actor.body[0]), fq.actor.body[0].bias))
    assert fq.act_q[0].offset.item() == 0  # a ReLU output starts at 0: zero point 0
    assert fq.act_q[0].scale.item() == pytest.approx(float(h.max()) / 63, rel=1e-5)


# ------------------------------------------------------------------------------------ builds


def test_a_three_bit_build_is_simulated_and_charged_its_packed_bytes():
    actor = random_actor(obs_dim=10, act_dim=3, hidden=(48, 40))
    build = lb.build_lowbit(actor, "qat_w3a8", random_obs(actor, 256))
    model = onnx.load_from_string(build.onnx)
    assert build.build["simulated"] is True and "none" in build.build["kernel"]
    assert build.artifact_bytes == len(build.packed) == build.build["packed_bytes"] == lb.packed_size(actor, "qat_w3a8")
    assert build.artifact_bytes < len(build.onnx) / 5  # the fp32 graph is not what the variant is charged
    assert not any(n.op_type == "MatMulNBits" for n in model.graph.node)


def test_a_four_bit_build_runs_on_matmulnbits_and_matches_the_fake_quant_actor():
    import onnxruntime as ort

    actor = random_actor(obs_dim=10, act_dim=3, hidden=(48, 40), squash="clip")
    calib, obs = random_obs(actor, 256), random_obs(actor, 256, seed=7)
    build = lb.build_lowbit(actor, "qat_w4a8i6", calib)
    model = onnx.load_from_string(build.onnx)
    assert build.build["simulated"] is False and build.artifact_bytes == len(build.onnx)
    assert sum(n.op_type == "MatMulNBits" for n in model.graph.node) == 3
    assert not any(n.op_type == "Gemm" for n in model.graph.node)
    sess = ort.InferenceSession(build.onnx, providers=["CPUExecutionProvider"])
    diff = np.abs(sess.run(None, {"obs": obs})[0] - build.module.act(obs))
    # same arithmetic up to summation order (which may flip a rare activation rounding)
    assert np.median(diff) < 1e-5 and np.quantile(diff, 0.99) < 1e-2


def test_int8_compute_is_a_kernel_only_where_ort_has_one():
    s2, s3 = lb.parse_scheme("qat_w2a8"), lb.parse_scheme("qat_w3a8")
    assert lb.kernel_for(s2, 0) is None and lb.kernel_for(s3, 4) is None  # 2-bit fp32 / any 3-bit: simulated
    assert "bits=2" in lb.kernel_for(s2, 4) and "bits=4" in lb.kernel_for(lb.parse_scheme("qat_w4"), 0)


def test_fp16_build_stores_half_precision_weights():
    actor = random_actor(hidden=(64, 48))
    obs = random_obs(actor, 128)
    build = lb.build_lowbit(actor, "fp16", obs)
    model = onnx.load_from_string(build.onnx)
    halves = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    weights = sum(m.weight.numel() for m in lb.FakeQuantActor(actor, "fp16").linears())
    assert len(halves) == 3 and sum(len(t.raw_data) for t in halves) == 2 * weights
    assert build.build["simulated"] is False
    assert 0 < np.abs(build.module.act(obs) - actor.act(obs)).max() < 1e-2  # rounded, barely


# ------------------------------------------------------------------------------------ fine-tuning


def test_finetuning_reduces_the_distillation_error(agent):
    from drlbench.evaluate import rollout_observations
    from drlbench.tasks import DISJOINT_SEED_OFFSET

    teacher = agent.actor
    states = rollout_observations(teacher.act, agent.env_id, 512, seed=DISJOINT_SEED_OFFSET + 1)
    fq = lb.FakeQuantActor(teacher, "qat_w2a8", states)
    cfg = QATConfig(rounds=2, steps_per_round=200, grad_steps_per_round=60, batch_size=128, lr=1e-3)
    tuned, budget = lb.finetune(fq, teacher, agent.env_id, states, cfg)
    assert budget["states"] == 512 + 200 and len(budget["final_loss_per_round"]) == 2
    assert lb.distillation_mse(tuned, teacher, states) < 0.5 * lb.distillation_mse(fq, teacher, states)
