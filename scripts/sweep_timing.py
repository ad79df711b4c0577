"""Time `drlbench sweep` on the bundled zoo, with training jobs paused, and save the figures.

    python scripts/sweep_timing.py --out /tmp/timing.db --workers 2 --pause-training \
        --json docs/measurements/sweep_timing_zoo.json

--pause-training sends SIGSTOP to every `drlbench train` process for the duration (SIGCONT after,
also on error or Ctrl-C), so the sweep has the machine to itself. Per-cell times come from the store.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess

from drlbench.provenance import machine_info
from drlbench.report import task_costs
from drlbench.store import ResultStore
from drlbench.sweep import SweepArgs, sweep


def training_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "drlbench train"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if int(p) != os.getpid()]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--agents", action="append", default=[])
    p.add_argument("--pause-training", action="store_true")
    p.add_argument("--json", required=True)
    a = p.parse_args()
    paused = training_pids() if a.pause_training else []
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    try:
        summary = sweep(SweepArgs(out=a.out, agents=a.agents, workers=a.workers, progress=False))
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
    with ResultStore(a.out, create=False) as store:
        cells = [c for c in store.cells() if c.cell_s is not None]
    result = {
        "what": "drlbench sweep of the bundled zoo x 32 variants x 10 episodes, memory probe and energy estimate on",
        "training_jobs_paused": len(paused),
        "machine": machine_info(),
        "workers": a.workers,
        "agents": sorted({c.agent for c in cells}),
        "cells": summary["cells"],
        "wall_s": round(summary["wall_s"], 1),
        "serial_cell_s": round(sum(c.cell_s for c in cells), 1),
        "per_agent_s": {k: round(v, 1) for k, v in sorted(summary["per_agent_s"].items())},
        "per_task": {task: {k: round(v, 3) for k, v in s.items()} for task, s in task_costs(cells).items()},
    }
    with open(a.json, "w") as fh:
        json.dump(result, fh, indent=2)
    print(json.dumps({k: result[k] for k in ("cells", "wall_s", "serial_cell_s")}))


if __name__ == "__main__":
    main()
