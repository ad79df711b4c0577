"""Extract a drlbench `Actor` from an sbx (Stable-Baselines-Jax) DDPG / TD3 / SAC model.

sbx trains the same algorithms as SB3 with flax networks; its deterministic action is
`unscale(clip(tanh(mean), -1, 1))` where `mean` is the last Dense of a ReLU chain (TD3/DDPG) or the
mean head of SAC's squashed Gaussian (its log-std head is ignored: deterministic actions do not use
it). Flax stores a Dense kernel as [in, out], the transpose of torch's Linear weight.
"""

from __future__ import annotations

import re

import numpy as np
import torch
from torch import nn

from drlbench.actor import Actor
from drlbench.errors import DrlbenchError

SBX_ALGOS = ("ddpg", "td3", "sac")
_ACTIVATIONS = {"relu": "relu", "tanh": "tanh"}


def sbx_class(algo: str):
    if algo not in SBX_ALGOS:
        raise DrlbenchError(f"sbx trains {', '.join(SBX_ALGOS)}, not {algo!r}")
    try:
        import sbx
    except ImportError:
        raise DrlbenchError("sbx is not installed: pip install -e '.[sbx]' (pulls jax and flax)") from None
    return getattr(sbx, algo.upper())


def dense_layers(params: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """The actor's Dense layers in call order as (kernel [in, out], bias) pairs."""
    tree = params.get("params", params)
    names = [k for k in tree if re.fullmatch(r"Dense_\d+", k)]
    if not names or len(names) != len(tree):
        raise DrlbenchError(f"not an sbx MLP actor: parameter groups {sorted(tree)} (expected Dense_0, Dense_1, …)")
    layers = []
    for name in sorted(names, key=lambda k: int(k.split("_")[1])):
        group = tree[name]
        if set(group) != {"kernel", "bias"}:
            raise DrlbenchError(f"sbx layer {name} holds {sorted(group)}; expected kernel and bias")
        layers.append((np.asarray(group["kernel"], dtype=np.float32), np.asarray(group["bias"], dtype=np.float32)))
    return layers


def actor_from_params(params: dict, algo: str, activation: str, action_low, action_high) -> Actor:
    """Build the `Actor` from an sbx actor's flax parameters (no sbx or jax needed)."""
    if activation not in _ACTIVATIONS:
        raise DrlbenchError(f"unsupported sbx activation {activation!r}; accepted: {', '.join(_ACTIVATIONS)}")
    layers = dense_layers(params)
    chain = layers[:-1] if algo == "sac" else layers  # SAC: [..., mean, log_std]
    if len(chain) < 1:
        raise DrlbenchError(f"sbx {algo} actor has too few Dense layers ({len(layers)})")
    for (k_prev, _), (k, _) in zip(chain, chain[1:]):
        if k_prev.shape[1] != k.shape[0]:
            raise DrlbenchError(f"sbx layers do not chain: {k_prev.shape} then {k.shape}")
    low = np.asarray(action_low, dtype=np.float32)
    high = np.asarray(action_high, dtype=np.float32)
    if chain[-1][0].shape[1] != low.size:
        raise DrlbenchError(f"sbx actor outputs {chain[-1][0].shape[1]} actions; the action space has {low.size}")
    actor = Actor(obs_dim=chain[0][0].shape[0], act_dim=low.size, hidden=[k.shape[1] for k, _ in chain[:-1]],
                  activation=activation, squash="tanh", action_low=low, action_high=high, obs_clip=1e9, obs_eps=0.0)
    with torch.no_grad():
        for dst, (kernel, bias) in zip([m for m in actor.body if isinstance(m, nn.Linear)] + [actor.head], chain):
            dst.weight.copy_(torch.from_numpy(kernel.T.copy()))
            dst.bias.copy_(torch.from_numpy(bias.copy()))
    return actor.eval()


def _activation_name(fn) -> str:
    name = getattr(fn, "__name__", str(fn))
    if name not in _ACTIVATIONS:
        raise DrlbenchError(f"unsupported sbx activation {name!r}; accepted: {', '.join(_ACTIVATIONS)}")
    return name


def actor_from_sbx(model) -> Actor:
    """An in-memory sbx model (the trainer's) → `Actor`. sbx models here train on raw observations."""
    algo = type(model).__name__.lower()
    if algo not in SBX_ALGOS:
        raise DrlbenchError(f"unsupported sbx model class {type(model).__name__}; accepted: {', '.join(SBX_ALGOS)}")
    space = model.action_space
    params = model.policy.actor_state.params
    return actor_from_params(params, algo, _activation_name(model.policy.activation_fn), space.low, space.high)
