"""What the sweep cost: per-cell wall time by task and each recorded run's wall time."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from drlbench.report.markdown import md_table
from drlbench.report.scaling import scaling_table
from drlbench.report.selection import ReportSelection
from drlbench.results import CellResult


def _wall_s(run: dict) -> float | None:
    if not run.get("finished_at"):
        return None
    return (datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["started_at"])).total_seconds()


def _run_row(run: dict) -> list[str]:
    args, wall = run["args"], _wall_s(run)
    agents = args.get("agents") or ([args["agent"]] if args.get("agent") else [])  # sweep / compress
    grid = args.get("grid", "paper")
    load, cores = run.get("machine", {}).get("load_1m"), run.get("machine", {}).get("cpu_count")
    shown_load = "—" if load is None else f"{load:.1f} of {cores} cores" if cores else f"{load:.1f}"
    eff = (run.get("summary") or {}).get("efficiency")
    return [str(run["id"]), str(args.get("workers", 1)), shown_load,
            ", ".join(agents) or ("all bundled" if grid == "paper" else f"{grid} grid's"),
            ", ".join(args.get("variants") or []) or f"{grid} grid", run["started_at"],
            "unfinished" if wall is None else f"{wall:.0f}", "—" if eff is None else f"{eff:.2f}"]


def _cost(cells: list[CellResult]) -> dict:
    secs = [c.cell_s for c in cells]
    return {"agents": len({c.agent for c in cells}), "cells": len(cells),
            "env_steps": sum(sum(c.lengths) for c in cells), "cell_s_median": float(np.median(secs)),
            "cell_s_mean": float(np.mean(secs)), "cell_s_max": max(secs), "cell_s_sum": sum(secs),
            "episode_share": sum(c.eval_s or 0.0 for c in cells) / sum(secs) if sum(secs) > 0 else float("nan")}


def task_costs(cells: list[CellResult]) -> dict[str, dict]:
    """Per task, then "all": cell wall-time statistics of the timed cells (those with cell_s)."""
    timed = [c for c in cells if c.cell_s is not None]
    if not timed:
        return {}
    out = {task: _cost([c for c in timed if c.task == task]) for task in sorted({c.task for c in timed})}
    return out | {"all": _cost(timed)}


def cost_section(sel: ReportSelection, runs: list[dict]) -> list[str]:
    """Per-cell wall time by task (one thread each, as recorded by the sweep) and each run's wall time."""
    lines = ["## Sweep cost", "",
             "Measured wall time of each cell on one thread: the variant's build, its episodes and the meters "
             "(the fp32 cell also pays for the calibration rollouts). The sum is the serial cost; runs with "
             "`--workers N` share it out.", ""]
    timed = [c for c in sel.cells if c.cell_s is not None]
    if not timed:
        return lines + ["Not recorded: these cells come from a version of drlbench that did not time cells.", ""]
    rows = [[task, str(s["agents"]), str(s["cells"]), f"{s['env_steps']:,}", f"{s['cell_s_median']:.2f}",
             f"{s['cell_s_mean']:.2f}", f"{s['cell_s_max']:.2f}", f"{s['cell_s_sum']:.0f}",
             f"{s['episode_share']:.0%}"] for task, s in task_costs(timed).items()]
    lines += md_table(["task", "agents", "cells", "env steps evaluated", "s per cell (median)", "(mean)", "(max)",
                       "total s", "share in episodes"], rows)
    if runs:
        lines += ["", "Sweep runs recorded in the store (wall time from start to finish; a run killed before "
                  "it finished has none). Load: the machine's 1-minute load average when the run started "
                  "(— where not recorded); cell times of a run that shared the CPU are inflated. Efficiency: "
                  "seconds inside env.step (the physics floor) ÷ (wall × workers), as `sweep --json` reports "
                  "it (— for runs recorded before it was).", ""]
        lines += md_table(["run", "workers", "load at start", "agents", "variants", "started (UTC)", "wall s",
                           "efficiency"], [_run_row(r) for r in runs])
    lines += ["", f"More workers, simulated (not measured) from these {len(timed)} cells' recorded times with the "
              "sweep's own scheduler: each agent's fp32 cell first (it computes the returns and calibration "
              "states the agent's other cells share), then its cells, a free worker taking the largest "
              "estimated unit. Ideal: Σ cell time ÷ workers; critical path: the longest agent's fp32 cell plus "
              "its longest other cell, a floor no number of workers goes below. Start-up and the driver's "
              "stores are left out.", ""]
    lines += md_table(["workers", "simulated wall s", "ideal s", "critical path s", "efficiency (ideal ÷ simulated)"],
                      scaling_table(timed))
    return lines + [""]
