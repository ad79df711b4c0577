"""Agents: an `Actor` plus its card; the bundled zoo lives in drlbench/zoo/<algo>-<task>/.

Each bundled agent is two files, neither of them a pickle:
    actor.safetensors   weights and normalization statistics, architecture in the metadata
    card.json           algo, task, env id, training budget, seed, evaluation returns, versions
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from drlbench.actor import Actor, load_actor, save_actor
from drlbench.errors import DrlbenchError, unknown
from drlbench.files import atomic_folder

ZOO_DIR = Path(str(resources.files("drlbench").joinpath("zoo")))
CARD_KEYS = ("id", "algo", "task", "env_id")


@dataclass
class Agent:
    id: str
    actor: Actor
    card: dict

    @property
    def env_id(self) -> str:
        return self.card["env_id"]

    @property
    def algo(self) -> str:
        return self.card["algo"]

    @property
    def fingerprint(self) -> str:
        """sha256 (16 hex digits) of the actor's tensors: tells a retrained agent from the one a stored
        cell was measured on, under the same id."""
        import hashlib

        h = hashlib.sha256()
        for name, tensor in sorted(self.actor.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


def agent_id(algo: str, task_name: str) -> str:
    return f"{algo.lower()}-{task_name.lower()}"


def bundled_ids() -> list[str]:
    if not ZOO_DIR.is_dir():
        return []
    return sorted(p.name for p in ZOO_DIR.iterdir()
                  if (p / "card.json").is_file() and (p / "actor.safetensors").is_file())


def read_card(path: Path) -> dict:
    """The card of the agent folder `path` (card.json), checked for the keys every agent has; no weights
    are read."""
    path = Path(path)
    card_path = path / "card.json"
    if not path.is_dir():
        raise DrlbenchError(f"agent folder {path} not found (an agent folder holds card.json and actor.safetensors)")
    if not card_path.is_file():
        raise DrlbenchError(f"no card.json in {path} (an agent folder holds card.json and actor.safetensors)")
    try:
        card = json.loads(card_path.read_text())
    except json.JSONDecodeError as exc:
        raise DrlbenchError(f"corrupt card {card_path}: {exc}") from None
    missing = [k for k in CARD_KEYS if k not in card]
    if missing:
        raise DrlbenchError(f"card {card_path} lacks {', '.join(missing)} (required: {', '.join(CARD_KEYS)})")
    return card


def load_agent_dir(path: Path) -> Agent:
    card = read_card(path)
    return Agent(card["id"], load_actor(Path(path) / "actor.safetensors"), card)


def agent_dir(name: str) -> Path:
    """The folder of a bundled agent by id (`sac-hopper`), or an agent folder by path.

    A bundled id wins over a folder of the same name in the working directory (say, the output of
    `drlbench train --out trpo-hopper`): write `./trpo-hopper` to mean the folder."""
    ids = bundled_ids()
    if name.lower() in ids and os.sep not in name and (os.altsep is None or os.altsep not in name):
        return ZOO_DIR / name.lower()
    if os.sep in name or Path(name).is_dir():
        return Path(name)
    raise unknown("agent", name, ids)


def load_card(name: str) -> dict:
    """An agent's card (algo, task, env id, returns …) without loading its weights."""
    return read_card(agent_dir(name))


def load_agent(name: str) -> Agent:
    """A bundled agent by id or an agent folder by path (see `agent_dir`)."""
    return load_agent_dir(agent_dir(name))


def save_agent(agent: Agent, folder: Path) -> Path:
    """Write the agent folder atomically: a reader never sees a half-written agent."""
    with atomic_folder(folder) as tmp:
        save_actor(agent.actor, tmp / "actor.safetensors")
        (tmp / "card.json").write_text(json.dumps(agent.card, indent=2) + "\n")
    return Path(folder)
