"""A low-bit variant built: calibrated, optionally fine-tuned (QAT), exported and checked (`build_lowbit`).

QAT (`finetune`) is compress/qat.py's DAgger distillation (`qat.distill`: same rounds, seeds, data and
target) run on a FakeQuantActor, whose quantizer ranges are re-observed at the start of every round.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from drlbench.actor import Actor
from drlbench.compress.lowbit.export import export_lowbit_onnx
from drlbench.compress.lowbit.fakequant import FakeQuantActor
from drlbench.compress.lowbit.pack import pack
from drlbench.compress.lowbit.scheme import LowBitScheme, parse_scheme
from drlbench.compress.qat import QATConfig, distill, distill_target
from drlbench.errors import DrlbenchError


def distillation_mse(student: FakeQuantActor, teacher: Actor, states) -> float:
    obs = torch.as_tensor(np.asarray(states, dtype=np.float32))
    with torch.no_grad():
        return float(nn.functional.mse_loss(distill_target(student, obs), distill_target(teacher.eval(), obs)))


def finetune(fq: FakeQuantActor, teacher: Actor, env_id: str, seed_states, cfg: QATConfig | None = None
             ) -> tuple[FakeQuantActor, dict]:
    """QAT by DAgger distillation (`qat.distill`). The quantizer ranges are re-observed (min/max over the
    states so far, current weights) at the start of each round and held fixed through it. Returns
    (calibrated, not frozen, student; budget record)."""
    if fq.frozen:
        raise DrlbenchError("finetune needs a trainable FakeQuantActor, not a frozen one")
    cfg = cfg or QATConfig()
    student = copy.deepcopy(fq)
    losses, n_states = distill(student, teacher, env_id, seed_states, cfg,
                               before_round=lambda r, states: student.calibrate(states))
    budget = {k: v for k, v in asdict(cfg).items() if k != "observer_momentum"}  # ranges: min/max per round
    return student.eval(), budget | {"states": n_states, "final_loss_per_round": losses}


@dataclass
class LowBitBuild:
    onnx: bytes  # what ONNX Runtime runs (MatMulNBits graph, or the simulated fp32 graph)
    module: FakeQuantActor  # frozen: the reference the ONNX graph is checked against
    packed: bytes  # the deployable payload (`pack`)
    build: dict  # the record: scheme, simulated, kernel, sizes, agreement, budget

    @property
    def artifact_bytes(self) -> int:
        """The size the variant is charged: the packed payload when simulated (its fp32 graph is not what
        would be deployed), else the ONNX file ORT runs."""
        return len(self.packed) if self.build["simulated"] else len(self.onnx)


def build_lowbit(actor: Actor, scheme: LowBitScheme | str, calibration_states, *, env_id: str | None = None,
                 qat_config: QATConfig | None = None, accuracy_level: int = 0) -> LowBitBuild:
    """Calibrate (and, with env_id and qat_config, fine-tune) the actor under `scheme`, then export and
    check the ONNX graph against the frozen fake-quant model on the calibration states."""
    from drlbench.runtimes import OrtRunner

    s = parse_scheme(scheme)
    states = np.asarray(calibration_states, dtype=np.float32)
    fq = FakeQuantActor(actor, s, states)
    budget = None
    if qat_config is not None and not s.is_fp16:  # fp16 loses too little to fine-tune
        if env_id is None:
            raise DrlbenchError("fine-tuning needs the env id (DAgger rolls the student out)")
        fq, budget = finetune(fq, actor, env_id, states, qat_config)
    frozen = fq.freeze()
    data, info = export_lowbit_onnx(frozen, accuracy_level)
    check = states[:512]
    diff = np.abs(OrtRunner(data, actor.obs_dim).run(check) - frozen.act(check))
    # With fp32 compute the graph computes what the fake-quant model does, up to float summation order,
    # which can move a value across an activation rounding boundary on a few states: the median must be
    # float noise. With int8 compute (accuracy_level 4) the kernel also quantizes its input per block
    # (dynamic, symmetric), which the fake-quant model does not: only recorded.
    exact = info["simulated"] or s.is_fp16 or accuracy_level == 0
    span = float((actor.action_high - actor.action_low).max())
    if exact and float(np.median(diff)) > 1e-5 * span + 1e-6:
        raise RuntimeError(f"{s.name}: the ONNX graph differs from the fake-quant model (median |Δaction| "
                           f"{float(np.median(diff)):.3g}); the export or packing is wrong")
    packed = pack(frozen)
    build = {"method": "low-bit QAT fine-tuning by DAgger distillation" if budget else
             "low-bit post-training quantization (calibration only)",
             "scheme": s.describe(), **info, "packed_bytes": len(packed), "onnx_bytes": len(data),
             "calibration_states": int(len(states)),
             "onnx_vs_fakequant_max_abs": float(diff.max()),
             "onnx_vs_fakequant_p99_abs": float(np.quantile(diff, 0.99))}
    if budget:
        build["budget"] = budget
    return LowBitBuild(data, frozen, packed, build)
