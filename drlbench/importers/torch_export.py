"""torch.export programs (`torch.export.save`, .pt2): the aten graph is followed back from the action
output (see graph.py), then the Actor is checked against the program itself (`ep.module()`).

`torch.export.load` unpickles parts of the archive, so .pt2 files are read only with trust_pickle.
"""

from __future__ import annotations

import logging
import operator

import numpy as np
import torch

from drlbench.errors import DrlbenchError
from drlbench.importers.aten import Ref, aten_op, base_name
from drlbench.importers.graph import PASS, Graph, Op, import_graph
from drlbench.importers.spec import ACCEPTED, Imported, Request, first_line
from drlbench.importers.torchscript import pick

# ops evaluated at read time when all their operands are constants (normalization written with buffers:
# (obs - mean) / sqrt(var + eps)); each one's result is no larger than its operands broadcast
FOLDED = {"add", "sub", "rsub", "mul", "div", "sqrt", "rsqrt", "reciprocal", "neg", "pow", "t", "permute",
          "transpose", "to", "_to_copy", "clone", "detach", "alias", "contiguous", "lift_fresh_copy", "view",
          "reshape", "squeeze", "unsqueeze", "clamp"}


def _name(target) -> str:
    name = getattr(target, "name", None)
    return name() if callable(name) else getattr(target, "__name__", str(target))


def _placeholders(ep, source: str) -> tuple[dict, str]:
    """Constant values of the parameter/buffer/constant placeholders, and the one user input's name."""
    from torch.export.graph_signature import InputKind

    consts, users = {}, []
    for spec in ep.graph_signature.input_specs:
        if spec.kind == InputKind.USER_INPUT:
            users.append(spec.arg.name)
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
            consts[spec.arg.name] = ep.state_dict[spec.target] if spec.target in ep.state_dict \
                else ep.constants[spec.target]  # non-persistent buffers live with the constants
        elif spec.kind == InputKind.CONSTANT_TENSOR:
            consts[spec.arg.name] = ep.constants[spec.target]
    if len(users) != 1:
        raise DrlbenchError(f"{source} takes {len(users)} inputs; accepted: one observation tensor")
    return consts, users[0]


def _fold(node, base: str, consts: dict):
    """The node's value when it can be computed now, else None."""
    from torch.fx.node import map_arg

    if base not in FOLDED or not node.all_input_nodes or any(n.name not in consts for n in node.all_input_nodes):
        return None
    try:
        with torch.no_grad():
            return node.target(*map_arg(node.args, lambda n: consts[n.name]),
                               **map_arg(node.kwargs, lambda n: consts[n.name]))
    except Exception:  # an op that cannot run on these constants is left to the follower, which names it
        return None


def _graph(ep, source: str) -> Graph:
    from torch.fx.node import map_arg

    consts, user = _placeholders(ep, source)
    lists, ops, outputs = {}, [], []
    for node in ep.graph.nodes:
        if node.op == "get_attr":
            consts[node.name] = operator.attrgetter(node.target)(ep.graph_module)
        elif node.op == "call_function":
            args = map_arg(node.args, lambda n: consts[n.name] if n.name in consts else Ref(n.name))
            kwargs = map_arg(node.kwargs, lambda n: consts[n.name] if n.name in consts else Ref(n.name))
            name = _name(node.target)
            value = _fold(node, base_name(name), consts)
            if value is not None:
                consts[node.name] = value
            elif base_name(name) == "broadcast_tensors":
                lists[node.name] = list(args[0])  # broadcasting keeps each tensor's values
            elif node.target is operator.getitem and isinstance(args[0], Ref) and args[0].id in lists:
                elems, k = lists[args[0].id], args[1]
                elem = elems[k] if isinstance(k, int) and -len(elems) <= k < len(elems) else None
                if isinstance(elem, Ref):
                    others = tuple(e.id for e in elems if isinstance(e, Ref) and e is not elem)
                    ops.append(Op(PASS, f"getitem node {node.name!r}", (elem.id, *others), (node.name,)))
            else:
                ops.append(aten_op(name, list(args), dict(kwargs), (node.name,), f"{name} node {node.name!r}"))
        elif node.op == "output":
            returned = node.args[0] if isinstance(node.args[0], (tuple, list)) else [node.args[0]]
            outputs = [(n.name, n.name) for n in returned if isinstance(n, torch.fx.Node)]
            if len(outputs) != len(returned) or not outputs:
                raise DrlbenchError(f"{source} returns constants or nested values; accepted: tensors")
    return Graph(ops, user, outputs, set(consts))


def read(req: Request) -> Imported:
    source = f"torch.export program {req.path}"
    logger = logging.getLogger("torch.export")
    level = logger.level
    logger.setLevel(logging.ERROR)  # its loader logs a traceback before raising: the error stays one line
    try:
        ep = torch.export.load(str(req.path))
        graph = _graph(ep, source)
        module = ep.module()
    except DrlbenchError:
        raise
    except Exception as exc:  # the archive reader, the JSON deserializer and unpickling raise many types
        raise DrlbenchError(f"{req.path} is not a loadable torch.export archive ({type(exc).__name__}: "
                            f"{first_line(exc)}); accepted: {ACCEPTED}") from None
    finally:
        logger.setLevel(level)

    def run(x: np.ndarray, k: int) -> np.ndarray:
        rows = []
        try:
            with torch.no_grad():
                for row in torch.as_tensor(x):  # one row at a time: an export without dynamic shapes fixes batch 1
                    rows.append(pick(module(row[None]), k, source, 1))
        except DrlbenchError:
            raise
        except Exception as exc:  # guards on the traced shapes, and whatever a damaged program raises
            raise DrlbenchError(f"{source} fails on [1, {req.spaces.obs_dim}] float32 input: {first_line(exc)}") \
                from None
        return np.concatenate(rows)

    return import_graph(graph, req, source, run, "the exported program")
