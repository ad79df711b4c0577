"""Measure one cell (agent × variant): return, latency, memory, energy -> `CellResult`.

The sweep and the bench suite both go through `CellMeasurer`, so a number in a saved benchmark
run and the same number in a sweep store come from one code path. Each agent's variants and fp32
baseline are built and evaluated once and reused by every measurement of that agent.

A cell's latency and energy are measured beside fp32's, in alternating short blocks (`side_by_side`):
its ratios to fp32 then compare two numbers taken under the same load, which two cells measured minutes
apart on a shared machine do not.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from drlbench.errors import DrlbenchError
from drlbench.evaluate import EvalResult, evaluate, normalized_score, raw_ratio
from drlbench.results import CellResult
from drlbench.variants import Variant, VariantBuilder
from drlbench.zoo import Agent


@dataclass
class MeasureConfig:
    episodes: int = 10
    seed: int = 0
    runtime: str = "onnxruntime"
    threads: int = 1
    # `latency()` / `energy()` (the bench suite's gates): their own loops
    latency_min_time_s: float = 0.3  # per block; blocks alternate variant / fp32
    latency_blocks: int = 3
    energy_actions: int = 2000
    energy_min_time_s: float = 0.5  # hardware counters tick every 1-10s of ms; the estimate needs less
    # `measure()` (a cell's record): `ratio_blocks` blocks, each timing the variant and fp32 back to back
    # for >= ratio_block_s each (latency, then energy). The cell's ratios to fp32 and its absolute
    # latency/energy are medians over these blocks; see `side_by_side`.
    ratio_blocks: int = 3
    ratio_block_s: float = 0.1
    memory: bool = True
    memory_steps: int = 200  # acts run in the memory probe after loading
    energy: bool = True
    exclusive_cpu: bool = True  # False when other measuring processes run beside this one (sweep workers)

    def __post_init__(self):
        from drlbench.tasks import check_eval_seeds

        if self.episodes < 1:
            raise DrlbenchError(f"episodes must be >= 1, got {self.episodes}")
        check_eval_seeds(self.seed, self.episodes)
        if self.ratio_blocks < 1 or not self.ratio_block_s > 0:
            raise DrlbenchError(f"need ratio_blocks >= 1 and ratio_block_s > 0, got {self.ratio_blocks}, "
                                f"{self.ratio_block_s}")


# Per side-by-side block: calls run untimed first (this runner just sat idle while the other side ran),
# and the fewest timed calls, so a slow policy still gets a usable median while a fast one (~10 µs a call
# here) reaches ratio_block_s first: measure_latency's default 2000 calls would outlast a 0.03 s block.
BLOCK_WARMUP = 20
BLOCK_MIN_CALLS = 100


def median_ratio(num: list[float], den: list[float]) -> float | None:
    """Median over blocks of num[i] / den[i]; blocks whose denominator is not > 0 (a counter that did
    not tick) are left out; None when none is left."""
    ratios = [n / d for n, d in zip(num, den, strict=True) if d > 0]
    return statistics.median(ratios) if ratios else None


@dataclass
class SideBySide:
    """Per-block meter readings of a variant and (optionally) its baseline, block i of each list taken
    moments apart; the properties are medians over the blocks."""

    latency: list = field(default_factory=list)  # LatencyStats of the variant, one per block
    energy: list = field(default_factory=list)  # EnergyStats of the variant, one per block; [] if energy is off
    baseline_latency: list = field(default_factory=list)  # the baseline's, [] when measured alone
    baseline_energy: list = field(default_factory=list)

    @property
    def blocks(self) -> int:
        return len(self.latency)

    def latency_us(self, stat: str) -> float:
        """The variant's own `stat` ("mean_us", "p50_us", ...): median over blocks."""
        return statistics.median(getattr(s, stat) for s in self.latency)

    def latency_ratio(self, stat: str) -> float | None:
        return median_ratio([getattr(s, stat) for s in self.latency],
                            [getattr(s, stat) for s in self.baseline_latency]) if self.baseline_latency else None

    @property
    def energy_j_per_1k_actions(self) -> float | None:
        return statistics.median(e.joules_per_1k_actions for e in self.energy) if self.energy else None

    @property
    def energy_ratio(self) -> float | None:
        if not (self.energy and self.baseline_energy):
            return None
        return median_ratio([e.joules_per_1k_actions for e in self.energy],
                            [e.joules_per_1k_actions for e in self.baseline_energy])

    @property
    def energy_source(self) -> str | None:
        return self.energy[0].source if self.energy else None


class CellMeasurer:
    def __init__(self, agent: Agent, config: MeasureConfig | None = None, builder: VariantBuilder | None = None):
        self.agent = agent
        self._random: float | None = None
        self.config = config or MeasureConfig()
        self.builder = builder or VariantBuilder(agent)
        self._evals: dict[tuple[str, str], tuple[EvalResult, float]] = {}
        self._runners: dict[tuple[str, str], object] = {}
        self._memory: dict[tuple[str, str], object] = {}

    def has_evaluation(self, name: str, runtime: str | None = None) -> bool:
        return (name, runtime or self.config.runtime) in self._evals

    def reuse_evaluation(self, cell: CellResult) -> None:
        """Take a stored cell's returns (a finished fp32 baseline) instead of running its episodes again."""
        seeds = [cell.seed + i for i in range(cell.episodes)]
        result = EvalResult(cell.env_id, seeds, list(cell.returns), list(cell.lengths))
        self._evals[(cell.variant, cell.runtime)] = (result, cell.eval_s or 0.0)

    def variant(self, name: str) -> Variant:
        return self.builder.get(name)

    def runner(self, name: str, runtime: str | None = None):
        key = (name, runtime or self.config.runtime)
        if key not in self._runners:
            self._runners[key] = self.variant(name).runner(key[1], self.config.threads)
        return self._runners[key]

    def evaluation(self, name: str, runtime: str | None = None) -> EvalResult:
        """Paired-seed returns, computed once per (variant, runtime)."""
        key = (name, runtime or self.config.runtime)
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

    def return_scores(self, name: str) -> dict:
        v, b = self.evaluation(name), self.evaluation("fp32")
        rand = self.random_return()
        return {"mean": v.mean, "baseline": b.mean, "random": rand, "raw_ratio": raw_ratio(v.mean, b.mean),
                "normalized_score": normalized_score(v.mean, b.mean, rand)}

    def observations(self):
        """Real states (fp32 rollouts on seeds disjoint from evaluation) to feed the meters."""
        return self.builder.calibration_states()

    def latency(self, name: str, runtime: str | None = None, baseline: str = "fp32",
                baseline_runtime: str | None = None, batch: int = 1):
        """Variant and baseline latency of one `batch`-row call, measured side by side in alternating blocks.

        Returns (variant stats of the last block, baseline stats of the last block, median p90 ratio,
        median p50 ratio); the ratios are what a noisy machine can still compare.
        """
        from drlbench.meters.latency import measure_latency

        obs = self.observations()
        runtime = runtime or self.config.runtime
        rv, rb = self.runner(name, runtime), self.runner(baseline, baseline_runtime or runtime)
        p90s, p50s = [], []
        for _ in range(self.config.latency_blocks):
            sv = measure_latency(rv, obs, batch=batch, min_time_s=self.config.latency_min_time_s)
            sb = measure_latency(rb, obs, batch=batch, min_time_s=self.config.latency_min_time_s)
            p90s.append(sv.p90_us / sb.p90_us)
            p50s.append(sv.p50_us / sb.p50_us)
        return sv, sb, statistics.median(p90s), statistics.median(p50s)

    def side_by_side(self, name: str, baseline: str | None = "fp32", runtime: str | None = None) -> SideBySide:
        """A cell's latency and energy: `ratio_blocks` blocks, each running the variant and the baseline
        back to back for >= ratio_block_s each — batch-1 latency of both, then energy per action of both
        (the meter `energy()` uses) — the first side alternating between blocks (v b, b v, v b, ...).

        Two numbers taken minutes apart on a shared machine differ by the load they met; block i's two
        sides meet nearly the same load, so their ratio keeps the variant's own difference, and the median
        over blocks drops a block a burst of load hit on one side only. `baseline=None`: the variant alone
        in the same blocks (fp32's own cell), so every cell's absolute numbers have one estimator.
        """
        from drlbench.meters.energy import measure_energy, select_meter
        from drlbench.meters.latency import measure_latency

        cfg, obs = self.config, self.observations()
        runners = {"v": self.runner(name, runtime)}
        if baseline is not None:
            runners["b"] = self.runner(baseline, runtime)
        meter = select_meter("cpu", exclusive=cfg.exclusive_cpu) if cfg.energy else None
        lat: dict[str, list] = {k: [] for k in runners}
        en: dict[str, list] = {k: [] for k in runners}
        for i in range(cfg.ratio_blocks):
            order = list(runners) if i % 2 == 0 else list(runners)[::-1]
            for k in order:
                lat[k].append(measure_latency(runners[k], obs, warmup=BLOCK_WARMUP, min_iterations=BLOCK_MIN_CALLS,
                                              min_time_s=cfg.ratio_block_s))
            if meter is not None:
                for k in order:
                    en[k].append(measure_energy(runners[k], obs, meter, n_actions=BLOCK_MIN_CALLS,
                                                min_time_s=cfg.ratio_block_s, warmup=BLOCK_WARMUP))
        return SideBySide(lat["v"], en["v"], lat.get("b", []), en.get("b", []))

    def latency_confirmed(self, name: str, limit: float, attempts: int = 3, **kwargs):
        """`latency`, re-measured while the p90 ratio is above `limit`: a regression must show in
        each of `attempts` independent measurements, so one scheduler hiccup on a ~10 µs call does not
        fail a gate. Returns the attempt with the lowest p90 ratio, plus the number of attempts."""
        best = None
        for attempt in range(1, attempts + 1):
            got = self.latency(name, **kwargs)
            if best is None or got[2] < best[2]:
                best = got
            if best[2] <= limit:
                break
        return (*best, attempt)

    def memory(self, name: str, runtime: str | None = None):
        """Peak RSS of a fresh process running the variant; probed once per (variant, runtime)."""
        from drlbench.meters.memory import measure_memory

        key = (name, runtime or self.config.runtime)
        if key not in self._memory:
            self._memory[key] = measure_memory(self.variant(name), runtime=key[1], steps=self.config.memory_steps)
        return self._memory[key]

    def energy(self, name: str, runtime: str | None = None):
        from drlbench.meters.energy import measure_energy, select_meter

        return measure_energy(self.runner(name, runtime), self.observations(),
                              select_meter("cpu", exclusive=self.config.exclusive_cpu),
                              n_actions=self.config.energy_actions, min_time_s=self.config.energy_min_time_s)

    def measure(self, name: str) -> CellResult:
        t0 = time.perf_counter()
        cfg, agent, variant = self.config, self.agent, self.variant(name)
        own = (name, cfg.runtime)
        done_before = set(self._evals)
        result = self.evaluation(name)
        scores = self.return_scores(name)
        is_fp32 = variant.recipe.kind == "fp32"
        sbs = self.side_by_side(name, baseline=None if is_fp32 else "fp32")
        lo, hi = result.ci95
        cell = CellResult(
            agent=agent.id, algo=agent.algo or "unknown", task=agent.card["task"], env_id=agent.env_id,
            variant=variant.name,
            family=variant.recipe.family, kind=variant.recipe.kind, ratio=variant.recipe.ratio, runtime=cfg.runtime,
            episodes=result.n, seed=cfg.seed, returns=result.returns, lengths=result.lengths,
            return_mean=result.mean, return_std=result.std, return_ci95_lo=lo, return_ci95_hi=hi,
            baseline_return_mean=scores["baseline"], raw_ratio=scores["raw_ratio"],
            normalized_score=scores["normalized_score"], random_return_mean=scores["random"],
            artifact_bytes=variant.artifact_bytes, n_params=variant.n_params,
            # the variant's own numbers: medians over the side-by-side blocks (see `side_by_side`)
            latency_us_mean=sbs.latency_us("mean_us"), latency_us_p50=sbs.latency_us("p50_us"),
            latency_us_p90=sbs.latency_us("p90_us"), latency_us_p99=sbs.latency_us("p99_us"),
            # ÷ fp32 from the same blocks; fp32's own cell: 1.0 by definition, 0 blocks
            latency_ratio_p50=1.0 if is_fp32 else sbs.latency_ratio("p50_us"),
            latency_ratio_mean=1.0 if is_fp32 else sbs.latency_ratio("mean_us"),
            ratio_blocks=0 if is_fp32 else sbs.blocks,
            threads=cfg.threads, build_s=variant.build.get("build_s"), eval_s=self._evals[(name, cfg.runtime)][1],
            build=variant.build, agent_fingerprint=agent.fingerprint,
        )
        if cfg.memory:
            mem = self.memory(name)
            cell.rss_runtime_mib, cell.rss_loaded_mib, cell.rss_running_mib = (
                mem.rss_runtime_mib, mem.rss_loaded_mib, mem.rss_running_mib)
        if cfg.energy:
            cell.energy_j_per_1k_actions, cell.energy_source = sbs.energy_j_per_1k_actions, sbs.energy_source
            cell.energy_j_per_episode = cell.energy_j_per_1k_actions * sum(result.lengths) / len(result.lengths) / 1000
            cell.energy_ratio = 1.0 if is_fp32 else sbs.energy_ratio  # measured with energy_source's meter
        # A cell's cost holds its own episodes, wherever they ran: the fp32 baseline is often played
        # inside the first other cell of a worker (for its score), so move that time back to fp32's cell.
        others = sum(t for k, (_, t) in self._evals.items() if k not in done_before and k != own)
        cell.cell_s = time.perf_counter() - t0 - others + (self._evals[own][1] if own in done_before else 0.0)
        return cell
