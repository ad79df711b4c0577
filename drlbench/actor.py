"""The deterministic actor: obs -> action in env units, with normalization and action bounds inside.

Every agent drlbench handles, whatever algorithm trained it, becomes this one module shape:

    obs --(x - mean) / sqrt(var + eps), clip--> body (Linear, act, …) --> head Linear --> squash

`squash="tanh"` (SAC, TD3, DDPG) maps tanh output to [low, high]; `squash="clip"` (PPO, TRPO) clips
the Gaussian mean to [low, high], as SB3's `predict` does. One shape means one ONNX export, one
pruning recipe and one loader for all five algorithms.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from drlbench.errors import DrlbenchError

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
SQUASHES = ("tanh", "clip")


class Actor(nn.Module):
    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: list[int],
        activation: str = "relu",
        squash: str = "clip",
        action_low=None,
        action_high=None,
        obs_clip: float = 10.0,
        obs_eps: float = 1e-8,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise DrlbenchError(f"unknown activation {activation!r}; accepted: {', '.join(ACTIVATIONS)}")
        if squash not in SQUASHES:
            raise DrlbenchError(f"unknown squash {squash!r}; accepted: {', '.join(SQUASHES)}")
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.activation, self.squash = activation, squash
        self.obs_clip, self.obs_eps = float(obs_clip), float(obs_eps)
        low = torch.full((act_dim,), -1.0) if action_low is None else torch.as_tensor(action_low, dtype=torch.float32)
        high = torch.full((act_dim,), 1.0) if action_high is None else torch.as_tensor(action_high, dtype=torch.float32)
        # float64, as VecNormalize keeps them (see `normalize` for how they are applied)
        self.register_buffer("obs_mean", torch.zeros(obs_dim, dtype=torch.float64))
        self.register_buffer("obs_var", torch.ones(obs_dim, dtype=torch.float64))
        self.register_buffer("action_low", low.clone())
        self.register_buffer("action_high", high.clone())
        layers: list[nn.Module] = []
        width = obs_dim
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, act_dim)

    @property
    def hidden(self) -> list[int]:
        return [m.out_features for m in self.body if isinstance(m, nn.Linear)]

    @property
    def first_layer(self) -> nn.Linear:
        """The Linear that reads the normalized observation."""
        return next((m for m in self.body if isinstance(m, nn.Linear)), self.head)

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        # float32 ops with float64 accuracy: the mean is split into a float32 head and the float32
        # rounding error of that head, so (obs - head) - tail loses no digits even when a feature's
        # mean is large against its spread. (Plain float64 ops cost ~1 µs more per ONNX call.)
        head = self.obs_mean.float()
        tail = (self.obs_mean - head.double()).float()
        inv_std = torch.rsqrt(self.obs_var + self.obs_eps).float()
        return torch.clamp(((obs - head) - tail) * inv_std, -self.obs_clip, self.obs_clip)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """Head pre-activation (the network's raw output), used by distillation losses."""
        return self.head(self.body(self.normalize(obs)))

    def postprocess(self, raw: torch.Tensor) -> torch.Tensor:
        if self.squash == "tanh":
            return self.action_low + (torch.tanh(raw) + 1.0) * 0.5 * (self.action_high - self.action_low)
        return torch.maximum(torch.minimum(raw, self.action_high), self.action_low)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.postprocess(self.features(obs))

    def n_params(self) -> int:
        """Trainable parameters (weights and biases); normalization buffers are not counted."""
        return sum(p.numel() for p in self.parameters())

    def config(self) -> dict:
        return {
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "hidden": self.hidden,
            "activation": self.activation,
            "squash": self.squash,
            "obs_clip": self.obs_clip,
            "obs_eps": self.obs_eps,
        }

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        return self(torch.as_tensor(np.asarray(obs, dtype=np.float32))).numpy()


def save_actor(actor: Actor, path: Path) -> None:
    """Weights in safetensors, architecture in its metadata (no pickle anywhere)."""
    tensors = {k: v.detach().contiguous().clone() for k, v in actor.state_dict().items()}
    save_file(tensors, str(path), metadata={"drlbench_actor": json.dumps(actor.config())})


def load_actor(path: Path) -> Actor:
    path = Path(path)
    if not path.is_file():
        raise DrlbenchError(f"weight file not found: {path} (expected a .safetensors actor)")
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise DrlbenchError(f"corrupt weight file {path}: {exc}") from None
    if "drlbench_actor" not in meta:
        raise DrlbenchError(f"{path} is a safetensors file but not a drlbench actor (no 'drlbench_actor' metadata)")
    try:
        cfg = json.loads(meta["drlbench_actor"])
        if not isinstance(cfg, dict):
            raise TypeError(f"expected a JSON object of Actor arguments, got {type(cfg).__name__}")
        actor = Actor(**cfg)
    except (ValueError, TypeError, RuntimeError) as exc:  # bad JSON, unknown/missing keys, impossible sizes
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]  # torch's messages can span lines
        raise DrlbenchError(f"corrupt weight file {path}: bad drlbench_actor metadata ({reason})") from None
    try:
        actor.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:  # torch lists every mismatch on its own line: keep the error one line
        details = "; ".join(line.strip() for line in str(exc).splitlines()[1:] if line.strip()) or str(exc)
        raise DrlbenchError(f"corrupt weight file {path}: tensors do not match the stored architecture "
                            f"({details})") from None
    for name, t in tensors.items():
        if not torch.isfinite(t).all():
            raise DrlbenchError(f"weight file {path} has NaN or Inf in {name!r}")
    return actor.eval()
