"""load_external: SB3 zips of all five algorithms, CleanRL checkpoints, ONNX and TorchScript actors, and
every bad input;
then what `compress` resumes from (agent ids, stored cells, variant folders) and bad saved actors.

The reference is always the checkpoint's own runtime: SB3's `predict(deterministic=True)` on the
model SB3 itself loads from the zip, the CleanRL-shaped module the checkpoint was saved from, ONNX
Runtime, or the TorchScript module.
"""

import copy
import io
import json
import os
import pickle
import re
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecNormalize
from torch import nn

from drlbench.actor import Actor, load_actor
from drlbench.agent_bench import benchmark_agent
from drlbench.byo import ENV_UNITS, TANH_SCALED, TANH_UNIT, load_external
from drlbench.cells import CellMeasurer, MeasureConfig
from drlbench.cli import main
from drlbench.errors import DrlbenchError
from drlbench.sb3_import import ALGOS, algo_class, sb3_predict
from drlbench.store import ResultStore
from drlbench.variants import Variant, VariantBuilder
from drlbench.zoo import ZOO_DIR, Agent, load_agent_dir, save_agent

from .conftest import TEST_AGENT, env_observations

ATOL = 1e-5
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # users still ship TorchScript

# name -> (algo, env id, VecNormalize?, extra constructor kwargs). Pendulum's bounds are ±2, so
# rescaling and clipping are exercised; the VecNormalize cases use rl-baselines3-zoo's two layouts.
CHECKPOINTS = {
    **{a: (a, "Pendulum-v1", False, {}) for a in ALGOS},
    "ppo-vecnormalize": ("ppo", "Hopper-v5", True, {}),
    "sac-vecnormalize": ("sac", "Swimmer-v5", True, {}),
    "ppo-sde-squash-relu": ("ppo", "Pendulum-v1", False,
                            {"use_sde": True, "policy_kwargs": {"squash_output": True, "activation_fn": nn.ReLU,
                                                                "net_arch": [32, 16]}}),
}


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


class Checkpoints:
    """Trains each checkpoint once per module, saved where rl-baselines3-zoo would save it."""

    def __init__(self, root: Path):
        self.root, self.paths = root, {}

    def __call__(self, name: str) -> Path:
        if name not in self.paths:
            algo, env_id, normalize, extra = CHECKPOINTS[name]
            torch.manual_seed(0)
            venv = make_vec_env(env_id, n_envs=1, seed=0)
            if normalize:
                venv = VecNormalize(venv)
            kwargs = {"learning_starts": 50} if algo in ("sac", "td3", "ddpg") else {"n_steps": 64, "batch_size": 64}
            model = algo_class(algo)("MlpPolicy", venv, seed=0, device="cpu", **kwargs, **extra)
            model.set_logger(Logger(folder=None, output_formats=[]))  # no /tmp/SB3-* folder
            model.learn(100)  # a few updates: weights and running statistics leave their init values
            folder = self.root / name
            folder.mkdir()
            path = folder / f"{env_id}.zip"
            model.save(path)
            if normalize:  # PPO: the zoo's logs layout; SAC: its Hugging Face repos' layout
                vn_path = folder / env_id / "vecnormalize.pkl" if algo == "ppo" else folder / "vec_normalize.pkl"
                vn_path.parent.mkdir(exist_ok=True)
                venv.save(str(vn_path))
            self.paths[name] = path
        return self.paths[name]

    def reference(self, name: str, obs: np.ndarray) -> np.ndarray:
        """SB3's own action for the checkpoint as SB3 loads it."""
        algo, _, normalize, _ = CHECKPOINTS[name]
        path = self(name)
        model = algo_class(algo).load(path, device="cpu")
        vn = None
        if normalize:
            with next(path.parent.rglob("*.pkl")).open("rb") as f:
                vn = pickle.load(f)
        return sb3_predict(model, obs, vn)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    torch.set_num_threads(1)
    return Checkpoints(tmp_path_factory.mktemp("sb3"))


# ------------------------------------------------------------------------------------- SB3

@pytest.mark.parametrize("name", list(CHECKPOINTS))
def test_sb3_zip_matches_sb3_predict(checkpoints, name):
    algo, env_id, normalize, _ = CHECKPOINTS[name]
    path = checkpoints(name)
    agent = load_external(path, env_id, trust_pickle=True)  # algo detected, vecnormalize.pkl found
    obs = env_observations(env_id)
    np.testing.assert_allclose(agent.actor.act(obs), checkpoints.reference(name, obs), atol=ATOL, rtol=0)
    card = agent.card
    assert (card["algo"], card["env_id"], card["format"], card["trust_pickle"]) == (algo, env_id, "sb3", True)
    assert card["source"] == str(path.resolve()) and card["algo_detected"]
    assert (card["vecnormalize"] is not None) == normalize
    assert card["id"].startswith(f"ext-{algo}-")
    json.dumps(card)  # cards are stored as JSON


def test_sb3_zip_is_read_without_unpickling(checkpoints, monkeypatch):
    """With trust_pickle=True the zip itself still runs no pickle: JSON + weights_only tensors."""
    import cloudpickle

    def refuse(*args, **kwargs):
        raise AssertionError("unpickled")

    path = checkpoints("td3")
    for mod, name in ((pickle, "load"), (pickle, "loads"), (cloudpickle, "loads"), (cloudpickle, "load")):
        monkeypatch.setattr(mod, name, refuse)
    assert load_external(path, "Pendulum-v1", trust_pickle=True).card["algo"] == "td3"


def test_sb3_algo_needed_when_undetectable(checkpoints, tmp_path):
    path = tmp_path / "anon.zip"
    hide = ("clip_range", "n_epochs")  # the keys that tell PPO apart
    _rewrite_zip(checkpoints("ppo"), path, data=lambda d: {k: v for k, v in d.items() if k not in hide})
    with pytest.raises(DrlbenchError, match="cannot tell the algorithm.*algo="):
        load_external(path, "Pendulum-v1", trust_pickle=True)
    agent = load_external(path, "Pendulum-v1", trust_pickle=True, algo="PPO")
    assert agent.card["algo"] == "ppo" and not agent.card["algo_detected"]
    obs = env_observations("Pendulum-v1")
    np.testing.assert_allclose(agent.actor.act(obs), checkpoints.reference("ppo", obs), atol=ATOL, rtol=0)


def test_explicit_vecnormalize_and_onnx_with_statistics(checkpoints, tmp_path):
    """An explicit VecNormalize file wins over discovery and also serves ONNX actors."""
    moved = tmp_path / "stats.pkl"
    src = checkpoints("ppo-vecnormalize")
    shutil.copy(next(src.parent.rglob("*.pkl")), moved)
    lone = tmp_path / "Hopper-v5.zip"
    shutil.copy(src, lone)
    agent = load_external(lone, "Hopper-v5", trust_pickle=True, vecnormalize=moved)
    obs = env_observations("Hopper-v5")
    np.testing.assert_allclose(agent.actor.act(obs), checkpoints.reference("ppo-vecnormalize", obs), atol=ATOL, rtol=0)

    onnx_path = _export_onnx(_mlp(11, 3, nn.Tanh), tmp_path / "a.onnx", 11)
    with pytest.raises(DrlbenchError, match="stats.pkl is pickle-based"):
        load_external(onnx_path, "Hopper-v5", vecnormalize=moved)
    agent = load_external(onnx_path, "Hopper-v5", trust_pickle=True, vecnormalize=moved)
    normalized = agent.actor.normalize(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(agent.actor.act(obs), np.clip(_ort(onnx_path, normalized), -1, 1), atol=ATOL, rtol=0)


# ------------------------------------------------------------------------------------- ONNX

def _mlp(obs_dim: int, act_dim: int, act=nn.ReLU, final: nn.Module | None = None, hidden=(64, 64)) -> nn.Module:
    torch.manual_seed(0)
    layers, width = [], obs_dim
    for h in hidden:
        layers += [nn.Linear(width, h), act()]
        width = h
    layers.append(nn.Linear(width, act_dim))
    return nn.Sequential(*layers, *([final] if final is not None else [])).eval()


def _export_onnx(module: nn.Module, path, obs_dim: int):
    """The legacy exporter (no onnxscript needed) writes Gemm nodes; `path` may be a file object."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, obs_dim),), path if isinstance(path, io.IOBase) else str(path),
                          input_names=["obs"], output_names=["act"], opset_version=17, dynamo=False,
                          dynamic_axes={"obs": {0: "batch"}, "act": {0: "batch"}})
    return path


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _matmul_onnx(path: Path, weights: list[np.ndarray], biases: list[np.ndarray], final_tanh: bool) -> Path:
    """MatMul + Add layers with Tanh between them, written by hand (not an exporter's Gemm)."""
    nodes, inits, cur = [], [], "obs"
    for i, (w, b) in enumerate(zip(weights, biases)):
        inits += [numpy_helper.from_array(w.T.astype(np.float32), f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        nodes += [helper.make_node("MatMul", [cur, f"W{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"B{i}"], [f"a{i}"])]
        cur = f"a{i}"
        if i < len(weights) - 1 or final_tanh:
            nodes.append(helper.make_node("Tanh", [cur], [f"t{i}"]))
            cur = f"t{i}"
    nodes[-1].output[0] = "act"
    obs = helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", weights[0].shape[1]])
    act = helper.make_tensor_value_info("act", TensorProto.FLOAT, ["batch", weights[-1].shape[0]])
    graph = helper.make_graph(nodes, "mlp", [obs], [act], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_onnx_gemm_relu_is_env_units_clipped(tmp_path):
    """Also: an imported agent saves, reloads and compresses like a bundled one."""
    path = _export_onnx(_mlp(17, 6, nn.ReLU), tmp_path / "walker.onnx", 17)
    agent = load_external(path, "Walker2d-v5")
    obs = env_observations("Walker2d-v5")
    np.testing.assert_allclose(agent.actor.act(obs), np.clip(_ort(path, obs), -1, 1), atol=ATOL, rtol=0)
    card = agent.card
    assert (card["format"], card["algo"], card["trust_pickle"], card["output"]) == ("onnx", None, False, ENV_UNITS)
    assert agent.actor.hidden == [64, 64] and agent.actor.activation == "relu"
    saved = load_agent_dir(save_agent(agent, tmp_path / "agent"))
    assert saved.card == json.loads(json.dumps(card))
    np.testing.assert_array_equal(saved.actor.act(obs), agent.actor.act(obs))
    builder = VariantBuilder(agent)
    assert builder.get("prune_l1_30").module.hidden < [64, 64]
    np.testing.assert_allclose(builder.get("fp32").runner().act(obs), agent.actor.act(obs), atol=ATOL, rtol=0)


def test_onnx_matmul_tanh_final_tanh_is_rescaled(tmp_path):
    rng = np.random.default_rng(0)
    ws = [rng.normal(0, 0.5, (16, 3)), rng.normal(0, 0.5, (1, 16))]
    bs = [rng.normal(0, 0.1, 16).astype(np.float32), rng.normal(0, 0.1, 1).astype(np.float32)]
    path = _matmul_onnx(tmp_path / "pendulum.onnx", ws, bs, final_tanh=True)
    agent = load_external(path, "Pendulum-v1", algo="sac")
    obs = env_observations("Pendulum-v1")
    np.testing.assert_allclose(agent.actor.act(obs), 2.0 * _ort(path, obs), atol=ATOL, rtol=0)  # bounds ±2
    assert agent.card["output"] == TANH_UNIT and agent.card["algo"] == "sac"
    assert agent.actor.activation == "tanh" and agent.actor.squash == "tanh"


# ------------------------------------------------------------------------------------- TorchScript

class CleanRLActor(nn.Module):
    """Functional activations and the action rescaling inside forward, as CleanRL writes actors."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.fc1, self.fc2, self.fc_mu = nn.Linear(3, 32), nn.Linear(32, 32), nn.Linear(32, 1)
        self.register_buffer("action_scale", torch.tensor([2.0]))
        self.register_buffer("action_bias", torch.tensor([0.0]))

    def forward(self, x):
        x = torch.relu(self.fc2(torch.relu(self.fc1(x))))
        return torch.tanh(self.fc_mu(x)) * self.action_scale + self.action_bias


@pytest.mark.parametrize("case", ["script-tanh-raw", "script-final-tanh", "trace-cleanrl"])
def test_torchscript(tmp_path, case):
    if case == "trace-cleanrl":
        env_id, module = "Pendulum-v1", torch.jit.trace(CleanRLActor().eval(), torch.zeros(1, 3))
    elif case == "script-final-tanh":
        env_id, module = "Pendulum-v1", torch.jit.script(_mlp(3, 1, nn.ReLU, nn.Tanh()))
    else:
        env_id, module = "Swimmer-v5", torch.jit.script(_mlp(8, 2, nn.Tanh))
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


# ------------------------------------------------------------------------------------- CleanRL
# Modules with the parameter names and forward passes of cleanrl/*_continuous_action.py, saved as their
# --save-model does: ppo `agent.state_dict()`, td3 `(actor, qf1, qf2)`, ddpg `(actor, qf1)` state dicts.

class CleanRLAgent(nn.Module):
    """ppo_continuous_action.py's Agent; its deterministic action is actor_mean, clipped by ClipAction."""

    def __init__(self, obs_dim: int, act_dim: int):
        super().__init__()
        torch.manual_seed(2)
        self.critic = nn.Sequential(nn.Linear(obs_dim, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
        self.actor_mean = nn.Sequential(nn.Linear(obs_dim, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                                        nn.Linear(64, act_dim))
        self.actor_logstd = nn.Parameter(torch.zeros(1, act_dim))
        with torch.no_grad():  # means beyond the bounds, so the clip is exercised
            self.actor_mean[4].weight.mul_(20)


class CleanRLSACActor(nn.Module):
    """sac_continuous_action.py's Actor; deterministic: tanh of the mean, scaled to the bounds."""

    def __init__(self, obs_dim: int, act_dim: int, low: float, high: float):
        super().__init__()
        torch.manual_seed(3)
        self.fc1, self.fc2 = nn.Linear(obs_dim, 32), nn.Linear(32, 32)
        self.fc_mean, self.fc_logstd = nn.Linear(32, act_dim), nn.Linear(32, act_dim)
        self.register_buffer("action_scale", torch.full((act_dim,), (high - low) / 2))
        self.register_buffer("action_bias", torch.full((act_dim,), (high + low) / 2))

    def forward(self, x):
        x = torch.relu(self.fc2(torch.relu(self.fc1(x))))
        return torch.tanh(self.fc_mean(x)) * self.action_scale + self.action_bias


def _qf(obs_dim: int, act_dim: int) -> dict:
    return nn.Sequential(nn.Linear(obs_dim + act_dim, 16), nn.ReLU(), nn.Linear(16, 1)).state_dict()


OBS_STATS = {"mean": np.linspace(-1, 1, 11), "var": np.linspace(0.5, 4, 11)}  # for Hopper-v5


def _cleanrl_file(tmp: Path, name: str) -> Path:
    """(saved checkpoint) for one of CLEANRL's cases."""
    saved = {"td3": lambda: (CleanRLActor().state_dict(), _qf(3, 1), _qf(3, 1)),
             "ddpg": lambda: (CleanRLActor().state_dict(), _qf(3, 1)),
             "sac": lambda: (CleanRLSACActor(3, 1, -2.0, 2.0).state_dict(), _qf(3, 1), _qf(3, 1)),
             "ppo": lambda: CleanRLAgent(11, 3).state_dict()}[name]()
    path = tmp / f"{name}_continuous_action.cleanrl_model"
    torch.save(saved, path)
    return path


def _cleanrl_reference(name: str, obs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        if name == "ppo":  # NormalizeObservation, then TransformObservation's clip to ±10, then ClipAction
            x = np.clip((obs - OBS_STATS["mean"]) / np.sqrt(OBS_STATS["var"] + 1e-8), -10, 10)
            mean = CleanRLAgent(11, 3).actor_mean(torch.as_tensor(x, dtype=torch.float32)).numpy()
            return np.clip(mean, -1, 1)
        module = CleanRLSACActor(3, 1, -2.0, 2.0) if name == "sac" else CleanRLActor()
        return module(torch.as_tensor(obs)).numpy()


CLEANRL = {"td3": "Pendulum-v1", "ddpg": "Pendulum-v1", "sac": "Pendulum-v1", "ppo": "Hopper-v5"}


@pytest.mark.parametrize("name", list(CLEANRL))
def test_cleanrl_checkpoint_matches_cleanrl_forward(tmp_path, name):
    env_id, path = CLEANRL[name], _cleanrl_file(tmp_path, name)
    stats = None
    if name == "ppo":
        stats = tmp_path / "obs_stats.npz"
        np.savez(stats, **OBS_STATS)
    agent = load_external(path, env_id, trust_pickle=True, obs_stats=stats)
    obs = env_observations(env_id)
    np.testing.assert_allclose(agent.actor.act(obs), _cleanrl_reference(name, obs), atol=ATOL, rtol=0)
    assert agent.card["format"] == "cleanrl" and agent.card["algo"] == name and agent.card["algo_detected"]
    assert (agent.card["vecnormalize_sha256"] is None) == (stats is None)  # the statistics are part of its id


def test_cleanrl_ppo_trained_without_normalization_is_an_explicit_choice(tmp_path):
    agent = load_external(_cleanrl_file(tmp_path, "ppo"), "Hopper-v5", trust_pickle=True, obs_stats="none")
    obs = env_observations("Hopper-v5")
    with torch.no_grad():
        mean = CleanRLAgent(11, 3).actor_mean(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(agent.actor.act(obs), np.clip(mean, -1, 1), atol=ATOL, rtol=0)
    assert agent.card["obs_stats"] == "none" and agent.card["vecnormalize_sha256"] is None


# ------------------------------------------------------------------------------------- bad input
# Each case builds its input in tmp (from the module's checkpoints `cps` where it needs one) and
# returns (path, env id, load_external kwargs).

def _rewrite_zip(src: Path, dst: Path, data=None, state=None) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            raw = zin.read(item)
            if item == "data" and data:
                raw = json.dumps(data(json.loads(raw))).encode()
            if item == "policy.pth" and state:
                buf = io.BytesIO()
                torch.save(state(torch.load(io.BytesIO(raw), weights_only=True)), buf)
                raw = buf.getvalue()
            zout.writestr(item, raw)


class Payload:
    """A pickle that would create a folder when unpickled: the tree check proves it never is."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.makedirs, (str(self.marker),)


class TwoOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(3, 1)

    def forward(self, x):
        return self.body(x), x


def _zip(name: str, env_id: str, **kwargs):
    return lambda tmp, cps: (cps(name), env_id, {"trust_pickle": True} | kwargs)


def _edited_td3(state):
    def make(tmp, cps):
        _rewrite_zip(cps("td3"), tmp / "edited.zip", state=lambda sd: state(sd, tmp))
        return tmp / "edited.zip", "Pendulum-v1", {"trust_pickle": True}

    return make


def _nan(sd, tmp):
    sd["actor.mu.0.weight"][0, 0] = float("nan")
    return sd


def _bytes(name: str, env_id: str, content):
    def make(tmp, cps):
        (tmp / name).write_bytes(content(tmp, cps))
        return tmp / name, env_id, {}

    return make


def _halved(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


def _onnx_bytes(module: nn.Module, obs_dim: int) -> bytes:
    buf = io.BytesIO()
    _export_onnx(module, buf, obs_dim)
    return buf.getvalue()


def _onnx(module, obs_dim: int, env_id: str):
    return _bytes("actor.onnx", env_id, lambda tmp, cps: _onnx_bytes(module(), obs_dim))


def _script(module, env_id: str, trace: bool = False):
    def content(tmp, cps):
        buf = io.BytesIO()
        m = module()
        torch.jit.save(torch.jit.trace(m, torch.zeros(1, 3)) if trace else torch.jit.script(m), buf)
        return buf.getvalue()

    return _bytes("actor.pt", env_id, content)


def _torch_save(tmp, cps):
    buf = io.BytesIO()
    torch.save(_mlp(3, 1), buf)
    return buf.getvalue()


def _cleanrl(name: str, env_id: str, edit=None, **kwargs):
    def make(tmp, cps):
        path = _cleanrl_file(tmp, name)
        if edit is not None:
            torch.save(edit(torch.load(path, weights_only=True), tmp), path)
        return path, env_id, {"trust_pickle": True} | kwargs

    return make


def _rescaled(saved, tmp):
    saved[0]["action_scale"] = torch.tensor([1.0])  # an actor trained on bounds ±1, not Pendulum's ±2
    return saved


def _stats_file(**arrays):
    def make(tmp, cps):
        np.savez(tmp / "stats.npz", **arrays)
        return _cleanrl("ppo", "Hopper-v5", obs_stats=tmp / "stats.npz")(tmp, cps)

    return make


def _lost_vecnormalize(tmp, cps):
    shutil.copy(cps("ppo-vecnormalize"), tmp / "Hopper-v5.zip")
    return tmp / "Hopper-v5.zip", "Hopper-v5", {"trust_pickle": True}


def _inf_mlp():
    m = _mlp(11, 3)
    with torch.no_grad():
        m[2].weight[1, 1] = float("inf")
    return m


BAD = {
    "missing-path": (lambda tmp, cps: (tmp / "nope.zip", "Hopper-v5", {}), "agent file not found"),
    "folder-path": (lambda tmp, cps: (tmp, "Hopper-v5", {}), "is a folder; pass the checkpoint file in it"),
    "unknown-env": (_zip("ppo", "NoSuchEnv-v0"), "unknown env id 'NoSuchEnv-v0'"),
    "discrete-env": (_zip("ppo", "CartPole-v1"), "Discrete action space; not supported yet"),
    "unknown-algo": (_zip("ppo", "Pendulum-v1", algo="a2c"), "unknown algorithm 'a2c'"),
    "sb3-untrusted": (_zip("ppo", "Pendulum-v1", trust_pickle=False),
                      r"pickle-based.*arbitrary code.*--trust-pickle \(trust_pickle=True\)"),
    "sb3-half-zip": (_bytes("half.zip", "Pendulum-v1", lambda tmp, cps: _halved(cps("ppo").read_bytes())),
                     "truncated or corrupt zip"),
    "sb3-obs-size": (_zip("ppo", "Hopper-v5"), "takes 3 observations but Hopper-v5 gives 11"),
    "sb3-nan": (_edited_td3(_nan), "NaN or Inf in layer actor.mu.0"),
    "sb3-payload": (_edited_td3(lambda sd, tmp: {**sd, "x": Payload(tmp / "pwned")}), "objects other than tensors"),
    "sb3-algo-conflict": (_zip("ppo", "Pendulum-v1", algo="sac"), "looks like a ppo checkpoint"),
    "sb3-lost-vecnormalize": (_lost_vecnormalize, "trained with VecNormalize but its statistics were not found"),
    "vecnormalize-missing": (_zip("ppo", "Pendulum-v1", vecnormalize="no/vn.pkl"), "vecnormalize file not found"),
    "onnx-random-bytes": (_bytes("random.onnx", "Hopper-v5", lambda tmp, cps: np.random.default_rng(0).bytes(4096)),
                          "not a valid ONNX model"),
    "onnx-truncated": (_bytes("half.onnx", "Hopper-v5", lambda tmp, cps: _halved(_onnx_bytes(_mlp(11, 3), 11))),
                       "not a valid ONNX model"),
    "onnx-obs-size": (_onnx(lambda: _mlp(11, 3), 11, "Walker2d-v5"), "takes 11 observations but Walker2d-v5 gives 17"),
    "onnx-act-size": (_onnx(lambda: _mlp(11, 2), 11, "Hopper-v5"), "outputs 2 actions but Hopper-v5 expects 3"),
    "onnx-inf": (_onnx(_inf_mlp, 11, "Hopper-v5"), "NaN or Inf in layer"),
    "onnx-ops": (_onnx(lambda: nn.Sequential(nn.Linear(11, 8), nn.LayerNorm(8), nn.Linear(8, 3)), 11, "Hopper-v5"),
                 "ops Gemm, LayerNormalization; supported: Gemm or MatMul"),
    "onnx-mixed-activations": (_onnx(lambda: nn.Sequential(nn.Linear(11, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(),
                                                           nn.Linear(8, 3)), 11, "Hopper-v5"), "mixes activations"),
    "script-layernorm": (_script(lambda: nn.Sequential(nn.Linear(3, 8), nn.LayerNorm(8), nn.Linear(8, 1)),
                                 "Pendulum-v1"), "parameters outside Linear layers"),
    "script-elu": (_script(lambda: _mlp(3, 1, nn.ELU), "Pendulum-v1"), "not an MLP drlbench can reproduce"),
    "script-tuple": (_script(TwoOutputs, "Pendulum-v1", trace=True), "must return one tensor"),
    "script-obs-size": (_script(lambda: _mlp(3, 1), "Hopper-v5"), "takes 3 observations but Hopper-v5 gives 11"),
    "torch-save-untrusted": (_bytes("actor.pt", "Pendulum-v1", _torch_save), r"pickle-based \(an SB3 zip, a torch"),
    "torch-save-module": (lambda tmp, cps: (*_bytes("actor.pt", "Pendulum-v1", _torch_save)(tmp, cps)[:2],
                                            {"trust_pickle": True}), "objects other than tensors"),
    "cleanrl-untrusted": (_cleanrl("td3", "Pendulum-v1", trust_pickle=False), "pickle-based"),
    "cleanrl-payload": (_cleanrl("td3", "Pendulum-v1", edit=lambda sd, tmp: (sd[0] | {"x": Payload(tmp / "pwned")},)),
                        "objects other than tensors"),
    "cleanrl-not-an-actor": (_cleanrl("td3", "Pendulum-v1", edit=lambda sd, tmp: {"w": torch.zeros(2)}),
                             "holds no CleanRL actor"),
    "cleanrl-stray-parameter": (_cleanrl("td3", "Pendulum-v1", edit=lambda sd, tmp: (sd[0] | {"ln.weight": sd[0]
                                                                                              ["fc1.bias"]},)),
                                "cannot map to the td3 actor: ln.weight"),
    "cleanrl-other-bounds": (_cleanrl("td3", "Pendulum-v1", edit=_rescaled), "with action_scale \\[1.\\] instead of"),
    "cleanrl-algo-conflict": (_cleanrl("ddpg", "Pendulum-v1", algo="td3"), "looks like a CleanRL ddpg checkpoint"),
    "cleanrl-ppo-no-stats": (_cleanrl("ppo", "Hopper-v5"), "does not save their statistics"),
    "obs-stats-shape": (_stats_file(mean=np.zeros(5), var=np.ones(5)), r"normalizes \(5,\) observations"),
    "obs-stats-no-var": (_stats_file(mean=np.zeros(11)), "has no var"),
    "obs-stats-pickled": (_stats_file(mean=np.array([{"x": 1}], dtype=object), var=np.ones(11)),
                          "cannot read obs stats"),
    "obs-stats-negative-var": (_stats_file(mean=np.zeros(11), var=-np.ones(11)), "negative variance"),
    "obs-stats-and-vecnormalize": (_cleanrl("ppo", "Hopper-v5", obs_stats="a.npz", vecnormalize="b.pkl"),
                                   "give the observation statistics once"),
    "pickle-file": (_bytes("agent.pkl", "Pendulum-v1", lambda tmp, cps: pickle.dumps({"w": [1.0]})), "is a pickle"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_clear_error_and_writes_nothing(checkpoints, tmp_path, monkeypatch, case):
    make, message = BAD[case]
    path, env_id, kwargs = make(tmp_path, checkpoints)
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    with pytest.raises(DrlbenchError, match=message) as info:
        load_external(path, env_id, **kwargs)
    assert "\n" not in str(info.value)
    assert _tree(tmp_path) == before


# ------------------------------------------------------------------------------------- compress resume

def _vecnormalize_file(path: Path, env_id: str, shift: float) -> Path:
    """A VecNormalize .pkl with hand-set observation statistics (mean `shift`, variance 4)."""
    venv = VecNormalize(make_vec_env(env_id, n_envs=1, seed=0))
    venv.obs_rms.mean = np.full(venv.observation_space.shape, shift)
    venv.obs_rms.var = np.full(venv.observation_space.shape, 4.0)
    venv.save(str(path))
    venv.close()
    return path


@pytest.mark.parametrize("fmt", ["onnx-explicit-vecnormalize", "sb3-vecnormalize-beside-the-zip"])
def test_agent_id_depends_on_the_normalization_statistics(checkpoints, tmp_path, fmt):
    """`compress` resumes by agent id: the same file under other statistics is another actor, so another id."""
    folder = tmp_path / "agent"
    folder.mkdir()
    if fmt.startswith("onnx"):
        model = _export_onnx(_mlp(3, 1), folder / "actor.onnx", 3)
    else:
        model = folder / "Pendulum-v1.zip"
        shutil.copy(checkpoints("ppo"), model)

    def load(shift: float | None, name: str = "") -> Agent:
        beside, kwargs = folder / "vecnormalize.pkl", {"trust_pickle": True}
        beside.unlink(missing_ok=True)
        if shift is not None:
            stats = _vecnormalize_file(tmp_path / f"{name or shift}.pkl", "Pendulum-v1", shift)
            if fmt.startswith("onnx"):
                kwargs["vecnormalize"] = stats
            else:
                shutil.copy(stats, beside)
        return load_external(model, "Pendulum-v1", **kwargs)

    plain, a, a_copy, b = load(None), load(0.5), load(0.5, "copy"), load(-0.5)
    assert len({plain.id, a.id, b.id}) == 3
    assert a_copy.id == a.id  # the same statistics from another file: the same actor
    assert plain.id.endswith(plain.card["sha256"][:8])  # without statistics: the file's hash, as before
    assert {x.card["sha256"] for x in (plain, a, b)} == {plain.card["sha256"]}
    assert plain.card["vecnormalize_sha256"] is None and a.card["vecnormalize_sha256"] != b.card["vecnormalize_sha256"]


FAST = MeasureConfig(episodes=1, ratio_block_s=0.01, memory=False, energy=False)
COMPRESSED = ["fp32", "prune_l2_30"]


@pytest.fixture
def small_agent():
    torch.manual_seed(0)
    actor = Actor(3, 1, [16], squash="tanh", action_low=[-2.0], action_high=[2.0])
    return Agent("ext-sac-pendulum-0123abcd", actor,
                 {"id": "ext-sac-pendulum-0123abcd", "algo": "sac", "task": "Pendulum", "env_id": "Pendulum-v1"})


def test_compress_refuses_cells_measured_on_other_weights_under_the_same_id(tmp_path, small_agent):
    benchmark_agent(small_agent, ["fp32"], tmp_path, FAST, progress=False)
    renormalized = Agent(small_agent.id, copy.deepcopy(small_agent.actor), small_agent.card)
    renormalized.actor.obs_mean += 1.0  # e.g. other VecNormalize statistics under an id that ignores them
    with ResultStore(tmp_path / "results.db") as store:
        runs = len(store.runs())
    with pytest.raises(DrlbenchError, match=rf"results.db holds cells of {small_agent.id} measured on other "
                                            r"weights \(fingerprint .*\).*compress into a new --out") as info:
        benchmark_agent(renormalized, ["fp32"], tmp_path, FAST, progress=False)
    assert "\n" not in str(info.value)
    with ResultStore(tmp_path / "results.db") as store:
        assert len(store.runs()) == runs and len(store) == 1


class Killed(BaseException):
    """Stands for a kill: nothing between the save and the test catches it."""


def _kill_while_saving(monkeypatch):
    save = Variant.save

    def half_save(self, folder):
        if self.name != "prune_l2_30":
            return save(self, folder)
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "model.onnx").write_bytes(self.onnx)
        raise Killed

    monkeypatch.setattr(Variant, "save", half_save)


def _rewrite_variant_json(folder: Path, **changes) -> None:
    meta = json.loads((folder / "variant.json").read_text())
    (folder / "variant.json").write_text(json.dumps(meta | changes))


# damage done to variants/prune_l2_30 by the first run (during it, or after it)
FOLDER_DAMAGE = {
    "killed-while-saving": None,
    "folder-deleted": shutil.rmtree,
    "model-onnx-deleted": lambda folder: (folder / "model.onnx").unlink(),
    "overwritten-by-another-agent": lambda folder: _rewrite_variant_json(folder, agent="ppo-hopper"),
}


@pytest.mark.parametrize("damage", list(FOLDER_DAMAGE))
def test_compress_rerun_leaves_every_stored_cell_with_its_variant_folder(tmp_path, small_agent, monkeypatch, damage):
    out = tmp_path / "out"
    if damage == "killed-while-saving":
        _kill_while_saving(monkeypatch)
        with pytest.raises(Killed):
            benchmark_agent(small_agent, COMPRESSED, out, FAST, progress=False)
        monkeypatch.undo()
        with ResultStore(out / "results.db") as store:
            assert [c.variant for c in store.cells()] == ["fp32"]  # no cell without its folder
        assert sorted(p.name for p in (out / "variants").iterdir()) == ["fp32"]  # no half-written folder
    else:
        benchmark_agent(small_agent, COMPRESSED, out, FAST, progress=False)
        FOLDER_DAMAGE[damage](out / "variants" / "prune_l2_30")

    measured = []
    measure = CellMeasurer.measure
    monkeypatch.setattr(CellMeasurer, "measure", lambda self, name: measured.append(name) or measure(self, name))
    cells = benchmark_agent(small_agent, COMPRESSED, out, FAST, progress=False)
    assert [c.variant for c in cells] == COMPRESSED
    assert measured == (["prune_l2_30"] if damage == "killed-while-saving" else [])  # stored cells are reused
    assert sorted(p.name for p in (out / "variants").iterdir()) == COMPRESSED
    for name in COMPRESSED:
        folder = out / "variants" / name
        meta = json.loads((folder / "variant.json").read_text())
        assert (meta["agent"], meta["variant"]) == (small_agent.id, name)
        assert (folder / "model.onnx").stat().st_size > 0
        assert load_actor(folder / "actor.safetensors").hidden == meta["build"].get("hidden", [16])


# ------------------------------------------------------------------------------------- saved actors

BAD_ACTOR_METADATA = {
    "invalid-json": (lambda cfg: "{not json", "Expecting property name"),
    "not-an-object": (lambda cfg: json.dumps(cfg["hidden"]), "expected a JSON object of Actor arguments"),
    "unknown-key": (lambda cfg: json.dumps(cfg | {"dropout": 0.1}), "unexpected keyword argument 'dropout'"),
    "negative-width": (lambda cfg: json.dumps(cfg | {"hidden": [-5, 64]}), "negative dimension"),
    "widths-unlike-the-tensors": (lambda cfg: json.dumps(cfg | {"hidden": [32, 64]}), "size mismatch"),
}


@pytest.mark.parametrize("case", list(BAD_ACTOR_METADATA))
def test_bad_actor_metadata_is_one_line_error_not_a_traceback(tmp_path, capsys, case):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    edit, reason = BAD_ACTOR_METADATA[case]
    folder = tmp_path / "agent"
    shutil.copytree(ZOO_DIR / TEST_AGENT, folder)
    path = folder / "actor.safetensors"
    with safe_open(str(path), framework="pt") as f:
        cfg = json.loads(f.metadata()["drlbench_actor"])
    save_file(load_file(str(path)), str(path), metadata={"drlbench_actor": edit(cfg)})
    what = "tensors do not match the stored architecture" if "tensors" in case else "bad drlbench_actor metadata"
    message = rf"corrupt weight file {re.escape(str(path))}: {what} \(.*{reason}.*\)"
    with pytest.raises(DrlbenchError, match=message) as info:
        load_actor(path)
    assert "\n" not in str(info.value)
    code = main(["evaluate", str(folder)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1
    assert re.search(message, err)
