"""Post-training int8 quantization with ONNX Runtime: dynamic (PTDQ) and static (PTSQ).

Configurations chosen for x86 with VNNI (measured here with scripts/latency_shapes.py):
- PTDQ: `quantize_dynamic`, int8 weights (QInt8). Activation ranges are computed at run time
  per call; uint8 weights were 2x slower at batch 64.
- PTSQ: `quantize_static`, QDQ format, uint8 activations × int8 weights, per-tensor, min-max
  calibration on observations from baseline rollouts. ReLU is in the quantized ops so ORT folds it
  into the QuantizeLinear after each Gemm (348-256-256-17 actor, batch 1: 12.9 µs vs 14.2 µs with
  ReLU left in float between Q/DQ pairs; per-channel weights were slower, 15.4 µs). The QOperator
  format with int8 activations runs 8x slower on x86 and is avoided.
Only MatMul/Gemm (and ReLU) are quantized: the observation normalization, tanh and the action
squash stay in float. `keep_float` leaves named Gemm nodes in float too (the *_mixed variants keep the
first layer: per-tensor int8 of Humanoid's 348 observation features is what collapses those agents).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

from drlbench.compress.onnx_export import INPUT
from drlbench.errors import DrlbenchError

PTDQ_CONFIG = {"method": "quantize_dynamic", "weight_type": "QInt8", "per_channel": False, "ops": ["MatMul", "Gemm"]}
PTSQ_CONFIG = {"method": "quantize_static", "format": "QDQ", "activation_type": "QUInt8", "weight_type": "QInt8",
               "per_channel": False, "calibration": "MinMax", "ops": ["MatMul", "Gemm", "Relu"]}


class _ObsReader(CalibrationDataReader):
    def __init__(self, obs: np.ndarray, batch: int = 256):
        self._batches = iter([{INPUT: obs[i:i + batch].astype(np.float32)} for i in range(0, len(obs), batch)])

    def get_next(self):
        return next(self._batches, None)


def _run_in_tmp(fn, model_bytes: bytes) -> bytes:
    # ORT's quantizers work on file paths (and write calibration side files next to them).
    with tempfile.TemporaryDirectory(prefix="drlbench-q-") as tmp:
        src, dst = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "int8.onnx")
        with open(src, "wb") as f:
            f.write(model_bytes)
        fn(src, dst)
        data = open(dst, "rb").read()
    onnx.checker.check_model(onnx.load_from_string(data))
    return data


def first_gemm(model_bytes: bytes) -> str:
    """The name of the Gemm that reads the (normalized) observation: the graph's first."""
    names = [n.name for n in onnx.load_from_string(model_bytes).graph.node if n.op_type == "Gemm"]
    if not names:
        raise DrlbenchError("the ONNX graph has no Gemm node: nothing to keep in float")
    return names[0]


def _excluded(keep_float: Sequence[str]) -> list[str]:
    # quantize_dynamic first rewrites each Gemm as MatMul + Add, the MatMul named <gemm>_MatMul
    return [name for gemm in keep_float for name in (gemm, f"{gemm}_MatMul")]


def ptdq(model_bytes: bytes, keep_float: Sequence[str] = ()) -> bytes:
    return _run_in_tmp(
        lambda src, dst: quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=False,
                                          op_types_to_quantize=list(PTDQ_CONFIG["ops"]),
                                          nodes_to_exclude=_excluded(keep_float)),
        model_bytes,
    )


def ptsq(model_bytes: bytes, calibration_obs: np.ndarray, overrides: dict | None = None,
         keep_float: Sequence[str] = ()) -> bytes:
    """Static QDQ U8S8. `overrides`: ORT TensorQuantOverrides (QAT passes its learned scales)."""
    return _run_in_tmp(
        lambda src, dst: quantize_static(
            src, dst, _ObsReader(calibration_obs), quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=False,
            op_types_to_quantize=list(PTSQ_CONFIG["ops"]), calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=_excluded(keep_float),
            extra_options={"TensorQuantOverrides": overrides} if overrides else {},
        ),
        model_bytes,
    )


def weight_types(model_bytes: bytes) -> dict[str, list[tuple[int, ...]]]:
    """The graph's weight matrices (2-D initializers) by element type, e.g. {"FLOAT": [(256, 348)], "INT8": …}."""
    out: dict[str, list[tuple[int, ...]]] = {}
    for init in onnx.load_from_string(model_bytes).graph.initializer:
        if len(init.dims) == 2:
            out.setdefault(onnx.TensorProto.DataType.Name(init.data_type), []).append(tuple(init.dims))
    return out
