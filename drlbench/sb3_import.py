"""Extract a drlbench `Actor` from a trained Stable-Baselines3 / sb3-contrib model.

Works on an in-memory model: the trainer's (at export, and for the model-selection checks). Users'
SB3 zips go through drlbench.byo, which reads their weights without building an SB3 model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from drlbench.actor import Actor
from drlbench.errors import DrlbenchError
from drlbench.names import ALGOS


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


def _linears_and_activation(modules) -> tuple[list[nn.Linear], str]:
    linears = [m for m in modules if isinstance(m, nn.Linear)]
    acts = {type(m) for m in modules if isinstance(m, (nn.ReLU, nn.Tanh))}
    if len(acts) > 1:
        raise DrlbenchError(f"mixed activations {acts} are not supported")
    act = "tanh" if nn.Tanh in acts else "relu"
    return linears, act


def actor_from_sb3(model, vecnormalize=None) -> Actor:
    """Bake the policy's deterministic path and VecNormalize's obs statistics into one `Actor`."""
    algo = algo_name(model)
    policy = model.policy
    if algo in ("ppo", "trpo"):
        body, activation = _linears_and_activation(list(policy.mlp_extractor.policy_net))
        head, squash = policy.action_net, "clip"
    elif algo == "sac":
        body, activation = _linears_and_activation(list(policy.actor.latent_pi))
        head, squash = policy.actor.mu, "tanh"
    else:  # td3, ddpg: mu = [Linear, act, …, Linear, Tanh]
        linears, activation = _linears_and_activation([m for m in policy.actor.mu if not isinstance(m, nn.Tanh)])
        body, head, squash = linears[:-1], linears[-1], "tanh"
    space = model.action_space
    obs_dim = int(np.prod(model.observation_space.shape))
    actor = Actor(
        obs_dim=obs_dim,
        act_dim=int(np.prod(space.shape)),
        hidden=[lin.out_features for lin in body],
        activation=activation,
        squash=squash,
        action_low=space.low,
        action_high=space.high,
        obs_clip=float(vecnormalize.clip_obs) if vecnormalize is not None and vecnormalize.norm_obs else 1e9,
        obs_eps=float(vecnormalize.epsilon) if vecnormalize is not None else 0.0,
    )
    with torch.no_grad():
        dst = [m for m in actor.body if isinstance(m, nn.Linear)] + [actor.head]
        for d, s in zip(dst, [*body, head]):
            d.weight.copy_(s.weight.detach().cpu())
            d.bias.copy_(s.bias.detach().cpu())
        if vecnormalize is not None and vecnormalize.norm_obs:
            actor.obs_mean.copy_(torch.as_tensor(vecnormalize.obs_rms.mean, dtype=torch.float64))
            actor.obs_var.copy_(torch.as_tensor(vecnormalize.obs_rms.var, dtype=torch.float64))
    return actor.eval()


def sb3_predict(model, obs: np.ndarray, vecnormalize=None) -> np.ndarray:
    """The reference: SB3's own deterministic action for raw env observations."""
    if vecnormalize is not None:
        obs = vecnormalize.normalize_obs(obs)
    action, _ = model.predict(obs, deterministic=True)
    return action
