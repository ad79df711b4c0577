"""The record of one finished cell (agent × variant): what the sweep stores and the report reads.

Flat fields only, so a row maps to one SQLite row / one JSON object. Units are in the names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass
class CellResult:
    # identity
    agent: str  # "sac-hopper"
    algo: str  # "sac"
    task: str  # "Hopper"
    env_id: str  # "Hopper-v5"
    variant: str  # "prune_l2_30"
    family: str  # variants.Recipe.family: "baseline" | "quantization" | "pruning" | "combined" | "as_is"
    kind: str  # variants.KINDS: "fp32" | "ptdq" | "ptsq" | "qat" | "prune_l1" | "prune_l2" | …
    ratio: float | None  # pruning ratio, else None
    runtime: str  # runtime of the return and latency numbers: names.RUNTIMES (artifact_bytes: its file)
    # return, on paired seeds seed … seed+episodes-1
    episodes: int
    seed: int
    returns: list[float]
    lengths: list[int]
    return_mean: float
    return_std: float
    return_ci95_lo: float
    return_ci95_hi: float
    baseline_return_mean: float  # fp32 on the same seeds and runtime
    raw_ratio: float  # return_mean / baseline_return_mean (the paper's rule)
    normalized_score: float  # (R_v - R_rand) / (R_base - R_rand)
    random_return_mean: float | None
    # size
    artifact_bytes: int
    n_params: int
    # latency of one act() at batch 1, microseconds: each the median over the cell's `ratio_blocks`
    # side-by-side blocks (CellMeasurer.compare) of that block's statistic over >= ratio_block_s of
    # timed calls (fp32: the same blocks, run alone). Cells stored before ratio_blocks existed: one loop.
    latency_us_mean: float | None = None
    latency_us_p50: float | None = None
    latency_us_p90: float | None = None
    latency_us_p99: float | None = None
    threads: int = 1
    # memory, MiB: peak RSS of a fresh process that imports the runtime only / loads the model / runs it
    rss_runtime_mib: float | None = None
    rss_loaded_mib: float | None = None
    rss_running_mib: float | None = None
    # energy per 1,000 actions (batch 1), joules, and where it came from
    energy_j_per_1k_actions: float | None = None
    energy_source: str | None = None  # "nvml" | "rapl" | "estimate-cpu-time"
    energy_j_per_episode: float | None = None  # the paper's unit: depends on episode length
    # variant ÷ fp32, measured side by side: `ratio_blocks` blocks, each running the variant and fp32 back
    # to back in one process (first side alternating), so the load of a shared machine meets both alike;
    # each field is the median over the blocks of that block's variant / fp32. Prefer these to dividing
    # by the fp32 cell's own record, which was measured minutes apart under other load.
    # fp32's own cell: 1.0 by definition and ratio_blocks 0 (nothing measured side by side).
    # None: a store written before these fields existed (or energy_ratio with energy off).
    latency_ratio_p50: float | None = None  # median over blocks of variant p50 / fp32 p50
    latency_ratio_mean: float | None = None  # median over blocks of variant mean / fp32 mean
    # median over blocks of variant / fp32 joules per 1k actions, with the meter `energy_source` names; for
    # "estimate-cpu-time" the wattage cancels: a ratio of CPU time per action, an estimate, not measured energy
    energy_ratio: float | None = None
    ratio_blocks: int | None = None  # blocks the ratios are medians of
    # the runtime's call floor (runtimes/floor.py: a one-op model of the actor's shapes through the same call
    # path), batch-1 p50: how much of latency_us_p50 is binding and copies rather than the model
    latency_floor_us_p50: float | None = None
    # an edge runtime's cell: median over blocks of its p50 / ONNX Runtime fp32's p50 (side by side, ORT on
    # its fast path); None on onnxruntime itself
    latency_ratio_ort_fp32_p50: float | None = None
    # cost of producing the cell
    build_s: float | None = None
    eval_s: float | None = None
    cell_s: float | None = None  # wall time of the whole cell: builds it triggered, episodes, meters
    physics_s: float | None = None  # of eval_s, the seconds inside env.step (None: stored before it was timed)
    build: dict = field(default_factory=dict)
    agent_fingerprint: str | None = None  # Agent.fingerprint of the weights measured

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "CellResult":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def score(cell: CellResult, rule: str) -> float:
    """The cell's return score under `rule` ("normalized" or "raw"); NaN where the rule is undefined."""
    value = cell.normalized_score if rule == "normalized" else cell.raw_ratio
    return float("nan") if value is None else float(value)
