"""Re-run each bundled agent's card evaluation (same seeds, same batching) with the current code.

    python scripts/reevaluate_cards.py [AGENT …]

For when the evaluation arithmetic changes (not the weights): the card must hold what the code
now computes, which tests/test_zoo.py checks bit for bit (one torch thread, episodes batched as
the trainer batches them: float32 GEMMs round differently with other thread counts or batch
sizes, and 1,000 chaotic steps turn that rounding into different returns). Prints old -> new.
"""

import json
import sys

import torch

from drlbench.evaluate import evaluate
from drlbench.zoo import ZOO_DIR, bundled_ids, load_agent

torch.set_num_threads(1)  # as the trainer evaluates: GEMM results depend on the thread count
for agent_id in sys.argv[1:] or bundled_ids():
    agent = load_agent(agent_id)
    ev = agent.card["evaluation"]
    result = evaluate(agent.actor.act, agent.env_id, episodes=len(ev["seeds"]), seed=ev["seeds"][0])
    agent.card["evaluation"] = {k: v for k, v in result.summary().items() if k != "env_id"}
    (ZOO_DIR / agent_id / "card.json").write_text(json.dumps(agent.card, indent=2) + "\n")
    print(f"{agent_id}: {ev['mean']:.2f} -> {result.mean:.2f}")
