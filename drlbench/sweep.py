"""`drlbench sweep`: every agent × variant cell, stored as it finishes, resumable, on any executor.

This module is the driver: it plans, hands work units (units.py) to an executor (executors.py: processes
on this machine, or a Dask cluster) and is the only writer of the store. Each finished cell a worker
returns is stored at once, one transaction per cell, so killing the sweep at any moment — SIGKILL
included — loses only the cells in flight, and a rerun with the same arguments does only what is missing.

An agent's lead unit runs first: its fp32 cell (or just the fp32 evaluation, when that cell is stored or
not asked for) and its calibration states. Every other cell is then a unit of its own that carries those
shared inputs, so no unit plays fp32's episodes or rolls out calibration states again and any worker can
take any cell. Ready units go out longest first (physics dominates: HumanoidStandup, Ant and Humanoid
are slowest; QAT adds its fine-tuning), one per free slot, so each time a unit finishes the longest ready
one goes next. A cell that fails is reported with its agent and variant and the sweep goes on; it ends
with the list of failed cells (the CLI exits 1).

Efficiency = Σ physics_s / (wall × slots): the share of the workers' time spent inside env.step.
Each worker runs torch, ONNX Runtime and the physics on one thread.
"""

from __future__ import annotations

import heapq
import itertools
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field

from tqdm import tqdm

from drlbench.errors import DrlbenchError

# Arguments that change a cell's numbers: a store made with other values is refused.
MEASUREMENT_ARGS = ("episodes", "seed", "runtime", "threads", "memory", "energy")
# Estimated seconds of 10 episodes on a 2-core machine (cell_s in docs/report/results.db), of a cell's
# builds and meters, and of QAT's fine-tuning: for longest-first only.
_EVAL_S = {"HumanoidStandup": 7.0, "Humanoid": 4.0, "Ant": 4.0, "Hopper": 2.0, "HalfCheetah": 1.0}
_CELL_S, _QAT_S = 1.0, 13.0


@dataclass
class SweepArgs:
    out: str = "results.db"
    agents: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)
    grid: str = "paper"
    episodes: int = 10
    seed: int = 0
    workers: int = 1
    executor: str = "local"  # executors.EXECUTORS
    address: str | None = None  # a running Dask scheduler to join (executor "dask")
    runtime: str = "onnxruntime"
    threads: int = 1
    memory: bool = True
    energy: bool = True
    progress: bool = True
    remeasure_retrained: bool = False  # replace the cells of an agent whose weights changed, instead of refusing


def runnable(recipes: list, runtime: str) -> list:
    """The recipes `runtime` can run (an int8 graph has no eager-torch form; low-bit graphs are ONNX only);
    the runtime's extra is checked first, so a missing one fails before a store is made."""
    from drlbench.runtimes import backend

    backend(runtime)
    keep = [r for r in recipes if runtime in r.runtimes]
    left = [r.name for r in recipes if runtime not in r.runtimes]
    if not keep:
        raise DrlbenchError(f"none of the variants {', '.join(left)} runs on {runtime}; it runs "
                            f"fp32, pruned{' and int8' if runtime != 'torch' else ''} variants")
    if left:
        print(f"{len(left)} variants have no {runtime} form and are left out: {', '.join(left)}", file=sys.stderr)
    return keep


def measure_config(args: SweepArgs):
    from drlbench.cells import MeasureConfig

    # Short meters: the sweep's budget is physics. A cell's latency and energy come from 3 side-by-side
    # blocks of 0.03 s per side and meter (~0.36 s for a variant and fp32, ~0.18 s for fp32 alone).
    # The CPU is the cell's own only with one worker on this machine (RAPL would count the others).
    alone = args.workers == 1 and not args.address
    return MeasureConfig(episodes=args.episodes, seed=args.seed, runtime=args.runtime, threads=args.threads,
                         ratio_blocks=3, ratio_block_s=0.03,
                         memory=args.memory, energy=args.energy, exclusive_cpu=alone)


def cell_cost(task: str, recipe, episodes: int) -> float:
    fine_tuned = recipe.name.startswith("qat")  # qat, qat_eq and the low-bit qat_w… all fine-tune
    return _EVAL_S.get(task, 2.0) * episodes / 10 + _CELL_S + (_QAT_S if fine_tuned else 0.0)


def plan(args: SweepArgs, agents: list[str], recipes: list, done_keys) -> tuple[list[tuple[str, list]], int]:
    """(agent, pending recipes) longest first — agents by their total, each agent's recipes by their own
    cost — and the number of cells already done. Costs come from each agent's card: no weights are loaded."""
    from drlbench.store import CellKey
    from drlbench.zoo import load_card

    todo, skipped = [], 0
    for agent_id in agents:
        pending = [r for r in recipes
                   if CellKey.make(agent_id, r, args.runtime, args.episodes, args.seed) not in done_keys]
        skipped += len(recipes) - len(pending)
        if pending:
            task = load_card(agent_id)["task"]
            pending.sort(key=lambda r: -cell_cost(task, r, args.episodes))
            todo.append((agent_id, pending, sum(cell_cost(task, r, args.episodes) for r in pending)))
    todo.sort(key=lambda t: -t[2])
    return [(a, p) for a, p, _ in todo], skipped


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


class _Run:
    """One sweep's bookkeeping: the ready units (a heap, longest first), the cells each agent holds back
    until its lead unit's shared inputs arrive, and what was stored or failed."""

    def __init__(self, args: SweepArgs, store, run_id: int, executor, bar):
        self.args, self.store, self.run_id, self.ex, self.bar = args, store, run_id, executor, bar
        self.config, self.token = asdict(measure_config(args)), uuid.uuid4().hex
        self.ready: list = []
        self.held: dict[str, list] = {}
        self.tasks: dict[str, str] = {}
        self.weights: dict[str, str] = {}  # agent -> fingerprint its cells must carry
        self.failed: list[dict] = []
        self.stored, self.physics_s, self.per_agent = 0, 0.0, {}
        self._uids = itertools.count()

    def _push(self, unit) -> None:
        unit.uid = next(self._uids)  # ties go first come, first served
        heapq.heappush(self.ready, (-unit.cost, unit.uid, unit))

    def start(self, todo: list[tuple[str, list]]) -> None:
        from drlbench.store import CellKey
        from drlbench.units import AgentSpec, Unit, baseline_of
        from drlbench.zoo import load_card

        a = self.args
        for agent_id, pending in todo:
            self.tasks[agent_id] = load_card(agent_id)["task"]
            known = self.store.fingerprints(agent_id)
            if len(known) == 1:
                self.weights[agent_id] = next(iter(known))
            stored = self.store.get(CellKey.make(agent_id, "fp32", a.runtime, a.episodes, a.seed))
            lead = tuple(r.name for r in pending if r.kind == "fp32")
            self.held[agent_id] = [r for r in pending if r.kind != "fp32"]
            cost = sum(cell_cost(self.tasks[agent_id], r, a.episodes) for r in pending)  # unlocks them all
            self._push(Unit(self.token, AgentSpec.of(agent_id), self.config, lead, lead=True, cost=cost,
                            baseline=None if stored is None else baseline_of(stored.to_dict())))

    def fill(self) -> None:
        while self.ready and self.ex.in_flight < max(self.ex.slots, 1):
            self.ex.submit(heapq.heappop(self.ready)[2])

    def done(self, unit, outcome) -> None:
        from drlbench.units import Unit, one_line

        agent_id = unit.agent.id
        if isinstance(outcome, BaseException):
            error = one_line(outcome)
            for name in unit.variants:
                self._fail(agent_id, name, error)
            for recipe in self.held.pop(agent_id, []) if unit.lead else []:
                self._fail(agent_id, recipe.name, f"not measured: its fp32 baseline failed ({error})")
            return
        self.per_agent[agent_id] = self.per_agent.get(agent_id, 0.0) + outcome["seconds"]
        self.physics_s += outcome["physics_s"]
        for cell in outcome["cells"]:
            self._store(cell)
        for f in outcome["failed"]:
            self._fail(agent_id, f["variant"], f["error"])
        if unit.lead:
            shared, a = outcome["shared"], self.args
            for recipe in self.held.pop(agent_id, []):
                self._push(Unit(self.token, unit.agent, self.config, (recipe.name,),
                                baseline=unit.baseline or shared["baseline"], calibration=shared["calibration"],
                                cost=cell_cost(self.tasks[agent_id], recipe, a.episodes)))

    def _store(self, data: dict) -> None:
        from drlbench.results import CellResult

        cell = CellResult.from_dict(data)
        expected = self.weights.setdefault(cell.agent, cell.agent_fingerprint)
        if cell.agent_fingerprint != expected:  # a worker whose drlbench zoo differs from the others'
            self._fail(cell.agent, cell.variant, f"measured on other weights (fingerprint {cell.agent_fingerprint}, "
                                                 f"expected {expected}): that worker's drlbench differs")
            return
        self.store.put(cell, self.run_id)
        self.stored += 1
        self.bar.set_postfix_str(f"{cell.agent}/{cell.variant}", refresh=False)  # shown by the update
        self.bar.update(1)

    def _fail(self, agent_id: str, variant: str, error: str) -> None:
        self.failed.append({"agent": agent_id, "variant": variant, "error": error})
        tqdm.write(f"{self.args.out}: {agent_id} × {variant} failed: {error}", file=sys.stderr)
        self.bar.update(1)


def sweep(args: SweepArgs, executor=None) -> dict:
    """Measure the pending cells into args.out. `executor`: an executor not yet started (default: the one
    args name). Returns the run's summary; its "failed" lists the cells that raised."""
    from drlbench.executors import make_executor
    from drlbench.grid import resolve
    from drlbench.store import ResultStore

    if args.workers < 1:
        raise DrlbenchError(f"--workers must be >= 1, got {args.workers}")
    measure_config(args)  # episodes and seed checked (tasks.check_episodes_and_seed) before a store is created
    agents, recipes = resolve(args.agents, args.variants, args.grid)  # so are the names
    recipes = runnable(recipes, args.runtime)
    executor = executor or make_executor(args.executor, args.workers, args.address)
    recorded_keys = dict((k, v) for k, v in asdict(args).items() if k in MEASUREMENT_ARGS)
    # the cluster first: an unreachable scheduler fails before the store is created or a run recorded
    with executor, ResultStore(args.out) as store:
        # the selection (agents, variants, grid) and where it runs may change: finished cells are skipped
        # so may the runtime: it is part of each cell's key, and a store holds every runtime's cells side by side
        diff = store.check_args(recorded_keys, ignore=("agents", "variants", "grid", "workers", "executor", "address",
                                                       "runtime"))
        if diff:
            shown = "; ".join(f"{k}: {old!r} in the store, {new!r} now" for k, (old, new) in diff.items())
            raise DrlbenchError(f"{args.out} holds cells measured with other settings ({shown}); "
                                "rerun with the store's settings or use another --out")
        _check_agents_unchanged(store, args, agents)
        todo, skipped = plan(args, agents, recipes, store.done_keys())
        run_id = store.start_run(recorded_keys | {"agents": args.agents, "variants": args.variants,
                                                  "grid": args.grid, "workers": executor.slots,
                                                  "executor": executor.name, "address": args.address})
        total = sum(len(v) for _, v in todo)
        if skipped:
            print(f"{args.out}: {skipped} cells already finished, {total} to go", file=sys.stderr)
        bar = tqdm(total=total, unit="cell", disable=not args.progress, smoothing=0.1)
        t0 = time.perf_counter()
        run = _Run(args, store, run_id, executor, bar)
        run.start(todo)
        run.fill()
        for unit, outcome in executor.as_completed():
            run.done(unit, outcome)
            run.fill()
        wall = time.perf_counter() - t0
        efficiency = run.physics_s / (wall * executor.slots) if total else 0.0
        bar.set_postfix_str(f"efficiency {efficiency:.2f} ({executor.slots} × {executor.name})"
                            + (f", {len(run.failed)} failed" if run.failed else ""))
        bar.close()
        summary = {"cells": run.stored, "skipped": skipped, "failed": run.failed, "wall_s": wall,
                   "executor": executor.name, "workers": executor.slots, "startup_s": executor.startup_s,
                   "physics_s": run.physics_s, "efficiency": efficiency, "per_agent_s": run.per_agent}
        store.finish_run(run_id, {k: v for k, v in summary.items() if k not in ("failed", "per_agent_s")})
    return summary | {"run_id": run_id}
