"""`drlbench sweep`: every agent × variant cell, persisted as it finishes, resumable, in parallel.

Work unit = one agent with its pending variants: the agent's fp32 baseline, calibration states and
artifacts are made once and shared by all its cells. Workers write each finished cell to the
SQLite store themselves (one transaction per cell), so killing the sweep at any moment — SIGKILL
included — loses at most the cells in flight, and a rerun with the same arguments does only what
is missing. Each worker runs torch, ONNX Runtime and the physics on one thread.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import queue
import signal
import sys
import time
from dataclasses import asdict, dataclass, field

from tqdm import tqdm

from drlbench.errors import DrlbenchError

# Arguments that change a cell's numbers: a store made with other values is refused.
MEASUREMENT_ARGS = ("episodes", "seed", "runtime", "threads", "memory", "energy")


@dataclass
class SweepArgs:
    out: str = "results.db"
    agents: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)
    grid: str = "paper"
    episodes: int = 10
    seed: int = 0
    workers: int = 1
    runtime: str = "onnxruntime"
    threads: int = 1
    memory: bool = True
    energy: bool = True
    progress: bool = True
    remeasure_retrained: bool = False  # replace the cells of an agent whose weights changed, instead of refusing


def measure_config(args: SweepArgs):
    from drlbench.cells import MeasureConfig

    # Short meters: the sweep's budget is physics. A cell's latency and energy come from 3 side-by-side
    # blocks of 0.03 s per side and meter (~0.36 s for a variant and fp32, ~0.18 s for fp32 alone).
    return MeasureConfig(episodes=args.episodes, seed=args.seed, runtime=args.runtime, threads=args.threads,
                         ratio_blocks=3, ratio_block_s=0.03,
                         memory=args.memory, energy=args.energy, exclusive_cpu=args.workers == 1)


def _die_with_parent() -> None:
    """Linux: a worker gets SIGKILL when the sweep process dies, so no orphan keeps writing."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _init_worker(progress, threads: int) -> None:
    _die_with_parent()
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    global _QUEUE
    _QUEUE = progress


_QUEUE = None
_MEASURERS: dict = {}


def _run_agent(task) -> tuple[str, int, float]:
    """Measure one agent's pending variants, storing each cell when done. Returns (agent, cells, s)."""
    from drlbench.cells import CellMeasurer, store_pending
    from drlbench.store import ResultStore
    from drlbench.zoo import load_agent

    agent_id, recipes, args_dict, run_id = task
    args = SweepArgs(**args_dict)
    t0 = time.perf_counter()
    if agent_id not in _MEASURERS:  # a worker keeps its current agent: its next piece reuses artifacts
        _MEASURERS.clear()  # and only that one: 32 ORT sessions per agent add up over 25 agents
        _MEASURERS[agent_id] = CellMeasurer(load_agent(agent_id), measure_config(args))

    def stored(recipe) -> None:
        if _QUEUE is not None:
            _QUEUE.put((agent_id, recipe.name))

    with ResultStore(args.out) as store:
        _, done = store_pending(_MEASURERS[agent_id], recipes, store, run_id, stored=stored)
    return agent_id, done, time.perf_counter() - t0


def plan(args: SweepArgs, agents: list[str], recipes: list, done_keys) -> tuple[list[tuple[str, list]], int]:
    """(agent, pending recipes) work units, longest first, and the number of cells already done. Sorted by
    the task on each agent's card: no weights are loaded here."""
    from drlbench.store import CellKey
    from drlbench.zoo import load_card

    units, skipped = [], 0
    for agent_id in agents:
        pending = [r for r in recipes
                   if CellKey.make(agent_id, r, args.runtime, args.episodes, args.seed) not in done_keys]
        skipped += len(recipes) - len(pending)
        if pending:
            units.append((agent_id, pending))
    # Few agents per worker (a small grid): split each agent's variants into pieces handed out one
    # at a time, so no core idles at the end. fp32 is in the first piece; a piece that starts after it
    # is stored reuses its returns, one that starts alongside runs the fp32 episodes itself.
    pieces = -(-4 * args.workers // max(len(units), 1)) if args.workers > 1 else 1
    units = [(a, vs[i::pieces]) for a, vs in units for i in range(min(pieces, len(vs)))]
    # Longest-processing-time first: physics per episode dominates, Humanoid-class tasks are slowest.
    cost = {"HumanoidStandup": 4.0, "Humanoid": 3.0, "Ant": 2.5, "Hopper": 1.0, "HalfCheetah": 1.0}
    tasks = {a: load_card(a)["task"] for a, _ in units}
    units.sort(key=lambda u: -cost.get(tasks[u[0]], 1.0) * len(u[1]))
    return units, skipped


def _check_agents_unchanged(store, args: SweepArgs, agents: list[str]) -> None:
    """Finished cells are skipped by id: an agent retrained since its cells were measured is refused, or
    with `remeasure_retrained` has its cells deleted to be measured again. Only agents with stored cells
    are loaded (their weights give the fingerprint)."""
    from drlbench.zoo import load_agent

    for agent_id in agents:
        if not store.fingerprints(agent_id):
            continue
        now = load_agent(agent_id).fingerprint
        dropped = store.check_weights(agent_id, now, replace=args.remeasure_retrained,
                                      hint="sweep into a new --out, or pass --remeasure-retrained to replace its cells")
        if dropped:
            print(f"{args.out}: {agent_id} was retrained (fingerprint {now}); its {dropped} old cells are "
                  "measured again", file=sys.stderr)


def _drain(progress, pending, bar) -> None:
    """Advance the bar for each cell a worker reports, until every unit is done and reported."""
    while not pending.ready() or not progress.empty():
        try:
            agent_id, name = progress.get(timeout=0.5)
        except queue.Empty:  # nothing reported in this interval: poll again
            continue
        bar.update(1)
        bar.set_postfix_str(f"{agent_id}/{name}", refresh=False)


def sweep(args: SweepArgs) -> dict:
    from drlbench.grid import resolve
    from drlbench.store import ResultStore

    if args.workers < 1:
        raise DrlbenchError(f"--workers must be >= 1, got {args.workers}")
    measure_config(args)  # episodes and seed checked (tasks.check_episodes_and_seed) before a store is created
    agents, recipes = resolve(args.agents, args.variants, args.grid)  # so are the names
    recorded_keys = dict((k, v) for k, v in asdict(args).items() if k in MEASUREMENT_ARGS)
    with ResultStore(args.out) as store:
        # the selection (agents, variants, grid) and worker count may change: finished cells are skipped
        diff = store.check_args(recorded_keys, ignore=("agents", "variants", "grid", "workers"))
        if diff:
            shown = "; ".join(f"{k}: {old!r} in the store, {new!r} now" for k, (old, new) in diff.items())
            raise DrlbenchError(f"{args.out} holds cells measured with other settings ({shown}); "
                                "rerun with the store's settings or use another --out")
        _check_agents_unchanged(store, args, agents)
        units, skipped = plan(args, agents, recipes, store.done_keys())
        run_id = store.start_run(recorded_keys | {"agents": args.agents, "variants": args.variants,
                                                  "grid": args.grid, "workers": args.workers})
    total = sum(len(v) for _, v in units)
    if skipped:
        print(f"{args.out}: {skipped} cells already finished, {total} to go", file=sys.stderr)
    t0 = time.perf_counter()
    _MEASURERS.clear()  # one run's measurers: another run may bring other settings or retrained weights
    per_agent: dict[str, float] = {}
    bar = tqdm(total=total, unit="cell", disable=not args.progress, smoothing=0.1)
    tasks = [(a, v, asdict(args), run_id) for a, v in units]
    if args.workers == 1:
        _init_worker(None, args.threads)
        results = []
        for task in tasks:
            results.append(_run_agent(task))
            bar.update(results[-1][1])
    else:
        ctx = mp.get_context("spawn")  # no inherited torch/ORT thread pools
        progress = ctx.Queue()
        with ctx.Pool(min(args.workers, len(tasks)) or 1, _init_worker, (progress, args.threads)) as pool:
            pending = pool.map_async(_run_agent, tasks, chunksize=1)
            _drain(progress, pending, bar)
            results = pending.get()
    for agent_id, _, secs in results:
        per_agent[agent_id] = per_agent.get(agent_id, 0.0) + secs
    bar.close()
    wall = time.perf_counter() - t0
    with ResultStore(args.out) as store:
        store.finish_run(run_id)
    return {"cells": total, "skipped": skipped, "wall_s": wall, "per_agent_s": per_agent, "run_id": run_id}
