"""`drlbench compress`: one user-supplied agent through every variant, measured like a sweep cell.

Writes into OUT/: results.db (the same store a sweep writes, so `drlbench report` reads it too),
report.md (one row per variant), and variants/<name>/ (model.onnx + variant.json, and
actor.safetensors for torch-runnable variants) — the compressed policies, ready to ship.

Resumable like a sweep: a rerun reuses the stored cells of the same agent (refusing cells measured on
other weights under its id) and measures the rest. A variant folder is written atomically before its
cell is stored, and a stored cell whose folder is missing gets it written again.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from drlbench.cells import CellMeasurer, MeasureConfig
from drlbench.errors import DrlbenchError
from drlbench.files import atomic_folder
from drlbench.results import CellResult
from drlbench.names import KEEP_THRESHOLD
from drlbench.variants import Variant
from drlbench.zoo import Agent


def _f(x, digits: int = 1) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


def agent_table(cells: list[CellResult], threshold: float = KEEP_THRESHOLD) -> str:
    """Markdown: one row per variant, fp32 first; the 90 % verdict uses the normalized score, the raw
    ratio (the paper's rule) is shown beside it."""
    header = ["variant", "return (mean ± 95% CI, n)", "normalized score", "raw ratio", f"keeps ≥ {threshold:.0%}",
              "p50 / p90 µs", "artifact bytes", "parameters", "RSS loaded MiB", "J per 1k actions"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for c in cells:
        half = (c.return_ci95_hi - c.return_ci95_lo) / 2
        keeps = ("baseline" if c.variant == "fp32" else "n/a: fp32 not above random" if math.isnan(c.normalized_score)
                 else "yes" if c.normalized_score >= threshold else "no")
        estimated = c.energy_source and "estimate" in c.energy_source
        energy = _f(c.energy_j_per_1k_actions, 4) + (" (estimate)" if estimated else "")
        rows.append("| " + " | ".join([
            c.variant, f"{c.return_mean:,.1f} ± {half:,.1f} (n={c.episodes})", _f(c.normalized_score, 3),
            _f(c.raw_ratio, 3), keeps, f"{_f(c.latency_us_p50)} / {_f(c.latency_us_p90)}", f"{c.artifact_bytes:,}",
            f"{c.n_params:,}", _f(c.rss_loaded_mib), energy]) + " |")
    return "\n".join(rows) + "\n"


def _check_agent_unchanged(store, agent: Agent) -> None:
    """Finished cells are reused by id; refuse when they were measured on another actor under that id."""
    stored = store.fingerprints(agent.id)
    now = agent.fingerprint
    if stored and stored != {now}:
        raise DrlbenchError(f"{store.path} holds cells of {agent.id} measured on other weights (fingerprint "
                            f"{', '.join(sorted(stored))}, now {now}): the agent or its normalization changed since; "
                            "compress into a new --out")


def _variant_saved(folder: Path, agent_id: str, name: str) -> bool:
    """Whether `folder` holds this agent's variant as Variant.save writes it (variant.json last)."""
    try:
        meta = json.loads((folder / "variant.json").read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(meta, dict) and meta.get("agent") == agent_id and meta.get("variant") == name
            and (folder / "model.onnx").is_file())


def _save_variant(variant: Variant, folder: Path) -> None:
    """Write the variant folder atomically: a kill leaves the old folder (or none), never half of one."""
    with atomic_folder(folder) as tmp:
        variant.save(tmp)


def benchmark_agent(agent: Agent, variants: list[str], out: Path, config: MeasureConfig | None = None,
                    progress: bool = True) -> list[CellResult]:
    from tqdm import tqdm

    from drlbench.store import CellKey, ResultStore

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = config or MeasureConfig()
    measurer = CellMeasurer(agent, cfg)
    names = ["fp32", *[v for v in variants if v != "fp32"]]
    cells = []
    with ResultStore(out / "results.db") as store:
        _check_agent_unchanged(store, agent)
        run_id = store.start_run({"agent": agent.id, "source": agent.card.get("source"), "variants": names,
                                  "episodes": cfg.episodes, "seed": cfg.seed})
        for name in tqdm(names, unit="variant", disable=not progress):
            key = CellKey.make(agent.id, name, cfg.runtime, cfg.episodes, cfg.seed)
            folder = out / "variants" / key.variant
            cell = store.get(key)
            if cell is None:  # resume: a rerun keeps what an interrupted one finished
                cell = measurer.measure(name)
                _save_variant(measurer.variant(name), folder)  # before the cell: a stored cell has its folder
                store.put(cell, run_id)
            elif not _variant_saved(folder, agent.id, key.variant):  # deleted, or overwritten by another agent
                _save_variant(measurer.variant(name), folder)
            cells.append(cell)
        store.finish_run(run_id)
    title = f"# {agent.id}: {agent.card.get('source', agent.id)} on {agent.env_id}\n\n"
    note = (f"Returns on paired seeds {cfg.seed} … {cfg.seed + cfg.episodes - 1}; normalized score = "
            f"(R_v − R_rand) / (R_base − R_rand) with R_rand = {measurer.random_return():.2f}; latency at batch 1 on "
            f"{cfg.runtime}, {cfg.threads} thread(s).\n\n")
    (out / "report.md").write_text(title + note + agent_table(cells))
    return cells
