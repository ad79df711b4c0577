"""CleanRL `--save-model` checkpoints (`<exp_name>.cleanrl_model`): a `torch.save` zip of state dicts.

ppo_continuous_action's `agent.state_dict()` (actor_mean.*), td3's `(actor, qf1, qf2)` and ddpg's
`(actor, qf1)` state dicts (fc1, fc2, fc_mu, action_scale, action_bias), or a SAC actor's (fc_mean).
Read with `torch.load(weights_only=True)`; mapped by parameter names and checked against CleanRL's
forward computed from the state dict. CleanRL's PPO normalizes observations with gymnasium's
NormalizeObservation and does not save the statistics: they come as an .npz (`obs_stats`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from drlbench.errors import DrlbenchError
from drlbench.importers.sb3 import check_algo
from drlbench.importers.spec import (
    ENV_UNITS,
    TANH_SCALED,
    Imported,
    Request,
    Spaces,
    build_actor,
    load_tensors,
    sequential_layers,
    state_layer,
    verify,
)

# Actor layouts of CleanRL's continuous-action scripts: (parameters read, parameters ignored).
LAYOUTS = {
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


def read(req: Request) -> Imported:
    """The actor's state dict, mapped by its parameter names; checked against CleanRL's forward."""
    path = req.path
    source = f"CleanRL checkpoint {path}"
    saved = load_tensors(path.read_bytes(), source)
    nets = list(saved) if isinstance(saved, (tuple, list)) else [saved]
    if not nets or not all(isinstance(n, dict) for n in nets):
        raise DrlbenchError(f"{source} holds a {type(saved).__name__}, not state dicts; {CLEANRL_ACCEPTED}")
    sd = nets[0]
    layout = "ppo" if "actor_mean.0.weight" in sd else "td3" if "fc_mu.weight" in sd else \
        "sac" if "fc_mean.weight" in sd else None
    if layout is None:
        raise DrlbenchError(f"{source} holds no CleanRL actor (its first state dict has {', '.join(list(sd)[:6])}); "
                            f"{CLEANRL_ACCEPTED}")
    read_keys, ignored = LAYOUTS[layout]
    stray = sorted(k for k in sd if not k.startswith(read_keys + ignored))
    if stray:
        raise DrlbenchError(f"{source} has parameters drlbench cannot map to the {layout} actor: "
                            f"{', '.join(stray[:6])}; {CLEANRL_ACCEPTED}")
    # DDPG saves (actor, qf1), TD3 (actor, qf1, qf2): the same actor, told apart by the critics
    detected = {"ppo": "ppo", "sac": "sac", "td3": {2: "ddpg", 3: "td3"}.get(len(nets))}[layout]
    if detected is not None:
        check_algo(detected, req.algo, path, "CleanRL ")
    if layout == "ppo":
        if req.obs_stats is None:
            raise DrlbenchError(f"{path}: {PPO_STATS_HINT}")
        layers, activation, output = sequential_layers(sd, "actor_mean.", source), "tanh", ENV_UNITS
    else:
        head = "fc_mu" if layout == "td3" else "fc_mean"
        layers = [state_layer(sd, name, source) for name in ("fc1", "fc2", head)]
        activation, output = "relu", TANH_SCALED
        _check_scaling(sd, req.spaces, source)
    actor = build_actor(layers, activation, output, req.spaces, req.norm, source)
    imported = Imported(actor, output, {"algo": req.algo or detected, "algo_detected": detected is not None,
                                        "cleanrl_layout": layout})
    return verify(imported, req, lambda x: _forward(sd, layout, x), "CleanRL's forward", source, CLEANRL_ACCEPTED)


def _check_scaling(sd: dict, spaces: Spaces, source: str) -> None:
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
def _forward(sd: dict, layout: str, x: np.ndarray) -> np.ndarray:
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
