"""Every variant kind, built from a bundled trained agent: right shape, right size, still a policy."""

import numpy as np
import onnx
import pytest

from drlbench.compress.onnx_export import onnx_param_count
from drlbench.compress.prune import expected_hidden, mlp_params
from drlbench.errors import DrlbenchError
from drlbench.evaluate import evaluate, normalized_score
from drlbench.tasks import random_returns
from drlbench.variants import EDGE_RUNTIMES, PRUNE_VARIANTS, VARIANTS, parse_variant, select


def test_variant_names_are_the_paper_grid():
    assert len(VARIANTS) == 32 and len(PRUNE_VARIANTS) == 28
    assert PRUNE_VARIANTS[0] == "prune_l1_05" and PRUNE_VARIANTS[-1] == "prune_l2_70"
    assert parse_variant("prune-l2-30").name == "prune_l2_30"  # the hyphen spelling is accepted
    assert parse_variant("prune_l2_30").ratio == 0.30


def test_variant_globs_select_like_pytest_k():
    assert select(["prune_l2_*"], list(VARIANTS), "variant") == [v for v in VARIANTS if v.startswith("prune_l2")]
    assert select(["ptdq,qat".split(",")[0], "qat"], list(VARIANTS), "variant") == ["ptdq", "qat"]


def test_fp32_onnx_matches_torch(builder):
    v = builder.get("fp32")
    obs = builder.calibration_states()
    np.testing.assert_allclose(v.runner("onnxruntime").run(obs), v.runner("torch").run(obs), atol=1e-5, rtol=0)
    assert onnx_param_count(v.onnx) >= v.n_params


@pytest.mark.parametrize("name", ["ptdq", "ptsq", "qat"])
def test_int8_variants_store_int8_weights(builder, name):
    v, base = builder.get(name), builder.get("fp32")
    model = onnx.load_from_string(v.onnx)
    int8_weights = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 2]
    assert len(int8_weights) == len(builder.actor.hidden) + 1  # every Linear's weight matrix
    assert v.artifact_bytes < base.artifact_bytes
    assert v.runtimes == ("onnxruntime", *EDGE_RUNTIMES)  # int8 graphs: no eager torch form


def test_int8_artifact_at_most_030_of_fp32_on_a_wide_actor():
    """The 0.3× size budget holds once weights dominate the file (a 256-wide actor, as SAC/TD3/PPO-tuned use)."""
    import torch

    from drlbench.actor import Actor
    from drlbench.compress import onnx_export, ptq

    torch.manual_seed(0)
    actor = Actor(17, 6, [256, 256])
    fp32 = onnx_export.export_onnx(actor, 17)
    assert len(ptq.ptdq(fp32)) <= 0.3 * len(fp32)
    assert len(ptq.ptsq(fp32, np.random.default_rng(0).normal(size=(256, 17)).astype(np.float32))) <= 0.3 * len(fp32)


@pytest.mark.parametrize("name", ["prune_l1_30", "prune_l2_30", "prune_l2_05", "prune_l1_70"])
def test_pruning_removes_neurons_physically(builder, name):
    v = builder.get(name)
    actor = builder.actor
    hidden = expected_hidden(actor.hidden, v.recipe.ratio)
    assert v.module.hidden == hidden
    assert v.n_params == mlp_params(actor.obs_dim, hidden, actor.act_dim)
    assert onnx_param_count(v.onnx) >= v.n_params and v.artifact_bytes < builder.get("fp32").artifact_bytes
    obs = builder.calibration_states()[:64]
    np.testing.assert_allclose(v.runner("onnxruntime").run(obs), v.runner("torch").run(obs), atol=1e-5, rtol=0)


def test_prune_l2_30_parameter_count_is_what_30_percent_channels_imply(builder):
    assert builder.actor.hidden == [64, 64] and builder.actor.obs_dim == 11  # 11 -> 64 -> 64 -> 3
    v = builder.get("prune_l2_30")
    assert v.module.hidden == [44, 44]  # int(64 * 0.7)
    assert v.n_params == 11 * 44 + 44 + 44 * 44 + 44 + 44 * 3 + 3


@pytest.mark.parametrize("name", ["ptdq", "ptsq", "qat"])
def test_quantized_policy_keeps_its_return(builder, agent, name):
    """int8 on a trained Hopper agent stays within 90 % (random-normalized) of fp32 on the same seeds."""
    base = evaluate(builder.get("fp32").runner().run, agent.env_id, episodes=3, seed=0)
    got = evaluate(builder.get(name).runner().run, agent.env_id, episodes=3, seed=0)
    score = normalized_score(got.mean, base.mean, random_returns()[agent.env_id]["mean"])
    assert score >= 0.9, f"{name}: {got.mean:.1f} vs fp32 {base.mean:.1f}"


def test_variants_are_built_once(builder):
    assert builder.get("ptdq") is builder.get("ptdq")


def test_ptsq_calibrates_on_states_disjoint_from_evaluation(agent, monkeypatch):
    import drlbench.evaluate
    from drlbench.tasks import make_env
    from drlbench.builder import VariantBuilder

    seeds, real = [], drlbench.evaluate.rollout_observations
    monkeypatch.setattr(drlbench.evaluate, "rollout_observations",
                        lambda *a, seed, **k: seeds.append(seed) or real(*a, seed=seed, **k))
    builder = VariantBuilder(agent, calibration_size=64)
    assert builder.get("ptsq").build["calibration_states"] == 64
    assert seeds == [1_000_001]  # one rollout, far above any evaluation seed
    env = make_env(agent.env_id)
    eval_starts = [env.reset(seed=s)[0] for s in range(100)]
    assert not any(np.allclose(builder.calibration_states()[0], o) for o in eval_starts)


def test_qat_records_its_budget(builder):
    budget = builder.get("qat").build["budget"]
    assert budget["rounds"] == 2 and budget["grad_steps_per_round"] == 150 and budget["states"] > 1024


def test_saved_variant_folder_round_trips(builder, tmp_path):
    from drlbench.actor import load_actor

    v = builder.get("prune_l2_30")
    v.save(tmp_path / "v")
    assert (tmp_path / "v" / "model.onnx").read_bytes() == v.onnx
    assert load_actor(tmp_path / "v" / "actor.safetensors").hidden == v.module.hidden


@pytest.mark.parametrize("bad", ["prune_l2_00", "prune_l3_30", "int4", "prune_l2_5", ""])
def test_bad_variant_names_are_refused(bad):
    with pytest.raises(DrlbenchError, match="variant|ratio"):
        parse_variant(bad)


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5])
def test_pruning_ratio_outside_open_unit_interval_is_refused(agent, ratio):
    from drlbench.compress.prune import prune

    with pytest.raises(DrlbenchError, match=r"\(0, 1\)"):
        prune(agent.actor, ratio, 2)


@pytest.mark.parametrize("name", ["fp32", "ptdq_eq", "prune_l2_30"])
def test_a_recipe_is_parsed_once_and_stands_for_its_name(name):
    recipe = parse_variant(name.upper().replace("_", "-"))
    assert parse_variant(recipe) is recipe  # passed along, not parsed again
    assert recipe == name and name == recipe and str(recipe) == name
    assert {recipe: 1}[name] == 1 and recipe != "fp16"


@pytest.mark.parametrize("name, runtime, suffix", [("fp32", "torch", ".safetensors"),
                                                   ("prune_l2_30", "onnxruntime", ".onnx")])
def test_a_variant_writes_the_artifact_its_runtime_loads(builder, tmp_path, name, runtime, suffix):
    v = builder.get(name)
    path = v.write_artifact(tmp_path / "x", runtime)
    assert path.suffix == suffix and path.parent == tmp_path / "x"
    obs = builder.calibration_states()[:16]
    if runtime == "torch":
        from drlbench.actor import load_actor
        from drlbench.runtimes import TorchRunner

        again = TorchRunner(load_actor(path), v.module.obs_dim)
    else:
        from drlbench.runtimes import OrtRunner

        again = OrtRunner(path.read_bytes(), v.module.obs_dim)
    np.testing.assert_array_equal(again.run(obs), v.runner(runtime).run(obs))


def test_qat_distills_on_seeds_disjoint_from_every_evaluation_seed(agent, monkeypatch):
    """Every env reset of QAT's DAgger rollouts lies at or above DISJOINT_SEED_OFFSET, where no evaluation
    seed can be (tasks.check_episodes_and_seed keeps them below)."""
    from drlbench.compress import qat
    from drlbench.tasks import DISJOINT_SEED_OFFSET, check_episodes_and_seed

    seeds, make_env = [], qat.make_env

    def recording_env(env_id):
        env = make_env(env_id)
        reset = env.reset
        env.reset = lambda *, seed=None, **kw: seeds.append(seed) or reset(seed=seed, **kw)
        return env

    monkeypatch.setattr(qat, "make_env", recording_env)
    cfg = qat.QATConfig(rounds=3, steps_per_round=600, grad_steps_per_round=2, batch_size=8)
    qat.qat_finetune(agent.actor, agent.env_id, np.zeros((16, agent.actor.obs_dim), np.float32), cfg)
    assert len(seeds) >= cfg.rounds - 1 and None not in seeds  # every reset seeded (rounds 1 … r)
    assert min(seeds) >= DISJOINT_SEED_OFFSET
    with pytest.raises(DrlbenchError, match="must lie in"):  # the largest evaluation range ends below them
        check_episodes_and_seed(1, DISJOINT_SEED_OFFSET)
    with pytest.raises(DrlbenchError, match="seeds below are evaluation seeds"):
        qat.QATConfig(seed=DISJOINT_SEED_OFFSET - 1)


# ------------------------------------------------------------------- low-bit variants (off the paper grid)


@pytest.mark.parametrize("name, canonical", [("qat_w4", "qat_w4a8"), ("QAT-W3A8", "qat_w3a8"), ("fp16", "fp16"),
                                             ("qat_w2a6i5t", "qat_w2a6i5t")])
def test_low_bit_names_are_variants_off_the_paper_grid(name, canonical):
    recipe = parse_variant(name)
    assert recipe.name == canonical and recipe.kind == "lowbit" and recipe.family == "quantization"
    assert canonical not in VARIANTS and recipe.runtimes == ("onnxruntime",)
    assert select([name], list(VARIANTS), "variant") == [canonical]


def test_the_unknown_variant_error_lists_the_low_bit_forms():
    with pytest.raises(DrlbenchError) as exc:
        parse_variant("qat_w5a8")
    assert "qat_w<b>[a<a>][i<k>[t]]" in str(exc.value) and "fp16" in str(exc.value)


def test_a_four_bit_variant_runs_matmulnbits_on_ort_and_matches_its_fake_quant_model(builder, tmp_path):
    import torch

    from drlbench.compress.lowbit import unpack

    from .conftest import env_observations

    actor, v = builder.actor, builder.get("qat_w4a8")
    assert v.build["simulated"] is False and "MatMulNBits" in v.build["kernel"]
    assert v.build["budget"]["rounds"] == 2  # fine-tuned with the builder's QAT budget
    assert v.artifact_bytes == len(v.onnx) and v.module is None
    nodes = [n.op_type for n in onnx.load_from_string(v.onnx).graph.node]
    assert nodes.count("MatMulNBits") == len(actor.hidden) + 1 and "Gemm" not in nodes
    # the fake-quant model, from the packed payload; the payload holds the normalization in fp32 and QAT
    # does not touch it: the actor's float64 statistics make it the model the build froze, exactly
    fq = unpack(v.packed, actor.config(), v.name)
    with torch.no_grad():
        fq.actor.obs_mean.copy_(actor.obs_mean), fq.actor.obs_var.copy_(actor.obs_var)
    obs = env_observations(builder.agent.env_id)  # states the build never checked on
    diff = np.abs(v.runner("onnxruntime").run(obs) - fq.act(obs))
    # same arithmetic up to float summation order (which may flip a rare activation rounding)
    assert np.median(diff) < 1e-5 and np.quantile(diff, 0.99) < 1e-2
    v.save(tmp_path / "v")
    assert (tmp_path / "v" / "model.packed").read_bytes() == v.packed
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["model.onnx", "model.packed", "variant.json"]


def test_a_three_bit_variant_is_simulated_and_charged_its_packed_bytes(builder):
    from drlbench.compress.lowbit import packed_size

    v = builder.get("qat_w3a8")
    assert v.build["simulated"] is True and "none" in v.build["kernel"]
    assert v.artifact_bytes == len(v.packed) == v.build["packed_bytes"] == packed_size(builder.actor, "qat_w3a8")
    assert v.artifact_bytes < len(v.onnx) / 3  # not the fp32 graph it runs as


def test_fp16_is_half_the_fp32_weight_bytes_and_not_fine_tuned(builder):
    fp16, fp32 = builder.get("fp16"), builder.get("fp32")
    weights = sum(m.weight.numel() for m in [*builder.actor.body, builder.actor.head] if hasattr(m, "weight"))
    assert fp16.build["simulated"] is False and "budget" not in fp16.build
    assert fp16.artifact_bytes == len(fp16.onnx)
    # the weights take 2 bytes instead of 4; the rest (biases, normalization, graph, 3 Cast nodes) stays
    saved = fp32.artifact_bytes - fp16.artifact_bytes
    assert abs(saved - 2 * weights) <= 400
    obs = builder.calibration_states()[:256]
    assert np.abs(fp16.runner().run(obs) - fp32.runner().run(obs)).max() < 1e-2
