"""`drlbench compress`: one user-supplied agent through every variant, measured like a sweep cell.

Writes into OUT/: results.db (the same store a sweep writes, so `drlbench report` reads it too),
report.md (one row per variant), and variants/<name>/ (model.onnx + variant.json, and
actor.safetensors for torch-runnable variants) — the compressed policies, ready to ship.
"""

from __future__ import annotations

import math
from pathlib import Path

from drlbench.cells import CellMeasurer, MeasureConfig
from drlbench.results import CellResult
from drlbench.zoo import Agent


def _f(x, digits: int = 1) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


def agent_table(cells: list[CellResult], threshold: float = 0.9) -> str:
    """Markdown: one row per variant, fp32 first; the 90 % verdict uses the normalized score, the raw
    ratio (the paper's rule) is shown beside it."""
    header = ["variant", "return (mean ± 95% CI, n)", "normalized score", "raw ratio", f"keeps ≥ {threshold:.0%}",
              "p50 / p90 µs", "artifact bytes", "parameters", "RSS loaded MiB", "J per 1k actions"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for c in cells:
        half = (c.return_ci95_hi - c.return_ci95_lo) / 2
        keeps = "baseline" if c.variant == "fp32" else ("yes" if c.normalized_score >= threshold else "no")
        estimated = c.energy_source and "estimate" in c.energy_source
        energy = _f(c.energy_j_per_1k_actions, 4) + (" (estimate)" if estimated else "")
        rows.append("| " + " | ".join([
            c.variant, f"{c.return_mean:,.1f} ± {half:,.1f} (n={c.episodes})", _f(c.normalized_score, 3),
            _f(c.raw_ratio, 3), keeps, f"{_f(c.latency_us_p50)} / {_f(c.latency_us_p90)}", f"{c.artifact_bytes:,}",
            f"{c.n_params:,}", _f(c.rss_loaded_mib), energy]) + " |")
    return "\n".join(rows) + "\n"


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
        run_id = store.start_run({"agent": agent.id, "source": agent.card.get("source"), "variants": names,
                                  "episodes": cfg.episodes, "seed": cfg.seed})
        for name in tqdm(names, unit="variant", disable=not progress):
            key = CellKey.make(agent.id, name, cfg.runtime, cfg.episodes, cfg.seed)
            cell = store.get(key)
            if cell is None:  # resume: a rerun keeps what an interrupted one finished
                cell = measurer.measure(name)
                store.put(cell, run_id)
                measurer.variant(name).save(out / "variants" / name)
            cells.append(cell)
        store.finish_run(run_id)
    title = f"# {agent.id}: {agent.card.get('source', agent.id)} on {agent.env_id}\n\n"
    note = (f"Returns on paired seeds {cfg.seed} … {cfg.seed + cfg.episodes - 1}; normalized score = "
            f"(R_v − R_rand) / (R_base − R_rand) with R_rand = {measurer.random_return():.2f}; latency at batch 1 on "
            f"{cfg.runtime}, {cfg.threads} thread(s).\n\n")
    (out / "report.md").write_text(title + note + agent_table(cells))
    return cells
