"""A sweep's work unit and the function a worker runs on it: an agent's cell(s) in, finished cells out.

A unit is plain data, so it runs on any worker (a local process, a Dask worker on another machine) with no
shared filesystem assumed. It carries
  - the agent: its bundled id (the worker has drlbench and its zoo), or for an agent that is not bundled
    the actor's safetensors bytes and its card;
  - the measurement settings (MeasureConfig's fields), never the driver's paths;
  - the inputs all of an agent's cells share, computed once by the agent's lead unit and shipped to the
    others: the fp32 evaluation (returns and lengths: no unit plays fp32's episodes again) and the
    calibration states (fp32 rollouts that PTSQ, QAT and the latency/energy meters feed on).

The worker writes nothing: `run_unit` returns the finished cells as plain dicts (CellResult.to_dict) and
each failed cell's one-line error; the driver (sweep.py) stores them.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

# The fields of the fp32 cell that its agent's other units need (CellMeasurer.reuse_evaluation).
BASELINE_FIELDS = ("env_id", "variant", "runtime", "seed", "episodes", "returns", "lengths", "eval_s", "physics_s")


@dataclass(frozen=True)
class AgentSpec:
    id: str
    actor: bytes | None = None  # safetensors of an agent that is not bundled; None: load the bundled id
    card: dict | None = None

    @classmethod
    def of(cls, name: str) -> AgentSpec:
        """A bundled id travels as the id; an agent folder as its files' contents."""
        from drlbench.zoo import agent_dir, bundled_ids, read_card

        if name in bundled_ids():
            return cls(name)
        folder = agent_dir(name)
        card = read_card(folder)
        return cls(card["id"], (folder / "actor.safetensors").read_bytes(), card)

    def load(self):
        from drlbench.actor import load_actor
        from drlbench.zoo import Agent, load_agent

        if self.actor is None:
            return load_agent(self.id)
        with tempfile.TemporaryDirectory(prefix="drlbench-agent-") as tmp:  # load_actor reads a file
            path = Path(tmp) / "actor.safetensors"
            path.write_bytes(self.actor)
            return Agent(self.id, load_actor(path), dict(self.card))


@dataclass
class Unit:
    run: str  # one sweep's token: a worker never mixes two sweeps' measurers (settings, retrained weights)
    agent: AgentSpec
    config: dict  # MeasureConfig(**config)
    variants: tuple[str, ...]  # the cells to measure (a lead unit may have none: fp32 stored or not asked for)
    lead: bool = False  # computes and returns the shared inputs (the fp32 evaluation, calibration states)
    baseline: dict | None = None  # the fp32 evaluation, BASELINE_FIELDS
    calibration: object = None  # np.ndarray of calibration states
    cost: float = 0.0  # estimated seconds, for longest-first
    uid: int = field(default=0, compare=False)


def baseline_of(cell: dict) -> dict:
    return {k: cell.get(k) for k in BASELINE_FIELDS}


_KEEP = 2  # measurers kept per worker: consecutive units of an agent reuse its loaded actor and runners
_MEASURERS: OrderedDict = OrderedDict()


def _measurer(unit: Unit):
    import torch

    from drlbench.cells import CellMeasurer, MeasureConfig

    torch.set_num_threads(unit.config.get("threads", 1))  # Dask runs the unit in a worker thread
    key = (unit.run, unit.agent.id, hashlib.sha256(unit.agent.actor or b"").hexdigest())
    m = _MEASURERS.pop(key, None) or CellMeasurer(unit.agent.load(), MeasureConfig(**unit.config))
    _MEASURERS[key] = m
    while len(_MEASURERS) > _KEEP:
        _MEASURERS.popitem(last=False)
    if unit.calibration is not None and m.builder._calib is None:
        # The same seeded fp32 rollout the builder would make; VariantBuilder (builder.py) has no public
        # way to take states made elsewhere, so its cache is filled here.
        m.builder._calib = unit.calibration
    if unit.baseline is not None and not m.has_evaluation("fp32"):
        m.reuse_evaluation(SimpleNamespace(**unit.baseline))
    return m


def one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def run_unit(unit: Unit) -> dict:
    """Measure the unit's cells. Returns {"agent", "cells": [CellResult dicts], "failed": [{"variant",
    "error"}], "shared": (lead) {"baseline", "calibration"} or None, "seconds", "physics_s"}. A cell that
    raises is reported and the others go on; an error outside the cells (the agent does not load, a lead's
    fp32 evaluation fails) raises, and the driver reports the unit's cells."""
    t0 = time.perf_counter()
    m = _measurer(unit)
    physics, shared = 0.0, None
    if unit.lead and unit.baseline is None:
        t1 = time.perf_counter()
        ev = m.evaluation("fp32")  # the agent's cells all need it; an fp32 cell below reuses it
        fp32 = dict(env_id=ev.env_id, variant="fp32", runtime=m.config.runtime, seed=m.config.seed,
                      episodes=ev.n, returns=ev.returns, lengths=ev.lengths, eval_s=time.perf_counter() - t1,
                      physics_s=ev.physics_s)
        shared = {"baseline": fp32}
        physics += 0.0 if "fp32" in unit.variants else ev.physics_s  # not a cell: counted here
    cells, failed = [], []
    for name in unit.variants:
        try:
            cells.append(m.measure(name).to_dict())
        except Exception as exc:  # noqa: BLE001 — any failure of one cell is reported, not fatal
            failed.append({"variant": name, "error": one_line(exc)})
    if unit.lead:
        shared = (shared or {}) | {"calibration": m.observations()}
    physics += sum(c["physics_s"] or 0.0 for c in cells)
    return {"agent": unit.agent.id, "cells": cells, "failed": failed, "shared": shared,
            "seconds": time.perf_counter() - t0, "physics_s": physics}
