"""How long the paper grid's simulation alone takes here: the floor under `drlbench sweep`'s wall time.

    python scripts/physics_floor.py --store docs/report/results.db --pause-training \
        --json docs/measurements/physics_floor.json

Per bundled agent, its fp32 policy drives `--steps` env steps (seeded resets) in this one process; only
`env.step` is timed, so the figure is Gymnasium + MuJoCo per step under that agent's behaviour (contacts
cost more than a random policy's). The grid's floor multiplies each agent's per-step cost by the env steps
its 32 cells played in `--store` (10 episodes each). For cells not in the store (agents not trained yet)
it assumes full-length episodes at the task's slowest measured per-step cost: an upper bound, labelled
as an estimate. The wall floor divides the serial sum by the number of cores, i.e. assumes perfect scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import time

import numpy as np

from drlbench.grid import resolve
from drlbench.provenance import machine_info
from drlbench.store import ResultStore
from drlbench.tasks import TASK_NAMES, make_env
from drlbench.builder import VariantBuilder
from drlbench.variants import VARIANTS
from drlbench.zoo import bundled_ids, load_agent

ALGOS = ("trpo", "ppo", "ddpg", "td3", "sac")
MAX_EPISODE_STEPS = 1000


def env_step_us(agent_id: str, steps: int, seed: int = 0) -> float:
    """Mean wall µs of `env.step` while the agent's fp32 policy acts (inference left out of the timing)."""
    agent = load_agent(agent_id)
    policy = VariantBuilder(agent).get("fp32").runner("onnxruntime", 1).run
    env = make_env(agent.env_id)
    obs, _ = env.reset(seed=seed)
    spent, episode = 0, 0
    for _ in range(steps):
        action = np.asarray(policy(obs[None].astype(np.float32)))[0]
        t0 = time.perf_counter_ns()
        obs, _, term, trunc, _ = env.step(action)
        spent += time.perf_counter_ns() - t0
        if term or trunc:
            episode += 1
            obs, _ = env.reset(seed=seed + episode)
    env.close()
    return spent / steps / 1e3


def played_steps(store_path: str) -> dict[str, int]:
    """Env steps each agent's cells played in the store (all variants, all episodes)."""
    out: dict[str, int] = {}
    with ResultStore(store_path, create=False) as store:
        for cell in store.cells():
            out[cell.agent] = out.get(cell.agent, 0) + sum(cell.lengths)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--store", required=True, help="a sweep store of the paper grid (episode lengths per agent)")
    p.add_argument("--steps", type=int, default=3000, help="timed env steps per agent")
    p.add_argument("--pause-training", action="store_true", help="SIGSTOP `drlbench train` jobs while timing")
    p.add_argument("--json", required=True)
    a = p.parse_args()
    pids = [int(x) for x in subprocess.run(["pgrep", "-f", "drlbench train"], capture_output=True,
                                           text=True).stdout.split()] if a.pause_training else []
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        per_step = {aid: round(env_step_us(aid, a.steps), 1) for aid in bundled_ids()}
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    played = played_steps(a.store)
    cells_per_agent = len(resolve(grid="paper")[1])
    assert cells_per_agent == len(VARIANTS)
    worst = {t: max(v for k, v in per_step.items() if k.endswith("-" + t.lower())) for t in TASK_NAMES}
    rows, measured_s, bound_s = {}, 0.0, 0.0
    for algo in ALGOS:
        for task in TASK_NAMES:
            aid = f"{algo}-{task.lower()}"
            if aid in played and aid in per_step:
                s = played[aid] * per_step[aid] / 1e6
                measured_s += s
                rows[aid] = {"env_step_us": per_step[aid], "steps_played": played[aid], "physics_s": round(s, 1)}
            else:
                s = cells_per_agent * 10 * MAX_EPISODE_STEPS * worst[task] / 1e6
                bound_s += s
                rows[aid] = {"estimate_upper_bound_physics_s": round(s, 1), "env_step_us_assumed": worst[task]}
    cores = os.cpu_count() or 1
    result = {
        "what": "env.step wall time alone (Gymnasium + MuJoCo, no inference, no meters) for the paper grid's "
                "10 episodes x 32 variants x 25 agents",
        "training_jobs_paused": len(pids),
        "machine": machine_info(),
        "timed_steps_per_agent": a.steps,
        "agents": rows,
        "measured_agents_physics_s": round(measured_s, 1),
        "untrained_agents_physics_s_ESTIMATE_upper_bound": round(bound_s, 1),
        "grid_physics_serial_s": round(measured_s + bound_s, 1),
        "grid_physics_wall_min_on_all_cores": round((measured_s + bound_s) / cores / 60, 1),
        "cores": cores,
    }
    with open(a.json, "w") as fh:
        json.dump(result, fh, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k not in ("agents", "machine")}, indent=1))


if __name__ == "__main__":
    main()
