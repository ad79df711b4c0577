"""sbx (Stable-Baselines-Jax) DDPG / TD3 / SAC: a user's model zip, and the trainer's live models.

sbx trains the same algorithms as SB3 with flax networks; its deterministic action is
`unscale(clip(tanh(mean), -1, 1))` where `mean` is the last Dense of a ReLU chain (TD3/DDPG) or the
mean head of SAC's squashed Gaussian (its log-std head is ignored: deterministic actions do not use
it). Flax stores a Dense kernel as [in, out], the transpose of torch's Linear weight.

An sbx zip (`model.save`) keeps the policy, flax parameters included, cloudpickled in its `data`, so
it is read only with trust_pickle, by sbx's own `load`; the Actor is then checked against that
model's `predict(deterministic=True)`.
"""

from __future__ import annotations

import re
from itertools import pairwise

import numpy as np

from drlbench.errors import DrlbenchError
from drlbench.importers.sb3 import check_algo, check_bounds, detect_algo, read_zip_data
from drlbench.importers.spec import (
    TANH_SCALED,
    TANH_UNIT,
    Imported,
    Layer,
    Request,
    Spaces,
    build_actor,
    first_line,
    verify,
)

SBX_ALGOS = ("ddpg", "td3", "sac")
ACTIVATIONS = ("relu", "tanh")


def sbx_class(algo: str):
    if algo not in SBX_ALGOS:
        raise DrlbenchError(f"sbx trains {', '.join(SBX_ALGOS)}, not {algo!r}")
    try:
        import sbx
    except ImportError:
        raise DrlbenchError("sbx is not installed: pip install -e '.[sbx]' (pulls jax and flax)") from None
    return getattr(sbx, algo.upper())


def dense_layers(params: dict) -> list[Layer]:
    """The actor's Dense layers in call order, as torch-shaped `Layer`s."""
    tree = params.get("params", params)
    names = [k for k in tree if re.fullmatch(r"Dense_\d+", k)]
    if not names or len(names) != len(tree):
        raise DrlbenchError(f"not an sbx MLP actor: parameter groups {sorted(tree)} (expected Dense_0, Dense_1, …)")
    layers = []
    for name in sorted(names, key=lambda k: int(k.split("_")[1])):
        group = tree[name]
        if set(group) != {"kernel", "bias"}:
            raise DrlbenchError(f"sbx layer {name} holds {sorted(group)}; expected kernel and bias")
        kernel = np.asarray(group["kernel"], dtype=np.float32)
        if kernel.ndim != 2:
            raise DrlbenchError(f"sbx layer {name} has a kernel of shape {kernel.shape}; expected a matrix")
        layers.append(Layer(name, kernel.T.copy(), np.asarray(group["bias"], dtype=np.float32)))
    return layers


def _activation(activation) -> str:
    name = activation if isinstance(activation, str) else getattr(activation, "__name__", str(activation))
    if name not in ACTIVATIONS:
        raise DrlbenchError(f"unsupported sbx activation {name!r}; accepted: {', '.join(ACTIVATIONS)}")
    return name


def actor_chain(params: dict, algo: str) -> list[Layer]:
    layers = dense_layers(params)
    chain = layers[:-1] if algo == "sac" else layers  # SAC: [..., mean, log_std]
    if not chain:
        raise DrlbenchError(f"sbx {algo} actor has too few Dense layers ({len(layers)})")
    for prev, layer in pairwise(chain):
        if layer.weight.shape[1] != prev.weight.shape[0]:
            raise DrlbenchError(f"sbx layers do not chain: {prev.name} gives {prev.weight.shape[0]} outputs, "
                                f"{layer.name} takes {layer.weight.shape[1]} inputs")
    return chain


def actor_from_params(params: dict, algo: str, activation, action_low, action_high, finite: bool = False):
    """Build the `Actor` from an sbx actor's flax parameters (no sbx or jax needed)."""
    activation = _activation(activation)
    chain = actor_chain(params, algo)
    low, high = np.asarray(action_low, dtype=np.float32), np.asarray(action_high, dtype=np.float32)
    spaces = Spaces(f"the sbx {algo} actor's action space", chain[0].weight.shape[1], low.size, low, high)
    return build_actor(chain, activation, TANH_UNIT, spaces, None, f"sbx {algo} actor", finite=finite)


def actor_from_sbx(model):
    """An in-memory sbx model (the trainer's) → `Actor`. sbx models here train on raw observations."""
    algo = type(model).__name__.lower()
    if algo not in SBX_ALGOS:
        raise DrlbenchError(f"unsupported sbx model class {type(model).__name__}; accepted: {', '.join(SBX_ALGOS)}")
    space = model.action_space
    return actor_from_params(model.policy.actor_state.params, algo, model.policy.activation_fn, space.low, space.high)


def read(req: Request) -> Imported:
    """An sbx zip, loaded by sbx (the caller checked trust_pickle), verified against its `predict`."""
    path, spaces = req.path, req.spaces
    source = f"sbx checkpoint {path}"
    detected = detect_algo(read_zip_data(path, "sbx"))
    algo = check_algo(detected, req.algo, path, "sbx ")
    cls = sbx_class(algo)
    try:
        model = cls.load(str(path), device="cpu")
        params, activation = model.policy.actor_state.params, model.policy.activation_fn
    except Exception as exc:  # unpickling and flax restore can raise anything on a damaged or foreign file
        raise DrlbenchError(f"cannot load {source} with sbx {algo.upper()}: {type(exc).__name__}: "
                            f"{first_line(exc)}") from None
    check_bounds(np.asarray(model.action_space.low, np.float32), np.asarray(model.action_space.high, np.float32),
                 spaces, source)
    # predict returns env units: the tanh rescaled to the bounds (and clipped, which cannot bind)
    actor = build_actor(actor_chain(params, algo), _activation(activation), TANH_SCALED, spaces, req.norm, source)

    def run(x: np.ndarray) -> np.ndarray:
        action, _ = model.predict(x, deterministic=True)
        return action

    return verify(Imported(actor, TANH_SCALED, {"algo": algo, "algo_detected": detected is not None}), req, run,
                  "sbx's predict", source, "accepted: sbx MlpPolicy actors (Dense layers, relu or tanh)")
