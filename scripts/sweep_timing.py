"""Time `drlbench sweep` under several executors on the same grid, training paused, and save the figures.

    python scripts/sweep_timing.py --agents ppo-hopper,trpo-hopper,trpo-halfcheetah \
        --variants fp32,ptdq,ptsq,qat,prune_l2_30,prune_l1_30 --run local:1 --run local:2 --run dask:2 \
        --pause-training --json docs/measurements/sweep_scaling_18.json

Each --run EXECUTOR:WORKERS sweeps the grid into its own fresh store (--keep-last keeps the last one's at a
path), one after another. Reported per run: wall, efficiency (Σ seconds inside env.step ÷ (wall × workers),
as `sweep --json` computes it), executor start-up, speed-up over the first run, and whether every cell's
returns equal the first run's. --pause-training sends SIGSTOP to every `drlbench train` process for the
duration (SIGCONT after, also on error or Ctrl-C), so the sweeps have the machine to themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
from pathlib import Path

from drlbench.provenance import machine_info
from drlbench.report import task_costs
from drlbench.store import ResultStore
from drlbench.sweep import SweepArgs, sweep


def training_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "drlbench.cli train|drlbench train"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if int(p) != os.getpid()]


def one_run(spec: str, agents: list[str], variants: list[str], out: str) -> tuple[dict, dict]:
    executor, workers = spec.split(":")
    summary = sweep(SweepArgs(out=out, agents=agents, variants=variants, workers=int(workers), executor=executor,
                              progress=False))
    with ResultStore(out, create=False) as store:
        cells = store.cells()
    returns = {f"{c.agent}/{c.variant}": c.returns for c in cells}
    timed = [c for c in cells if c.cell_s is not None]
    return {"run": spec, "cells": summary["cells"], "failed": len(summary["failed"]),
            "wall_s": round(summary["wall_s"], 1), "startup_s": round(summary["startup_s"] or 0.0, 2),
            "physics_s": round(summary["physics_s"], 1), "efficiency": round(summary["efficiency"], 3),
            "serial_cell_s": round(sum(c.cell_s for c in timed), 1),
            "per_task": {t: round(s["cell_s_sum"], 1) for t, s in task_costs(timed).items()}}, returns


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--agents", action="append", default=[])
    p.add_argument("--variants", action="append", default=[])
    p.add_argument("--run", action="append", required=True, help="EXECUTOR:WORKERS, e.g. local:2 or dask:2")
    p.add_argument("--keep-last", default=None, help="store path for the last run (default: a temp file)")
    p.add_argument("--pause-training", action="store_true")
    p.add_argument("--json", required=True)
    a = p.parse_args()
    paused = training_pids() if a.pause_training else []
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    runs, first = [], None
    try:
        with tempfile.TemporaryDirectory(prefix="drlbench-timing-") as tmp:
            for i, spec in enumerate(a.run):
                last = i == len(a.run) - 1
                out = a.keep_last if last and a.keep_last else str(Path(tmp) / f"run{i}.db")
                row, returns = one_run(spec, a.agents, a.variants, out)
                first = first or (row, returns)
                row["speedup_vs_first"] = round(first[0]["wall_s"] / row["wall_s"], 3)
                row["returns_identical_to_first"] = returns == first[1]
                runs.append(row)
                print(json.dumps(row), flush=True)
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
    result = {"what": "drlbench sweep of one grid under several executors, 10 episodes, memory and energy on",
              "agents": a.agents or "all bundled", "variants": a.variants or "paper grid",
              "training_jobs_paused": len(paused), "machine": machine_info(), "runs": runs}
    Path(a.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
