"""The actor spec every reader produces, built and checked in one place.

A reader turns its file into `Layer`s (weights as nn.Linear holds them), one hidden activation, an
output mapping (`OUTPUTS`) and optionally observation statistics (`ObsNorm`); `build_actor` checks
sizes, chaining and finiteness and fills a drlbench `Actor`; `verify` proves the Actor against the
file's own runtime on rollout states. `Request` is what every reader receives, `Imported` what it
returns: one signature for all formats.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
from torch import nn

from drlbench.actor import Actor
from drlbench.errors import DrlbenchError

ACCEPTED = ("an SB3 / sb3-contrib .zip, an sbx .zip, a CleanRL .cleanrl_model, an ONNX actor, a TorchScript actor "
            "or a torch.export .pt2")
TRUST_HINT = "pass --trust-pickle (trust_pickle=True) only if you trust where the file comes from"
# |file - actor| / (1 + |file|): float32 rounding stays far below it even for huge outputs, while
# structural misreadings (activation, layer order, output mapping) give errors of order 0.1
VERIFY_TOL = 1e-4
PROBE_STEPS = 64
NO_CLIP = 1e9  # an Actor's obs_clip when nothing clips the observations

# How the file's output maps to env actions: (Actor squash, the file output the Actor predicts).
OUTPUTS = {
    "env units, clipped to the action bounds": ("clip", lambda a, x: a.features(x)),
    "tanh in [-1, 1], rescaled to the action bounds": ("tanh", lambda a, x: torch.tanh(a.features(x))),
    "tanh scaled to the action bounds by the module": ("tanh", lambda a, x: a(x)),
    "clipped to the action bounds by the module": ("clip", lambda a, x: a(x)),
}
ENV_UNITS, TANH_UNIT, TANH_SCALED, CLIPPED = OUTPUTS


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


@dataclass(frozen=True)
class Request:
    """What every reader gets: the file, the env's spaces and what the user said about it."""
    path: Path
    spaces: Spaces
    norm: ObsNorm | None  # statistics given beside the file (VecNormalize .pkl or obs_stats .npz)
    algo: str | None
    obs_stats: object  # the user's obs_stats argument: None, "none" or a path
    vn_path: Path | None
    obs: np.ndarray  # rollout states of the env, to verify on


@dataclass
class Imported:
    """What every reader returns: the actor, how the file's output maps to actions, card entries."""
    actor: Actor
    output: str
    extra: dict = field(default_factory=dict)


def first_line(exc: BaseException) -> str:
    """Third-party errors can span many lines; a DrlbenchError is one."""
    return next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def require_trust(trust_pickle: bool, what: Path) -> None:
    if not trust_pickle:
        raise DrlbenchError(f"{what} is pickle-based (an SB3 or sbx zip, a torch.save / CleanRL checkpoint, a "
                            "torch.export .pt2 or a VecNormalize .pkl): unpickling can run arbitrary code, so "
                            f"drlbench refuses it by default; {TRUST_HINT}")


def spaces_of(env, env_id: str) -> Spaces:
    obs_space, act_space = env.observation_space, env.action_space
    for what, space in (("observation", obs_space), ("action", act_space)):
        if len(space.shape) != 1:
            raise DrlbenchError(f"{env_id} has a {what} space of shape {space.shape}; drlbench accepts flat (1-D) "
                                "Box spaces")
    return Spaces(env_id, obs_space.shape[0], act_space.shape[0],
                  np.asarray(act_space.low, np.float32), np.asarray(act_space.high, np.float32))


def build_actor(layers: list[Layer], activation: str, output: str, spaces: Spaces, norm: ObsNorm | None,
                source: str, finite: bool = True) -> Actor:
    """The one place where sizes, chaining and finiteness are checked, whatever the format.

    finite=False is for live models mid-training, whose selection checks must see a diverged actor act.
    """
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
    for prev, layer in pairwise(layers):
        if layer.weight.shape[1] != prev.weight.shape[0]:
            raise DrlbenchError(f"{source}: layer {layer.name} takes {layer.weight.shape[1]} inputs but {prev.name} "
                                f"gives {prev.weight.shape[0]}; accepted: a chain of Linear layers")
    for layer in layers:
        if layer.bias.shape != (layer.weight.shape[0],):
            raise DrlbenchError(f"{source}: layer {layer.name} has a bias of shape {layer.bias.shape}, expected "
                                f"({layer.weight.shape[0]},)")
        if finite and not (np.isfinite(layer.weight).all() and np.isfinite(layer.bias).all()):
            raise DrlbenchError(f"{source} has NaN or Inf in layer {layer.name}; accepted: finite weights")
    actor = Actor(
        obs_dim=spaces.obs_dim, act_dim=spaces.act_dim, hidden=[lay.weight.shape[0] for lay in layers[:-1]],
        activation=activation, squash=OUTPUTS[output][0], action_low=spaces.low, action_high=spaces.high,
        # without statistics the normalization is the identity
        obs_clip=norm.clip if norm else NO_CLIP, obs_eps=norm.eps if norm else 0.0,
    )
    with torch.no_grad():
        for dst, layer in zip([m for m in actor.body if isinstance(m, nn.Linear)] + [actor.head], layers, strict=True):
            dst.weight.copy_(torch.from_numpy(np.array(layer.weight, np.float32)))  # a copy: sources may be read-only
            dst.bias.copy_(torch.from_numpy(np.array(layer.bias, np.float32)))
        if norm is not None:
            actor.obs_mean.copy_(torch.as_tensor(norm.mean, dtype=torch.float64))
            actor.obs_var.copy_(torch.as_tensor(norm.var, dtype=torch.float64))
    return actor.eval()


def verify(imported: Imported, req: Request, run, runtime: str, source: str, hint: str,
           raw_input: bool = False) -> Imported:
    """Refuse unless the Actor reproduces `run` (the file's own runtime) on the rollout states; records
    the largest |file output - what the Actor says the file outputs| / (1 + |file output|).

    The file is fed normalized observations when the statistics came from beside it, raw ones when
    it normalizes inside (`raw_input`).
    """
    actor, x = imported.actor, torch.as_tensor(req.obs)
    with torch.no_grad():
        predicted = OUTPUTS[imported.output][1](actor, x).numpy()
        actual = np.asarray(run(req.obs if raw_input else actor.normalize(x).numpy()), np.float64)
    if actual.shape != predicted.shape:
        raise DrlbenchError(f"{source} returns actions of shape {actual.shape[1:]} on a batch of {len(x)}, the "
                            f"actor read from it {predicted.shape[1:]}; {hint}")
    err = float(np.max(np.abs(actual - predicted) / (1.0 + np.abs(actual))))
    err = err if np.isfinite(err) else float("inf")  # a file that outputs NaN matches nothing
    if err > VERIFY_TOL:
        raise DrlbenchError(f"{source}: the actor drlbench reads from it differs from {runtime} by {err:.3g} on "
                            f"{req.spaces.env_id} observations; {hint}")
    imported.extra["verified_max_rel_err"] = err
    return imported


# ---------------------------------------------------------------------------------------- state dicts

def load_tensors(raw: bytes, what: str):
    """torch.load(weights_only=True): tensors and plain containers only, nothing else is rebuilt."""
    try:
        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # weights_only refuses any object but tensors and containers; torch's own message suggests
        # weights_only=False, which is exactly what must not be done with a file of unknown origin
        raise DrlbenchError(f"{what} holds objects other than tensors, so it could run code when unpickled; "
                            "drlbench does not load it (accepted: state dicts of tensors)") from None
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, OverflowError, MemoryError) as exc:
        raise DrlbenchError(f"corrupt {what}: {first_line(exc)}") from None


def state_layer(state: dict, name: str, source: str) -> Layer:
    if not all(isinstance(state.get(f"{name}.{p}"), torch.Tensor) for p in ("weight", "bias")):
        raise DrlbenchError(f"{source}: it has no tensors {name}.weight and {name}.bias; accepted: MLP policies")
    return Layer(name, state[f"{name}.weight"].float().numpy(), state[f"{name}.bias"].float().numpy())


def sequential_layers(state: dict, prefix: str, source: str) -> list[Layer]:
    """Linear layers of an nn.Sequential (`prefix` + index), one activation between each."""
    keys = [k for k in state if k.startswith(prefix)]
    odd = [k for k in keys if not re.fullmatch(r"\d+\.(weight|bias)", k[len(prefix):])]
    if odd:
        raise DrlbenchError(f"{source}: unexpected parameters {', '.join(odd[:6])}; accepted: MLP policies")
    idx = sorted({int(k[len(prefix):].split(".")[0]) for k in keys})
    if any(b - a != 2 for a, b in pairwise(idx)):
        raise DrlbenchError(f"{source}: {prefix}* is not Linear/activation pairs (indices {idx}); "
                            "accepted: MLP policies")
    return [state_layer(state, f"{prefix}{i}", source) for i in idx]


def layers_of(modules, source: str) -> tuple[list[Layer], str]:
    """nn.Linear layers and their one activation kind from a live module list."""
    linears = [m for m in modules if isinstance(m, nn.Linear)]
    acts = {type(m) for m in modules if isinstance(m, (nn.ReLU, nn.Tanh))}
    if len(acts) > 1:
        raise DrlbenchError(f"{source} mixes activations {sorted(a.__name__ for a in acts)}; supported: one kind")
    layers = [Layer(f"linear{i}", m.weight.detach().cpu().float().numpy(),
                    np.zeros(m.out_features, np.float32) if m.bias is None else m.bias.detach().cpu().float().numpy())
              for i, m in enumerate(linears)]
    return layers, "tanh" if nn.Tanh in acts else "relu"
