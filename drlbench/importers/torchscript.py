"""TorchScript actors (`torch.jit.script` / `torch.jit.trace`, then `.save`).

The module is frozen (weights become constants, constant expressions are folded) and its graph is
followed back from the action output (see graph.py); the Actor is then checked against the
TorchScript interpreter running the file's own module. Loading runs no Python (TorchScript has its own
deserializer), verifying runs the module's `forward` on env observations.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from drlbench.errors import DrlbenchError
from drlbench.importers.aten import Ref, aten_op
from drlbench.importers.graph import PASS, Graph, Op, import_graph
from drlbench.importers.spec import ACCEPTED, Imported, Request, first_line

LISTS = ("prim::ListConstruct", "prim::TupleConstruct")
UNPACKS = ("prim::ListUnpack", "prim::TupleUnpack")


def pick(out, k: int, source: str, batch: int):
    """Output `k` of what a module returned (a tensor, or a tuple/list of them) as [batch, -1] floats."""
    if isinstance(out, (tuple, list)) and k < len(out):
        out = out[k]
    elif k != 0:
        raise DrlbenchError(f"{source} returned one value where its graph has several outputs")
    if not isinstance(out, torch.Tensor) or out.numel() % max(batch, 1):
        raise DrlbenchError(f"{source} must return tensors of [batch, act_dim]; it returned "
                            f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    return out.detach().float().reshape(batch, -1).numpy()


def _graph(g, source: str) -> Graph:
    inputs = list(g.inputs())[1:]  # the first is the module itself
    if len(inputs) != 1:
        raise DrlbenchError(f"{source}: forward takes {len(inputs)} arguments; accepted: one observation tensor")
    consts, lists, ops = {}, {}, []

    def operand(v):
        return consts[v.debugName()] if v.debugName() in consts else Ref(v.debugName())

    for node in g.nodes():
        kind, outs = node.kind(), tuple(o.debugName() for o in node.outputs())
        values = [operand(v) for v in node.inputs()]
        if kind == "prim::Constant":
            try:
                consts[outs[0]] = node.output().toIValue()
            except RuntimeError:  # constants of kinds an actor does not use (functions, objects)
                pass
        elif kind in LISTS:
            if any(isinstance(v, Ref) for v in values):
                lists[outs[0]] = values
            else:
                consts[outs[0]] = values
        elif kind == "aten::broadcast_tensors" and values and isinstance(values[0], Ref) and values[0].id in lists:
            lists[outs[0]] = lists[values[0].id]  # broadcasting keeps each tensor's values
        elif kind in UNPACKS and values and isinstance(values[0], Ref) and values[0].id in lists:
            elems = lists[values[0].id]
            if len(elems) != len(outs):
                raise DrlbenchError(f"{source}: {kind} unpacks {len(outs)} values from {len(elems)}")
            for k, (out, elem) in enumerate(zip(outs, elems, strict=True)):
                if isinstance(elem, Ref):  # the other elements only shape it
                    others = tuple(e.id for e in elems if isinstance(e, Ref) and e is not elem)
                    ops.append(Op(PASS, f"{kind} (%{out})", (elem.id, *others), (out,)))
                else:
                    consts[out] = elem
        else:
            ops.append(aten_op(kind, values, {}, outs, f"{kind} (%{outs[0] if outs else '?'})"))
    ret = operand(next(g.return_node().inputs()))
    returned = lists.get(ret.id, [ret]) if isinstance(ret, Ref) else []
    outputs = [(f"output {k}", v.id) for k, v in enumerate(returned) if isinstance(v, Ref)]
    if len(outputs) != len(returned) or not outputs:
        raise DrlbenchError(f"{source} returns constants or nested values; accepted: a tensor or a tuple of tensors")
    return Graph(ops, inputs[0].debugName(), outputs, set(consts))


def read(req: Request) -> Imported:
    source = f"TorchScript actor {req.path}"
    try:
        with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript, which users still export
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(req.path), map_location="cpu").eval()
            frozen = torch.jit.freeze(module)
    except Exception as exc:  # the C++ deserializer raises RuntimeError, ValueError, IndexError, … on damage
        raise DrlbenchError(f"{req.path} is not a loadable TorchScript archive ({first_line(exc)}); "
                            f"accepted: {ACCEPTED}") from None
    graph = _graph(frozen.graph, source)

    def run(x: np.ndarray, k: int) -> np.ndarray:
        try:
            with torch.no_grad():
                out = module(torch.as_tensor(x))
        except Exception as exc:  # the interpreter's errors are RuntimeErrors, a damaged module's anything
            raise DrlbenchError(f"{source} fails on [batch, {req.spaces.obs_dim}] float32 input: "
                                f"{first_line(exc)}") from None
        return pick(out, k, source, len(x))

    return import_graph(graph, req, source, run, "the TorchScript interpreter")
