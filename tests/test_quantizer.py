"""Properties of the affine quantizer r = S (q + Z), and agreement with ONNX Runtime."""

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from onnx import TensorProto, helper

from drlbench.errors import DrlbenchError
from drlbench.quantizer import AffineQuantizer

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32)
dtypes = st.sampled_from(["int8", "uint8"])


@st.composite
def quantizers(draw):
    lo = draw(finite)
    hi = draw(st.floats(lo, 1e4, allow_nan=False, width=32))
    return AffineQuantizer.from_range(lo, hi, draw(dtypes))


@given(quantizers(), st.data())
def test_round_trip_error_at_most_half_a_step_inside_the_range(q, data):
    lo, hi = q.range
    r = data.draw(arrays(np.float64, 32, elements=st.floats(lo, hi, allow_nan=False)))
    err = np.abs(q.dequantize(q.quantize(r)).astype(np.float64) - r)
    # S/2 from rounding, plus float32 output rounding of the reconstructed value
    assert (err <= q.scale / 2 + np.abs(r) * 2**-23 + 1e-12).all()


@given(quantizers(), st.floats(1.0, 1e6))
def test_values_outside_the_range_saturate(q, beyond):
    lo, hi = q.range
    below, above = lo - beyond * q.scale, hi + beyond * q.scale
    assert q.quantize(below) == q.qmin and q.quantize(above) == q.qmax
    assert q.dequantize(q.quantize(above)) == pytest.approx(hi, rel=1e-6, abs=1e-6)


@given(quantizers())
def test_zero_is_exact(q):
    assert q.dequantize(q.quantize(0.0)) == 0.0


@given(quantizers(), arrays(np.float64, 64, elements=finite))
def test_quantize_is_monotonic(q, r):
    order = np.argsort(r, kind="stable")
    assert (np.diff(q.quantize(r[order]).astype(int)) >= 0).all()


def _ort_qdq(x: np.ndarray, scale: float, zero_point: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    qt = TensorProto.INT8 if dtype == "int8" else TensorProto.UINT8
    npq = np.int8 if dtype == "int8" else np.uint8
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["r"])],
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
        [helper.make_tensor_value_info("q", qt, [None]), helper.make_tensor_value_info("r", TensorProto.FLOAT, [None])],
        [helper.make_tensor("s", TensorProto.FLOAT, [], [scale]), helper.make_tensor("z", qt, [], [npq(zero_point)])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return tuple(sess.run(None, {"x": x}))


@settings(max_examples=60, deadline=None)
@given(quantizers(), arrays(np.float32, 64, elements=finite))
def test_agrees_with_onnxruntime_quantize_dequantize_linear(q, x):
    # ORT holds the scale in float32: a range so narrow that its scale is not a normal float32 (it
    # underflows to 0 or a subnormal) has no ORT counterpart to compare with
    assume(np.float32(q.scale) >= np.finfo(np.float32).tiny)
    q32 = AffineQuantizer(float(np.float32(q.scale)), q.Z, q.dtype)
    ort_q, ort_r = _ort_qdq(x, q32.scale, q32.onnx_zero_point, q.dtype)
    np.testing.assert_array_equal(q32.quantize(x), ort_q)
    np.testing.assert_allclose(q32.dequantize(ort_q), ort_r, rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_scale_is_refused(scale):
    with pytest.raises(DrlbenchError, match="scale"):
        AffineQuantizer(scale, 0)


def test_bad_range_is_refused():
    with pytest.raises(DrlbenchError, match="rmin <= rmax"):
        AffineQuantizer.from_range(1.0, -1.0)
