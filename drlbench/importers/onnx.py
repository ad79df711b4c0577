"""ONNX actors: the graph is followed back from the action output (see graph.py), then checked against
ONNX Runtime. Exports of SB3's guide (SAC/TD3 actors, PPO's `policy(obs, deterministic=True)` with
value and log-prob outputs) carry shape arithmetic and heads beside the action path; they are ignored.
"""

from __future__ import annotations

import numpy as np

from drlbench.errors import DrlbenchError
from drlbench.importers.graph import PASS, SHAPE, Graph, Op, affine_op, import_graph, linear_op
from drlbench.importers.spec import ACCEPTED, Imported, Request, first_line

PASS_OPS = {"Identity", "Cast", "Flatten", "Reshape", "Expand", "Squeeze", "Unsqueeze", "Dropout"}
SHAPE_OPS = {"Shape", "Size", "ConstantOfShape"}
FLOAT = 1  # onnx.TensorProto.FLOAT


def _constant(node):
    """The value of a Constant node (tensor, float(s) or int(s)); None for the kinds an actor never needs."""
    from onnx import helper, numpy_helper

    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name in ("value_float", "value_floats", "value_int", "value_ints"):
            return np.asarray(helper.get_attribute_value(attr))
    return None


def _op(node, consts: dict) -> Op:
    from onnx import helper

    t, ins, outs = node.op_type, tuple(x for x in node.input if x), tuple(node.output)
    label = f"{t} node {node.name or (outs[:1] or ('?',))[0]!r}"
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def op(kind: str, **params) -> Op:
        return Op(kind, label, ins, outs, params)

    def const(i: int):
        return consts.get(node.input[i]) if len(node.input) > i and node.input[i] else None

    if t in PASS_OPS:
        return op(PASS) if ins and ins[0] not in consts else op(SHAPE)
    if t in SHAPE_OPS:
        return op(SHAPE)
    if t in ("Relu", "Tanh"):
        return op(t.lower())
    if t == "Gemm" and not attrs.get("transA", 0) and const(1) is not None and const(1).ndim == 2 \
            and (len(node.input) < 3 or not node.input[2] or const(2) is not None):
        w = const(1).astype(np.float64) if attrs.get("transB", 0) else const(1).astype(np.float64).T
        b = None if const(2) is None else attrs.get("beta", 1.0) * np.asarray(const(2), np.float64)
        return linear_op(label, ins, outs, attrs.get("alpha", 1.0) * w, b)
    if t == "MatMul" and const(1) is not None and const(1).ndim == 2 and node.input[0] not in consts:
        return linear_op(label, ins, outs, const(1).T)
    live = [x for x in ins if x not in consts]
    if t in ("Add", "Sub", "Mul", "Div") and len(ins) == 2 and len(live) == 1:
        c, first = (const(1), True) if node.input[0] == live[0] else (const(0), False)
        if t == "Div" and not first:
            return op("unsupported")
        with np.errstate(divide="ignore"):
            scale, shift = {"Add": (1.0, c), "Sub": (1.0, -c) if first else (-1.0, c), "Mul": (c, 0.0),
                            "Div": (1.0 / np.asarray(c, np.float64), 0.0)}[t]
        return affine_op(label, ins, outs, scale, shift)
    if t in ("Max", "Min") and len(ins) == 2 and len(live) == 1:  # torch.clamp with tensor bounds exports these
        c = const(1) if node.input[0] == live[0] else const(0)
        return op("clip", low=c) if t == "Max" else op("clip", high=c)
    if t == "Neg":
        return affine_op(label, ins, outs, -1.0, 0.0)
    if t == "Clip" and len(live) == 1 and node.input[0] == live[0]:
        low = const(1) if len(node.input) > 1 else attrs.get("min")  # opset >= 11: inputs; before: attributes
        high = const(2) if len(node.input) > 2 else attrs.get("max")
        return op("clip", low=low, high=high)
    return op("unsupported")


def _graph(g, source: str) -> Graph:
    from onnx import numpy_helper

    consts, ops = {}, []
    try:  # the checker does not read tensor payloads: a damaged one fails only here
        consts.update((t.name, numpy_helper.to_array(t)) for t in g.initializer)
        for node in g.node:
            value = _constant(node) if node.op_type == "Constant" else None
            if node.op_type == "Identity" and node.input and node.input[0] in consts:  # exporters alias constants
                value = consts[node.input[0]]
            if value is not None:
                consts[node.output[0]] = value
            else:
                ops.append(_op(node, consts))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise DrlbenchError(f"{source} has an unreadable tensor or attribute ({type(exc).__name__}: "
                            f"{first_line(exc)})") from None
    inputs = [i for i in g.input if i.name not in consts]  # old exporters list initializers as inputs
    if len(inputs) != 1 or not g.output:
        raise DrlbenchError(f"{source} has {len(inputs)} inputs and {len(g.output)} outputs; accepted: one "
                            "float32 input [batch, obs_dim] and the action among the outputs")
    ttype = inputs[0].type.tensor_type
    if ttype.elem_type != FLOAT or len(ttype.shape.dim) != 2:
        raise DrlbenchError(f"{source}: input {inputs[0].name!r} is not float32 [batch, obs_dim]")
    return Graph(ops, inputs[0].name, [(o.name, o.name) for o in g.output], set(consts))


def read(req: Request) -> Imported:
    import onnx
    import onnxruntime as ort

    source = f"ONNX actor {req.path}"
    try:
        model = onnx.load(str(req.path))
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf, the checker and external-data lookup raise many types on bad files
        raise DrlbenchError(f"{req.path} is not a valid ONNX model ({type(exc).__name__}: {first_line(exc)}); "
                            f"accepted: {ACCEPTED}") from None
    graph = _graph(model.graph, source)
    session = []

    def run(x: np.ndarray, k: int) -> np.ndarray:
        try:
            if not session:
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = opts.inter_op_num_threads = 1
                opts.log_severity_level = 3  # errors only: shape-merge warnings would clutter the one-line contract
                session.append(ort.InferenceSession(model.SerializeToString(), opts,
                                                    providers=["CPUExecutionProvider"]))
            sess = session[0]
            name, out = sess.get_inputs()[0].name, sess.get_outputs()[k].name
            # one row at a time: SB3's export guide fixes the batch axis at 1
            return np.concatenate([np.asarray(sess.run([out], {name: row[None]})[0]).reshape(1, -1) for row in x])
        except Exception as exc:  # ONNX Runtime's error classes derive from Exception only
            raise DrlbenchError(f"ONNX Runtime cannot run {source}: {first_line(exc)}") from None

    return import_graph(graph, req, source, run, "ONNX Runtime")
