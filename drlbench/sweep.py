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


def _init_worker(queue, threads: int) -> None:
    _die_with_parent()
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    global _QUEUE
    _QUEUE = queue


_QUEUE = None
_MEASURERS: dict = {}


def _run_agent(task) -> tuple[str, int, float]:
    """Measure one agent's pending variants, storing each cell when done. Returns (agent, cells, s)."""
    from drlbench.cells import CellMeasurer
    from drlbench.store import CellKey, ResultStore
    from drlbench.zoo import load_agent

    agent_id, variants, args_dict, run_id = task
    args = SweepArgs(**args_dict)
    t0 = time.perf_counter()
    if agent_id not in _MEASURERS:  # a worker keeps its current agent: its next piece reuses artifacts
        _MEASURERS.clear()  # and only that one: 32 ORT sessions per agent add up over 25 agents
        _MEASURERS[agent_id] = CellMeasurer(load_agent(agent_id), measure_config(args))
    measurer = _MEASURERS[agent_id]
    done = 0
    with ResultStore(args.out) as store:
        baseline = store.get(CellKey.make(agent_id, "fp32", args.runtime, args.episodes, args.seed))
        if baseline is not None and not measurer.has_evaluation("fp32"):
            measurer.reuse_evaluation(baseline)  # another piece (or an earlier run) already ran fp32
        for name in variants:
            if store.has(CellKey.make(agent_id, name, args.runtime, args.episodes, args.seed)):
                continue  # finished by an earlier (killed) run of this sweep
            t = time.perf_counter()
            cell = measurer.measure(name)
            store.put(cell, run_id)
            done += 1
            if _QUEUE is not None:
                _QUEUE.put((agent_id, name, time.perf_counter() - t))
    return agent_id, done, time.perf_counter() - t0


def plan(args: SweepArgs, done_keys) -> tuple[list[tuple[str, list[str]]], int]:
    """(agent, pending variants) work units, longest first, and the number of cells already done."""
    from drlbench.grid import resolve
    from drlbench.store import CellKey
    from drlbench.zoo import load_agent

    agents, variants = resolve(args.agents, args.variants, args.grid)
    units, skipped = [], 0
    for agent_id in agents:
        pending = [v for v in variants
                   if CellKey.make(agent_id, v, args.runtime, args.episodes, args.seed) not in done_keys]
        skipped += len(variants) - len(pending)
        if pending:
            units.append((agent_id, pending))
    # Few agents per worker (a small grid): split each agent's variants into pieces handed out one
    # at a time, so no core idles at the end. fp32 is in the first piece; a piece that starts after it
    # is stored reuses its returns, one that starts alongside runs the fp32 episodes itself.
    pieces = -(-4 * args.workers // max(len(units), 1)) if args.workers > 1 else 1
    units = [(a, vs[i::pieces]) for a, vs in units for i in range(min(pieces, len(vs)))]
    # Longest-processing-time first: physics per episode dominates, Humanoid-class tasks are slowest.
    cost = {"HumanoidStandup": 4.0, "Humanoid": 3.0, "Ant": 2.5, "Hopper": 1.0, "HalfCheetah": 1.0}
    units.sort(key=lambda u: -cost.get(load_agent(u[0]).card["task"], 1.0) * len(u[1]))
    return units, skipped


def _check_agents_unchanged(store, args: SweepArgs) -> None:
    """Finished cells are skipped by id; an agent retrained since its cells were measured is refused,
    or with `remeasure_retrained` has its cells deleted (one transaction) to be measured again."""
    from drlbench.grid import resolve
    from drlbench.zoo import load_agent

    for agent_id in resolve(args.agents, args.variants, args.grid)[0]:
        stored = store.fingerprints(agent_id)
        if not stored:
            continue
        now = load_agent(agent_id).fingerprint
        if stored == {now}:
            continue
        if not args.remeasure_retrained:
            raise DrlbenchError(f"{args.out} holds cells of {agent_id} measured on other weights (fingerprint "
                                f"{', '.join(sorted(stored))}, now {now}): the agent was retrained since; "
                                "sweep into a new --out, or pass --remeasure-retrained to replace its cells")
        dropped = store.delete_agent(agent_id)
        print(f"{args.out}: {agent_id} was retrained (fingerprint {now}); its {dropped} old cells are "
              "measured again", file=sys.stderr)


def sweep(args: SweepArgs) -> dict:
    from drlbench.store import ResultStore

    if args.workers < 1:
        raise DrlbenchError(f"--workers must be >= 1, got {args.workers}")
    if args.episodes < 1:
        raise DrlbenchError(f"--episodes must be >= 1, got {args.episodes}")
    from drlbench.grid import resolve
    from drlbench.tasks import check_eval_seeds

    check_eval_seeds(args.seed, args.episodes)

    resolve(args.agents, args.variants, args.grid)  # bad names fail here, before a store is created
    recorded_keys = dict((k, v) for k, v in asdict(args).items() if k in MEASUREMENT_ARGS)
    with ResultStore(args.out) as store:
        # the selection (agents, variants, grid) and worker count may change: finished cells are skipped
        diff = store.check_args(recorded_keys, ignore=("agents", "variants", "grid", "workers"))
        if diff:
            shown = "; ".join(f"{k}: {old!r} in the store, {new!r} now" for k, (old, new) in diff.items())
            raise DrlbenchError(f"{args.out} holds cells measured with other settings ({shown}); "
                                "rerun with the store's settings or use another --out")
        _check_agents_unchanged(store, args)
        units, skipped = plan(args, store.done_keys())
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
        for task in tasks:
            agent_id, n, secs = _run_agent(task)
            per_agent[agent_id] = per_agent.get(agent_id, 0.0) + secs
            bar.update(n)
    else:
        ctx = mp.get_context("spawn")  # no inherited torch/ORT thread pools
        queue = ctx.Queue()
        with ctx.Pool(min(args.workers, len(tasks)) or 1, _init_worker, (queue, args.threads)) as pool:
            pending = pool.map_async(_run_agent, tasks, chunksize=1)
            while not pending.ready() or not queue.empty():
                try:
                    agent_id, name, _ = queue.get(timeout=0.5)
                    bar.update(1)
                    bar.set_postfix_str(f"{agent_id}/{name}", refresh=False)
                except Exception:  # queue.Empty: just poll again
                    pass
            for agent_id, _, secs in pending.get():
                per_agent[agent_id] = per_agent.get(agent_id, 0.0) + secs
    bar.close()
    wall = time.perf_counter() - t0
    with ResultStore(args.out) as store:
        store.finish_run(run_id)
    return {"cells": total, "skipped": skipped, "wall_s": wall, "per_agent_s": per_agent, "run_id": run_id}
