"""The low-bit scheme (`LowBitScheme`) a variant name stands for, and the names' grammar.

- weights: symmetric, per output channel (one scale per row of a Linear weight), signed b-bit integers,
  b ∈ {2, 3, 4, 8}: q = clamp(round(w / S_c), -(2^(b-1) - 1), 2^(b-1) - 1), S_c = max|w_c| / (2^(b-1) - 1),
  zero point 0 (2 bits: the three levels {-1, 0, 1}). Symmetric because a zero point in the weights
  adds a cross term (zp_w · Σx) to every GEMM output; without it the integer kernel is a plain
  multiply-accumulate plus one rescale per channel. ONNX Runtime's `MatMulNBits` (with its default
  zero point 2^(b-1), the offset used for packing) and XNNPACK's 4-bit weights (qc4w) use this
  symmetric per-channel form. Per channel, because one outlying row must not coarsen the grid of the
  others, which a per-tensor scale does at 2–4 bits. `fp16` stores the weights as float16 instead.
- activations: per tensor, asymmetric, a ∈ {8, 6, 4} bits or float, at the input of every Linear after
  the first (the output of the previous ReLU/tanh), r = S (q - zp), q ∈ [0, 2^a - 1], the range widened to
  hold 0 (as ONNX's convention: ReLU zeros stay exact) and observed (min/max) on calibration states.
  The head's output stays float (an integer GEMM hands back its int32 accumulator, rescaled).
- input: the *normalized* observation (the first Linear's input) at k ∈ 2…8 bits, per feature (default)
  or per tensor, or float. r = lo + S q with q ∈ [0, 2^k - 1] over the observed [lo, hi]: no zero is
  forced into the range (an observation need not straddle 0; a Hopper's height sits in [0.7, 1.7]), and the
  per-feature offset and scale fold into the first layer's bias and weight columns if it ever runs on
  integers.

Variant names (`parse_scheme`): `qat_w<b>[a<a>][i<k>[t]]` or `fp16`.
    qat_w4        4-bit weights, 8-bit activations, float input (a defaults to 8, the input to float)
    qat_w2a8      2-bit weights, 8-bit activations
    qat_w3a6      3-bit weights, 6-bit activations
    qat_w4af      4-bit weights, float activations (weights only)
    qat_w4a8i6    ... and the normalized observation at 6 bits per feature; `i6t`: per tensor
    fp16          fp16 weights, float activations and input (post-training: no fine-tuning)
The canonical name spells every part but a float input (`qat_w4` -> `qat_w4a8`).
`input_i<k>[t]` (input_only.py: input_i8, input_i6, input_i4 …) applies the input form above alone, post-training,
to the fp32 network: the input's sensitivity apart from the weights'.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from drlbench.errors import DrlbenchError, unknown

WEIGHT_BITS = (2, 3, 4, 8)
ACT_BITS = (4, 6, 8)
INPUT_BITS = tuple(range(2, 9))
DEFAULT_ACT_BITS = 8
FP16 = 16  # LowBitScheme.weight_bits of the fp16 scheme
NAME_FORMS = ["qat_w<b>[a<a>][i<k>[t]] with b in 2,3,4,8; a in 4,6,8 or f = float (default 8); "
              "k in 2..8 = input bits, per feature (t: per tensor; default float input)",
              "e.g. qat_w4, qat_w2a8, qat_w3a6, qat_w4af, qat_w4a8i6, qat_w3a8i4t", "fp16"]
_NAME_RE = re.compile(r"^qat_w(\d+)(?:a(\d+|f))?(?:i(\d+)(t)?)?$")


@dataclass(frozen=True)
class LowBitScheme:
    weight_bits: int  # 2, 3, 4, 8, or FP16
    act_bits: int | None = DEFAULT_ACT_BITS  # None: float activations
    input_bits: int | None = None  # None: float input
    input_per_feature: bool = True

    def __post_init__(self):
        if self.weight_bits not in (*WEIGHT_BITS, FP16):
            raise DrlbenchError(f"weight bits must be one of {', '.join(map(str, WEIGHT_BITS))} (or {FP16} for "
                                f"fp16), got {self.weight_bits}")
        if self.act_bits is not None and self.act_bits not in ACT_BITS:
            raise DrlbenchError(f"activation bits must be one of {', '.join(map(str, ACT_BITS))} or None, "
                                f"got {self.act_bits}")
        if self.input_bits is not None and self.input_bits not in INPUT_BITS:
            raise DrlbenchError(f"input bits must be in 2 … 8 or None, got {self.input_bits}")
        if self.weight_bits == FP16 and (self.act_bits is not None or self.input_bits is not None):
            raise DrlbenchError("the fp16 scheme keeps activations and input in float")
        if self.input_bits is None:  # a float input has no granularity: one scheme, one name
            object.__setattr__(self, "input_per_feature", True)

    @property
    def name(self) -> str:
        if self.weight_bits == FP16:
            return "fp16"
        a = "f" if self.act_bits is None else str(self.act_bits)
        i = "" if self.input_bits is None else f"i{self.input_bits}" + ("" if self.input_per_feature else "t")
        return f"qat_w{self.weight_bits}a{a}{i}"

    @property
    def is_fp16(self) -> bool:
        return self.weight_bits == FP16

    def describe(self) -> dict:
        return asdict(self) | {"name": self.name, "weights": "fp16" if self.is_fp16 else
                               "symmetric per-output-channel signed int, zero point 0"}


def parse_scheme(name: str | LowBitScheme) -> LowBitScheme:
    """The scheme a low-bit variant name stands for (grammar in the module docstring); a scheme is
    returned as it is."""
    if isinstance(name, LowBitScheme):
        return name
    canon = str(name).strip().lower().replace("-", "_")
    if canon == "fp16":
        return LowBitScheme(FP16, None, None)
    m = _NAME_RE.match(canon)
    if m:
        w, a, i, per_tensor = m.groups()
        a_bits = DEFAULT_ACT_BITS if a is None else None if a == "f" else int(a)
        if int(w) in WEIGHT_BITS and (a_bits is None or a_bits in ACT_BITS) and (i is None or int(i) in INPUT_BITS):
            return LowBitScheme(int(w), a_bits, None if i is None else int(i), per_tensor is None)
    raise unknown("low-bit variant", name, NAME_FORMS)


def is_lowbit_name(name: str) -> bool:
    try:
        parse_scheme(name)
    except DrlbenchError:
        return False
    return True
