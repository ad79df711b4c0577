"""fp32 export of an actor (or any obs -> action module) to ONNX, checked against torch."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import torch

INPUT, OUTPUT = "obs", "action"
OPSET = 17


def export_onnx(module: torch.nn.Module, obs_dim: int) -> bytes:
    """ONNX bytes with a dynamic batch axis, weights inline (no external data)."""
    module = module.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy TorchScript exporter is deprecated but exact and has no onnxscript dependency;
        # it also exports torch.fake_quantize_* as QuantizeLinear/DequantizeLinear, which QAT needs.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(1, obs_dim),),
            buf,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    data = buf.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data))
    return data


def onnx_param_count(data: bytes) -> int:
    """Elements in the graph's initializers (weights and biases of every kind)."""
    model = onnx.load_from_string(data)
    return int(sum(np.prod(init.dims) for init in model.graph.initializer))
