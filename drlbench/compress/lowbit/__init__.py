"""Low-bit quantization of an actor: 2/3/4/8-bit weights, 4/6/8-bit activations, a quantized input, fp16.

Beyond the paper's int8 grid. Kresse & Lampert (2025) report 2–3-bit QAT policies matching fp32 on
MuJoCo when the input precision is chosen with care, so the input is a knob of its own here.

One concern a module:
    scheme     `LowBitScheme`, the variant names (`qat_w<b>[a<a>][i<k>[t]]`, `fp16`) and their grammar
    quant      the weight, activation and input quantizers (in float, straight-through gradients)
    fakequant  `FakeQuantActor`: the actor under a scheme, for QAT, error measurement and export
    pack       the deployable payload: `pack`, `packed_size` (exact, a formula), `unpack`
    export     `export_lowbit_onnx`: MatMulNBits where ONNX Runtime has a kernel (`kernel_for`), else a
               simulated fp32 graph
    build      `build_lowbit` → `LowBitBuild`: calibrate, fine-tune (`finetune`, qat.distill), export, check
    input_only `input_i<k>[t]`: the observation alone quantized, fp32 network (`build_input_only`)
"""

from drlbench.compress.lowbit.build import LowBitBuild, build_lowbit, distillation_mse, finetune
from drlbench.compress.lowbit.export import MATMULNBITS_BLOCKS, MATMULNBITS_KERNELS, export_lowbit_onnx, kernel_for
from drlbench.compress.lowbit.fakequant import FakeQuantActor
from drlbench.compress.lowbit.input_only import (
    INPUT_ONLY_FORMS,
    InputQuantActor,
    build_input_only,
    is_input_name,
    parse_input_name,
)
from drlbench.compress.lowbit.pack import pack, packed_size, unpack
from drlbench.compress.lowbit.quant import ActQuant, InputQuant, dequantize_weight, quantize_weight, weight_qmax
from drlbench.compress.lowbit.scheme import (
    ACT_BITS,
    DEFAULT_ACT_BITS,
    FP16,
    INPUT_BITS,
    NAME_FORMS,
    WEIGHT_BITS,
    LowBitScheme,
    is_lowbit_name,
    parse_scheme,
)

__all__ = [
    "ACT_BITS", "DEFAULT_ACT_BITS", "FP16", "INPUT_BITS", "INPUT_ONLY_FORMS", "MATMULNBITS_BLOCKS",
    "MATMULNBITS_KERNELS", "NAME_FORMS", "WEIGHT_BITS", "ActQuant", "FakeQuantActor", "InputQuant", "InputQuantActor",
    "LowBitBuild", "LowBitScheme", "build_input_only", "build_lowbit", "dequantize_weight", "distillation_mse",
    "export_lowbit_onnx", "finetune", "is_input_name", "is_lowbit_name", "kernel_for", "pack", "packed_size",
    "parse_input_name", "parse_scheme", "quantize_weight", "unpack", "weight_qmax",
]
