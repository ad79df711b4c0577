"""load_external on SB3 zips (all five algorithms) and CleanRL checkpoints, the trainer's live SB3 models,
and every bad input as one clear error. Graph exports (ONNX, TorchScript, torch.export) and sbx zips:
tests/test_importers_graph.py; fuzzing: tests/test_importers_fuzz.py.

The reference is always the checkpoint's own runtime: SB3's `predict(deterministic=True)` on the model
SB3 itself loads from the zip, or the CleanRL-shaped module the checkpoint was saved from.
"""

import io
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize
from torch import nn

from drlbench.errors import DrlbenchError
from drlbench.importers import load_external
from drlbench.importers.sb3 import actor_from_sb3, sb3_predict
from drlbench.names import ALGOS
from drlbench.zoo import Agent

from .conftest import env_observations
from .test_importers_files import (
    ATOL,
    CHECKPOINTS,
    CLEANRL,
    OBS_STATS,
    Checkpoints,
    CleanRLAgent,
    Payload,
    cleanrl_file,
    cleanrl_reference,
    export_onnx,
    mlp,
    onnx_bytes,
    ort_run,
    rewrite_zip,
    train_sb3,
)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # users still ship TorchScript


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    torch.set_num_threads(1)
    return Checkpoints(tmp_path_factory.mktemp("sb3"))


# ------------------------------------------------------------------------------------- SB3 zips

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
    rewrite_zip(checkpoints("ppo"), path, data=lambda d: {k: v for k, v in d.items() if k not in hide})
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

    onnx_path = export_onnx(mlp(11, 3, nn.Tanh), tmp_path / "a.onnx", 11)
    with pytest.raises(DrlbenchError, match="stats.pkl is pickle-based"):
        load_external(onnx_path, "Hopper-v5", vecnormalize=moved)
    agent = load_external(onnx_path, "Hopper-v5", trust_pickle=True, vecnormalize=moved)
    normalized = agent.actor.normalize(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(agent.actor.act(obs), np.clip(ort_run(onnx_path, normalized), -1, 1), atol=ATOL, rtol=0)


def test_sb3_zip_whose_layers_do_not_match_the_actor_is_refused_not_truncated(checkpoints, tmp_path):
    """A TD3 mu with a missing middle layer: the layer pairing must see the gap, not silently drop a layer."""
    path = tmp_path / "gap.zip"
    rewrite_zip(checkpoints("td3"), path, state=lambda sd: {k: v for k, v in sd.items() if "actor.mu.2" not in k})
    with pytest.raises(DrlbenchError, match=r"actor.mu.\* is not Linear/activation pairs"):
        load_external(path, "Pendulum-v1", trust_pickle=True)


def test_layers_are_paired_with_the_actor_strictly(monkeypatch):
    """zip(strict=True) where layers are copied into the Actor: an Actor with fewer Linears than the layers
    given raises instead of silently dropping the extra layer (what a plain zip did)."""
    import drlbench.importers.spec as spec

    class Shallow(spec.Actor):  # builds one hidden layer fewer than asked for
        def __init__(self, *args, hidden, **kwargs):
            super().__init__(*args, hidden=hidden[:-1], **kwargs)

    spaces = spec.Spaces("Pendulum-v1", 3, 1, np.array([-2.0], np.float32), np.array([2.0], np.float32))
    layers = [spec.Layer("a", np.ones((4, 3)), np.zeros(4)), spec.Layer("b", np.ones((1, 4)), np.zeros(1)),
              spec.Layer("c", np.ones((1, 1)), np.zeros(1))]  # shapes the shallow actor's first two Linears take
    assert spec.build_actor(layers, "relu", spec.ENV_UNITS, spaces, None, "t").hidden == [4, 1]
    monkeypatch.setattr(spec, "Actor", Shallow)
    with pytest.raises(ValueError, match=r"zip\(\) argument 2 is longer"):
        spec.build_actor(layers, "relu", spec.ENV_UNITS, spaces, None, "t")


# ------------------------------------------------------------------------------------- live SB3 models

@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "vecnormalize"])
@pytest.mark.parametrize("algo", ALGOS)
def test_live_sb3_model_matches_predict(algo, normalize):
    """The trainer's extractor: the exported actor reproduces SB3's predict(deterministic=True)."""
    model, vn = train_sb3(algo, "Hopper-v5", normalize, steps=150, policy_kwargs={"net_arch": [16, 16]})
    actor = actor_from_sb3(model, vn)
    obs = env_observations("Hopper-v5")
    np.testing.assert_allclose(actor.act(obs), sb3_predict(model, obs, vn), atol=ATOL, rtol=0)


# ------------------------------------------------------------------------------------- CleanRL

@pytest.mark.parametrize("name", list(CLEANRL))
def test_cleanrl_checkpoint_matches_cleanrl_forward(tmp_path, name):
    env_id, path = CLEANRL[name], cleanrl_file(tmp_path, name)
    stats = None
    if name == "ppo":
        stats = tmp_path / "obs_stats.npz"
        np.savez(stats, **OBS_STATS)
    agent = load_external(path, env_id, trust_pickle=True, obs_stats=stats)
    obs = env_observations(env_id)
    np.testing.assert_allclose(agent.actor.act(obs), cleanrl_reference(name, obs), atol=ATOL, rtol=0)
    assert agent.card["format"] == "cleanrl" and agent.card["algo"] == name and agent.card["algo_detected"]
    assert (agent.card["vecnormalize_sha256"] is None) == (stats is None)  # the statistics are part of its id


def test_cleanrl_ppo_trained_without_normalization_is_an_explicit_choice(tmp_path):
    agent = load_external(cleanrl_file(tmp_path, "ppo"), "Hopper-v5", trust_pickle=True, obs_stats="none")
    obs = env_observations("Hopper-v5")
    with torch.no_grad():
        mean = CleanRLAgent(11, 3).actor_mean(torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(agent.actor.act(obs), np.clip(mean, -1, 1), atol=ATOL, rtol=0)
    assert agent.card["obs_stats"] == "none" and agent.card["vecnormalize_sha256"] is None


# ------------------------------------------------------------------------------------- agent ids

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
        model = export_onnx(mlp(3, 1), folder / "actor.onnx", 3)
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


# ------------------------------------------------------------------------------------- bad input
# Each case builds its input in tmp (from the module's checkpoints `cps` where it needs one) and
# returns (path, env id, load_external kwargs).

class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(3, 1)

    def forward(self, x, y):
        return self.body(x) + y


def _zip(name: str, env_id: str, **kwargs):
    return lambda tmp, cps: (cps(name), env_id, {"trust_pickle": True} | kwargs)


def _edited_td3(state):
    def make(tmp, cps):
        rewrite_zip(cps("td3"), tmp / "edited.zip", state=lambda sd: state(sd, tmp))
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


def _onnx(module, obs_dim: int, env_id: str):
    return _bytes("actor.onnx", env_id, lambda tmp, cps: onnx_bytes(module(), obs_dim))


def _script(module, env_id: str, trace: bool = False):
    def content(tmp, cps):
        buf = io.BytesIO()
        m = module()
        torch.jit.save(torch.jit.trace(m, torch.zeros(1, 3)) if trace else torch.jit.script(m), buf)
        return buf.getvalue()

    return _bytes("actor.pt", env_id, content)


def _torch_save(tmp, cps):
    buf = io.BytesIO()
    torch.save(mlp(3, 1), buf)
    return buf.getvalue()


def _cleanrl(name: str, env_id: str, edit=None, **kwargs):
    def make(tmp, cps):
        path = cleanrl_file(tmp, name)
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
    m = mlp(11, 3)
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
    "onnx-truncated": (_bytes("half.onnx", "Hopper-v5", lambda tmp, cps: _halved(onnx_bytes(mlp(11, 3), 11))),
                       "not a valid ONNX model"),
    "onnx-obs-size": (_onnx(lambda: mlp(11, 3), 11, "Walker2d-v5"), "takes 11 observations but Walker2d-v5 gives 17"),
    "onnx-act-size": (_onnx(lambda: mlp(11, 2), 11, "Hopper-v5"), "outputs 2 actions but Hopper-v5 expects 3"),
    "onnx-inf": (_onnx(_inf_mlp, 11, "Hopper-v5"), "NaN or Inf in layer"),
    "onnx-ops": (_onnx(lambda: nn.Sequential(nn.Linear(11, 8), nn.LayerNorm(8), nn.Linear(8, 3)), 11, "Hopper-v5"),
                 "cannot follow LayerNormalization node .* on the path to output 'act'; supported: linear layers"),
    "onnx-mixed-activations": (_onnx(lambda: nn.Sequential(nn.Linear(11, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(),
                                                           nn.Linear(8, 3)), 11, "Hopper-v5"), "mixes activations"),
    "script-layernorm": (_script(lambda: nn.Sequential(nn.Linear(3, 8), nn.LayerNorm(8), nn.Linear(8, 1)),
                                 "Pendulum-v1"), r"cannot follow aten::layer_norm \(%"),
    "script-elu": (_script(lambda: mlp(3, 1, nn.ELU), "Pendulum-v1"), r"cannot follow aten::elu \(%"),
    "script-two-inputs": (_script(TwoInputs, "Pendulum-v1"), "forward takes 2 arguments; accepted: one observation"),
    "script-obs-size": (_script(lambda: mlp(3, 1), "Hopper-v5"), "takes 3 observations but Hopper-v5 gives 11"),
    "torch-save-untrusted": (_bytes("actor.pt", "Pendulum-v1", _torch_save), r"pickle-based \(an SB3 or sbx zip, a"),
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
