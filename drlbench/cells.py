"""Measure one cell (agent × variant): return, latency, memory, energy -> `CellResult`.

The sweep, `drlbench compress` and the bench suite all go through `CellMeasurer`, so a number in a saved
benchmark run and the same number in a store come from one code path. Each agent's variants and fp32
baseline are built and evaluated once and reused by every measurement of that agent.

Latency and energy have one method, `compare`: the variant beside its baseline in alternating short
blocks (meters.compare.side_by_side). A stored cell keeps its medians; a bench gate also re-measures
under the one confirm rule (meters.compare.confirmed) before it calls a cell slower. `store_pending` is
the one loop that measures an agent's missing cells into a store in-process (compress); the sweep's
workers only measure, and its driver stores what they return (drlbench/units.py).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Callable

from drlbench.errors import DrlbenchError
from drlbench.evaluate import EvalResult, evaluate, normalized_score, raw_ratio
from drlbench.meters.compare import METERS, Comparison
from drlbench.results import CellResult
from drlbench.builder import VariantBuilder
from drlbench.variants import Recipe, Variant, parse_variant
from drlbench.zoo import Agent


@dataclass
class MeasureConfig:
    episodes: int = 10
    seed: int = 0
    runtime: str = "onnxruntime"
    threads: int = 1
    # latency and energy (`compare`): `ratio_blocks` blocks, each running the variant and its baseline
    # back to back for >= ratio_block_s per side and meter; figures and ratios are medians over the blocks
    ratio_blocks: int = 3
    ratio_block_s: float = 0.1
    confirm_attempts: int = 3  # measurements at most before a gate's verdict differs from the record
    memory: bool = True
    memory_steps: int = 200  # acts run in the memory probe after loading
    energy: bool = True
    exclusive_cpu: bool = True  # False when other measuring processes run beside this one (sweep workers)

    def __post_init__(self):
        from drlbench.tasks import check_episodes_and_seed

        check_episodes_and_seed(self.episodes, self.seed)
        if self.ratio_blocks < 1 or not self.ratio_block_s > 0 or self.confirm_attempts < 1:
            raise DrlbenchError(f"need ratio_blocks >= 1, ratio_block_s > 0 and confirm_attempts >= 1, got "
                                f"{self.ratio_blocks}, {self.ratio_block_s}, {self.confirm_attempts}")


def _key(variant: str | Recipe, runtime: str) -> tuple[str, str]:
    return parse_variant(variant).name, runtime


class CellMeasurer:
    """`variant` arguments take a Recipe (or a name, parsed here)."""

    def __init__(self, agent: Agent, config: MeasureConfig | None = None, builder: VariantBuilder | None = None,
                 reference: CellMeasurer | None = None):
        """`reference`: another policy's measurer (same env and spaces) whose fp32 is the baseline of every
        ratio and of the return rule instead of this agent's own fp32 — "does this build keep 90 % of last
        release's return, and is it no slower?" Same seeds, runtime and meter settings."""
        self.agent = agent
        self.reference = reference
        self._random: float | None = None
        self.config = config or MeasureConfig()
        self.builder = builder or VariantBuilder(agent)
        self._evals: dict[tuple[str, str], tuple[EvalResult, float]] = {}
        self._runners: dict[tuple[str, str], object] = {}
        self._memory: dict[tuple[str, str], object] = {}
        self._floors: dict[str, float] = {}
        self._energy_meter = None

    def has_evaluation(self, variant, runtime: str | None = None) -> bool:
        return _key(variant, runtime or self.config.runtime) in self._evals

    def reuse_evaluation(self, cell: CellResult) -> None:
        """Take a stored cell's returns (a finished fp32 baseline) instead of running its episodes again.
        `cell`: a CellResult, or any object with its env_id, variant, runtime, seed, episodes, returns,
        lengths, eval_s and physics_s (the sweep ships just those to its workers)."""
        seeds = [cell.seed + i for i in range(cell.episodes)]
        result = EvalResult(cell.env_id, seeds, list(cell.returns), list(cell.lengths), cell.physics_s or 0.0)
        self._evals[_key(cell.variant, cell.runtime)] = (result, cell.eval_s or 0.0)

    def variant(self, variant) -> Variant:
        return self.builder.get(variant)

    def runner(self, variant, runtime: str | None = None):
        key = _key(variant, runtime or self.config.runtime)
        if key not in self._runners:
            self._runners[key] = self.variant(key[0]).runner(key[1], self.config.threads)
        return self._runners[key]

    def evaluation(self, variant, runtime: str | None = None) -> EvalResult:
        """Paired-seed returns, computed once per (variant, runtime)."""
        key = _key(variant, runtime or self.config.runtime)
        if key not in self._evals:
            t0 = time.perf_counter()
            result = evaluate(self.runner(*key).run, self.agent.env_id, self.config.episodes, self.config.seed)
            self._evals[key] = (result, time.perf_counter() - t0)
        return self._evals[key][0]

    def random_return(self) -> float:
        """The shipped reference for the five tasks; for any other env, measured now (seeded)."""
        if self._random is None:
            from drlbench.tasks import measure_random_return, random_returns

            known = random_returns().get(self.agent.env_id)
            self._random = known["mean"] if known else measure_random_return(
                self.agent.env_id, episodes=max(self.config.episodes, 10), seed=self.config.seed)["mean"]
        return self._random

    @property
    def baseline(self) -> CellMeasurer:
        """The measurer whose fp32 every ratio and score is taken against: the reference's, or this one."""
        return self.reference if self.reference is not None else self

    def return_scores(self, variant) -> dict:
        v, b = self.evaluation(variant), self.baseline.evaluation("fp32")
        rand = self.random_return()
        return {"mean": v.mean, "baseline": b.mean, "random": rand, "raw_ratio": raw_ratio(v.mean, b.mean),
                "normalized_score": normalized_score(v.mean, b.mean, rand)}

    def observations(self):
        """Real states (fp32 rollouts on seeds disjoint from evaluation) to feed the meters."""
        return self.builder.calibration_states()

    def energy_meter(self):
        """The machine's best CPU energy meter (meters.energy.select_meter), chosen once."""
        if self._energy_meter is None:
            from drlbench.meters.energy import select_meter

            self._energy_meter = select_meter("cpu", exclusive=self.config.exclusive_cpu)
        return self._energy_meter

    def compare(self, variant, *, baseline="fp32", runtime: str | None = None, baseline_runtime: str | None = None,
                batch: int = 1, meters=None, confirm: Callable[[Comparison], object] | None = None) -> Comparison:
        """The one measurement of latency and energy: `variant` beside `baseline` (None: alone, in the same
        blocks) in `config.ratio_blocks` alternating blocks of `config.ratio_block_s` per side and meter
        (meters.compare.side_by_side). `meters`: ("latency", "energy") by default, energy only where the
        config measures it. `confirm` (a gate, Comparison -> gates.Verdict): measure again under the one
        confirm rule (meters.compare.confirmed) while the verdict differs from the record.
        """
        from drlbench.meters.compare import confirmed, side_by_side

        cfg, runtime = self.config, runtime or self.config.runtime
        meters = meters or tuple(m for m in METERS if m != "energy" or cfg.energy)
        v, b = parse_variant(variant), None if baseline is None else parse_variant(baseline)

        # "fp32" as baseline means the baseline measurer's: the reference policy, when there is one
        base = self.baseline if b is not None and b.kind == "fp32" else self

        def measure() -> Comparison:
            return side_by_side(
                self.runner(v, runtime), None if b is None else base.runner(b, baseline_runtime or runtime),
                self.observations(), blocks=cfg.ratio_blocks, block_s=cfg.ratio_block_s, batch=batch, meters=meters,
                energy_meter=self.energy_meter() if "energy" in meters else None,
                names=(v.name, None if b is None else b.name if base is self else "reference"))

        return measure() if confirm is None else confirmed(measure, confirm, cfg.confirm_attempts)

    def floor(self, runtime: str | None = None) -> float:
        """Batch-1 p50 (µs) of `runtime`'s call floor (runtimes/floor.py) at this agent's shapes, measured
        in the same blocks as a cell's latency; once per runtime."""
        from drlbench.meters.compare import side_by_side
        from drlbench.runtimes.floor import floor_runner

        runtime, cfg = runtime or self.config.runtime, self.config
        if runtime not in self._floors:
            actor = self.agent.actor
            c = side_by_side(floor_runner(runtime, actor.obs_dim, actor.act_dim, cfg.threads), None,
                             self.observations(), blocks=cfg.ratio_blocks, block_s=cfg.ratio_block_s,
                             meters=("latency",))
            self._floors[runtime] = c.variant["latency_us_p50"]
        return self._floors[runtime]

    def memory(self, variant, runtime: str | None = None):
        """Peak RSS of a fresh process running the variant's artifact; probed once per (variant, runtime)."""
        from drlbench.meters.memory import measure_memory

        key = _key(variant, runtime or self.config.runtime)
        if key not in self._memory:
            with tempfile.TemporaryDirectory(prefix="drlbench-artifact-") as tmp:
                path = self.variant(key[0]).write_artifact(tmp, key[1])
                self._memory[key] = measure_memory(path, key[1], steps=self.config.memory_steps)
        return self._memory[key]

    def measure(self, variant) -> CellResult:
        t0 = time.perf_counter()
        cfg, agent, v = self.config, self.agent, self.variant(variant)
        recipe = v.recipe
        own = _key(recipe, cfg.runtime)
        done_before = set(self._evals)
        result = self.evaluation(recipe)
        scores = self.return_scores(recipe)
        is_fp32 = recipe.kind == "fp32"
        c = self.compare(recipe, baseline=None if is_fp32 else "fp32")
        # an edge runtime's cell also beside ORT's fp32 (the paper's runtime, on its fast path)
        vs_ort = None if cfg.runtime == "onnxruntime" else self.compare(
            recipe, baseline="fp32", baseline_runtime="onnxruntime", meters=("latency",)).ratio("latency_us_p50")
        lo, hi = result.ci95
        cell = CellResult(
            agent=agent.id, algo=agent.algo or "unknown", task=agent.card["task"], env_id=agent.env_id,
            variant=recipe.name, family=recipe.family, kind=recipe.kind, ratio=recipe.ratio, runtime=cfg.runtime,
            episodes=result.n, seed=cfg.seed, returns=result.returns, lengths=result.lengths,
            return_mean=result.mean, return_std=result.std, return_ci95_lo=lo, return_ci95_hi=hi,
            baseline_return_mean=scores["baseline"], raw_ratio=scores["raw_ratio"],
            normalized_score=scores["normalized_score"], random_return_mean=scores["random"],
            artifact_bytes=v.artifact_size(cfg.runtime), n_params=v.n_params,
            # the variant's own numbers: medians over the side-by-side blocks (see `compare`)
            latency_us_mean=c.variant["latency_us_mean"], latency_us_p50=c.variant["latency_us_p50"],
            latency_us_p90=c.variant["latency_us_p90"], latency_us_p99=c.variant["latency_us_p99"],
            # ÷ fp32 from the same blocks; fp32's own cell: 1.0 by definition, 0 blocks
            latency_ratio_p50=1.0 if is_fp32 else c.ratio("latency_us_p50"),
            latency_ratio_mean=1.0 if is_fp32 else c.ratio("latency_us_mean"),
            latency_floor_us_p50=self.floor(), latency_ratio_ort_fp32_p50=vs_ort,
            ratio_blocks=0 if is_fp32 else c.blocks,
            threads=cfg.threads, build_s=v.build.get("build_s"), eval_s=self._evals[own][1],
            physics_s=result.physics_s,
            build=v.build, agent_fingerprint=agent.fingerprint,
        )
        if cfg.memory:
            mem = self.memory(recipe)
            cell.rss_runtime_mib, cell.rss_loaded_mib, cell.rss_running_mib = (
                mem.rss_runtime_mib, mem.rss_loaded_mib, mem.rss_running_mib)
        if cfg.energy:
            cell.energy_j_per_1k_actions, cell.energy_source = c.variant["energy_j_per_1k_actions"], c.energy_source
            cell.energy_j_per_episode = cell.energy_j_per_1k_actions * sum(result.lengths) / len(result.lengths) / 1000
            # measured with energy_source's meter
            cell.energy_ratio = 1.0 if is_fp32 else c.ratio("energy_j_per_1k_actions")
        # A cell's cost holds its own episodes, wherever they ran: the fp32 baseline is often played
        # inside the first other cell of a worker (for its score), so move that time back to fp32's cell.
        others = sum(t for k, (_, t) in self._evals.items() if k not in done_before and k != own)
        cell.cell_s = time.perf_counter() - t0 - others + (self._evals[own][1] if own in done_before else 0.0)
        return cell


def store_pending(measurer: CellMeasurer, recipes: list[Recipe], store, run_id: int, *,
                  prepare: Callable[[Recipe, bool], None] | None = None,
                  stored: Callable[[Recipe], None] | None = None) -> tuple[list[CellResult], int]:
    """The agent's cell of each recipe: the one `store` holds, else measured and stored (one transaction
    per cell, so a kill loses only the cell in flight). A stored fp32 baseline's returns are reused rather
    than played again. `prepare(recipe, fresh)` runs before a fresh cell is stored and for each stored
    one (compress writes the variant folder there); `stored(recipe)` after each fresh cell is committed.
    The caller has checked the store's cells were measured on these weights (ResultStore.check_weights).
    Returns (cells in `recipes` order, how many were measured now)."""
    from drlbench.store import CellKey

    cfg, agent_id = measurer.config, measurer.agent.id

    def key(recipe) -> CellKey:
        return CellKey.make(agent_id, recipe, cfg.runtime, cfg.episodes, cfg.seed)

    baseline = store.get(key("fp32"))
    if baseline is not None and not measurer.has_evaluation("fp32"):
        measurer.reuse_evaluation(baseline)  # another piece (or an earlier run) already ran fp32
    cells, fresh_count = [], 0
    for recipe in recipes:
        cell = store.get(key(recipe))
        fresh = cell is None
        if fresh:
            cell = measurer.measure(recipe)
        if prepare is not None:
            prepare(recipe, fresh)
        if fresh:
            store.put(cell, run_id)
            fresh_count += 1
            if stored is not None:
                stored(recipe)
        cells.append(cell)
    return cells, fresh_count
