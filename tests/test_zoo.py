"""The bundled zoo: pickle-free, small, and every card's returns reproduce exactly."""

import json

import numpy as np
import pytest

from drlbench.evaluate import evaluate
from drlbench.provenance import library_versions
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
    reproduced = result.lengths == ev["lengths"] and np.allclose(result.returns, ev["returns"], rtol=1e-6, atol=1e-6)
    assert reproduced, f"{agent_id}'s card returns do not reproduce; {versions_differing(agent.card)}"


def versions_differing(card: dict) -> str:
    """Which measured-with library differs here (constraints.txt pins the versions the cards used)."""
    card_versions = {k.replace("_", "-"): v for k, v in card.get("versions", {}).items()}
    here = library_versions()
    diff = [f"{name} {card_versions[name]} on the card, {here[name]} here" for name in sorted(here)
            if name in card_versions and name != "drlbench" and card_versions[name] != here[name]]
    return ("libraries differing: " + "; ".join(diff) + " (install with -c constraints.txt)") if diff else \
        "every recorded library version matches, so the difference is elsewhere (CPU, BLAS, env)"


def test_version_report_names_the_library_that_differs():
    card = {"versions": {"mujoco": "0.0.1", "numpy": library_versions()["numpy"], "torch_pruning": "0.0.2"}}
    msg = versions_differing(card)
    assert "mujoco 0.0.1 on the card" in msg and "torch-pruning 0.0.2 on the card" in msg and "numpy" not in msg


@pytest.mark.parametrize("agent_id", AGENTS)
def test_card_records_training(agent_id):
    card = json.loads((ZOO_DIR / agent_id / "card.json").read_text())
    for key in ("seed", "training_steps", "training_wall_s", "hyperparams", "versions", "evaluation", "env_id"):
        assert key in card, key
    assert card["evaluation"]["n"] == 10
