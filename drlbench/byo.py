"""Bring your own agent: an SB3 zip, a CleanRL checkpoint, an ONNX actor or a TorchScript actor becomes
a drlbench `Agent`.

    load_external(path, env_id, *, trust_pickle=False, vecnormalize=None, obs_stats=None, algo=None) -> Agent

Formats, detected from the file's bytes (never from its name):
    sb3          a zip holding `data` and `policy.pth` (Stable-Baselines3 / sb3-contrib `model.save`);
                 trpo, ppo, ddpg, td3 or sac, detected from the hyperparameters in `data` (else pass
                 `algo`). Its VecNormalize statistics are given explicitly or found where
                 rl-baselines3-zoo keeps them: `<dir>/vecnormalize.pkl`, `<dir>/vec_normalize.pkl`
                 (its Hugging Face repos) or `<dir>/<env_id>/vecnormalize.pkl` (its logs folder).
    cleanrl      a `torch.save` zip (`data.pkl`) of state dicts as CleanRL's continuous-action scripts
                 write them with `--save-model` (`<exp_name>.cleanrl_model`): ppo_continuous_action's
                 `agent.state_dict()` (actor_mean.*), td3's `(actor, qf1, qf2)` and ddpg's `(actor, qf1)`
                 state dicts (fc1, fc2, fc_mu, action_scale, action_bias), or a SAC actor's (fc_mean).
                 CleanRL's PPO normalizes observations with gymnasium's NormalizeObservation and does
                 not save the statistics: pass them as an .npz (`obs_stats`).
    torchscript  a zip with a `code/` folder (`torch.jit.script`/`trace` then `.save`).
    onnx         anything else that parses as an ONNX model (input float32 [batch, obs_dim]).

Safety. SB3 zips, CleanRL checkpoints and vecnormalize.pkl are pickle-based and unpickling can run
arbitrary code, so all are refused unless the user passes `trust_pickle=True` (`--trust-pickle`).
Even then the zips are read without executing them: an SB3 zip's `data` member is parsed as plain
JSON (the cloudpickled entries in it, schedules and spaces, are never unpickled), and its
`policy.pth` and a CleanRL checkpoint with `torch.load(weights_only=True)`, which only rebuilds
tensors and containers; the policy is rebuilt from the state dict's shapes, the JSON-readable
`policy_kwargs` (activation, squash_output) and the env's spaces. Only vecnormalize.pkl is really
unpickled. Observation statistics in an .npz are read with `allow_pickle=False`. ONNX is protobuf
and TorchScript has its own deserializer, so neither needs pickle: loading a TorchScript file does
not run Python, but verifying it runs its TorchScript `forward` once on env observations.

Actions. Every format becomes an `Actor` in env units (so pruning and QAT apply). The file's
output is read as:
    no final tanh          actions in env units, clipped to the action bounds (as SB3's `predict`
                           clips PPO/TRPO means);
    final tanh, in [-1, 1] a squashed actor, rescaled to [low, high] (SB3's convention for SAC, TD3
                           and DDPG, and what the SB3 docs' ONNX export of those actors gives); on
                           [-1, 1] action spaces this is the identity;
    tanh scaled to [low, high] inside a TorchScript module (CleanRL style): taken as is.
ONNX and TorchScript actors are checked against the file's own runtime (ONNX Runtime, the
TorchScript interpreter) on env observations, CleanRL state dicts against CleanRL's forward computed
from them; SB3 zips are checked against SB3 and CleanRL against its own modules in tests/test_byo.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import re
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from drlbench.actor import Actor
from drlbench.errors import DrlbenchError, unknown
from drlbench.names import ALGOS
from drlbench.provenance import library_versions
from drlbench.tasks import make_env, random_action_observations
from drlbench.zoo import Agent

ACCEPTED = "an SB3 / sb3-contrib .zip, a CleanRL .cleanrl_model, an ONNX actor or a TorchScript actor"
PICKLED = ("sb3", "cleanrl")  # formats read only with trust_pickle
TRUST_HINT = "pass --trust-pickle (trust_pickle=True) only if you trust where the file comes from"
ONNX_OPS = ("Gemm", "MatMul", "Add", "Relu", "Tanh")
ONNX_SUPPORTED = "Gemm or MatMul+Add layers, Relu or Tanh between them, an optional final Tanh"
# |file - actor| / (1 + |file|): float32 rounding stays far below it even for huge outputs, while
# structural misreadings (activation, layer order, output mapping) give errors of order 0.1
VERIFY_TOL = 1e-4
PROBE_STEPS = 64

# How the file's output maps to env actions: (Actor squash, the file output the Actor predicts).
OUTPUTS = {
    "env units, clipped to the action bounds": ("clip", lambda a, x: a.features(x)),
    "tanh in [-1, 1], rescaled to the action bounds": ("tanh", lambda a, x: torch.tanh(a.features(x))),
    "tanh scaled to the action bounds by the module": ("tanh", lambda a, x: a(x)),
}
ENV_UNITS, TANH_UNIT, TANH_SCALED = OUTPUTS


@dataclass(frozen=True)
class Spaces:
    env_id: str
    obs_dim: int
    act_dim: int
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True)
class Layer:
    name: str
    weight: np.ndarray  # [out, in], as nn.Linear
    bias: np.ndarray  # [out]


@dataclass(frozen=True)
class ObsNorm:
    mean: np.ndarray
    var: np.ndarray
    clip: float
    eps: float


def load_external(path, env_id: str, *, trust_pickle: bool = False, vecnormalize=None, obs_stats=None,
                  algo: str | None = None) -> Agent:
    """An external checkpoint as an `Agent` whose actor acts in `env_id`'s units. Writes nothing.

    trust_pickle   allow the pickle-based files (SB3 zip, CleanRL checkpoint, VecNormalize .pkl); see
                   the module doc
    vecnormalize   a VecNormalize .pkl whose observation statistics are baked into the actor (any
                   format); for SB3 zips it is looked up beside the zip when not given
    obs_stats      observation statistics as an .npz (`mean`, `var`; optional `clip`, default 10, and
                   `epsilon`, default 1e-8: gymnasium's NormalizeObservation and CleanRL's clip), baked
                   into the actor (any format); "none" says a CleanRL PPO agent was trained without them
    algo           one of ALGOS: required for SB3 zips whose algorithm cannot be detected, a label
                   for the card otherwise (a checkpoint that says otherwise is refused)
    Every bad input raises one DrlbenchError naming what was wrong and what is accepted.
    """
    path = Path(path)
    if path.is_dir():
        raise DrlbenchError(f"{path} is a folder; pass the checkpoint file in it (e.g. {path / env_id}.zip, as "
                            f"rl-baselines3-zoo names it); accepted: {ACCEPTED}")
    if not path.is_file():
        raise DrlbenchError(f"agent file not found: {path} (expected {ACCEPTED})")
    if algo is not None and algo.lower() not in ALGOS:
        raise unknown("algorithm", algo, ALGOS)
    algo = algo.lower() if algo else None
    if vecnormalize is not None and obs_stats is not None:
        raise DrlbenchError("give the observation statistics once: vecnormalize (.pkl) or obs_stats (.npz), not both")
    env = make_env(env_id)
    try:
        spaces = _spaces(env, env_id)
        fmt = detect_format(path)
        vn_path = _vecnormalize_path(path, env_id, vecnormalize, fmt) if obs_stats is None else None
        if fmt in PICKLED or vn_path is not None:
            _require_trust(trust_pickle, path if fmt in PICKLED else vn_path)
        if vn_path is not None:
            norm = _read_vecnormalize(vn_path, spaces)
        else:
            norm = None if obs_stats in (None, NO_STATS) else _read_obs_stats(Path(obs_stats), spaces)
        if fmt == "sb3":
            actor, output, extra = _from_sb3(path, spaces, norm, algo, vn_path)
        elif fmt == "cleanrl":
            actor, output, extra = _from_cleanrl(path, spaces, norm, algo, obs_stats,
                                                 random_action_observations(env, PROBE_STEPS))
        else:
            reader = _from_onnx if fmt == "onnx" else _from_torchscript
            actor, output, extra = reader(path, spaces, norm, random_action_observations(env, PROBE_STEPS))
    finally:
        env.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    norm_digest = _norm_digest(norm)
    # the id names the actor, not the file: the same file with other statistics is another agent (a
    # resumed `compress` keys its finished cells by this id); without normalization it is the file's
    ident = digest if norm_digest is None else hashlib.sha256(f"{digest}:{norm_digest}".encode()).hexdigest()
    task = env.spec.name if env.spec is not None else env_id
    algo = extra.pop("algo", algo)
    card = {
        "id": f"ext-{algo or fmt}-{task.lower()}-{ident[:8]}",  # never collides with a bundled id
        "algo": algo,
        "task": task,
        "env_id": env_id,
        "source": str(path.resolve()),
        "format": fmt,
        "sha256": digest,
        "trust_pickle": trust_pickle,
        "vecnormalize": str(vn_path.resolve()) if vn_path is not None else None,
        "obs_stats": str(Path(obs_stats).resolve()) if obs_stats not in (None, NO_STATS) else obs_stats,
        "vecnormalize_sha256": norm_digest,  # of the statistics baked into the actor; None: none are
        "output": output,
        **extra,
        "actor": actor.config() | {"n_params": actor.n_params()},
        "versions": library_versions(),
    }
    return Agent(card["id"], actor, card)


def detect_format(path: Path) -> str:
    """'sb3', 'cleanrl', 'torchscript' or 'onnx', from the bytes; bare pickles and unknown zips are refused."""
    with path.open("rb") as f:
        head = f.read(4)
    if head[:1] == b"\x80":  # pickle protocol 2+ opcode: a .pkl or a legacy torch.save file
        raise DrlbenchError(f"{path} is a pickle, which drlbench never loads as an agent (unpickling can run "
                            f"arbitrary code); accepted: {ACCEPTED}")
    if not head.startswith(b"PK"):
        return "onnx"
    try:
        with zipfile.ZipFile(path) as zf:
            names, first = zf.namelist(), min((i.header_offset for i in zf.infolist()), default=0)
        if first != 0:
            # a cut SB3 zip can still hold its policy.pth, itself a zip, whose directory zipfile then finds
            raise zipfile.BadZipFile("its directory does not describe the file's first entry")
    except (zipfile.BadZipFile, NotImplementedError, ValueError, OSError) as exc:  # damaged versions, names
        raise DrlbenchError(f"{path} is a truncated or corrupt zip ({_first_line(exc)}); "
                            f"accepted: {ACCEPTED}") from None
    if {"data", "policy.pth"} <= set(names):
        return "sb3"
    if any("/code/" in n for n in names):
        return "torchscript"
    if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        return "cleanrl"  # a torch.save zip; whether it holds a CleanRL actor is read after the trust check
    raise DrlbenchError(f"{path} is a zip but neither an SB3 checkpoint (data, policy.pth) nor a TorchScript "
                        f"archive (code/); accepted: {ACCEPTED}")


def _first_line(exc: BaseException) -> str:
    """Third-party errors can span many lines; a DrlbenchError is one."""
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _require_trust(trust_pickle: bool, what: Path) -> None:
    if not trust_pickle:
        raise DrlbenchError(f"{what} is pickle-based (an SB3 zip, a torch.save / CleanRL checkpoint or a "
                            "VecNormalize .pkl): unpickling can run arbitrary code, so drlbench refuses it by "
                            f"default; {TRUST_HINT}")


def _spaces(env, env_id: str) -> Spaces:
    obs_space, act_space = env.observation_space, env.action_space
    for what, space in (("observation", obs_space), ("action", act_space)):
        if len(space.shape) != 1:
            raise DrlbenchError(f"{env_id} has a {what} space of shape {space.shape}; drlbench accepts flat (1-D) "
                                "Box spaces")
    return Spaces(env_id, obs_space.shape[0], act_space.shape[0],
                  np.asarray(act_space.low, np.float32), np.asarray(act_space.high, np.float32))


def _build_actor(layers: list[Layer], activation: str, output: str, spaces: Spaces, norm: ObsNorm | None,
                 source: str) -> Actor:
    """The one place where sizes, chaining and finiteness are checked, whatever the format."""
    if not layers:
        raise DrlbenchError(f"{source} has no Linear layers; accepted: an MLP actor")
    for layer in layers:
        if layer.weight.ndim != 2:
            raise DrlbenchError(f"{source}: {layer.name}.weight has shape {layer.weight.shape}; expected a matrix")
    n_in, n_out = layers[0].weight.shape[1], layers[-1].weight.shape[0]
    if n_in != spaces.obs_dim:
        raise DrlbenchError(f"{source} takes {n_in} observations but {spaces.env_id} gives {spaces.obs_dim}")
    if n_out != spaces.act_dim:
        raise DrlbenchError(f"{source} outputs {n_out} actions but {spaces.env_id} expects {spaces.act_dim}")
    for prev, layer in zip(layers, layers[1:]):
        if layer.weight.shape[1] != prev.weight.shape[0]:
            raise DrlbenchError(f"{source}: layer {layer.name} takes {layer.weight.shape[1]} inputs but {prev.name} "
                                f"gives {prev.weight.shape[0]}; accepted: a chain of Linear layers")
    for layer in layers:
        if layer.bias.shape != (layer.weight.shape[0],):
            raise DrlbenchError(f"{source}: layer {layer.name} has a bias of shape {layer.bias.shape}, expected "
                                f"({layer.weight.shape[0]},)")
        if not (np.isfinite(layer.weight).all() and np.isfinite(layer.bias).all()):
            raise DrlbenchError(f"{source} has NaN or Inf in layer {layer.name}; accepted: finite weights")
    actor = Actor(
        obs_dim=spaces.obs_dim, act_dim=spaces.act_dim, hidden=[lay.weight.shape[0] for lay in layers[:-1]],
        activation=activation, squash=OUTPUTS[output][0], action_low=spaces.low, action_high=spaces.high,
        # without VecNormalize the normalization is the identity, as in sb3_import.actor_from_sb3
        obs_clip=norm.clip if norm else 1e9, obs_eps=norm.eps if norm else 0.0,
    )
    with torch.no_grad():
        for dst, layer in zip([m for m in actor.body if isinstance(m, nn.Linear)] + [actor.head], layers):
            dst.weight.copy_(torch.tensor(layer.weight, dtype=torch.float32))
            dst.bias.copy_(torch.tensor(layer.bias, dtype=torch.float32))
        if norm is not None:
            actor.obs_mean.copy_(torch.as_tensor(norm.mean, dtype=torch.float64))
            actor.obs_var.copy_(torch.as_tensor(norm.var, dtype=torch.float64))
    return actor.eval()


def _mismatch(actor: Actor, output: str, obs: np.ndarray, run) -> float:
    """Largest |file output - what the Actor says the file outputs| / (1 + |file output|) on `obs`."""
    with torch.no_grad():
        x = torch.as_tensor(obs)
        predicted = OUTPUTS[output][1](actor, x).numpy()
        actual = run(actor.normalize(x).numpy())
        err = float(np.max(np.abs(actual - predicted) / (1.0 + np.abs(actual))))
    return err if np.isfinite(err) else float("inf")  # a file that outputs NaN matches nothing


# ---------------------------------------------------------------------------------------- VecNormalize

def _vecnormalize_path(path: Path, env_id: str, given, fmt: str) -> Path | None:
    """The explicit file, else (SB3 zips only) where rl-baselines3-zoo or its Hugging Face repos keep it."""
    if given is not None:
        given = Path(given)
        if not given.is_file():
            raise DrlbenchError(f"vecnormalize file not found: {given} (expected a VecNormalize .pkl saved by SB3)")
        return given
    if fmt != "sb3":
        return None
    candidates = (path.parent / "vecnormalize.pkl", path.parent / "vec_normalize.pkl",
                  path.parent / env_id / "vecnormalize.pkl")
    return next((p for p in candidates if p.is_file()), None)


def _norm_digest(norm: ObsNorm | None) -> str | None:
    """sha256 of the observation statistics the actor applies (not of the .pkl, which also holds
    reward statistics and the pickled env); None without normalization."""
    if norm is None:
        return None
    h = hashlib.sha256()
    for array in (norm.mean, norm.var):
        h.update(np.ascontiguousarray(array, np.float64).tobytes())
    h.update(np.array([norm.clip, norm.eps], np.float64).tobytes())
    return h.hexdigest()


def _read_vecnormalize(path: Path, spaces: Spaces) -> ObsNorm | None:
    """Unpickles (the caller checked trust_pickle); None when the file does not normalize observations."""
    from stable_baselines3.common.vec_env import VecNormalize

    try:
        with path.open("rb") as f:
            vn = pickle.load(f)
    except Exception as exc:  # a bad pickle can raise anything: EOFError, UnpicklingError, ImportError, …
        raise DrlbenchError(f"cannot read VecNormalize file {path}: {type(exc).__name__}: {_first_line(exc)}") from None
    if not isinstance(vn, VecNormalize):
        raise DrlbenchError(f"{path} holds a {type(vn).__name__}, not a VecNormalize (saved by VecNormalize.save)")
    if not vn.norm_obs:
        return None
    mean, var = vn.obs_rms.mean, vn.obs_rms.var
    return _obs_norm(mean, var, float(vn.clip_obs), float(vn.epsilon), f"VecNormalize file {path}", spaces)


def _obs_norm(mean, var, clip: float, eps: float, what: str, spaces: Spaces) -> ObsNorm:
    mean, var = np.asarray(mean, np.float64), np.asarray(var, np.float64)
    if mean.shape != (spaces.obs_dim,) or var.shape != (spaces.obs_dim,):
        raise DrlbenchError(f"{what} normalizes {mean.shape} observations but {spaces.env_id} gives "
                            f"({spaces.obs_dim},)")
    if not (np.isfinite(mean).all() and np.isfinite(var).all() and (var >= 0).all()):
        raise DrlbenchError(f"{what} has NaN, Inf or negative variance in its statistics")
    if not (clip > 0 and eps >= 0):
        raise DrlbenchError(f"{what} has clip {clip} and epsilon {eps}; expected clip > 0 and epsilon >= 0")
    return ObsNorm(mean, var, clip, eps)


NO_STATS = "none"  # obs_stats: the agent was trained on raw observations
OBS_STATS_KEYS = "mean and var (optional: clip, default 10; epsilon, default 1e-8)"


def _read_obs_stats(path: Path, spaces: Spaces) -> ObsNorm:
    """An .npz of observation statistics, read without pickle (gymnasium's NormalizeObservation: mean, var)."""
    if not path.is_file():
        raise DrlbenchError(f"obs stats file not found: {path} (expected an .npz holding {OBS_STATS_KEYS})")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with npz:
            arrays = {k: np.asarray(npz[k]) for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # pickled arrays raise ValueError
        raise DrlbenchError(f"cannot read obs stats {path}: {_first_line(exc)} (expected an .npz holding "
                            f"{OBS_STATS_KEYS}, saved with np.savez)") from None
    missing = [k for k in ("mean", "var") if k not in arrays]
    if missing:
        raise DrlbenchError(f"obs stats {path} has no {' and no '.join(missing)} (it holds "
                            f"{sorted(arrays) or 'nothing'}); expected {OBS_STATS_KEYS}")
    try:
        clip, eps = float(arrays.get("clip", 10.0)), float(arrays.get("epsilon", 1e-8))
    except (TypeError, ValueError):
        raise DrlbenchError(f"obs stats {path}: clip and epsilon must be numbers") from None
    return _obs_norm(arrays["mean"], arrays["var"], clip, eps, f"obs stats {path}", spaces)


# ---------------------------------------------------------------------------------------- SB3 zip

# Parameters each policy layout may hold: the actor's (read) and the rest (ignored: critics, log std).
SB3_LAYOUTS = {
    "on_policy": (("mlp_extractor.policy_net.", "action_net.weight", "action_net.bias"),
                  ("mlp_extractor.value_net.", "value_net.", "log_std", "vf_features_extractor.")),
    "sac": (("actor.latent_pi.", "actor.mu.weight", "actor.mu.bias"),
            ("actor.log_std.", "critic.", "critic_target.")),
    "td3": (("actor.mu.",), ("actor_target.", "critic.", "critic_target.")),
}
SB3_VERSION = "_stable_baselines3_version"
DEFAULT_ACTIVATION = {"ppo": "tanh", "trpo": "tanh", "sac": "relu", "td3": "relu", "ddpg": "relu"}


def detect_sb3_algo(data: dict) -> str | None:
    """From hyperparameters only these algorithms save (DDPG is SB3's TD3 with fixed values)."""
    if "cg_max_steps" in data:
        return "trpo"
    if "clip_range" in data and "n_epochs" in data:
        return "ppo"
    if "target_entropy" in data:
        return "sac"
    if "policy_delay" in data:
        return "ddpg" if data["policy_delay"] == 1 and data.get("target_noise_clip") == 0.0 else "td3"
    return None


def _read_sb3_zip(path: Path) -> tuple[dict, dict, str | None]:
    """`data` as JSON and `policy.pth` as tensors only: nothing in the zip is executed."""
    try:
        with zipfile.ZipFile(path) as zf:
            data = json.loads(zf.read("data"))
            raw = zf.read("policy.pth")
            version = zf.read(SB3_VERSION).decode().strip() if SB3_VERSION in zf.namelist() else None
    except (zipfile.BadZipFile, NotImplementedError, zlib.error, OSError, EOFError, ValueError) as exc:
        # ValueError covers JSONDecodeError and UnicodeDecodeError
        raise DrlbenchError(f"corrupt SB3 zip {path}: {_first_line(exc)}") from None
    state = _load_tensors(raw, f"policy.pth in {path}")
    if not isinstance(data, dict) or not isinstance(state, dict) or not isinstance(data.get("policy_kwargs", {}), dict):
        raise DrlbenchError(f"corrupt SB3 zip {path}: 'data', its policy_kwargs or 'policy.pth' is not a mapping")
    return data, state, version


def _load_tensors(raw: bytes, what: str):
    """torch.load(weights_only=True): tensors and plain containers only, nothing else is rebuilt."""
    try:
        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # weights_only refuses any object but tensors and containers; torch's own message suggests
        # weights_only=False, which is exactly what must not be done with a file of unknown origin
        raise DrlbenchError(f"{what} holds objects other than tensors, so it could run code when unpickled; "
                            "drlbench does not load it (accepted: state dicts of tensors)") from None
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise DrlbenchError(f"corrupt {what}: {_first_line(exc)}") from None


def _sb3_kwarg_class(kwargs: dict, key: str) -> str | None:
    """Class name of a policy_kwargs entry, from the JSON's str() of it, e.g. "<class '….ReLU'>"."""
    value = kwargs.get(key)
    if value is None:
        return None
    m = re.fullmatch(r"<class '(?:[\w.]+\.)?(\w+)'>", str(value))
    if not m:
        raise DrlbenchError(f"cannot read policy_kwargs[{key!r}] = {value!r} from the SB3 zip")
    return m.group(1)


def _sb3_chain(state: dict, prefix: str, source: str) -> list[Layer]:
    """Linear layers of an nn.Sequential (`prefix` + index), one activation between each."""
    keys = [k for k in state if k.startswith(prefix)]
    odd = [k for k in keys if not re.fullmatch(r"\d+\.(weight|bias)", k[len(prefix):])]
    if odd:
        raise DrlbenchError(f"{source}: unexpected parameters {', '.join(odd[:6])}; accepted: MLP policies")
    idx = sorted({int(k[len(prefix):].split(".")[0]) for k in keys})
    if any(b - a != 2 for a, b in zip(idx, idx[1:])):
        raise DrlbenchError(f"{source}: {prefix}* is not Linear/activation pairs (indices {idx}); "
                            "accepted: MLP policies")
    return [_sb3_layer(state, f"{prefix}{i}", source) for i in idx]


def _sb3_layer(state: dict, name: str, source: str) -> Layer:
    if not all(isinstance(state.get(f"{name}.{p}"), torch.Tensor) for p in ("weight", "bias")):
        raise DrlbenchError(f"{source}: policy.pth has no tensors {name}.weight and {name}.bias; "
                            "accepted: MLP policies")
    return Layer(name, state[f"{name}.weight"].float().numpy(), state[f"{name}.bias"].float().numpy())


def _saved_bounds(space: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """The checkpoint's action bounds, from the str() of the arrays in its JSON; None when absent."""
    try:
        return tuple(np.array(space[k].strip("[]").split(), dtype=np.float32) for k in ("low", "high"))
    except (KeyError, TypeError, AttributeError, ValueError):  # older gym spaces, numpy's '…' for huge arrays
        return None


def _from_sb3(path: Path, spaces: Spaces, norm: ObsNorm | None, algo: str | None, vn_path: Path | None):
    source = f"SB3 checkpoint {path}"
    data, state, version = _read_sb3_zip(path)
    detected = detect_sb3_algo(data)
    if detected is None and algo is None:
        raise DrlbenchError(f"cannot tell the algorithm of {path} from its hyperparameters; pass --algo / "
                            f"algo=… (accepted: {', '.join(ALGOS)})")
    if detected is not None and algo is not None and detected != algo:
        raise DrlbenchError(f"{path} looks like a {detected} checkpoint but algo={algo!r} was given; "
                            f"drop algo or pass {detected!r}")
    algo = algo or detected
    if algo in ("ppo", "trpo") and isinstance(data.get("_last_original_obs"), dict) and norm is None \
            and vn_path is None:
        # on-policy SB3 keeps the un-normalized last observation only under VecNormalize (off-policy
        # algorithms always keep one, so for them a missing file cannot be told from the zip)
        raise DrlbenchError(f"{path} was trained with VecNormalize but its statistics were not found (looked for "
                            f"vecnormalize.pkl, vec_normalize.pkl and {spaces.env_id}/vecnormalize.pkl beside it); "
                            "pass --vecnormalize / vecnormalize=…")
    kwargs = data.get("policy_kwargs") or {}
    extractor = _sb3_kwarg_class(kwargs, "features_extractor_class")
    if extractor not in (None, "FlattenExtractor"):
        raise DrlbenchError(f"{source} uses features extractor {extractor}; accepted: the default FlattenExtractor")
    act_name = _sb3_kwarg_class(kwargs, "activation_fn")
    activations = {"ReLU": "relu", "Tanh": "tanh"}
    if act_name is not None and act_name not in activations:
        raise DrlbenchError(f"{source} uses activation {act_name}; accepted: {', '.join(activations)}")
    activation = activations.get(act_name, DEFAULT_ACTIVATION[algo])

    layout = "on_policy" if algo in ("ppo", "trpo") else "sac" if algo == "sac" else "td3"
    read, ignored = SB3_LAYOUTS[layout]
    stray = sorted(k for k in state if not k.startswith(read + ignored))
    if stray:  # a custom extractor, gSDE's clipped SAC mean, shared layers of old SB3, …
        raise DrlbenchError(f"{source} has parameters drlbench cannot map to an MLP actor: {', '.join(stray[:6])}; "
                            "accepted: SB3 MlpPolicy with the default extractor (and no gSDE for SAC)")
    if layout == "on_policy":
        layers = _sb3_chain(state, "mlp_extractor.policy_net.", source) + [_sb3_layer(state, "action_net", source)]
        # gSDE with squash_output: SB3 tanh-squashes the mean and rescales it to the bounds
        output = TANH_UNIT if kwargs.get("squash_output") else ENV_UNITS
    elif layout == "sac":
        layers = _sb3_chain(state, "actor.latent_pi.", source) + [_sb3_layer(state, "actor.mu", source)]
        output = TANH_UNIT
    else:
        layers, output = _sb3_chain(state, "actor.mu.", source), TANH_UNIT
    actor = _build_actor(layers, activation, output, spaces, norm, source)
    bounds = _saved_bounds(data.get("action_space") or {})
    if bounds is not None and not all(b.shape == s.shape and np.allclose(b, s, rtol=1e-6)
                                      for b, s in zip(bounds, (spaces.low, spaces.high))):
        raise DrlbenchError(f"{source} acts in [{bounds[0]}, {bounds[1]}] but {spaces.env_id} in [{spaces.low}, "
                            f"{spaces.high}] (trained on a rescaled env?); drlbench needs the env's own units")
    return actor, output, {"algo": algo, "algo_detected": detected is not None, "sb3_version": version}


# ---------------------------------------------------------------------------------------- CleanRL

# Actor layouts of CleanRL's continuous-action scripts: (parameters read, parameters ignored).
CLEANRL_LAYOUTS = {
    "ppo": (("actor_mean.",), ("actor_logstd", "critic.")),  # ppo/rpo_continuous_action's Agent
    "td3": (("fc1.", "fc2.", "fc_mu.", "action_scale", "action_bias"), ()),  # td3/ddpg_continuous_action
    "sac": (("fc1.", "fc2.", "fc_mean.", "action_scale", "action_bias"), ("fc_logstd.",)),
}
CLEANRL_ACCEPTED = ("accepted: ppo_continuous_action's Agent (actor_mean.*), td3/ddpg_continuous_action's Actor "
                    "(fc1, fc2, fc_mu) or a SAC Actor (fc1, fc2, fc_mean), saved alone or first in a tuple")
PPO_STATS_HINT = ("CleanRL's ppo_continuous_action trains on NormalizeObservation'd observations and does not save "
                  "their statistics in the checkpoint; save them after training with np.savez('obs_stats.npz', "
                  "mean=rms.mean, var=rms.var), rms = envs.envs[0].get_wrapper_attr('obs_rms'), and pass "
                  "--obs-stats obs_stats.npz (obs_stats=…), or --obs-stats none if it was trained without")


def _from_cleanrl(path: Path, spaces: Spaces, norm: ObsNorm | None, algo: str | None, obs_stats, obs: np.ndarray):
    """The actor's state dict, mapped by its parameter names; checked against CleanRL's forward."""
    source = f"CleanRL checkpoint {path}"
    saved = _load_tensors(path.read_bytes(), source)
    nets = list(saved) if isinstance(saved, (tuple, list)) else [saved]
    if not nets or not all(isinstance(n, dict) for n in nets):
        raise DrlbenchError(f"{source} holds a {type(saved).__name__}, not state dicts; {CLEANRL_ACCEPTED}")
    sd = nets[0]
    layout = "ppo" if "actor_mean.0.weight" in sd else "td3" if "fc_mu.weight" in sd else \
        "sac" if "fc_mean.weight" in sd else None
    if layout is None:
        raise DrlbenchError(f"{source} holds no CleanRL actor (its first state dict has {', '.join(list(sd)[:6])}); "
                            f"{CLEANRL_ACCEPTED}")
    read, ignored = CLEANRL_LAYOUTS[layout]
    stray = sorted(k for k in sd if not k.startswith(read + ignored))
    if stray:
        raise DrlbenchError(f"{source} has parameters drlbench cannot map to the {layout} actor: "
                            f"{', '.join(stray[:6])}; {CLEANRL_ACCEPTED}")
    # DDPG saves (actor, qf1), TD3 (actor, qf1, qf2): the same actor, told apart by the critics
    detected = {"ppo": "ppo", "sac": "sac", "td3": {2: "ddpg", 3: "td3"}.get(len(nets))}[layout]
    if detected is not None and algo is not None and detected != algo:
        raise DrlbenchError(f"{path} looks like a CleanRL {detected} checkpoint but algo={algo!r} was given; "
                            f"drop algo or pass {detected!r}")
    if layout == "ppo":
        if obs_stats is None:
            raise DrlbenchError(f"{path}: {PPO_STATS_HINT}")
        layers, activation, output = _sb3_chain(sd, "actor_mean.", source), "tanh", ENV_UNITS
    else:
        head = "fc_mu" if layout == "td3" else "fc_mean"
        layers = [_sb3_layer(sd, name, source) for name in ("fc1", "fc2", head)]
        activation, output = "relu", TANH_SCALED
        _check_cleanrl_scaling(sd, spaces, source)
    actor = _build_actor(layers, activation, output, spaces, norm, source)
    err = _mismatch(actor, output, obs, lambda x: _cleanrl_forward(sd, layout, x))
    if err > VERIFY_TOL:
        raise DrlbenchError(f"{source}: the actor drlbench reads from it is off CleanRL's forward by {err:.3g}; "
                            f"{CLEANRL_ACCEPTED}")
    return actor, output, {"algo": algo or detected, "algo_detected": detected is not None, "cleanrl_layout": layout,
                           "verified_max_rel_err": err}


def _check_cleanrl_scaling(sd: dict, spaces: Spaces, source: str) -> None:
    """CleanRL's actors map tanh to the bounds with buffers (high - low) / 2 and (high + low) / 2."""
    want = {"action_scale": (spaces.high - spaces.low) / 2, "action_bias": (spaces.high + spaces.low) / 2}
    for name, expected in want.items():
        got = sd.get(name)
        if not isinstance(got, torch.Tensor) or got.numel() != spaces.act_dim:
            raise DrlbenchError(f"{source} has no {name} buffer of {spaces.act_dim} values; {CLEANRL_ACCEPTED}")
        if not np.allclose(got.float().numpy().reshape(-1), expected, rtol=1e-6, atol=1e-6):
            raise DrlbenchError(f"{source} scales actions to [{spaces.low}, {spaces.high}] with {name} "
                                f"{got.numpy().reshape(-1)} instead of {expected} (trained on another env?)")


@torch.no_grad()
def _cleanrl_forward(sd: dict, layout: str, x: np.ndarray) -> np.ndarray:
    """What CleanRL's own module computes on (already normalized) observations, from the state dict."""
    h = torch.as_tensor(x)
    if layout == "ppo":  # Sequential(Linear, Tanh, …, Linear): the Gaussian's mean
        idx = sorted({int(k.split(".")[1]) for k in sd if k.startswith("actor_mean.")})
        for i in idx[:-1]:
            h = torch.tanh(nn.functional.linear(h, sd[f"actor_mean.{i}.weight"], sd[f"actor_mean.{i}.bias"]))
        return nn.functional.linear(h, sd[f"actor_mean.{idx[-1]}.weight"], sd[f"actor_mean.{idx[-1]}.bias"]).numpy()
    head = "fc_mu" if layout == "td3" else "fc_mean"
    for name in ("fc1", "fc2"):
        h = torch.relu(nn.functional.linear(h, sd[f"{name}.weight"], sd[f"{name}.bias"]))
    h = torch.tanh(nn.functional.linear(h, sd[f"{head}.weight"], sd[f"{head}.bias"]))
    return (h * sd["action_scale"] + sd["action_bias"]).numpy()


# ---------------------------------------------------------------------------------------- ONNX

def _onnx_tokens(graph, source: str) -> list:
    """The obs -> action path as a list of Layer / 'relu' / 'tanh'; anything else is refused."""
    from onnx import helper, numpy_helper

    consts, nodes = {}, []
    try:  # the checker does not read tensor payloads: a damaged one fails only here
        consts.update((t.name, numpy_helper.to_array(t)) for t in graph.initializer)
        for node in graph.node:
            if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
                consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            else:
                nodes.append(node)
    except (ValueError, KeyError, TypeError) as exc:
        raise DrlbenchError(f"{source} has an unreadable tensor ({type(exc).__name__}: {_first_line(exc)})") from None
    found = sorted({n.op_type for n in nodes})
    if set(found) - set(ONNX_OPS):
        raise DrlbenchError(f"{source} is not a plain MLP: it has ops {', '.join(found)}; supported: {ONNX_SUPPORTED}")
    inputs = [i for i in graph.input if i.name not in consts]  # old exporters list initializers as inputs
    if len(inputs) != 1 or len(graph.output) != 1:
        raise DrlbenchError(f"{source} has {len(inputs)} inputs and {len(graph.output)} outputs; accepted: one "
                            "float32 input [batch, obs_dim] and one output [batch, act_dim]")
    ttype = inputs[0].type.tensor_type
    if ttype.elem_type != 1 or len(ttype.shape.dim) != 2:  # 1 = FLOAT
        raise DrlbenchError(f"{source}: input {inputs[0].name!r} is not float32 [batch, obs_dim]")

    users: dict[str, list] = {}
    for node in nodes:
        for name in node.input:
            if name and name not in consts:
                users.setdefault(name, []).append(node)
    path, cur = [], inputs[0].name
    while cur != graph.output[0].name:
        nxt = users.get(cur, [])
        if len(nxt) != 1 or [x for x in nxt[0].input if x and x not in consts] != [cur]:
            raise DrlbenchError(f"{source}: tensor {cur!r} does not feed exactly one single-input node; "
                                f"supported: a chain of {ONNX_SUPPORTED}")
        path.append(nxt[0])
        cur = nxt[0].output[0]
    if len(path) != len(nodes):
        raise DrlbenchError(f"{source} has {len(nodes) - len(path)} nodes off the obs -> action path; "
                            f"supported: a chain of {ONNX_SUPPORTED}")

    tokens: list = []
    i = 0
    while i < len(path):
        node = path[i]
        if node.op_type in ("Relu", "Tanh"):
            tokens.append(node.op_type.lower())
        elif node.op_type == "Add" or node.input[0] in consts:
            raise DrlbenchError(f"{source}: {node.op_type} node {node.name!r} is not x·W (+ b); supported: "
                                f"{ONNX_SUPPORTED}")
        elif node.op_type == "Gemm":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("transA", 0):
                raise DrlbenchError(f"{source}: Gemm {node.name!r} transposes its input; supported: {ONNX_SUPPORTED}")
            w = consts[node.input[1]]
            w = w if attrs.get("transB", 0) else w.T
            b = consts[node.input[2]] if len(node.input) > 2 and node.input[2] else np.zeros(1, w.dtype)
            tokens.append(_onnx_layer(node.input[1], attrs.get("alpha", 1.0) * w, attrs.get("beta", 1.0) * b, source))
        else:  # MatMul, and the Add after it is its bias
            w = consts[node.input[1]].T
            b = np.zeros(1, w.dtype)
            if i + 1 < len(path) and path[i + 1].op_type == "Add":
                i += 1
                b = next(consts[x] for x in path[i].input if x in consts)
            tokens.append(_onnx_layer(node.input[1], w, b, source))
        i += 1
    return tokens


def _onnx_layer(name: str, weight: np.ndarray, bias: np.ndarray, source: str) -> Layer:
    if weight.ndim != 2 or bias.size not in (1, weight.shape[0]):
        raise DrlbenchError(f"{source}: layer {name!r} has weight {weight.shape} and bias {bias.shape}; "
                            f"supported: {ONNX_SUPPORTED}")
    return Layer(name, weight, np.broadcast_to(bias.reshape(-1), (weight.shape[0],)).copy())


def _mlp_from_tokens(tokens: list, source: str) -> tuple[list[Layer], str, bool]:
    """Layer (act Layer)* [tanh] -> (layers, hidden activation, final tanh)."""
    if not tokens or not isinstance(tokens[0], Layer):
        raise DrlbenchError(f"{source} does not start with a linear layer; supported: {ONNX_SUPPORTED}")
    layers, acts, final_tanh = [tokens[0]], set(), False
    i = 1
    while i < len(tokens):
        if isinstance(tokens[i], str) and i + 1 < len(tokens) and isinstance(tokens[i + 1], Layer):
            acts.add(tokens[i])
            layers.append(tokens[i + 1])
            i += 2
        elif tokens[i] == "tanh" and i == len(tokens) - 1:
            final_tanh, i = True, i + 1
        else:
            raise DrlbenchError(f"{source}: unexpected {tokens[i] if isinstance(tokens[i], str) else 'linear layer'} "
                                f"at step {i}; supported: {ONNX_SUPPORTED}")
    if len(acts) > 1:
        raise DrlbenchError(f"{source} mixes activations {sorted(acts)}; supported: one kind throughout")
    return layers, acts.pop() if acts else "relu", final_tanh


def _from_onnx(path: Path, spaces: Spaces, norm: ObsNorm | None, obs: np.ndarray):
    import onnx
    import onnxruntime as ort

    source = f"ONNX actor {path}"
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf, the checker and external-data lookup raise many types on bad files
        raise DrlbenchError(f"{path} is not a valid ONNX model ({type(exc).__name__}: {_first_line(exc)}); "
                            f"accepted: {ACCEPTED}") from None
    layers, activation, final_tanh = _mlp_from_tokens(_onnx_tokens(model.graph, source), source)
    output = TANH_UNIT if final_tanh else ENV_UNITS
    actor = _build_actor(layers, activation, output, spaces, norm, source)

    def run(x: np.ndarray) -> np.ndarray:
        try:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = opts.inter_op_num_threads = 1
            opts.log_severity_level = 3  # errors only: shape-merge warnings would clutter the one-line contract
            session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
            name = session.get_inputs()[0].name
            # one row at a time: some exports fix the batch axis at 1
            return np.concatenate([session.run(None, {name: row[None]})[0] for row in x])
        except Exception as exc:  # ONNX Runtime's error classes derive from Exception only
            raise DrlbenchError(f"ONNX Runtime cannot run {source}: {_first_line(exc)}") from None

    err = _mismatch(actor, output, obs, run)
    if err > VERIFY_TOL:
        raise DrlbenchError(f"{source}: the converted actor differs from ONNX Runtime by {err:.3g} on {spaces.env_id} "
                            f"observations; supported: {ONNX_SUPPORTED}")
    return actor, output, {"verified_max_rel_err": err}


# ---------------------------------------------------------------------------------------- TorchScript

def _from_torchscript(path: Path, spaces: Spaces, norm: ObsNorm | None, obs: np.ndarray):
    """Linear layers in registration order; activation and output mapping chosen by matching outputs."""
    source = f"TorchScript actor {path}"
    try:
        with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript, which users still export
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:  # the C++ deserializer raises RuntimeError, ValueError, IndexError, … on damage
        raise DrlbenchError(f"{path} is not a loadable TorchScript archive ({_first_line(exc)}); "
                            f"accepted: {ACCEPTED}") from None
    linears = [(name, m) for name, m in module.named_modules() if getattr(m, "original_name", None) == "Linear"]
    owned = {f"{name}.{p}" for name, _ in linears for p in ("weight", "bias")}
    stray = [n for n, _ in module.named_parameters() if n not in owned]
    if stray:
        raise DrlbenchError(f"{source} has parameters outside Linear layers ({', '.join(stray[:6])}); "
                            "accepted: an MLP of Linear layers with ReLU or Tanh")
    layers = [Layer(name, m.weight.detach().float().numpy(),
                    m.bias.detach().float().numpy() if m.bias is not None else np.zeros(m.weight.shape[0], np.float32))
              for name, m in linears]

    def run(x: np.ndarray) -> np.ndarray:
        try:
            with torch.no_grad():
                out = module(torch.as_tensor(x))
        except RuntimeError as exc:
            raise DrlbenchError(f"{source} fails on [batch, {spaces.obs_dim}] float32 input: "
                                f"{_first_line(exc)}") from None
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (len(x), spaces.act_dim):
            raise DrlbenchError(f"{source} must return one tensor [batch, {spaces.act_dim}]; it returned "
                                f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
        return out.float().numpy()

    fits = []
    for activation in ("relu", "tanh"):
        for output in OUTPUTS:
            actor = _build_actor(layers, activation, output, spaces, norm, source)
            fits.append((_mismatch(actor, output, obs, run), activation, output, actor))
    err, activation, output, actor = min(fits, key=lambda f: f[0])
    if err > VERIFY_TOL:
        raise DrlbenchError(f"{source} is not an MLP drlbench can reproduce (best match off by {err:.3g}); accepted: "
                            "Linear layers in forward order, one of ReLU/Tanh between them, output in env units or "
                            "tanh-squashed, no normalization inside")
    return actor, output, {"verified_max_rel_err": err}
