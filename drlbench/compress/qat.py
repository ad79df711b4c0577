"""Quantization-aware fine-tuning (QAT) of an actor, ending as an int8 ONNX model run by ONNX Runtime.

The paper retrained each agent from scratch under fake quantization. drlbench *fine-tunes* from the
trained fp32 actor instead, by policy distillation on the states the quantized student itself
visits (DAgger, Ross et al. 2011): each round rolls the student out, adds the visited states to a
dataset, and trains the student to reproduce the teacher's actions there. No reward, no critic.

Fake quantization mirrors exactly what ONNX Runtime's static QDQ int8 model computes:
- weights: per-tensor symmetric int8 in [-127, 127], scale max|w| / 127 (ORT's QInt8 rule);
- activations: per-tensor asymmetric uint8 at every Linear input and output, ranges tracked by an
  EMA min/max observer and frozen for the second half of training;
- gradients pass straight through the rounding (`torch.fake_quantize_per_tensor_affine`, a core
  torch op; the deprecated `torch.ao.quantization` workflow is not used).
Export: the fine-tuned float weights go through ORT `quantize_static` (QDQ, U8S8) with every
activation scale/zero point overridden by the learned ones (`TensorQuantOverrides`), so the int8
file holds the QAT parameters and runs on the same kernels as PTSQ.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import onnx
import torch
from torch import nn

from drlbench.actor import Actor
from drlbench.compress.onnx_export import export_onnx
from drlbench.errors import DrlbenchError
from drlbench.quantizer import AffineQuantizer
from drlbench.tasks import DISJOINT_SEED_OFFSET, make_env


@dataclass
class QATConfig:
    rounds: int = 4  # DAgger rounds (round 0 trains on the fp32 calibration states)
    steps_per_round: int = 1000  # env steps the student drives per later round
    grad_steps_per_round: int = 250
    batch_size: int = 256
    lr: float = 1e-4
    observer_momentum: float = 0.05
    seed: int = DISJOINT_SEED_OFFSET + 2  # rollouts never share seeds with evaluation

    def __post_init__(self):
        # round r rolls out on seeds seed + 1000 r + episode: all of them must lie past the evaluation seeds
        if self.seed < DISJOINT_SEED_OFFSET:
            raise DrlbenchError(f"QAT seed must be >= {DISJOINT_SEED_OFFSET:,} (seeds below are evaluation seeds), "
                                f"got {self.seed}")


class _RangeObserver(nn.Module):
    """EMA min/max of a tensor, fake-quantized to uint8 on the way through."""

    def __init__(self, momentum: float):
        super().__init__()
        self.momentum = momentum
        self.frozen = False
        self.register_buffer("lo", torch.tensor(float("nan")))
        self.register_buffer("hi", torch.tensor(float("nan")))

    def quantizer(self) -> AffineQuantizer:
        return AffineQuantizer.from_range(float(self.lo), float(self.hi), "uint8")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not self.frozen:  # rollouts (eval mode) see batch-1 ranges: never track them
            with torch.no_grad():
                lo, hi = x.min(), x.max()
                if torch.isnan(self.lo):
                    self.lo.copy_(lo), self.hi.copy_(hi)
                else:
                    self.lo.lerp_(lo, self.momentum), self.hi.lerp_(hi, self.momentum)
        q = self.quantizer()
        return torch.fake_quantize_per_tensor_affine(x, q.scale, q.onnx_zero_point, 0, 255)


class _QATLinear(nn.Module):
    """Linear with fake-quantized input, weight and output.

    With a ReLU after it, the ReLU moves inside and the output is observed after it: ORT's static
    quantizer folds a ReLU into the following QuantizeLinear (its range starts at 0), so that is
    the tensor the int8 graph quantizes. A tanh stays outside, in float, as in the int8 graph.
    """

    def __init__(self, linear: nn.Linear, momentum: float, relu: bool = False):
        super().__init__()
        self.linear = linear
        self.relu = relu
        self.obs_in = _RangeObserver(momentum)
        self.obs_out = _RangeObserver(momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.linear.weight
        scale = float(w.detach().abs().max().clamp_min(1e-12)) / 127.0
        wq = torch.fake_quantize_per_tensor_affine(w, scale, 0, -127, 127)
        y = nn.functional.linear(self.obs_in(x), wq, self.linear.bias)
        return self.obs_out(torch.relu(y) if self.relu else y)


def _to_qat(actor: Actor, momentum: float) -> Actor:
    student = copy.deepcopy(actor).train()
    modules, layers = list(student.body), []
    for i, m in enumerate(modules):
        if isinstance(m, nn.Linear):
            relu = i + 1 < len(modules) and isinstance(modules[i + 1], nn.ReLU)
            layers.append(_QATLinear(m, momentum, relu))
        elif not isinstance(m, nn.ReLU):  # ReLUs live inside their _QATLinear
            layers.append(m)
    student.body = nn.Sequential(*layers)
    student.head = _QATLinear(student.head, momentum)
    return student


def _qat_layers(student: Actor) -> list[_QATLinear]:
    return [m for m in student.body if isinstance(m, _QATLinear)] + [student.head]


def _from_qat(student: Actor) -> Actor:
    plain = copy.deepcopy(student).eval()
    layers: list[nn.Module] = []
    for m in plain.body:
        layers += ([m.linear, nn.ReLU()] if m.relu else [m.linear]) if isinstance(m, _QATLinear) else [m]
    plain.body = nn.Sequential(*layers)
    plain.head = plain.head.linear
    return plain


def distill_target(actor: Actor, obs: torch.Tensor) -> torch.Tensor:
    """What distillation matches: the action before clipping, or tanh of it for squashed actors."""
    raw = actor.features(obs)
    return torch.tanh(raw) if actor.squash == "tanh" else raw


def _rollout(student: Actor, env_id: str, steps: int, seed: int) -> np.ndarray:
    env = make_env(env_id)
    states, episode = [], 0
    obs, _ = env.reset(seed=seed)
    with torch.no_grad():
        for _ in range(steps):
            states.append(np.asarray(obs, dtype=np.float32))
            action = student(torch.as_tensor(states[-1][None]))[0].numpy()
            obs, _, term, trunc, _ = env.step(action)
            if term or trunc:
                episode += 1
                obs, _ = env.reset(seed=seed + episode)
    env.close()
    return np.stack(states)


def distill(student: nn.Module, teacher: Actor, env_id: str, seed_states: np.ndarray, cfg: QATConfig, *,
            before_round: Callable[[int, np.ndarray], None] | None = None,
            before_step: Callable[[int], None] | None = None) -> tuple[list[float], int]:
    """DAgger distillation of `teacher` into `student` (trained in place; any module with the Actor's
    `features`/`squash`): round 0 on `seed_states`, each later round adds `cfg.steps_per_round` states the
    student visits (seeds cfg.seed + 1000 r + episode), then `cfg.grad_steps_per_round` Adam steps on
    random batches of all states so far. `before_round(r, states)` runs once the round's states are in,
    `before_step(step)` before each gradient step (0 … rounds × grad_steps_per_round - 1): the student's
    quantizers are set there. Returns (the last batch's loss per round, the number of states)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    teacher = teacher.eval()
    student.train()
    opt = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=cfg.lr)
    data = np.asarray(seed_states, dtype=np.float32)  # round 0: states the teacher visits
    losses, step = [], 0
    for r in range(cfg.rounds):
        if r > 0:
            student.eval()
            data = np.concatenate([data, _rollout(student, env_id, cfg.steps_per_round, cfg.seed + 1000 * r)])
            student.train()
        if before_round is not None:
            before_round(r, data)
        obs_all = torch.as_tensor(data)
        with torch.no_grad():
            target_all = distill_target(teacher, obs_all)
        for _ in range(cfg.grad_steps_per_round):
            if before_step is not None:
                before_step(step)
            idx = torch.as_tensor(rng.integers(0, len(data), cfg.batch_size))
            loss = nn.functional.mse_loss(distill_target(student, obs_all[idx]), target_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        losses.append(float(loss.detach()))
    return losses, int(len(data))


def qat_finetune(teacher: Actor, env_id: str, seed_states: np.ndarray, cfg: QATConfig,
                 start: Actor | None = None) -> tuple[Actor, list, dict]:
    """Returns (fine-tuned float actor, per-layer (in, out) uint8 quantizers, budget record). The student
    starts from `start` (default: the teacher), e.g. a pruned copy distilled toward the unpruned actor."""
    student = _to_qat(start if start is not None else teacher, cfg.observer_momentum)
    half = cfg.rounds * cfg.grad_steps_per_round // 2

    def freeze_observers_at_half(step: int) -> None:
        if step == half:
            for layer in _qat_layers(student):
                layer.obs_in.frozen = layer.obs_out.frozen = True

    losses, n_states = distill(student, teacher, env_id, seed_states, cfg, before_step=freeze_observers_at_half)
    quantizers = [(layer.obs_in.quantizer(), layer.obs_out.quantizer()) for layer in _qat_layers(student)]
    budget = asdict(cfg) | {"states": n_states, "final_loss_per_round": losses}
    return _from_qat(student), quantizers, budget


def export_qat_onnx(finetuned: Actor, quantizers: list, calibration_obs: np.ndarray) -> bytes:
    """int8 QDQ ONNX whose activation scales are the QAT ones (not re-calibrated)."""
    from drlbench.compress.ptq import ptsq

    fp32 = export_onnx(finetuned, finetuned.obs_dim)
    graph = onnx.load_from_string(fp32).graph
    gemms = [n for n in graph.node if n.op_type in ("Gemm", "MatMul")]
    if len(gemms) != len(quantizers):
        raise RuntimeError(f"expected {len(quantizers)} Gemm nodes in the exported actor, found {len(gemms)}")
    relu_after = {n.input[0]: n.output[0] for n in graph.node if n.op_type == "Relu"}
    overrides = {}
    for node, (q_in, q_out) in zip(gemms, quantizers):
        names = [(node.input[0], q_in), (node.output[0], q_out)]
        if node.output[0] in relu_after:  # the ReLU output shares the (folded) output quantizer
            names.append((relu_after[node.output[0]], q_out))
        for name, q in names:
            overrides[name] = [{"scale": np.array(q.scale, dtype=np.float32),
                                "zero_point": np.array(q.onnx_zero_point, dtype=np.uint8)}]
    return ptsq(fp32, calibration_obs[:256], overrides)
