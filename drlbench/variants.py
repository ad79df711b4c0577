"""Variant names and the builder that turns an agent into each compressed artifact.

Names, used everywhere (test ids, CLI, result store):
    fp32                      the baseline, exported to ONNX (and runnable in torch)
    ptdq, ptsq                ONNX Runtime int8 post-training dynamic / static quantization
    qat                       int8 quantization-aware fine-tuning, exported to ONNX
    ptdq_eq, ptsq_eq, qat_eq  the same on the input-equalized actor (compress/equalize.py): off the
                              paper grid, by exact name only (`ptdq*` still means the paper's ptdq)
    prune_l1_05 … prune_l1_70, prune_l2_05 … prune_l2_70
                              torch-pruning structural pruning, L1 / L2 magnitude, 5 % steps
    qat_w<b>[a<a>][i<k>[t]], fp16
                              low-bit QAT (b-bit weights, a-bit activations, k-bit input) and fp16 weights
                              (compress/lowbit/): off the paper grid, by name only
Any `prune_l{1,2}_NN` with 1 <= NN <= 99 is accepted; the paper's grid is 05 … 70.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drlbench.actor import Actor, save_actor
from drlbench.errors import DrlbenchError, unknown
from drlbench.names import CALIBRATION_STATES
from drlbench.runtime import OrtRunner, TorchRunner

PRUNE_RATIOS = tuple(range(5, 75, 5))
QUANT_VARIANTS = ("ptdq", "ptsq", "qat")
EQ_VARIANTS = tuple(f"{q}_eq" for q in QUANT_VARIANTS)  # not in VARIANTS: the paper did not equalize
PRUNE_VARIANTS = tuple(f"prune_l{p}_{r:02d}" for p in (1, 2) for r in PRUNE_RATIOS)
VARIANTS = ("fp32", *QUANT_VARIANTS, *PRUNE_VARIANTS)  # the paper grid: 1 + 3 + 28 = 32
LOWBIT_KIND = "lowbit"  # qat_w<b>[a<a>][i<k>[t]] and fp16: not in VARIANTS, the paper stopped at int8
KINDS = ("fp32", *QUANT_VARIANTS, *EQ_VARIANTS, "prune_l1", "prune_l2", LOWBIT_KIND)
_PRUNE_RE = re.compile(r"^prune_l([12])_(\d{2})$")
# A policy compressed by the user's own pipeline (e.g. policy_int8.onnx), run by ONNX Runtime as it is: it
# is not rebuilt, only measured against a reference (the pytest plugin's --drlbench-reference).
AS_IS_KIND = "as_is"
CALIBRATION_SEED_OFFSET = 1  # + tasks.DISJOINT_SEED_OFFSET
ARTIFACT_NAMES = {"onnxruntime": "model.onnx", "torch": "actor.safetensors"}  # a variant folder's files


@dataclass(frozen=True, eq=False)
class Recipe:
    """A parsed variant name. Names are parsed once, where they enter (CLI, grid, bench options), and
    the Recipe is passed along. A Recipe equals and hashes as its canonical name, so it keys the same
    caches and store rows as the name and compares with it (`recipe == "fp32"`)."""

    name: str
    kind: str  # one of KINDS
    ratio: float | None = None  # pruning only

    def __eq__(self, other) -> bool:
        return self.name == (other.name if isinstance(other, Recipe) else other)

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name

    @property
    def family(self) -> str:
        """'baseline', 'quantization' or 'pruning'."""
        if self.kind in ("fp32", AS_IS_KIND):
            return "baseline" if self.kind == "fp32" else AS_IS_KIND
        return "pruning" if self.ratio is not None else "quantization"

    @property
    def runtimes(self) -> tuple[str, ...]:
        """Runtimes this recipe can run on: int8 graphs exist only as ONNX."""
        return ("onnxruntime", "torch") if self.family in ("baseline", "pruning") else ("onnxruntime",)


def parse_variant(name: str | Recipe) -> Recipe:
    """The Recipe a name stands for; a Recipe is returned as it is (already parsed)."""
    if isinstance(name, Recipe):
        return name
    canon = str(name).strip().lower().replace("-", "_")
    if canon in ("fp32", *QUANT_VARIANTS, *EQ_VARIANTS, AS_IS_KIND):
        return Recipe(canon, canon)
    m = _PRUNE_RE.match(canon)
    if m:
        pct = int(m.group(2))
        if not 0 < pct < 100:
            raise DrlbenchError(f"pruning ratio in {name!r} must be in (0, 1), i.e. 01 … 99 percent; got {pct / 100}")
        return Recipe(canon, f"prune_l{m.group(1)}", pct / 100)
    # imported here: the low-bit package pulls in onnx and the envs, which parsing the other names does not need
    from drlbench.compress.lowbit import NAME_FORMS, is_lowbit_name, parse_scheme

    if is_lowbit_name(canon):
        return Recipe(parse_scheme(canon).name, LOWBIT_KIND)
    raise unknown("variant", name, ["fp32", *QUANT_VARIANTS, *EQ_VARIANTS, "prune_l1_05 … prune_l1_70",
                                    "prune_l2_05 … prune_l2_70", *NAME_FORMS])


def select(patterns, names, kind: str) -> list[str]:
    """Names matching any of `patterns` (exact or glob), in `names` order; unknown patterns raise."""
    chosen: list[str] = []
    for pat in patterns:
        pat = pat.strip().lower().replace("-", "_") if kind == "variant" else pat.strip().lower()
        hits = [n for n in names if fnmatch.fnmatchcase(n, pat)]
        if not hits:
            if kind == "variant" and not any(ch in pat for ch in "*?["):
                hits = [parse_variant(pat).name]  # a valid name off the paper grid is fine
            else:
                raise unknown(kind, pat, names)
        chosen += [h for h in hits if h not in chosen]
    return chosen


@dataclass
class Variant:
    agent_id: str
    recipe: Recipe
    onnx: bytes
    n_params: int
    module: Actor | None = None  # torch-runnable form (fp32 and pruned variants)
    build: dict = field(default_factory=dict)
    packed: bytes | None = None  # low-bit variants: the deployable payload (compress/lowbit/pack.py)

    @property
    def name(self) -> str:
        return self.recipe.name

    @property
    def artifact_bytes(self) -> int:
        """The ONNX file's size; a simulated low-bit build (its ONNX graph holds the fake-quantized network in
        fp32, no kernel runs the packed weights) is charged its packed payload instead."""
        return len(self.packed) if self.build.get("simulated") else len(self.onnx)

    @property
    def runtimes(self) -> tuple[str, ...]:
        return ("onnxruntime", "torch") if self.module is not None else ("onnxruntime",)

    def _check_runtime(self, runtime: str) -> None:
        if runtime not in self.runtimes:
            raise DrlbenchError(f"variant {self.name} has no {runtime!r} runtime; accepted: {', '.join(self.runtimes)}")

    def runner(self, runtime: str = "onnxruntime", threads: int = 1):
        self._check_runtime(runtime)
        if runtime == "torch":
            return TorchRunner(self.module, self.module.obs_dim, threads)
        return OrtRunner(self.onnx, self.module.obs_dim if self.module else self.build["obs_dim"], threads)

    def write_artifact(self, folder: Path, runtime: str = "onnxruntime") -> Path:
        """The file `runtime` loads (ARTIFACT_NAMES), written into `folder`; returns its path."""
        self._check_runtime(runtime)
        path = Path(folder) / ARTIFACT_NAMES[runtime]
        path.parent.mkdir(parents=True, exist_ok=True)
        if runtime == "torch":
            save_actor(self.module, path)
        else:
            path.write_bytes(self.onnx)
        return path

    def save(self, folder: Path) -> Path:
        """model.onnx (+ actor.safetensors when torch-runnable, model.packed when packed) and variant.json."""
        folder = Path(folder)
        for runtime in self.runtimes:
            self.write_artifact(folder, runtime)
        if self.packed is not None:
            (folder / "model.packed").write_bytes(self.packed)
        meta = {"agent": self.agent_id, "variant": self.name, "n_params": self.n_params,
                "artifact_bytes": self.artifact_bytes, "build": self.build}
        (folder / "variant.json").write_text(json.dumps(meta, indent=2) + "\n")
        return folder


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
    """Builds an agent's variants on demand and keeps them: each artifact is made once.

    Calibration / distillation states come from fp32 rollouts on seeds disjoint from evaluation
    (DISJOINT_SEED_OFFSET + 1 …), so PTSQ and QAT never see the evaluation episodes.
    """

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
                           {"runtime_config": "fp32"})
        if recipe.kind == LOWBIT_KIND:
            from drlbench.compress.lowbit import build_lowbit

            b = build_lowbit(actor, recipe.name, self.calibration_states(), env_id=self.agent.env_id,
                             qat_config=self.qat_config)
            return Variant(aid, recipe, b.onnx, actor.n_params(), None, b.build, packed=b.packed)
        if recipe.ratio is not None:
            from drlbench.compress.prune import PRUNE_CONFIG, prune

            p = int(recipe.kind[-1])
            pruned = prune(actor, recipe.ratio, p)
            return Variant(aid, recipe, onnx_export.export_onnx(pruned, actor.obs_dim), pruned.n_params(), pruned,
                           PRUNE_CONFIG | {"p": p, "ratio": recipe.ratio, "hidden": pruned.hidden,
                                           "baseline_hidden": actor.hidden})
        actor, fp32, extra = self.actor, self.get("fp32").onnx, {}
        if recipe.kind in EQ_VARIANTS:
            actor, extra = self.equalized()
            if extra["equalized"]:
                fp32 = onnx_export.export_onnx(actor, actor.obs_dim)
        with _quiet_root_logger():  # ORT's quantizer warns about pre-processing on every call
            variant = self._build_int8(recipe, recipe.kind.removesuffix("_eq"), actor, fp32)
        variant.build |= {"input_equalization": extra} if extra else {}
        return variant

    def equalized(self) -> tuple[Actor, dict]:
        """The actor with its first layer's input standardized on the calibration states (same fp32 function)."""
        from drlbench.compress.equalize import equalize_input

        return equalize_input(self.actor, self.calibration_states())

    def _build_int8(self, recipe: Recipe, method: str, actor: Actor, fp32: bytes) -> Variant:
        from drlbench.compress import ptq

        aid = self.agent.id
        if method == "ptdq":
            return Variant(aid, recipe, ptq.ptdq(fp32), actor.n_params(), None, dict(ptq.PTDQ_CONFIG))
        if method == "ptsq":
            calib = self.calibration_states()
            return Variant(aid, recipe, ptq.ptsq(fp32, calib), actor.n_params(), None,
                           ptq.PTSQ_CONFIG | {"calibration_states": int(len(calib))})
        from drlbench.compress.qat import export_qat_onnx, qat_finetune

        calib = self.calibration_states()
        tuned, quantizers, budget = qat_finetune(actor, self.agent.env_id, calib, self.qat_config)
        return Variant(aid, recipe, export_qat_onnx(tuned, quantizers, calib), actor.n_params(), None,
                       {"method": "QAT fine-tuning by DAgger distillation, exported as ORT QDQ U8S8",
                        "budget": budget})
