"""ONNX export of a frozen `FakeQuantActor` (`export_lowbit_onnx`) and the ONNX Runtime kernel it runs on
(`kernel_for`).

Where ONNX Runtime has a kernel for the weight width, the Linears become `MatMulNBits` nodes
(com.microsoft) holding the packed weights: 4 bits with fp32 compute (the default, accuracy_level=0), and
2, 4 and 8 bits with int8 compute (accuracy_level=4; 2 and 8 bits with fp32 compute took 5–8x the 4-bit
time on a 256x348 layer here, a fallback path, so they count as no kernel). Everywhere else (3 bits
always) the graph is the fake-quantized network in fp32: the build record says `simulated: True`, and the
variant's size is the packed bytes (`pack`), not the fp32 file. Activation and input quantization are
float ops in either graph (Div, Round, Clip…): exact, not fast.
Measured at batch 1, one thread, this x86 CPU (348-256-256-17 and 11-400-300-3 actors): 4-bit with fp32
compute took 1.4–1.6x the fp32 graph's time, int8 compute 0.85–1.0x: the gain is memory, not speed.
Int8 compute also quantizes each MatMul input per block at run time, which the fake-quant model does not
(on td3-hopper's raw observations that alone moved actions by up to 1.2, of a span of 2), so
accuracy_level=4 graphs are compared with the fake-quant model and the difference recorded, not checked.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from drlbench.compress.lowbit.fakequant import FakeQuantActor
from drlbench.compress.lowbit.pack import pack_bits
from drlbench.compress.lowbit.scheme import LowBitScheme
from drlbench.compress.onnx_export import export_onnx

# ONNX Runtime 1.32 CPU MatMulNBits: bits -> accuracy levels with a real kernel (see the module docstring)
MATMULNBITS_KERNELS = {4: (0, 4), 2: (4,), 8: (4,)}
# Blocks tried per width (powers of 2 >= 16). Measured on this CPU (256x348 layer, batch 1, int8 compute):
# 2-bit runs ~15 µs at blocks 32–128 but ~200 µs at 16 and 256 (and refuses blocks above 256).
MATMULNBITS_BLOCKS = {2: (32, 64, 128), 4: (16, 32, 64, 128, 256), 8: (16, 32, 64, 128, 256)}


def _block_size(out: int, inp: int, bits: int) -> int:
    """The MatMulNBits block (scales are per channel, repeated per block) with the fewest bytes: padding
    K up to whole blocks against one fp32 scale per block."""
    return min(MATMULNBITS_BLOCKS[bits], key=lambda b: (out * math.ceil(inp / b) * (b * bits // 8 + 4), b))


def _matmulnbits_tensors(q: np.ndarray, scale: np.ndarray, bits: int, block: int):
    out, inp = q.shape
    k_blocks = math.ceil(inp / block)
    u = np.zeros((out, k_blocks * block), dtype=np.uint16)  # padding: code 0, never read
    u[:, :inp] = q.astype(np.int16) + 2 ** (bits - 1)  # MatMulNBits' default zero point is 2^(bits-1)
    packed = np.frombuffer(b"".join(pack_bits(row, bits) for row in u.reshape(out * k_blocks, block)), np.uint8)
    return packed.reshape(out, k_blocks, block * bits // 8), np.repeat(scale[:, None], k_blocks, axis=1)


def kernel_for(scheme: LowBitScheme, accuracy_level: int = 0) -> str | None:
    """The ONNX Runtime kernel the scheme's Linears run on, or None (simulated)."""
    if scheme.is_fp16:
        return "fp16 initializers cast to fp32 at load (fp32 compute)"
    if accuracy_level in MATMULNBITS_KERNELS.get(scheme.weight_bits, ()):
        return f"MatMulNBits (com.microsoft) bits={scheme.weight_bits} accuracy_level={accuracy_level}"
    return None


def export_lowbit_onnx(fq: FakeQuantActor, accuracy_level: int = 0) -> tuple[bytes, dict]:
    """(ONNX bytes, info). The frozen network exported as fp32, then each Gemm's weight replaced by
    MatMulNBits packed weights (where `kernel_for` has a kernel) or by fp16 initializers + Cast (fp16);
    otherwise left as fp32 Gemms holding the dequantized weights (simulated)."""
    frozen = fq if fq.frozen else fq.freeze()
    with torch.no_grad():
        model = onnx.load_from_string(export_onnx(frozen, frozen.obs_dim))
    kernel = kernel_for(frozen.scheme, accuracy_level)
    info = {"simulated": kernel is None, "kernel": kernel or "none: fake-quantized network in fp32"}
    if kernel is None:
        return model.SerializeToString(), info
    g = model.graph
    gemms = [n for n in g.node if n.op_type == "Gemm"]
    layers = frozen.linears()
    if len(gemms) != len(layers):
        raise RuntimeError(f"expected {len(layers)} Gemm nodes in the exported actor, found {len(gemms)}")
    inits = {t.name: t for t in g.initializer}
    blocks = []
    for node, layer, (q, scale) in zip(gemms, layers, frozen.weight_codes()):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        w_name = node.input[1]
        if attrs.get("transB") != 1 or w_name not in inits or tuple(inits[w_name].dims) != tuple(layer.weight.shape):
            raise RuntimeError(f"unexpected Gemm {node.name}: {attrs}, weight {w_name}")
        g.initializer.remove(inits[w_name])
        if frozen.scheme.is_fp16:
            g.initializer.append(numpy_helper.from_array(q.numpy().astype(np.float16), w_name + "_fp16"))
            idx = list(g.node).index(node)
            g.node.insert(idx, helper.make_node("Cast", [w_name + "_fp16"], [w_name], to=onnx.TensorProto.FLOAT))
            continue
        out, inp = q.shape
        bits = frozen.scheme.weight_bits
        block = _block_size(out, inp, bits)
        blocks.append(block)
        b, s = _matmulnbits_tensors(q.numpy(), scale.numpy(), bits, block)
        g.initializer.extend([numpy_helper.from_array(b, w_name + "_q"),
                              numpy_helper.from_array(s, w_name + "_scales")])
        new = helper.make_node("MatMulNBits", [node.input[0], w_name + "_q", w_name + "_scales", "", "",
                                               node.input[2]], list(node.output), name=node.name + "_nbits",
                               domain="com.microsoft", K=inp, N=out, bits=bits, block_size=block,
                               accuracy_level=accuracy_level)
        idx = list(g.node).index(node)
        g.node.remove(node)
        g.node.insert(idx, new)
    if blocks:
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
        info["block_sizes"] = blocks
    data = model.SerializeToString()
    onnx.checker.check_model(onnx.load_from_string(data))
    return data, info
