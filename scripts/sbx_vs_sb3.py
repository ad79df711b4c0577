"""Does sbx at train_freq = gradient_steps = 4 learn like SB3 at train_freq 1? One short run on a task
whose SB3 curve we ship: TD3 Hopper with td3-hopper's recipe (batch 100, 400x300, lr 1e-3), 100k steps,
the same model-selection check every 50k steps. Writes docs/measurements/sbx_vs_sb3_td3_hopper.json.

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        python scripts/sbx_vs_sb3.py --run-dir /work/runs-check
"""

import argparse
import json
from pathlib import Path

from drlbench.train import TrainArgs, train
from drlbench.zoo import load_agent

p = argparse.ArgumentParser()
p.add_argument("--run-dir", required=True)
p.add_argument("--steps", type=int, default=100_000)
p.add_argument("--json", default=str(Path(__file__).resolve().parents[1] / "docs/measurements/sbx_vs_sb3_td3_hopper.json"))
a = p.parse_args()
out = Path(a.run_dir) / "agent"
train(TrainArgs(algo="td3", task="Hopper", steps=a.steps, run_dir=a.run_dir, out=str(out), progress=False,
                overrides={"trainer": "sbx", "train_freq": 4, "gradient_steps": 4, "qf_learning_rate": 0.001}))
sbx_card = json.loads((out / "card.json").read_text())
sb3_card = load_agent("td3-hopper").card
row = lambda r: {"steps": r[0], "train_return_last100": r[1], "wall_s": r[2], "selection_return": r[3]}  # noqa: E731
result = {
    "what": "TD3 Hopper-v5, td3-hopper's recipe; sbx train_freq=gradient_steps=4 vs SB3 train_freq=1 (bundled card)",
    "sbx": {"trainer": sbx_card["trainer"], "curve": [row(r) for r in sbx_card["training_curve"]],
            "steps_per_s": sbx_card["steps_per_s"], "final_eval_mean": sbx_card["evaluation"]["mean"]},
    "sb3": {"trainer": "stable-baselines3 (bundled td3-hopper card)", "steps_per_s_full_run": sb3_card["steps_per_s"],
            "curve": [row(r) for r in sb3_card["training_curve"] if r[0] <= a.steps]},
}
Path(a.json).write_text(json.dumps(result, indent=1) + "\n")
print(json.dumps(result, indent=1))
