"""aten ops → graph `Op`s, shared by the TorchScript and torch.export readers (both speak aten)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from drlbench.importers.graph import PASS, SHAPE, Op, affine_op, linear_op

# value passes through (dtype, layout, shape bookkeeping; dropout is the identity in eval mode)
PASS_OPS = {"to", "_to_copy", "type_as", "float", "flatten", "view", "reshape", "contiguous", "expand", "expand_as",
            "clone", "detach", "alias", "dropout", "lift_fresh_copy", "squeeze", "unsqueeze"}
# outputs carry no observation values: sizes, and tensors of constants shaped like their input
SHAPE_OPS = {"size", "sym_size", "dim", "numel", "ones_like", "zeros_like", "empty_like", "full_like",
             "_assert_tensor_metadata", "_shape_as_tensor"}


@dataclass(frozen=True)
class Ref:
    """A computed value (the rest of an op's operands are constants)."""
    id: object


def number(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def _refs(values) -> tuple:
    out = []
    for v in values:
        if isinstance(v, Ref):
            out.append(v.id)
        elif isinstance(v, (list, tuple)):
            out.extend(_refs(v))
    return tuple(out)


def base_name(name: str) -> str:
    """"aten::relu_" and "aten::relu.default" compute what relu does."""
    return name.split("::")[-1].split(".")[0].removesuffix("_")


def aten_op(name: str, args: list, kwargs: dict, outputs: tuple, label: str) -> Op:
    """`name` as "aten::linear[.overload]"; args and kwargs hold `Ref`s for computed values, constants otherwise."""
    refs = _refs([*args, *kwargs.values()])
    try:
        return _aten_op(base_name(name), args, kwargs, refs, outputs, label)
    except (TypeError, ValueError, IndexError, RuntimeError):  # operands of a damaged file that are no numbers
        return Op("unsupported", f"{label} (unreadable operands)", refs, outputs)


def _aten_op(base: str, args: list, kwargs: dict, refs: tuple, outputs: tuple, label: str) -> Op:
    """`base` as base_name gives it."""

    def arg(i: int, key: str, default=None):
        return args[i] if len(args) > i else kwargs.get(key, default)

    def const(v) -> bool:
        return not isinstance(v, Ref) and v is not None

    def op(kind: str, **params) -> Op:
        return Op(kind, label, refs, outputs, params)

    x = args[0] if args else None
    if base in PASS_OPS:
        return op(PASS) if args and isinstance(args[0], Ref) else op(SHAPE)
    if base in SHAPE_OPS:
        return op(SHAPE)
    if base in ("relu", "tanh"):
        return op(base)
    if base == "linear" and isinstance(x, Ref) and const(arg(1, "weight")):
        b = arg(2, "bias")
        return linear_op(label, refs, outputs, number(arg(1, "weight")), None if b is None else number(b))
    if base == "addmm" and isinstance(arg(1, "mat1"), Ref) and const(x) and const(arg(2, "mat2")):  # b + x @ m
        return linear_op(label, refs, outputs, number(arg(2, "mat2")).T * float(number(arg(4, "alpha", 1))),
                         number(x) * float(number(arg(3, "beta", 1))))
    if base in ("mm", "matmul") and isinstance(x, Ref) and len(args) > 1 and const(args[1]) \
            and number(args[1]).ndim == 2:
        return linear_op(label, refs, outputs, number(args[1]).T)
    if len(refs) != 1:
        return op("unsupported")
    if base in ("add", "sub", "rsub") and len(args) >= 2:
        alpha, y = float(number(arg(2, "alpha", 1))), args[1]
        if isinstance(x, Ref) and const(y):  # x + a y, x - a y, y - a x
            sign = 1.0 if base == "add" else -1.0
            scale, shift = (-alpha, number(y)) if base == "rsub" else (1.0, sign * alpha * number(y))
        elif const(x) and base != "rsub":  # c + a x, c - a x
            scale, shift = (alpha if base == "add" else -alpha), number(x)
        else:
            return op("unsupported")
        return affine_op(label, refs, outputs, scale, shift)
    if base == "mul" and len(args) == 2:
        c = args[1] if isinstance(x, Ref) else x
        return affine_op(label, refs, outputs, number(c), 0.0) if const(c) else op("unsupported")
    if base == "div" and len(args) >= 2 and isinstance(x, Ref) and const(args[1]) \
            and arg(2, "rounding_mode") is None:
        with np.errstate(divide="ignore"):
            return affine_op(label, refs, outputs, 1.0 / number(args[1]), 0.0)
    if base == "neg":
        return affine_op(label, refs, outputs, -1.0, 0.0)
    if base in ("clamp", "clip", "hardtanh") and isinstance(x, Ref):
        keys = ("min_val", "max_val") if base == "hardtanh" else ("min", "max")
        defaults = (-1.0, 1.0) if base == "hardtanh" else (None, None)
        low, high = arg(1, keys[0], defaults[0]), arg(2, keys[1], defaults[1])
        if isinstance(low, Ref) or isinstance(high, Ref):
            return op("unsupported")
        return op("clip", low=None if low is None else number(low), high=None if high is None else number(high))
    if base in ("maximum", "minimum", "clamp_min", "clamp_max", "max", "min") and len(args) == 2:
        c = args[1] if isinstance(x, Ref) else x
        if not const(c):
            return op("unsupported")
        return op("clip", low=number(c)) if base in ("maximum", "clamp_min", "max") else op("clip", high=number(c))
    return op("unsupported")
