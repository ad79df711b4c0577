"""The deployable payload of a low-bit actor (`pack`), its exact size (`packed_size`, a formula) and
the way back (`unpack`).

Layout: normalization mean and variance and the action bounds in fp32, the input quantizer (lo, scale)
in fp32, per Linear the b-bit codes packed densely (row-major, LSB first, stored as q + 2^(b-1)),
per-channel fp32 scales and fp32 biases, per activation quantizer an fp32 scale and a uint8 zero point.
fp16 stores each weight matrix as float16 instead of codes and scales. The architecture and the scheme
are not in the payload (they are the actor's config and the variant name); `unpack` needs both.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from drlbench.actor import Actor
from drlbench.compress.lowbit.fakequant import FakeQuantActor
from drlbench.compress.lowbit.scheme import FP16, LowBitScheme, parse_scheme
from drlbench.errors import DrlbenchError


def pack_bits(u: np.ndarray, bits: int) -> bytes:
    """Unsigned values < 2^bits, densely: value j in bits [j·bits, (j+1)·bits), LSB first (4-bit: low
    nibble first, MatMulNBits' order)."""
    planes = (u.astype(np.uint16).ravel()[:, None] >> np.arange(bits)) & 1
    return np.packbits(planes.astype(np.uint8).ravel(), bitorder="little").tobytes()


def _unpack_bits(data: bytes, bits: int, n: int) -> np.ndarray:
    planes = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")[: n * bits].reshape(n, bits)
    return (planes.astype(np.uint16) << np.arange(bits)).sum(axis=1)


def _layer_shapes(config: dict) -> list[tuple[int, int]]:
    widths = [config["obs_dim"], *config["hidden"], config["act_dim"]]
    return list(zip(widths[1:], widths[:-1]))  # (out, in)


def _weight_bytes(out: int, inp: int, bits: int) -> int:
    return 2 * out * inp if bits == FP16 else math.ceil(out * inp * bits / 8)


def packed_size(actor: Actor | FakeQuantActor, scheme: LowBitScheme | str | None = None) -> int:
    """Bytes of `pack(actor, scheme)`, from the formula (no packing done)."""
    if isinstance(actor, FakeQuantActor):
        scheme = scheme or actor.scheme
        actor = actor.actor
    if scheme is None:
        raise DrlbenchError("packed_size needs a scheme (or a FakeQuantActor)")
    s = parse_scheme(scheme)
    shapes = _layer_shapes(actor.config())
    n = 8 * actor.obs_dim + 8 * actor.act_dim  # mean, var, action low, high: fp32
    if s.input_bits is not None:
        n += 8 * (actor.obs_dim if s.input_per_feature else 1)  # lo, scale: fp32
    for out, inp in shapes:
        n += _weight_bytes(out, inp, s.weight_bits) + 4 * out  # codes, bias fp32
        n += 0 if s.is_fp16 else 4 * out  # per-channel scales fp32
    if s.act_bits is not None:
        n += 5 * (len(shapes) - 1)  # scale fp32 + zero point uint8
    return n


def _f32(t) -> bytes:
    return np.asarray(t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t, dtype="<f4").tobytes()


def pack(actor: Actor | FakeQuantActor, scheme: LowBitScheme | str | None = None) -> bytes:
    """The packed artifact (layout in the module docstring). A plain Actor takes a scheme without
    activation/input quantizers (those need calibration: pass a calibrated FakeQuantActor)."""
    if isinstance(actor, FakeQuantActor):
        if scheme is not None and parse_scheme(scheme) != actor.scheme:
            raise DrlbenchError(f"scheme {scheme} differs from the FakeQuantActor's {actor.scheme.name}")
        fq = actor
    else:
        if scheme is None:
            raise DrlbenchError("pack(actor, scheme): a plain Actor needs a scheme")
        fq = FakeQuantActor(actor, scheme)
    if any(q.mode != "on" for q in fq.quantizers()):
        raise DrlbenchError(f"scheme {fq.scheme.name} quantizes activations or the input: pack a calibrated "
                            f"FakeQuantActor (calibrate(states) first)")
    a, bits = fq.actor, fq.scheme.weight_bits
    parts = [_f32(a.obs_mean), _f32(a.obs_var), _f32(a.action_low), _f32(a.action_high)]
    if fq.input_q is not None:
        parts += [_f32(fq.input_q.offset), _f32(fq.input_q.scale)]
    for layer, (q, scale) in zip(fq.linears(), fq.weight_codes()):
        if scale is None:  # fp16
            parts.append(q.numpy().astype("<f2").tobytes())
        else:
            parts += [pack_bits(q.numpy().astype(np.int16) + 2 ** (bits - 1), bits), _f32(scale)]
        parts.append(_f32(layer.bias))
    for aq in fq.act_q:
        parts += [_f32(aq.scale), aq.offset.numpy().astype(np.uint8).tobytes()]
    return b"".join(parts)


def unpack(data: bytes, config: dict, scheme: LowBitScheme | str) -> FakeQuantActor:
    """The frozen FakeQuantActor a packed payload holds; `config` is the actor's `config()`."""
    s = parse_scheme(scheme)
    fq = FakeQuantActor(Actor(**config), s)
    if len(data) != packed_size(fq.actor, s):
        raise DrlbenchError(f"packed payload has {len(data)} bytes; {s.name} on this architecture needs "
                            f"{packed_size(fq.actor, s)}")
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        pos += n
        return data[pos - n:pos]

    def f32(n: int) -> torch.Tensor:
        return torch.from_numpy(np.frombuffer(take(4 * n), "<f4").astype(np.float32))

    a, d, k = fq.actor, fq.obs_dim, fq.act_dim
    with torch.no_grad():
        a.obs_mean.copy_(f32(d).double()), a.obs_var.copy_(f32(d).double())
        a.action_low.copy_(f32(k)), a.action_high.copy_(f32(k))
        if fq.input_q is not None:
            n = d if s.input_per_feature else 1
            fq.input_q.offset.copy_(f32(n)), fq.input_q.scale.copy_(f32(n))
            fq.input_q.mode = "on"
        codes = []
        for layer in fq.linears():
            out, inp = layer.weight.shape
            if s.is_fp16:
                codes.append((torch.from_numpy(np.frombuffer(take(2 * out * inp), "<f2").reshape(out, inp).copy()),
                              None))
            else:
                u = _unpack_bits(take(_weight_bytes(out, inp, s.weight_bits)), s.weight_bits, out * inp)
                q = torch.from_numpy((u.astype(np.int16) - 2 ** (s.weight_bits - 1)).reshape(out, inp).astype(np.int8))
                codes.append((q, f32(out)))
            layer.bias.copy_(f32(out))
        for aq in fq.act_q:
            aq.scale.copy_(f32(1))
            aq.offset.copy_(torch.tensor([float(np.frombuffer(take(1), np.uint8)[0])]))
            aq.mode = "on"
    fq.set_codes(codes)
    return fq.eval()
