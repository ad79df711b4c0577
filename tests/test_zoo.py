"""The bundled zoo: pickle-free, small, and every card's returns reproduce exactly."""

import json

import numpy as np
import pytest

from drlbench.evaluate import evaluate
from drlbench.zoo import ZOO_DIR, bundled_ids, load_agent

AGENTS = bundled_ids()
ZOO_BUDGET_BYTES = 40 * 2**20  # the whole zoo of 25 agents


def test_zoo_is_not_empty_and_ids_are_algo_task():
    assert AGENTS, "no bundled agents"
    for aid in AGENTS:
        card = load_agent(aid).card
        assert aid == f"{card['algo']}-{card['task'].lower()}"


def test_zoo_holds_no_pickle_and_fits_its_size_budget():
    files = [p for p in ZOO_DIR.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} <= {".json", ".safetensors"}
    total = sum(p.stat().st_size for p in files)
    assert total <= ZOO_BUDGET_BYTES * len(AGENTS) / 25, f"{total / 2**20:.1f} MiB for {len(AGENTS)} agents"


@pytest.mark.parametrize("agent_id", AGENTS)
def test_card_returns_reproduce(agent_id):
    """Evaluation is deterministic for a seed: re-running the card's seeds gives the card's returns."""
    agent = load_agent(agent_id)
    ev = agent.card["evaluation"]
    result = evaluate(agent.actor.act, agent.env_id, episodes=len(ev["seeds"]), seed=ev["seeds"][0])
    assert result.seeds == ev["seeds"]
    assert result.lengths == ev["lengths"]
    np.testing.assert_allclose(result.returns, ev["returns"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("agent_id", AGENTS)
def test_card_records_training(agent_id):
    card = json.loads((ZOO_DIR / agent_id / "card.json").read_text())
    for key in ("seed", "training_steps", "training_wall_s", "hyperparams", "versions", "evaluation", "env_id"):
        assert key in card, key
    assert card["evaluation"]["n"] == 10
