"""Graph exports (ONNX, TorchScript, torch.export) and sbx zips, made the way their users make them.

SB3's export guide (SAC's actor, TD3/DDPG/PPO policies called with deterministic=True: log-std heads,
value heads, log-prob outputs and shape arithmetic beside the action), the same modules traced with
`torch.jit.trace` and exported with `torch.export`, each plain (statistics given beside the file) and
with the observation normalization and action post-processing baked in; every imported actor is
checked against SB3's own `predict(deterministic=True)` (sbx zips: sbx's).
"""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from drlbench.errors import DrlbenchError
from drlbench.importers import CLIPPED, ENV_UNITS, TANH_SCALED, TANH_UNIT, load_external
from drlbench.builder import VariantBuilder
from drlbench.zoo import load_agent_dir, save_agent

from .conftest import env_observations
from .test_importers_files import ATOL, CleanRLActor, export_module, export_onnx, mlp, ort_run, save_graph, train_sb3

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # users still ship TorchScript
ENV = "Pendulum-v1"  # bounds ±2: rescaling and clipping are exercised
SUFFIX = {"onnx": ".onnx", "trace": ".pt", "export": ".pt2"}
FORMAT = {"onnx": "onnx", "trace": "torchscript", "export": "torch_export"}


@pytest.fixture(scope="module")
def sb3_models():
    """One small model per algorithm, trained under VecNormalize so the statistics are not the identity."""
    torch.set_num_threads(1)
    cache = {}

    def get(algo: str):
        if algo not in cache:
            cache[algo] = train_sb3(algo, ENV, normalize=True, policy_kwargs={"net_arch": [16, 16]})
        return cache[algo]

    return get


@pytest.mark.parametrize("baked", [False, True], ids=["stats-beside", "stats-and-postprocessing-inside"])
@pytest.mark.parametrize("kind", list(SUFFIX))
@pytest.mark.parametrize("algo", ["sac", "td3", "ddpg", "ppo"])
def test_sb3_export_matches_sb3_predict(sb3_models, tmp_path, algo, kind, baked):
    model, vn = sb3_models(algo)
    path = save_graph(export_module(model, vn if baked else None), kind, tmp_path / f"actor{SUFFIX[kind]}", 3)
    kwargs = {} if baked else {"vecnormalize": tmp_path / "vecnormalize.pkl", "trust_pickle": True}
    if not baked:
        vn.save(str(kwargs["vecnormalize"]))
    if kind == "export":
        kwargs["trust_pickle"] = True  # torch.export.load unpickles
    agent = load_external(path, ENV, **kwargs)
    obs = env_observations(ENV)
    expected, _ = model.predict(vn.normalize_obs(obs), deterministic=True)
    np.testing.assert_allclose(agent.actor.act(obs), expected, atol=ATOL, rtol=0)
    card = agent.card
    squashed = algo != "ppo"
    assert card["format"] == FORMAT[kind] and card["obs_norm_in_file"] == baked
    assert card["output"] == {(True, False): TANH_UNIT, (True, True): TANH_SCALED, (False, False): ENV_UNITS,
                              (False, True): CLIPPED}[squashed, baked]
    # PPO's policy returns (actions, values, log_prob): the action is picked, and the card says so
    assert f"(output 0 of {1 if squashed else 3}: " in card["action_output"]
    assert card["verified_max_rel_err"] < 1e-5


@pytest.mark.parametrize("algo", ["ddpg", "td3", "sac"])
def test_sbx_zip_matches_sbx_predict(tmp_path, algo):
    sbx = pytest.importorskip("sbx", reason="the sbx extra: pip install -e '.[sbx]'")
    import gymnasium as gym

    model = getattr(sbx, algo.upper())("MlpPolicy", gym.make(ENV), seed=0, learning_starts=100,
                                       policy_kwargs={"net_arch": [16, 16]})
    model.learn(200)
    model.save(tmp_path / "model.zip")
    with pytest.raises(DrlbenchError, match="pickle-based"):  # the policy is cloudpickled in the zip
        load_external(tmp_path / "model.zip", ENV)
    agent = load_external(tmp_path / "model.zip", ENV, trust_pickle=True)
    obs = env_observations(ENV)
    expected, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(agent.actor.act(obs), expected, atol=ATOL, rtol=0)
    assert (agent.card["format"], agent.card["algo"], agent.actor.hidden) == ("sbx", algo, [16, 16])


# ------------------------------------------------------------------------------------- hand-written graphs

def test_onnx_gemm_relu_is_env_units_clipped(tmp_path):
    """Also: an imported agent saves, reloads and compresses like a bundled one."""
    path = export_onnx(mlp(17, 6, nn.ReLU), tmp_path / "walker.onnx", 17)
    agent = load_external(path, "Walker2d-v5")
    obs = env_observations("Walker2d-v5")
    np.testing.assert_allclose(agent.actor.act(obs), np.clip(ort_run(path, obs), -1, 1), atol=ATOL, rtol=0)
    card = agent.card
    assert (card["format"], card["algo"], card["trust_pickle"], card["output"]) == ("onnx", None, False, ENV_UNITS)
    assert agent.actor.hidden == [64, 64] and agent.actor.activation == "relu"
    saved = load_agent_dir(save_agent(agent, tmp_path / "agent"))
    assert saved.card == card
    np.testing.assert_array_equal(saved.actor.act(obs), agent.actor.act(obs))
    builder = VariantBuilder(agent)
    assert builder.get("prune_l1_30").module.hidden < [64, 64]
    np.testing.assert_allclose(builder.get("fp32").runner().act(obs), agent.actor.act(obs), atol=ATOL, rtol=0)


def _matmul_onnx(path, weights: list[np.ndarray], biases: list[np.ndarray]):
    """MatMul + Add layers with Tanh between them and after the last, written by hand (not an exporter's Gemm)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, cur = [], [], "obs"
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        inits += [numpy_helper.from_array(w.T.astype(np.float32), f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        nodes += [helper.make_node("MatMul", [cur, f"W{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"B{i}"], [f"a{i}"]),
                  helper.make_node("Tanh", [f"a{i}"], [f"t{i}"])]
        cur = f"t{i}"
    nodes[-1].output[0] = "act"
    obs = helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", weights[0].shape[1]])
    act = helper.make_tensor_value_info("act", TensorProto.FLOAT, ["batch", weights[-1].shape[0]])
    graph = helper.make_graph(nodes, "mlp", [obs], [act], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_onnx_matmul_tanh_final_tanh_is_rescaled(tmp_path):
    rng = np.random.default_rng(0)
    ws = [rng.normal(0, 0.5, (16, 3)), rng.normal(0, 0.5, (1, 16))]
    bs = [rng.normal(0, 0.1, 16).astype(np.float32), rng.normal(0, 0.1, 1).astype(np.float32)]
    path = _matmul_onnx(tmp_path / "pendulum.onnx", ws, bs)
    agent = load_external(path, ENV, algo="sac")
    obs = env_observations(ENV)
    np.testing.assert_allclose(agent.actor.act(obs), 2.0 * ort_run(path, obs), atol=ATOL, rtol=0)  # bounds ±2
    assert agent.card["output"] == TANH_UNIT and agent.card["algo"] == "sac"
    assert agent.actor.activation == "tanh" and agent.actor.squash == "tanh"


@pytest.mark.parametrize("case", ["script-tanh-raw", "script-final-tanh", "trace-cleanrl"])
def test_torchscript(tmp_path, case):
    if case == "trace-cleanrl":
        env_id, module = ENV, torch.jit.trace(CleanRLActor().eval(), torch.zeros(1, 3))
    elif case == "script-final-tanh":
        env_id, module = ENV, torch.jit.script(mlp(3, 1, nn.ReLU, nn.Tanh()))
    else:
        env_id, module = "Swimmer-v5", torch.jit.script(mlp(8, 2, nn.Tanh))
    path = tmp_path / "actor.pt"
    module.save(str(path))
    agent = load_external(path, env_id)
    obs = env_observations(env_id)
    with torch.no_grad():
        out = module(torch.as_tensor(obs)).numpy()
    expected, output = {"script-tanh-raw": (np.clip(out, -1, 1), ENV_UNITS),  # Swimmer: bounds ±1
                        "script-final-tanh": (2.0 * out, TANH_UNIT),  # Pendulum: bounds ±2
                        "trace-cleanrl": (out, TANH_SCALED)}[case]
    np.testing.assert_allclose(agent.actor.act(obs), expected, atol=ATOL, rtol=0)
    assert agent.card["format"] == "torchscript" and agent.card["output"] == output


def test_drlbench_own_model_onnx_reads_back_as_the_same_actor(agent, builder, tmp_path):
    """variants/<name>/model.onnx carries the normalization (the mean as float32 head and tail) and the clip."""
    path = tmp_path / "model.onnx"
    path.write_bytes(builder.get("fp32").onnx)
    imported = load_external(path, agent.env_id)
    obs = env_observations(agent.env_id)
    np.testing.assert_allclose(imported.actor.act(obs), agent.actor.act(obs), atol=ATOL, rtol=0)
    assert imported.card["obs_norm_in_file"] and imported.card["output"] == CLIPPED
    assert imported.actor.config() == agent.actor.config() | {"obs_eps": 0.0}  # eps is inside the file's scale


class ValueFirst(nn.Module):
    """A policy whose first output is a value head of the action's shape: only its name tells them apart."""

    def __init__(self):
        super().__init__()
        self.pi, self.vf = mlp(3, 1, hidden=(8,)), mlp(3, 1, nn.Tanh, hidden=(8,))

    def forward(self, obs):
        return self.vf(obs), torch.tanh(self.pi(obs))


def test_the_output_named_for_the_action_is_picked_and_recorded(tmp_path):
    module = ValueFirst().eval()
    path = tmp_path / "two.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
        torch.onnx.export(module, (torch.zeros(1, 3),), str(path), input_names=["obs"],
                          output_names=["value", "action"], dynamo=False)
    agent = load_external(path, ENV)
    obs = env_observations(ENV)
    with torch.no_grad():
        np.testing.assert_allclose(agent.actor.act(obs), 2.0 * module(torch.as_tensor(obs))[1].numpy(), atol=ATOL)
    assert agent.card["action_output"] == "'action' (output 1 of 2: named like an action)"


class LogProbFirst(nn.Module):
    """An unnamed first output that is no action (a squared norm of it): skipped, and the card says why."""

    def __init__(self):
        super().__init__()
        self.pi = mlp(3, 1, hidden=(8,))

    def forward(self, obs):
        a = torch.tanh(self.pi(obs))
        return (a * a).sum(-1), a


def test_outputs_that_are_no_action_are_skipped_and_recorded(tmp_path):
    path = save_graph(LogProbFirst().eval(), "onnx", tmp_path / "two.onnx", 3)
    card = load_external(path, ENV).card
    assert card["action_output"].endswith("(output 1 of 2: the first that follows back to an actor of the env's "
                                          "shapes)")
    [(name, why)] = card["outputs_skipped"].items()
    assert why.startswith("cannot follow ReduceSum node")  # the first op back from that output


# ------------------------------------------------------------------------------------- refused graphs

class Graph(nn.Module):
    """obs -> [normalize] -> Linear -> ReLU -> Linear -> `tail`, for the refused cases."""

    def __init__(self, tail=lambda a: a, head=lambda x: x):
        super().__init__()
        self.net, self.tail, self.head = mlp(3, 1, hidden=(8,)), tail, head

    def forward(self, obs):
        return self.tail(self.net(self.head(obs)))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(3, 3), nn.Linear(3, 1)

    def forward(self, obs):
        return self.b(torch.relu(self.a(obs)) + obs)


REFUSED = {
    "tanh-rescaled-to-other-bounds": (lambda: Graph(lambda a: 3.0 * torch.tanh(a)), {},
                                      r"maps tanh to \[\[-3.\], \[3.\]\] but Pendulum-v1's bounds are"),
    "clipped-to-other-bounds": (lambda: Graph(lambda a: torch.clamp(a, -1.0, 1.0)), {},
                                r"clips actions to \[\[-1.\], \[1.\]\] but Pendulum-v1's bounds are"),
    "residual": (Residual, {}, "combines the observation with another computed tensor"),
    "normalization-twice": (lambda: Graph(head=lambda x: (x - 0.5) / 2.0), {"obs_stats": "STATS"},
                            "normalizes observations itself; drop --vecnormalize / --obs-stats"),
    "negative-normalization": (lambda: Graph(head=lambda x: (x - 0.5) / -2.0), {},
                               "scales observations by non-positive or non-finite factors"),
    "asymmetric-obs-clip": (lambda: Graph(head=lambda x: torch.clamp((x - 0.5) / 2.0, -5.0, 3.0)), {},
                            "clips normalized observations to"),
    "exp-after-the-layers": (lambda: Graph(torch.exp), {}, "cannot follow .*[Ee]xp.* on the path to output"),
}


@pytest.mark.parametrize("kind", list(SUFFIX))
@pytest.mark.parametrize("case", list(REFUSED))
def test_graphs_drlbench_cannot_reproduce_are_one_line_errors_naming_the_op(tmp_path, case, kind):
    make, kwargs, message = REFUSED[case]
    path = save_graph(make().eval(), kind, tmp_path / f"actor{SUFFIX[kind]}", 3)
    if kwargs.get("obs_stats"):
        np.savez(tmp_path / "stats.npz", mean=np.zeros(3), var=np.ones(3))
        kwargs = {"obs_stats": tmp_path / "stats.npz"}
    with pytest.raises(DrlbenchError, match=message) as info:
        load_external(path, ENV, trust_pickle=True, **kwargs)
    assert "\n" not in str(info.value)
