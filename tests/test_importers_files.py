"""Model files made the way their users make them, for the tests/test_importers*.py modules (no tests here).

SB3 and sbx models are built small (net_arch [16, 16]) and trained a few hundred steps, so weights
and running statistics leave their initial values; files come from `model.save`, SB3's ONNX export
guide (`OnnxableSB3Policy`), `torch.jit.trace` and `torch.export`; CleanRL-shaped modules carry the
parameter names and forward passes of cleanrl/*_continuous_action.py.
"""

import io
import json
import os
import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecNormalize
from torch import nn

from drlbench.importers.sb3 import algo_class, sb3_predict

ATOL = 1e-5
OFF_POLICY = ("sac", "td3", "ddpg")
NET = {"net_arch": [16, 16]}


def train_sb3(algo: str, env_id: str, normalize: bool = False, steps: int = 300, **extra):
    """(model, VecNormalize or None) after `steps` of learning."""
    torch.manual_seed(0)
    venv = make_vec_env(env_id, n_envs=1, seed=0)
    if normalize:
        venv = VecNormalize(venv, norm_reward=False)
    kwargs = {"learning_starts": 100} if algo in OFF_POLICY else {"n_steps": 64, "batch_size": 64}
    model = algo_class(algo)("MlpPolicy", venv, seed=0, device="cpu", **(kwargs | extra))
    model.set_logger(Logger(folder=None, output_formats=[]))  # no /tmp/SB3-* folder
    model.learn(steps)
    return model, venv if normalize else None


# ------------------------------------------------------------------------------------- graph exports

class OnnxableSB3Policy(nn.Module):
    """SB3's export guide: `policy(obs, deterministic=True)` (PPO: actions, values, log_prob; TD3/DDPG:
    actions) or, for SAC, `model.policy.actor(obs, deterministic=True)`."""

    def __init__(self, policy: nn.Module):
        super().__init__()
        self.policy = policy

    def forward(self, observation):
        return self.policy(observation, deterministic=True)


class Baked(OnnxableSB3Policy):
    """The guide's export with VecNormalize's statistics and the action post-processing inside, as users
    add them: clamp((obs - mean) / sqrt(var + eps)), then tanh actions rescaled to [low, high] (SB3's
    `unscale_action`) or PPO's means clipped to the bounds (what `predict` does)."""

    def __init__(self, policy: nn.Module, vecnormalize, action_space, squashed: bool):
        super().__init__(policy)
        self.squashed, self.clip, self.eps = squashed, float(vecnormalize.clip_obs), float(vecnormalize.epsilon)
        self.register_buffer("mean", torch.as_tensor(vecnormalize.obs_rms.mean, dtype=torch.float32))
        self.register_buffer("var", torch.as_tensor(vecnormalize.obs_rms.var, dtype=torch.float32))
        self.register_buffer("low", torch.as_tensor(action_space.low))
        self.register_buffer("high", torch.as_tensor(action_space.high))

    def forward(self, observation):
        out = super().forward(torch.clamp((observation - self.mean) / torch.sqrt(self.var + self.eps),
                                          -self.clip, self.clip))
        rest = tuple(out[1:]) if isinstance(out, tuple) else None
        a = out[0] if rest is not None else out
        if self.squashed:
            a = self.low + 0.5 * (a + 1.0) * (self.high - self.low)
        else:
            a = torch.clamp(a, self.low, self.high)
        return a if rest is None else (a, *rest)


def export_module(model, vecnormalize=None) -> nn.Module:
    """The module users export: the guide's wrapper, with the statistics baked in when given."""
    policy = model.policy.actor if type(model).__name__ == "SAC" else model.policy
    if vecnormalize is None:
        return OnnxableSB3Policy(policy).eval()
    return Baked(policy, vecnormalize, model.action_space, squashed=type(model).__name__ != "PPO").eval()


def save_graph(module: nn.Module, kind: str, path: Path, obs_dim: int) -> Path:
    """`module` saved as its users save it: the guide's `torch.onnx.export`, `torch.jit.trace` or `torch.export`."""
    dummy = torch.zeros(1, obs_dim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "onnx":  # the guide's call: opset 17, input named "input", batch fixed at 1
            torch.onnx.export(module, (dummy,), str(path), opset_version=17, input_names=["input"], dynamo=False)
        elif kind == "trace":
            torch.jit.trace(module, dummy).save(str(path))
        else:
            # SB3 builds torch Normal distributions, whose argument checks torch.export cannot trace:
            # switching them off (torch's documented global) is how SAC/PPO policies export
            validate = torch.distributions.Distribution._validate_args
            torch.distributions.Distribution.set_default_validate_args(False)
            try:
                torch.export.save(torch.export.export(module, (dummy,)), str(path))
            finally:
                torch.distributions.Distribution.set_default_validate_args(validate)
    return path


def mlp(obs_dim: int, act_dim: int, act=nn.ReLU, final: nn.Module | None = None, hidden=(64, 64)) -> nn.Module:
    torch.manual_seed(0)
    layers, width = [], obs_dim
    for h in hidden:
        layers += [nn.Linear(width, h), act()]
        width = h
    layers.append(nn.Linear(width, act_dim))
    return nn.Sequential(*layers, *([final] if final is not None else [])).eval()


def export_onnx(module: nn.Module, path, obs_dim: int):
    """The legacy exporter (no onnxscript needed) writes Gemm nodes; `path` may be a file object."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, obs_dim),), path if isinstance(path, io.IOBase) else str(path),
                          input_names=["obs"], output_names=["act"], opset_version=17, dynamo=False,
                          dynamic_axes={"obs": {0: "batch"}, "act": {0: "batch"}})
    return path


def onnx_bytes(module: nn.Module, obs_dim: int) -> bytes:
    buf = io.BytesIO()
    export_onnx(module, buf, obs_dim)
    return buf.getvalue()


def ort_run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


# ------------------------------------------------------------------------------------- SB3 zips

# name -> (algo, env id, VecNormalize?, extra constructor kwargs). Pendulum's bounds are ±2, so
# rescaling and clipping are exercised; the VecNormalize cases use rl-baselines3-zoo's two layouts.
CHECKPOINTS = {
    **{a: (a, "Pendulum-v1", False, {}) for a in ("trpo", "ppo", "ddpg", "td3", "sac")},
    "ppo-vecnormalize": ("ppo", "Hopper-v5", True, {}),
    "sac-vecnormalize": ("sac", "Swimmer-v5", True, {}),
    "ppo-sde-squash-relu": ("ppo", "Pendulum-v1", False,
                            {"use_sde": True, "policy_kwargs": {"squash_output": True, "activation_fn": nn.ReLU,
                                                                "net_arch": [32, 16]}}),
}


class Checkpoints:
    """Trains each checkpoint once, saved where rl-baselines3-zoo would save it."""

    def __init__(self, root: Path):
        self.root, self.paths = root, {}

    def __call__(self, name: str) -> Path:
        if name not in self.paths:
            algo, env_id, normalize, extra = CHECKPOINTS[name]
            # a copy: SB3 writes into policy_kwargs (SAC adds use_sde)
            model, venv = train_sb3(algo, env_id, normalize, steps=150, **({"policy_kwargs": dict(NET)} | extra))
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


def rewrite_zip(src: Path, dst: Path, data=None, state=None) -> None:
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


# ------------------------------------------------------------------------------------- CleanRL

class CleanRLActor(nn.Module):
    """td3/ddpg_continuous_action.py's Actor: functional activations, the action rescaling in forward."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.fc1, self.fc2, self.fc_mu = nn.Linear(3, 32), nn.Linear(32, 32), nn.Linear(32, 1)
        self.register_buffer("action_scale", torch.tensor([2.0]))
        self.register_buffer("action_bias", torch.tensor([0.0]))

    def forward(self, x):
        x = torch.relu(self.fc2(torch.relu(self.fc1(x))))
        return torch.tanh(self.fc_mu(x)) * self.action_scale + self.action_bias


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
CLEANRL = {"td3": "Pendulum-v1", "ddpg": "Pendulum-v1", "sac": "Pendulum-v1", "ppo": "Hopper-v5"}


def cleanrl_file(tmp: Path, name: str) -> Path:
    """The checkpoint CleanRL's --save-model writes for one of CLEANRL's scripts."""
    saved = {"td3": lambda: (CleanRLActor().state_dict(), _qf(3, 1), _qf(3, 1)),
             "ddpg": lambda: (CleanRLActor().state_dict(), _qf(3, 1)),
             "sac": lambda: (CleanRLSACActor(3, 1, -2.0, 2.0).state_dict(), _qf(3, 1), _qf(3, 1)),
             "ppo": lambda: CleanRLAgent(11, 3).state_dict()}[name]()
    path = tmp / f"{name}_continuous_action.cleanrl_model"
    torch.save(saved, path)
    return path


def cleanrl_reference(name: str, obs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        if name == "ppo":  # NormalizeObservation, then TransformObservation's clip to ±10, then ClipAction
            x = np.clip((obs - OBS_STATS["mean"]) / np.sqrt(OBS_STATS["var"] + 1e-8), -10, 10)
            mean = CleanRLAgent(11, 3).actor_mean(torch.as_tensor(x, dtype=torch.float32)).numpy()
            return np.clip(mean, -1, 1)
        module = CleanRLSACActor(3, 1, -2.0, 2.0) if name == "sac" else CleanRLActor()
        return module(torch.as_tensor(obs)).numpy()
