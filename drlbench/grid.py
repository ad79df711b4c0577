"""Which agents × variants a run covers: the smoke grid (CI), the paper grid, or user selections.

Selections are names or globs (`sac-*`, `prune_l2_*`); a pattern that matches nothing is an error
that lists what exists, never an empty run that passes. Variant names are parsed here, where they
enter, and passed along as Recipes.
"""

from __future__ import annotations

from drlbench.errors import DrlbenchError
from drlbench.names import GRIDS
from drlbench.variants import VARIANTS, Recipe, parse_variant, select
from drlbench.zoo import bundled_ids

# One variant of every kind, at a mid pruning ratio; a handful of agents that run fast.
SMOKE_VARIANTS = ("fp32", "ptdq", "ptsq", "qat", "prune_l1_30", "prune_l2_30")
SMOKE_AGENTS = ("trpo-hopper", "ppo-halfcheetah")


def split(values) -> list[str]:
    """`["a,b", "c"]` -> `["a", "b", "c"]` (options may be repeated or comma-separated)."""
    out: list[str] = []
    for v in values or []:
        out += [p for p in (s.strip() for s in v.split(",")) if p]
    return out


def resolve(agents=None, variants=None, grid: str = "smoke") -> tuple[list[str], list[Recipe]]:
    if grid not in GRIDS:
        raise DrlbenchError(f"unknown grid {grid!r}; accepted: {', '.join(GRIDS)}")
    available = bundled_ids()
    if not available:
        raise DrlbenchError("no bundled agents found in drlbench/zoo/ (train one with `drlbench train`)")
    agent_pats, variant_pats = split(agents), split(variants)
    for given, pats, kind in ((agents, agent_pats, "agents"), (variants, variant_pats, "variants")):
        if given and not pats:  # `--agents "$EMPTY"` must not silently mean the whole grid
            raise DrlbenchError(f"--{kind} was given but names none (got {given!r}); leave it out for the grid's")
    if agent_pats:
        chosen_agents = select(agent_pats, available, "agent")
    elif grid == "smoke":
        chosen_agents = [a for a in SMOKE_AGENTS if a in available] or available[:2]
    else:
        chosen_agents = available
    if variant_pats:
        chosen_variants = select(variant_pats, list(VARIANTS), "variant")
    else:
        chosen_variants = list(SMOKE_VARIANTS if grid == "smoke" else VARIANTS)
    return chosen_agents, [parse_variant(v) for v in chosen_variants]
