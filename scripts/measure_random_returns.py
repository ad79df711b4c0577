"""Regenerate drlbench/data/random_returns.json: uniform-random-policy returns per task (seeded)."""

import json
from pathlib import Path

from drlbench.tasks import ACCEPTED_VERSIONS, TASK_NAMES, measure_random_return

out = {}
for version in ACCEPTED_VERSIONS:
    for name in TASK_NAMES:
        env_id = f"{name}-{version}"
        out[env_id] = measure_random_return(env_id, episodes=100, seed=0)
        print(env_id, out[env_id])
path = Path(__file__).resolve().parents[1] / "drlbench" / "data" / "random_returns.json"
path.write_text(json.dumps(out, indent=2) + "\n")
