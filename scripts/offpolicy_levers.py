"""Steps/s of SB3 off-policy learners under the levers that set a training budget (one torch thread).

    python scripts/offpolicy_levers.py --algo sac --task HalfCheetah --steps 3000 > levers.jsonl

Levers: batch size (256, the zoo's; 100, the TD3 paper's), gradient steps per env step (1; 0.5
via 2 envs per learner with one gradient step per vector step). Timed after `learning_starts`, so
every step includes learning. Returns are not measured here: that needs full runs.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from drlbench.hyperparams import hyperparams, to_sb3_kwargs
from drlbench.importers.sb3 import algo_class
from drlbench.tasks import parse_task

LEVERS = [
    {"batch_size": 256, "n_envs": 1},
    {"batch_size": 100, "n_envs": 1},
    {"batch_size": 256, "n_envs": 2},
    {"batch_size": 100, "n_envs": 2},
]


def main() -> None:
    from stable_baselines3.common.env_util import make_vec_env

    p = argparse.ArgumentParser()
    p.add_argument("--algo", required=True)
    p.add_argument("--task", required=True)
    p.add_argument("--steps", type=int, default=3000)
    a = p.parse_args()
    torch.set_num_threads(1)
    task = parse_task(a.task)
    for lever in LEVERS:
        hp = hyperparams(a.algo, task.name) | {"learning_starts": 1000, "batch_size": lever["batch_size"]}
        venv = make_vec_env(task.env_id, n_envs=lever["n_envs"], seed=0)
        kwargs = to_sb3_kwargs(hp, venv.action_space.shape[0])
        model = algo_class(a.algo)("MlpPolicy", venv, seed=0, device="cpu", **kwargs)
        model.learn(1000)  # fill learning_starts
        t0 = time.perf_counter()
        model.learn(a.steps, reset_num_timesteps=False)
        sps = a.steps / (time.perf_counter() - t0)
        grad_per_step = 1 / lever["n_envs"]
        print(json.dumps({"algo": a.algo, "env_id": task.env_id, **lever, "gradient_steps_per_env_step": grad_per_step,
                          "steps_per_s": round(sps, 1), "core_hours_per_100k": round(1e5 / sps / 3600, 2)}), flush=True)


if __name__ == "__main__":
    main()
