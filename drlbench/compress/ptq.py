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
squash stay in float.
"""

from __future__ import annotations

import os
import tempfile

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


def ptdq(model_bytes: bytes) -> bytes:
    return _run_in_tmp(
        lambda src, dst: quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=False,
                                          op_types_to_quantize=list(PTDQ_CONFIG["ops"])),
        model_bytes,
    )


def ptsq(model_bytes: bytes, calibration_obs: np.ndarray, overrides: dict | None = None) -> bytes:
    """Static QDQ U8S8. `overrides`: ORT TensorQuantOverrides (QAT passes its learned scales)."""
    return _run_in_tmp(
        lambda src, dst: quantize_static(
            src, dst, _ObsReader(calibration_obs), quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=False,
            op_types_to_quantize=list(PTSQ_CONFIG["ops"]), calibrate_method=CalibrationMethod.MinMax,
            extra_options={"TensorQuantOverrides": overrides} if overrides else {},
        ),
        model_bytes,
    )
