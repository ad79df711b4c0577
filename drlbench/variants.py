"""Variant names and the builder that turns an agent into each compressed artifact.

Names, used everywhere (test ids, CLI, result store):
    fp32                      the baseline, exported to ONNX (and runnable in torch)
    ptdq, ptsq                ONNX Runtime int8 post-training dynamic / static quantization
    qat                       int8 quantization-aware fine-tuning, exported to ONNX
    ptdq_eq, ptsq_eq, qat_eq  the same on the input-equalized actor (compress/equalize.py): off the
                              paper grid, by exact name only (`ptdq*` still means the paper's ptdq)
    ptdq_mixed, ptsq_mixed    mixed precision: the same int8 recipe with the first layer (the one that reads
                              the observation) kept in fp32 — where per-tensor int8 collapses the Humanoid
                              agents. ONNX Runtime only; off the grid, by exact name only
    prune_l1_05 … prune_l1_70, prune_l2_05 … prune_l2_70
                              torch-pruning structural pruning, L1 / L2 magnitude, 5 % steps
    qat_w<b>[a<a>][i<k>[t]], fp16
                              low-bit QAT (b-bit weights, a-bit activations, k-bit input) and fp16 weights
                              (compress/lowbit/): off the paper grid, by name only
    prune_l{1,2}_NN+ptdq|ptsq|qat
                              combined: pruned first, then the int8 recipe on the pruned actor (+qat: the pruned
                              actor fine-tuned toward the unpruned fp32 one); kind "combined", family "combined"
                              (neither grid's family: its ratio is a pruning ratio, its file is int8). Off the grid
    input_i<k>[t]             input sensitivity: only the normalized observation quantized to k = 2 … 8 bits
                              per feature (t: per tensor), post-training, the network in fp32 (e.g. input_i8,
                              input_i6, input_i4; compress/lowbit/input_only.py). Kind "input", family
                              "quantization". Off the grid
Any `prune_l{1,2}_NN` with 1 <= NN <= 99 is accepted; the paper's grid is 05 … 70.
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drlbench.actor import Actor, save_actor
from drlbench.errors import DrlbenchError, unknown
from drlbench.runtimes import OrtRunner, TorchRunner

PRUNE_RATIOS = tuple(range(5, 75, 5))
QUANT_VARIANTS = ("ptdq", "ptsq", "qat")
EQ_VARIANTS = tuple(f"{q}_eq" for q in QUANT_VARIANTS)  # not in VARIANTS: the paper did not equalize
MIXED_VARIANTS = ("ptdq_mixed", "ptsq_mixed")  # not in VARIANTS: the paper quantized every layer
PRUNE_VARIANTS = tuple(f"prune_l{p}_{r:02d}" for p in (1, 2) for r in PRUNE_RATIOS)
VARIANTS = ("fp32", *QUANT_VARIANTS, *PRUNE_VARIANTS)  # the paper grid: 1 + 3 + 28 = 32
LOWBIT_KIND = "lowbit"  # qat_w<b>[a<a>][i<k>[t]] and fp16: not in VARIANTS, the paper stopped at int8
COMBINED_KIND = "combined"  # prune_l{1,2}_NN+ptdq|ptsq|qat: not in VARIANTS, the paper compressed one way at a time
INPUT_KIND = "input"  # input_i<k>[t]: the observation alone quantized, to see how much precision the input needs
KINDS = ("fp32", *QUANT_VARIANTS, *EQ_VARIANTS, *MIXED_VARIANTS, "prune_l1", "prune_l2", LOWBIT_KIND, COMBINED_KIND,
         INPUT_KIND)
_PRUNE_RE = re.compile(r"^prune_l([12])_(\d{2})$")
COMBINED_FORMS = ["prune_l{1,2}_NN+ptdq|ptsq|qat (pruned first, then int8; e.g. prune_l1_30+ptdq)"]
# A policy compressed by the user's own pipeline (e.g. policy_int8.onnx), run by ONNX Runtime as it is: it
# is not rebuilt, only measured against a reference (the pytest plugin's --drlbench-reference).
AS_IS_KIND = "as_is"
# Runtimes that convert the recipe's float actor with their own quantizer (runtimes/litert.py, executorch.py)
EDGE_RUNTIMES = ("litert", "executorch")


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
        """'baseline', 'quantization', 'pruning', 'combined' (pruned, then int8) or 'as_is'."""
        if self.kind in ("fp32", AS_IS_KIND, COMBINED_KIND):
            return "baseline" if self.kind == "fp32" else self.kind
        return "pruning" if self.ratio is not None else "quantization"

    @property
    def runtimes(self) -> tuple[str, ...]:
        """Runtimes this recipe can run on: torch runs float actors only; the edge runtimes quantize with
        their own int8 schemes (a combined recipe: its pruned actor); low-bit, mixed-precision and
        input-quantized graphs and a user's own file exist only as ONNX."""
        if self.kind in (LOWBIT_KIND, INPUT_KIND, AS_IS_KIND, *MIXED_VARIANTS):
            return ("onnxruntime",)
        if self.kind == COMBINED_KIND:
            return ("onnxruntime", *EDGE_RUNTIMES)
        torch = ("torch",) if self.family in ("baseline", "pruning") else ()
        return ("onnxruntime", *torch, *EDGE_RUNTIMES)


def parse_variant(name: str | Recipe) -> Recipe:
    """The Recipe a name stands for; a Recipe is returned as it is (already parsed)."""
    if isinstance(name, Recipe):
        return name
    canon = re.sub(r"\s*\+\s*", "+", str(name).strip().lower().replace("-", "_"))
    if canon in ("fp32", *QUANT_VARIANTS, *EQ_VARIANTS, *MIXED_VARIANTS, AS_IS_KIND):
        return Recipe(canon, canon)
    if "+" in canon:
        return _parse_combined(canon, name)
    m = _PRUNE_RE.match(canon)
    if m:
        pct = int(m.group(2))
        if not 0 < pct < 100:
            raise DrlbenchError(f"pruning ratio in {name!r} must be in (0, 1), i.e. 01 … 99 percent; got {pct / 100}")
        return Recipe(canon, f"prune_l{m.group(1)}", pct / 100)
    # imported here: the low-bit package pulls in onnx and the envs, which parsing the other names does not need
    from drlbench.compress.lowbit import INPUT_ONLY_FORMS, NAME_FORMS, is_input_name, is_lowbit_name, parse_scheme

    if is_lowbit_name(canon):
        return Recipe(parse_scheme(canon).name, LOWBIT_KIND)
    if is_input_name(canon):
        return Recipe(canon, INPUT_KIND)
    raise unknown("variant", name, ["fp32", *QUANT_VARIANTS, *EQ_VARIANTS, *MIXED_VARIANTS,
                                    "prune_l1_05 … prune_l1_70", "prune_l2_05 … prune_l2_70", *NAME_FORMS,
                                    *INPUT_ONLY_FORMS, *COMBINED_FORMS])


def _parse_combined(canon: str, name) -> Recipe:
    """prune_l{1,2}_NN+ptdq|ptsq|qat; any other '+' name is refused with the accepted form."""
    prune_part, _, method = canon.partition("+")
    if not _PRUNE_RE.match(prune_part) or method not in QUANT_VARIANTS:
        raise DrlbenchError(f"unknown combined variant {name!r}: a pruning name first, then one int8 recipe; "
                            f"accepted: {COMBINED_FORMS[0]}")
    pruned = parse_variant(prune_part)  # checks the ratio
    return Recipe(f"{pruned.name}+{method}", COMBINED_KIND, pruned.ratio)


def combined_parts(recipe: Recipe | str) -> tuple[Recipe, str]:
    """A combined recipe's pruning recipe and int8 method: prune_l1_30+ptdq -> (prune_l1_30, "ptdq")."""
    recipe = parse_variant(recipe)
    if recipe.kind != COMBINED_KIND:
        raise DrlbenchError(f"{recipe.name} is not a combined variant; accepted: {COMBINED_FORMS[0]}")
    prune_name, _, method = recipe.name.partition("+")
    return parse_variant(prune_name), method


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
    """One compressed form of an agent and its artifact on each runtime that can run it.

    ONNX Runtime runs `onnx` (built by compress/); eager torch runs `module`; the edge runtimes (LiteRT,
    ExecuTorch) convert `source`, the float actor the recipe starts from (fp32, pruned, input-equalized or
    QAT-fine-tuned), with their own quantizer in `mode` (fp32, dynamic-range or static int8 calibrated on
    `calibration`, the same rollout states ORT's PTSQ uses). Each artifact is built once, on first use, and
    checked against `source` on rollout states before anything is timed (runtimes/verify.py)."""

    agent_id: str
    recipe: Recipe
    onnx: bytes
    n_params: int
    module: Actor | None = None  # torch-runnable form (fp32 and pruned variants)
    build: dict = field(default_factory=dict)
    packed: bytes | None = None  # low-bit variants: the deployable payload (compress/lowbit/pack.py)
    source: Actor | None = None  # what the edge runtimes convert; None: ONNX Runtime only
    mode: str = "fp32"  # the edge runtimes' quantization of `source`: "fp32" | "dynamic" | "static"
    calibration: np.ndarray | None = field(default=None, repr=False)
    _artifacts: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.recipe.name

    @property
    def artifact_bytes(self) -> int:
        """The ONNX file's size; a simulated low-bit build (its ONNX graph holds the fake-quantized network in
        fp32, no kernel runs the packed weights) is charged its packed payload instead."""
        return len(self.packed) if self.build.get("simulated") else len(self.onnx)

    def artifact_size(self, runtime: str) -> int:
        """Bytes of the file `runtime` loads (torch: the ONNX size, as the paper counts the fp32 model)."""
        return len(self.artifact(runtime)) if runtime in EDGE_RUNTIMES else self.artifact_bytes

    @property
    def runtimes(self) -> tuple[str, ...]:
        return (("onnxruntime",) + (("torch",) if self.module is not None else ())
                + (EDGE_RUNTIMES if self.source is not None else ()))

    def _check_runtime(self, runtime: str) -> None:
        if runtime not in self.runtimes:
            raise DrlbenchError(f"variant {self.name} has no {runtime!r} runtime; accepted: {', '.join(self.runtimes)}")

    def artifact(self, runtime: str) -> bytes:
        """The bytes an edge runtime loads, converted once (and verified) on first use; ONNX for ORT."""
        self._check_runtime(runtime)
        if runtime not in EDGE_RUNTIMES:
            return self.onnx
        if runtime not in self._artifacts:
            from drlbench.runtimes import backend

            t0 = time.perf_counter()
            blob = backend(runtime).build(self.source, self.mode, self.calibration)
            self._artifacts[runtime] = blob
            self.build.setdefault("runtimes", {})[runtime] = {
                "mode": self.mode, "bytes": len(blob), "build_s": round(time.perf_counter() - t0, 3)}
        return self._artifacts[runtime]

    def runner(self, runtime: str = "onnxruntime", threads: int = 1):
        """The runner of `runtime`, its artifact verified against `source` first (once per runtime)."""
        self._check_runtime(runtime)
        if runtime == "torch":
            return TorchRunner(self.module, self.module.obs_dim, threads)
        obs_dim = self.module.obs_dim if self.module else self.build["obs_dim"]
        if runtime == "onnxruntime":
            runner = OrtRunner(self.onnx, obs_dim, threads)
        else:
            from drlbench.runtimes import backend

            runner = backend(runtime).Runner(self.artifact(runtime), obs_dim, threads)
        checks = self.build.setdefault("verified", {})
        if self.source is not None and self.calibration is not None and runtime not in checks:
            from drlbench.runtimes.verify import verify

            checks[runtime] = verify(runner, self.source, self.calibration, self.mode, what=f"{self.name} on {runtime}")
        return runner

    def write_artifact(self, folder: Path, runtime: str = "onnxruntime") -> Path:
        """The file `runtime` loads (runtimes.<module>.ARTIFACT), written into `folder`; returns its path."""
        from drlbench.runtimes import backend

        self._check_runtime(runtime)
        path = Path(folder) / backend(runtime).ARTIFACT
        path.parent.mkdir(parents=True, exist_ok=True)
        if runtime == "torch":
            save_actor(self.module, path)
        else:
            path.write_bytes(self.artifact(runtime))
        return path

    def save(self, folder: Path) -> Path:
        """model.onnx (+ actor.safetensors when torch-runnable, + each edge artifact built so far, + model.packed
        when packed) and variant.json."""
        folder = Path(folder)
        for runtime in self.runtimes:
            if runtime not in EDGE_RUNTIMES or runtime in self._artifacts:
                self.write_artifact(folder, runtime)
        if self.packed is not None:
            (folder / "model.packed").write_bytes(self.packed)
        meta = {"agent": self.agent_id, "variant": self.name, "n_params": self.n_params,
                "artifact_bytes": self.artifact_bytes, "build": self.build}
        (folder / "variant.json").write_text(json.dumps(meta, indent=2) + "\n")
        return folder
