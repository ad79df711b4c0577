"""The builder that turns an agent into each variant's artifacts, once per agent (variants.py names them).

Calibration / distillation states come from fp32 rollouts on seeds disjoint from evaluation, so PTSQ, QAT
and the edge runtimes' static int8 never see the evaluation episodes; every int8 recipe of every runtime
is calibrated on the same states.
"""

from __future__ import annotations

import contextlib
import logging
import time

import numpy as np

from drlbench.actor import Actor
from drlbench.errors import DrlbenchError
from drlbench.names import CALIBRATION_STATES
from drlbench.variants import (
    AS_IS_KIND,
    COMBINED_KIND,
    EQ_VARIANTS,
    INPUT_KIND,
    LOWBIT_KIND,
    MIXED_VARIANTS,
    Recipe,
    Variant,
    combined_parts,
    parse_variant,
)

CALIBRATION_SEED_OFFSET = 1  # + tasks.DISJOINT_SEED_OFFSET
# how the edge runtimes quantize each int8 recipe's float actor (QAT: its fine-tuned weights, static int8)
EDGE_MODES = {"ptdq": "dynamic", "ptsq": "static", "qat": "static"}


@contextlib.contextmanager
def _quiet_root_logger():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class VariantBuilder:
    """Builds an agent's variants on demand and keeps them: each artifact is made once."""

    def __init__(self, agent, calibration_size: int = CALIBRATION_STATES, qat_config=None):
        from drlbench.compress.qat import QATConfig

        self.agent = agent
        self.calibration_size = calibration_size
        self.qat_config = qat_config or QATConfig()
        self._cache: dict[str, Variant] = {}
        self._calib: np.ndarray | None = None

    @property
    def actor(self) -> Actor:
        return self.agent.actor

    def calibration_states(self) -> np.ndarray:
        if self._calib is None:
            from drlbench.evaluate import rollout_observations
            from drlbench.tasks import DISJOINT_SEED_OFFSET

            self._calib = rollout_observations(self.actor.act, self.agent.env_id, self.calibration_size,
                                               seed=DISJOINT_SEED_OFFSET + CALIBRATION_SEED_OFFSET)
        return self._calib

    def get(self, name: str) -> Variant:
        added = self._cache.get(name.name if isinstance(name, Recipe) else str(name))
        if added is not None:  # built before, or added (an as-is file has no name parse_variant knows)
            return added
        recipe = parse_variant(name)
        if recipe.name not in self._cache:
            t0 = time.perf_counter()
            variant = self._build(recipe)
            variant.build["build_s"] = round(time.perf_counter() - t0, 3)
            variant.build["obs_dim"] = self.actor.obs_dim
            self._cache[recipe.name] = variant
        return self._cache[recipe.name]

    def add(self, variant: Variant) -> Variant:
        """Register an artifact built elsewhere (a user's own compressed ONNX, measured as it is)."""
        variant.build.setdefault("obs_dim", self.actor.obs_dim)
        self._cache[variant.recipe.name] = variant
        return variant

    def _build(self, recipe: Recipe) -> Variant:
        from drlbench.compress import onnx_export

        actor, aid = self.actor, self.agent.id
        if recipe.kind == AS_IS_KIND:
            raise DrlbenchError(f"{AS_IS_KIND} is a policy file measured as it is (the pytest plugin's candidate "
                                f"against --drlbench-reference); {aid} has none to build")
        if recipe.kind == "fp32":
            return Variant(aid, recipe, onnx_export.export_onnx(actor, actor.obs_dim), actor.n_params(), actor,
                           {"runtime_config": "fp32", "hidden": list(actor.hidden)}, source=actor,
                           calibration=self.calibration_states())
        if recipe.kind == LOWBIT_KIND:
            from drlbench.compress.lowbit import build_lowbit

            b = build_lowbit(actor, recipe.name, self.calibration_states(), env_id=self.agent.env_id,
                             qat_config=self.qat_config)
            return Variant(aid, recipe, b.onnx, actor.n_params(), None, b.build, packed=b.packed)
        if recipe.kind == INPUT_KIND:
            from drlbench.compress.lowbit import build_input_only

            data, build = build_input_only(actor, recipe.name, self.calibration_states())
            return Variant(aid, recipe, data, actor.n_params(), None, build)
        if recipe.kind == COMBINED_KIND:
            return self._build_combined(recipe)
        if recipe.ratio is not None:
            pruned, build = self._pruned(recipe)
            return Variant(aid, recipe, onnx_export.export_onnx(pruned, actor.obs_dim), pruned.n_params(), pruned,
                           build, source=pruned, calibration=self.calibration_states())
        if recipe.kind in MIXED_VARIANTS:
            return self._build_mixed(recipe)
        actor, fp32, extra = self.actor, self.get("fp32").onnx, {}
        if recipe.kind in EQ_VARIANTS:
            actor, extra = self.equalized()
            if extra["equalized"]:
                fp32 = onnx_export.export_onnx(actor, actor.obs_dim)
        method = recipe.kind.removesuffix("_eq")
        with _quiet_root_logger():  # ORT's quantizer warns about pre-processing on every call
            variant = self._build_int8(recipe, method, actor, fp32)
        variant.build |= {"input_equalization": extra} if extra else {}
        variant.source = variant.source or actor
        variant.mode, variant.calibration = EDGE_MODES[method], self.calibration_states()
        return variant

    def _pruned(self, recipe: Recipe) -> tuple[Actor, dict]:
        """The actor pruned as `recipe` (prune_l{1,2}_NN) says, and the pruning record."""
        from drlbench.compress.prune import PRUNE_CONFIG, prune

        p = int(recipe.kind[-1])
        pruned = prune(self.actor, recipe.ratio, p)
        return pruned, PRUNE_CONFIG | {"p": p, "ratio": recipe.ratio, "hidden": pruned.hidden,
                                       "baseline_hidden": self.actor.hidden}

    def _build_combined(self, recipe: Recipe) -> Variant:
        """Pruned, then the int8 recipe on the pruned actor's ONNX; +qat fine-tunes the pruned actor toward the
        unpruned fp32 one (the same teacher as qat), so distillation can also win back what pruning lost."""
        from drlbench.compress import onnx_export

        prune_recipe, method = combined_parts(recipe)
        pruned, prune_build = self._pruned(prune_recipe)
        with _quiet_root_logger():
            variant = self._build_int8(recipe, method, pruned, onnx_export.export_onnx(pruned, pruned.obs_dim),
                                       teacher=self.actor)
        # top-level hidden sizes as a pruned variant records them (the report reads baseline_hidden)
        teacher = " (distilled toward the unpruned fp32 actor)" if method == "qat" else ""
        variant.build = {"method": f"{prune_recipe.name}, then {method} on the pruned actor{teacher}",
                         "hidden": pruned.hidden, "baseline_hidden": self.actor.hidden,
                         "prune": prune_build, "int8": variant.build}
        variant.source = variant.source or pruned  # QAT: the fine-tuned pruned actor
        variant.mode, variant.calibration = EDGE_MODES[method], self.calibration_states()
        return variant

    def _build_mixed(self, recipe: Recipe) -> Variant:
        """The int8 recipe with the first layer left in fp32 (ONNX Runtime only: the edge runtimes quantize
        whole graphs with their own schemes)."""
        from drlbench.compress.ptq import first_gemm

        fp32 = self.get("fp32").onnx
        first = first_gemm(fp32)
        with _quiet_root_logger():
            method = recipe.kind.removesuffix("_mixed")
            variant = self._build_int8(recipe, method, self.actor, fp32, keep_float=(first,))
        float_params = sum(p.numel() for p in self.actor.first_layer.parameters())
        variant.build |= {"kept_in_float": [first], "float_params": float_params}
        return variant

    def equalized(self) -> tuple[Actor, dict]:
        """The actor with its first layer's input standardized on the calibration states (same fp32 function)."""
        from drlbench.compress.equalize import equalize_input

        return equalize_input(self.actor, self.calibration_states())

    def _build_int8(self, recipe: Recipe, method: str, actor: Actor, fp32: bytes,
                    teacher: Actor | None = None, keep_float: tuple[str, ...] = ()) -> Variant:
        """`method` on `actor` (whose fp32 ONNX is `fp32`); QAT distills toward `teacher` (default: `actor`).
        `keep_float`: Gemm nodes the post-training recipes leave in float."""
        from drlbench.compress import ptq

        aid = self.agent.id
        if method == "ptdq":
            return Variant(aid, recipe, ptq.ptdq(fp32, keep_float), actor.n_params(), None, dict(ptq.PTDQ_CONFIG))
        if method == "ptsq":
            calib = self.calibration_states()
            return Variant(aid, recipe, ptq.ptsq(fp32, calib, keep_float=keep_float), actor.n_params(), None,
                           ptq.PTSQ_CONFIG | {"calibration_states": int(len(calib))})
        from drlbench.compress.qat import export_qat_onnx, qat_finetune

        calib = self.calibration_states()
        teacher = actor if teacher is None else teacher
        tuned, quantizers, budget = qat_finetune(teacher, self.agent.env_id, calib, self.qat_config, start=actor)
        return Variant(aid, recipe, export_qat_onnx(tuned, quantizers, calib), actor.n_params(), None,
                       {"method": "QAT fine-tuning by DAgger distillation, exported as ORT QDQ U8S8",
                        "budget": budget}, source=tuned)
