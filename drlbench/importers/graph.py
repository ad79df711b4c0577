"""Graph exports (ONNX, TorchScript, torch.export) → actor spec, by following the action back to the input.

Each format's reader translates its graph into `Op`s of a few kinds; this module does the rest for
all three:
    follow      from an output back to the observation: every op on the way must have exactly one
                input that depends on the observation (the others constants, or shapes for `pass`
                ops). Branches that do not reach the output (SAC's log-std head, PPO's value head
                and log-prob, shape arithmetic) are never looked at.
    interpret   the chain as   [affine] [clip]  linear (act linear)*  [tail]
                the leading affine (Sub/Div, Sub/Mul) and clip are observation normalization, an
                affine right after a linear is folded into it (MatMul + Add bias), and the tail is
                nothing, a clip to the action bounds, or tanh with an optional rescale to [low, high]
                (clips that cannot bind are allowed around it).
    import_graph  picks the output that gives the action (the first that follows, preferring a
                name with "act"), builds the Actor and verifies it against the file's own runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from drlbench.errors import DrlbenchError
from drlbench.importers.spec import (
    CLIPPED,
    ENV_UNITS,
    NO_CLIP,
    TANH_SCALED,
    TANH_UNIT,
    Imported,
    Layer,
    ObsNorm,
    Request,
    Spaces,
    build_actor,
    verify,
)

PASS, SHAPE = "pass", "shape"  # value passes through (Cast, Reshape, Expand, …); output is no observation data
FOLLOWED = ("linear", "affine", "relu", "tanh", "clip", PASS)
SUPPORTED = ("linear layers (Gemm, MatMul [+ Add], aten::linear), ReLU or Tanh between them, observation "
             "normalization (Sub/Div or Sub/Mul, optional Clip) before them, and a final Clip to the action bounds "
             "or Tanh with an optional rescale to them; reshapes and casts pass")
BOUND_RTOL = 1e-5


@dataclass(frozen=True)
class Op:
    kind: str  # one of FOLLOWED, SHAPE, or anything else: an op that cannot be followed
    label: str  # how the file names it, for messages
    inputs: tuple  # value ids; for PASS, inputs[0] carries the values and the rest only shapes
    outputs: tuple
    params: dict = field(default_factory=dict)  # linear: weight [out, in], bias; affine: scale, shift; clip: low, high


@dataclass
class Graph:
    ops: list[Op]  # in topological order
    input: object  # the observation's id
    outputs: list[tuple[str, object]]  # (name shown to the user, id)
    consts: set  # ids of constant values


def per_feature(value) -> np.ndarray | None:
    """A constant operand as float64 of shape () or (n,) ([1, n] is squeezed); None when it is not per feature."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    return arr if arr.ndim <= 1 else None


def affine_op(label: str, inputs: tuple, outputs: tuple, scale, shift) -> Op:
    """y = x * scale + shift, or an op that cannot be followed when an operand is not per feature."""
    scale, shift = per_feature(scale), per_feature(shift)
    if scale is None or shift is None:
        return Op("unsupported", f"{label} (operand not per feature)", inputs, outputs)
    return Op("affine", label, inputs, outputs, {"scale": scale, "shift": shift})


def linear_op(label: str, inputs: tuple, outputs: tuple, weight, bias=None) -> Op:
    """x @ weight.T + bias; an op that cannot be followed when the shapes do not make a layer."""
    w = np.asarray(weight, dtype=np.float64)
    b = np.zeros(w.shape[:1]) if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
    if w.ndim != 2 or b.size not in (1, w.shape[0]):
        return Op("unsupported", f"{label} (weight {w.shape}, bias {b.shape})", inputs, outputs)
    return Op("linear", label, inputs, outputs, {"weight": w, "bias": np.broadcast_to(b, w.shape[:1]).copy()})


def follow(graph: Graph, out, name: str, source: str) -> list[Op]:
    """The ops from the observation to `out`, in order, without PASS ops."""
    data, producer = {graph.input}, {}
    for op in graph.ops:
        for o in op.outputs:
            producer.setdefault(o, op)
        carries = () if op.kind == SHAPE else op.inputs[:1] if op.kind == PASS else op.inputs
        if any(i in data for i in carries):
            data.update(op.outputs)
    if out not in data:
        raise DrlbenchError(f"{source}: output {name!r} does not depend on the observation")
    chain, cur, seen = [], out, set()
    while cur != graph.input:
        op = producer[cur]
        if id(op) in seen:  # a cycle: no valid graph has one
            raise DrlbenchError(f"{source}: {op.label} is part of a cycle")
        seen.add(id(op))
        live = [i for i in (op.inputs[:1] if op.kind == PASS else op.inputs) if i in data]
        others = [i for i in op.inputs if i not in data and i not in graph.consts]
        if len(live) != 1 or (op.kind != PASS and others):
            raise DrlbenchError(f"{source}: {op.label} on the path to output {name!r} combines the observation with "
                                f"another computed tensor; supported: {SUPPORTED}")
        if op.kind not in FOLLOWED:
            raise DrlbenchError(f"{source}: cannot follow {op.label} on the path to output {name!r}; "
                                f"supported: {SUPPORTED}")
        if op.kind != PASS:
            chain.append(op)
        cur = live[0]
    return chain[::-1]


@dataclass
class Chain:
    layers: list[Layer]
    activation: str
    output: str
    norm: ObsNorm | None  # observation normalization found in the file


def _compose(ops: list[Op], source: str) -> list[Op]:
    """Runs of affine ops as one: (x*s1 + t1)*s2 + t2 = x*(s1 s2) + (t1 s2 + t2); and runs of clips whose
    ranges overlap (Max then Min) as one."""
    out: list[Op] = []
    for op in ops:
        if op.kind == "clip" and out and out[-1].kind == "clip":
            (l1, h1), (l2, h2) = _limits(out[-1]), _limits(op)
            try:
                low, high = np.maximum(l1, l2), np.minimum(h1, h2)
                overlap = bool((low <= high).all())
            except ValueError:  # bounds of different feature counts
                overlap = False
            if overlap:
                out[-1] = Op("clip", out[-1].label, out[-1].inputs, op.outputs, {"low": low, "high": high})
                continue
        if op.kind == "affine" and out and out[-1].kind == "affine":
            prev = out.pop()
            s1, t1, s2, t2 = prev.params["scale"], prev.params["shift"], op.params["scale"], op.params["shift"]
            try:
                op = Op("affine", prev.label, prev.inputs, op.outputs, {"scale": s1 * s2, "shift": t1 * s2 + t2})
            except ValueError:  # operands of different feature counts
                raise DrlbenchError(f"{source}: {op.label} does not match the features of {prev.label}") from None
        out.append(op)
    return out


def _limits(op: Op) -> tuple[np.ndarray, np.ndarray]:
    low, high = op.params.get("low"), op.params.get("high")
    return (np.asarray(-np.inf if low is None else low, np.float64),
            np.asarray(np.inf if high is None else high, np.float64))


def _feature(arr, n: int, op: Op, source: str) -> np.ndarray:
    try:
        return np.broadcast_to(arr, (n,)).astype(np.float64)
    except ValueError:
        raise DrlbenchError(f"{source}: {op.label} has an operand of shape {np.shape(arr)} on {n} features") from None


def _bounds(op: Op, n: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    low, high = _limits(op)
    return _feature(low, n, op, source), _feature(high, n, op, source)


def _close(a, b) -> bool:
    return bool(np.allclose(a, b, rtol=BOUND_RTOL, atol=BOUND_RTOL))


def _obs_norm(affine: Op | None, clip: Op | None, n: int, source: str) -> ObsNorm:
    scale = _feature(affine.params["scale"], n, affine, source) if affine else np.ones(n)
    shift = _feature(affine.params["shift"], n, affine, source) if affine else np.zeros(n)
    if not (np.isfinite(scale).all() and np.isfinite(shift).all() and (scale > 0).all()):
        raise DrlbenchError(f"{source}: {affine.label} scales observations by non-positive or non-finite factors; "
                            "supported: (obs - mean) / std with std > 0")
    bound = NO_CLIP
    if clip is not None:
        low, high = _bounds(clip, n, source)
        if not (np.isfinite(high).all() and _close(low, -high) and _close(high, high[0]) and high[0] > 0):
            raise DrlbenchError(f"{source}: {clip.label} clips normalized observations to [{low}, {high}]; supported: "
                                "one symmetric bound [-c, c]")
        bound = float(high[0])
    return ObsNorm(mean=-shift / scale, var=1.0 / scale**2, clip=bound, eps=0.0)


def _fold(layer: Layer, op: Op, source: str) -> Layer:
    """An affine right after a linear: y = (Wx + b)*s + t is one linear layer."""
    n = layer.weight.shape[0]
    s, t = _feature(op.params["scale"], n, op, source), _feature(op.params["shift"], n, op, source)
    return Layer(layer.name, s[:, None] * layer.weight, s * layer.bias + t)


def _tail(ops: list[Op], spaces: Spaces, source: str) -> str:
    """What follows the last linear layer: the output mapping, or the first op that does not fit one."""
    n, low, high = spaces.act_dim, spaces.low.astype(np.float64), spaces.high.astype(np.float64)
    if not ops:
        return ENV_UNITS
    if ops[0].kind == "clip" and len(ops) == 1:
        c_low, c_high = _bounds(ops[0], n, source)
        if _close(c_low, low) and _close(c_high, high):
            return CLIPPED
        raise DrlbenchError(f"{source}: {ops[0].label} clips actions to [{c_low}, {c_high}] but {spaces.env_id}'s "
                            f"bounds are [{low}, {high}]")
    if ops[0].kind != "tanh":
        raise DrlbenchError(f"{source}: cannot read {ops[0].label} after the last layer; supported: {SUPPORTED}")
    output, lo, hi = TANH_UNIT, -np.ones(n), np.ones(n)  # the range the value is in so far
    for op in ops[1:]:
        if op.kind == "clip":  # allowed where it cannot bind (sbx's clip of tanh, a clip to the bounds)
            c_low, c_high = _bounds(op, n, source)
            if (c_low <= lo + BOUND_RTOL).all() and (c_high >= hi - BOUND_RTOL).all():
                continue
        elif op.kind == "affine" and output == TANH_UNIT:
            scale, shift = _feature(op.params["scale"], n, op, source), _feature(op.params["shift"], n, op, source)
            if _close(scale, (high - low) / 2) and _close(shift, (high + low) / 2):
                output, lo, hi = TANH_SCALED, low, high
                continue
            raise DrlbenchError(f"{source}: {op.label} maps tanh to [{shift - scale}, {shift + scale}] but "
                                f"{spaces.env_id}'s bounds are [{low}, {high}]")
        raise DrlbenchError(f"{source}: cannot read {op.label} after the final tanh; supported: {SUPPORTED}")
    return output


def interpret(ops: list[Op], spaces: Spaces, source: str) -> Chain:
    ops, i = _compose(ops, source), 0
    pre_affine = pre_clip = None
    if i < len(ops) and ops[i].kind == "affine":
        pre_affine, i = ops[i], i + 1
    if i < len(ops) and ops[i].kind == "clip":
        pre_clip, i = ops[i], i + 1
    layers, acts = [], set()
    while True:
        if i >= len(ops) or ops[i].kind != "linear":
            what = ops[i].label if i < len(ops) else "the output"
            raise DrlbenchError(f"{source}: expected a linear layer where {what} stands; supported: {SUPPORTED}")
        p = ops[i].params
        layer, i = Layer(ops[i].label, p["weight"], p["bias"]), i + 1
        if i < len(ops) and ops[i].kind == "affine":
            layer, i = _fold(layer, ops[i], source), i + 1
        layers.append(layer)
        if i + 1 < len(ops) and ops[i].kind in ("relu", "tanh") and ops[i + 1].kind == "linear":
            acts.add(ops[i].kind)
            i += 1
            continue
        break
    if len(acts) > 1:
        raise DrlbenchError(f"{source} mixes activations {sorted(acts)}; supported: one kind throughout")
    for prev, layer in pairwise(layers):  # named before build_actor's generic check: a graph has op names
        if layer.weight.shape[1] != prev.weight.shape[0]:
            raise DrlbenchError(f"{source}: {layer.name} takes {layer.weight.shape[1]} inputs but {prev.name} gives "
                                f"{prev.weight.shape[0]}")
    norm = None
    if pre_affine is not None or pre_clip is not None:
        norm = _obs_norm(pre_affine, pre_clip, layers[0].weight.shape[1], source)
    return Chain(layers, acts.pop() if acts else "relu", _tail(ops[i:], spaces, source), norm)


def import_graph(graph: Graph, req: Request, source: str, run, runtime: str) -> Imported:
    """The Actor behind the output that gives the action, verified against `run(x, output index)`."""
    order = sorted(range(len(graph.outputs)), key=lambda k: "act" not in graph.outputs[k][0].lower())
    built, skipped = None, {}
    for k in order:
        name, out = graph.outputs[k]
        try:
            chain = interpret(follow(graph, out, name, source), req.spaces, source)
            if chain.norm is not None and req.norm is not None:
                raise DrlbenchError(f"{source} normalizes observations itself; drop --vecnormalize / --obs-stats")
            actor = build_actor(chain.layers, chain.activation, chain.output, req.spaces, chain.norm or req.norm,
                                source)
        except DrlbenchError as exc:
            skipped[name] = exc
            continue
        built = (k, name, chain, actor)
        break
    if built is None:
        raise next(iter(skipped.values()), DrlbenchError(f"{source} has no outputs"))
    k, name, chain, actor = built
    why = ("the only one" if len(graph.outputs) == 1 else "named like an action" if "act" in name.lower()
           else "the first that follows back to an actor of the env's shapes")
    extra = {"action_output": f"{name!r} (output {k} of {len(graph.outputs)}: {why})",
             "obs_norm_in_file": chain.norm is not None}
    if skipped:  # outputs tried before the picked one, and why each is not the action
        extra["outputs_skipped"] = {n: str(exc).removeprefix(f"{source}: ") for n, exc in skipped.items()}
    return verify(Imported(actor, chain.output, extra), req, lambda x: run(x, k), runtime, source,
                  f"supported: {SUPPORTED}", raw_input=chain.norm is not None)
