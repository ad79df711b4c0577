"""Structural L1 / L2 pruning with torch-pruning (DepGraph): whole neurons are removed.

`ratio` is the fraction of hidden *channels* removed in every hidden layer (torch-pruning's
`pruning_ratio`); the output head keeps all its units. Removing 30 % of the channels of a 2-layer
MLP removes ~51 % of its parameters: the middle weight matrix shrinks on both sides.
"""

from __future__ import annotations

import copy

import torch
import torch_pruning as tp

from drlbench.actor import Actor
from drlbench.errors import DrlbenchError

PRUNE_CONFIG = {"library": "torch-pruning", "pruner": "BasePruner (DepGraph)", "importance": "MagnitudeImportance",
                "global_pruning": False, "head": "ignored (kept whole)"}


def prune(actor: Actor, ratio: float, p: int) -> Actor:
    """A physically smaller copy of `actor` with `ratio` of each hidden layer's neurons removed."""
    if not 0.0 < ratio < 1.0:
        raise DrlbenchError(f"pruning ratio must be in (0, 1), got {ratio}")
    if p not in (1, 2):
        raise DrlbenchError(f"pruning norm must be 1 (L1) or 2 (L2), got {p}")
    model = copy.deepcopy(actor).eval()
    pruner = tp.pruner.BasePruner(
        model,
        example_inputs=torch.zeros(1, actor.obs_dim),
        importance=tp.importance.MagnitudeImportance(p=p),
        pruning_ratio=ratio,
        ignored_layers=[model.head],  # torch-pruning crashes on output layers; and the action dim is fixed
    )
    pruner.step()
    return model


def expected_hidden(hidden: list[int], ratio: float) -> list[int]:
    """The widths torch-pruning leaves: it keeps int(h * (1 - ratio)) channels of each layer."""
    return [int(h * (1.0 - ratio)) for h in hidden]


def mlp_params(obs_dim: int, hidden: list[int], act_dim: int) -> int:
    widths = [obs_dim, *hidden, act_dim]
    return sum(i * o + o for i, o in zip(widths[:-1], widths[1:]))
