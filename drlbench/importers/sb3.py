"""Stable-Baselines3 / sb3-contrib: a user's model zip, and the trainer's live models.

A zip (`model.save`) holds `data` and `policy.pth`; trpo, ppo, ddpg, td3 or sac is detected from the
hyperparameters in `data` (else `algo` is needed). It is read without executing anything: `data` as
plain JSON (its cloudpickled entries, schedules and spaces, are never unpickled) and `policy.pth` with
`torch.load(weights_only=True)`; the policy is rebuilt from the state dict's shapes, the JSON-readable
`policy_kwargs` (activation, squash_output) and the env's spaces. There is no SB3 runtime to verify
against without unpickling: tests/test_importers.py checks the result against SB3's `predict`.

`actor_from_sb3` does the same for an in-memory model (the trainer's, at export and for its
model-selection checks), with VecNormalize's observation statistics baked in.
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib

import numpy as np
from torch import nn

from drlbench.errors import DrlbenchError
from drlbench.importers.spec import (
    ENV_UNITS,
    TANH_UNIT,
    Imported,
    Layer,
    ObsNorm,
    Request,
    Spaces,
    build_actor,
    first_line,
    layers_of,
    load_tensors,
    sequential_layers,
    state_layer,
)
from drlbench.names import ALGOS

# Parameters each policy layout may hold: the actor's (read) and the rest (ignored: critics, log std).
LAYOUTS = {
    "on_policy": (("mlp_extractor.policy_net.", "action_net.weight", "action_net.bias"),
                  ("mlp_extractor.value_net.", "value_net.", "log_std", "vf_features_extractor.")),
    "sac": (("actor.latent_pi.", "actor.mu.weight", "actor.mu.bias"),
            ("actor.log_std.", "critic.", "critic_target.")),
    "td3": (("actor.mu.",), ("actor_target.", "critic.", "critic_target.")),
}
VERSION = "_stable_baselines3_version"
DEFAULT_ACTIVATION = {"ppo": "tanh", "trpo": "tanh", "sac": "relu", "td3": "relu", "ddpg": "relu"}
ACTIVATIONS = {"ReLU": "relu", "Tanh": "tanh"}


def algo_class(algo: str):
    algo = algo.lower()
    if algo not in ALGOS:
        raise DrlbenchError(f"unknown algorithm {algo!r}; accepted: {', '.join(ALGOS)}")
    if algo == "trpo":
        from sb3_contrib import TRPO

        return TRPO
    import stable_baselines3 as sb3

    return getattr(sb3, algo.upper())


def algo_name(model) -> str:
    name = type(model).__name__.lower()
    if name not in ALGOS:
        raise DrlbenchError(f"unsupported SB3 model class {type(model).__name__}; accepted: {', '.join(ALGOS)}")
    return name


def detect_algo(data: dict) -> str | None:
    """From hyperparameters only these algorithms save (DDPG is SB3's TD3 with fixed values); sbx's too."""
    if "cg_max_steps" in data:
        return "trpo"
    if "clip_range" in data and "n_epochs" in data:
        return "ppo"
    if "target_entropy" in data:
        return "sac"
    if "policy_delay" in data:
        return "ddpg" if data["policy_delay"] == 1 and data.get("target_noise_clip") == 0.0 else "td3"
    return None


def check_algo(detected: str | None, algo: str | None, path, what: str = "") -> str:
    if detected is None and algo is None:
        raise DrlbenchError(f"cannot tell the algorithm of {path} from its hyperparameters; pass --algo / "
                            f"algo=… (accepted: {', '.join(ALGOS)})")
    if detected is not None and algo is not None and detected != algo:
        raise DrlbenchError(f"{path} looks like a {what}{detected} checkpoint but algo={algo!r} was given; "
                            f"drop algo or pass {detected!r}")
    return algo or detected


def read_zip_data(path, kind: str = "SB3") -> dict:
    """`data` as JSON: nothing in it is unpickled."""
    try:
        with zipfile.ZipFile(path) as zf:
            data = json.loads(zf.read("data"))
    except (zipfile.BadZipFile, NotImplementedError, zlib.error, OSError, EOFError, ValueError, KeyError,
            RuntimeError) as exc:  # ValueError covers JSONDecodeError and UnicodeDecodeError
        raise DrlbenchError(f"corrupt {kind} zip {path}: {first_line(exc)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("policy_kwargs", {}), dict):
        raise DrlbenchError(f"corrupt {kind} zip {path}: 'data' or its policy_kwargs is not a mapping")
    return data


def _read_zip(path) -> tuple[dict, dict, str | None]:
    """`data` as JSON and `policy.pth` as tensors only: nothing in the zip is executed."""
    data = read_zip_data(path)
    try:
        with zipfile.ZipFile(path) as zf:
            raw = zf.read("policy.pth")
            version = zf.read(VERSION).decode().strip() if VERSION in zf.namelist() else None
    except (zipfile.BadZipFile, NotImplementedError, zlib.error, OSError, EOFError, ValueError, KeyError,
            RuntimeError) as exc:
        raise DrlbenchError(f"corrupt SB3 zip {path}: {first_line(exc)}") from None
    state = load_tensors(raw, f"policy.pth in {path}")
    if not isinstance(state, dict):
        raise DrlbenchError(f"corrupt SB3 zip {path}: 'policy.pth' is not a mapping")
    return data, state, version


def _kwarg_class(kwargs: dict, key: str) -> str | None:
    """Class name of a policy_kwargs entry, from the JSON's str() of it, e.g. "<class '….ReLU'>"."""
    value = kwargs.get(key)
    if value is None:
        return None
    m = re.fullmatch(r"<class '(?:[\w.]+\.)?(\w+)'>", str(value))
    if not m:
        raise DrlbenchError(f"cannot read policy_kwargs[{key!r}] = {value!r} from the SB3 zip")
    return m.group(1)


def _saved_bounds(space) -> tuple[np.ndarray, np.ndarray] | None:
    """The checkpoint's action bounds, from the str() of the arrays in its JSON; None when absent."""
    try:
        return tuple(np.array(space[k].strip("[]").split(), dtype=np.float32) for k in ("low", "high"))
    except (KeyError, TypeError, AttributeError, ValueError):  # older gym spaces, numpy's '…' for huge arrays
        return None


def check_bounds(low, high, spaces: Spaces, source: str) -> None:
    if not all(b.shape == s.shape and np.allclose(b, s, rtol=1e-6)
               for b, s in zip((low, high), (spaces.low, spaces.high), strict=True)):
        raise DrlbenchError(f"{source} acts in [{low}, {high}] but {spaces.env_id} in [{spaces.low}, "
                            f"{spaces.high}] (trained on a rescaled env?); drlbench needs the env's own units")


def _policy_layers(state: dict, layout: str, source: str) -> list[Layer]:
    if layout == "on_policy":
        head = state_layer(state, "action_net", source)
        return sequential_layers(state, "mlp_extractor.policy_net.", source) + [head]
    if layout == "sac":
        return sequential_layers(state, "actor.latent_pi.", source) + [state_layer(state, "actor.mu", source)]
    return sequential_layers(state, "actor.mu.", source)


def read(req: Request) -> Imported:
    path, spaces = req.path, req.spaces
    source = f"SB3 checkpoint {path}"
    data, state, version = _read_zip(path)
    detected = detect_algo(data)
    algo = check_algo(detected, req.algo, path)
    if algo in ("ppo", "trpo") and isinstance(data.get("_last_original_obs"), dict) and req.norm is None \
            and req.vn_path is None:
        # on-policy SB3 keeps the un-normalized last observation only under VecNormalize (off-policy
        # algorithms always keep one, so for them a missing file cannot be told from the zip)
        raise DrlbenchError(f"{path} was trained with VecNormalize but its statistics were not found (looked for "
                            f"vecnormalize.pkl, vec_normalize.pkl and {spaces.env_id}/vecnormalize.pkl beside it); "
                            "pass --vecnormalize / vecnormalize=…")
    kwargs = data.get("policy_kwargs") or {}
    extractor = _kwarg_class(kwargs, "features_extractor_class")
    if extractor not in (None, "FlattenExtractor"):
        raise DrlbenchError(f"{source} uses features extractor {extractor}; accepted: the default FlattenExtractor")
    act_name = _kwarg_class(kwargs, "activation_fn")
    if act_name is not None and act_name not in ACTIVATIONS:
        raise DrlbenchError(f"{source} uses activation {act_name}; accepted: {', '.join(ACTIVATIONS)}")
    activation = ACTIVATIONS.get(act_name, DEFAULT_ACTIVATION[algo])

    layout = "on_policy" if algo in ("ppo", "trpo") else "sac" if algo == "sac" else "td3"
    read_keys, ignored = LAYOUTS[layout]
    stray = sorted(k for k in state if not k.startswith(read_keys + ignored))
    if stray:  # a custom extractor, gSDE's clipped SAC mean, shared layers of old SB3, …
        raise DrlbenchError(f"{source} has parameters drlbench cannot map to an MLP actor: {', '.join(stray[:6])}; "
                            "accepted: SB3 MlpPolicy with the default extractor (and no gSDE for SAC)")
    # gSDE with squash_output: SB3 tanh-squashes PPO's mean and rescales it to the bounds
    output = ENV_UNITS if layout == "on_policy" and not kwargs.get("squash_output") else TANH_UNIT
    actor = build_actor(_policy_layers(state, layout, source), activation, output, spaces, req.norm, source)
    bounds = _saved_bounds(data.get("action_space") or {})
    if bounds is not None:
        check_bounds(*bounds, spaces, source)
    return Imported(actor, output, {"algo": algo, "algo_detected": detected is not None, "sb3_version": version})


# ---------------------------------------------------------------------------------------- live models

def actor_from_sb3(model, vecnormalize=None):
    """Bake the policy's deterministic path and VecNormalize's obs statistics into one `Actor`."""
    algo, policy = algo_name(model), model.policy
    source = f"SB3 {algo} model"
    if algo in ("ppo", "trpo"):
        layers, activation = layers_of(list(policy.mlp_extractor.policy_net) + [policy.action_net], source)
        output = ENV_UNITS
    elif algo == "sac":
        layers, activation = layers_of(list(policy.actor.latent_pi) + [policy.actor.mu], source)
        output = TANH_UNIT
    else:  # td3, ddpg: mu = [Linear, act, …, Linear, Tanh]; the final Tanh is the squash
        mu = list(policy.actor.mu)
        layers, activation = layers_of(mu[:-1] if isinstance(mu[-1], nn.Tanh) else mu, source)
        output = TANH_UNIT
    space = model.action_space
    spaces = Spaces(source, int(np.prod(model.observation_space.shape)),
                    int(np.prod(space.shape)), np.asarray(space.low, np.float32), np.asarray(space.high, np.float32))
    norm = None
    if vecnormalize is not None:  # without norm_obs: identity statistics, but VecNormalize's epsilon, as always
        n = spaces.obs_dim
        norm = ObsNorm(vecnormalize.obs_rms.mean, vecnormalize.obs_rms.var, float(vecnormalize.clip_obs),
                       float(vecnormalize.epsilon)) if vecnormalize.norm_obs else \
            ObsNorm(np.zeros(n), np.ones(n), 1e9, float(vecnormalize.epsilon))
    return build_actor(layers, activation, output, spaces, norm, source, finite=False)


def sb3_predict(model, obs: np.ndarray, vecnormalize=None) -> np.ndarray:
    """The reference: SB3's own deterministic action for raw env observations."""
    if vecnormalize is not None:
        obs = vecnormalize.normalize_obs(obs)
    action, _ = model.predict(obs, deterministic=True)
    return action
