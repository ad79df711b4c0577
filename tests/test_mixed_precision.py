"""Mixed precision (`*_mixed` variants): the post-training int8 recipe with the first layer left in fp32."""

import numpy as np
import onnx
import pytest

from drlbench import gates
from drlbench.compress import onnx_export, ptq
from drlbench.errors import DrlbenchError
from drlbench.runtimes import OrtRunner
from drlbench.variants import MIXED_VARIANTS, VARIANTS, parse_variant, select
from tests.test_equalize import raw_actor, raw_states


@pytest.mark.parametrize("name", MIXED_VARIANTS)
def test_mixed_variant_keeps_only_the_first_layer_in_fp32(builder, name):
    v, actor = builder.get(name), builder.actor
    weights = ptq.weight_types(v.onnx)
    first = actor.first_layer.weight.shape
    assert weights["FLOAT"] in ([tuple(first)], [tuple(first)[::-1]])  # ONNX may store it transposed
    assert len(weights["INT8"]) == len(actor.hidden)  # every other Linear is int8
    assert v.build["kept_in_float"] == ["/body/body.0/Gemm"]
    assert v.build["float_params"] == actor.first_layer.weight.numel() + actor.first_layer.bias.numel()
    plain = builder.get(name.removesuffix("_mixed"))
    assert plain.artifact_bytes < v.artifact_bytes < builder.get("fp32").artifact_bytes


@pytest.mark.parametrize("method", ["ptdq", "ptsq"])
def test_first_layer_in_fp32_removes_most_int8_error_on_raw_observations(method):
    # HalfCheetah-like raw observations: one per-tensor scale for angles and velocities is what int8 gets wrong
    actor, states = raw_actor(), raw_states()
    fp32 = onnx_export.export_onnx(actor, 17)
    keep = [ptq.first_gemm(fp32)]
    plain = ptq.ptdq(fp32) if method == "ptdq" else ptq.ptsq(fp32, states)
    mixed = ptq.ptdq(fp32, keep) if method == "ptdq" else ptq.ptsq(fp32, states, keep_float=keep)
    errors = [np.abs(OrtRunner(m, 17, 1).run(states) - actor.act(states)).mean() for m in (plain, mixed)]
    assert errors[1] < errors[0] / 2, f"mean |action error| int8 {errors[0]:.4f}, first layer in fp32 {errors[1]:.4f}"


def test_mixed_variants_are_named_off_the_paper_grid_and_run_on_onnx_runtime_only(builder):
    assert [parse_variant(v).family for v in MIXED_VARIANTS] == ["quantization"] * 2
    assert parse_variant("PTDQ-MIXED").name == "ptdq_mixed" and not set(MIXED_VARIANTS) & set(VARIANTS)
    assert select(["ptsq*"], list(VARIANTS), "variant") == ["ptsq"]  # a glob keeps meaning the paper's ptsq
    assert parse_variant("ptsq_mixed").runtimes == builder.get("ptsq_mixed").runtimes == ("onnxruntime",)
    with pytest.raises(DrlbenchError, match="no 'litert' runtime; accepted: onnxruntime"):
        builder.get("ptdq_mixed").runner("litert")


def test_a_graph_without_gemm_has_no_first_layer_to_keep():
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g",
                                   [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])])
    with pytest.raises(DrlbenchError, match="no Gemm node"):
        ptq.first_gemm(onnx.helper.make_model(graph).SerializeToString())


@pytest.mark.parametrize("name, keeps", [("ptdq_mixed", True), ("ptsq_mixed", True), ("ptdq", False), ("fp32", False)])
def test_the_artifact_gate_holds_a_mixed_file_to_an_fp32_first_layer_and_int8_elsewhere(builder, name, keeps):
    # the plugin's artifact check for *_mixed: fully int8 (first layer quantized too) or all fp32 fail it
    a, v = builder.actor, builder.get(name)
    verdict = gates.mixed_size_gate(ptq.weight_types(v.onnx), tuple(a.first_layer.weight.shape), len(a.hidden) + 1,
                                    v.artifact_bytes, builder.get("fp32").artifact_bytes)
    assert verdict.passed is keeps, verdict.message
