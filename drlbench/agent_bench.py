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

from drlbench.cells import CellMeasurer, MeasureConfig, store_pending
from drlbench.files import atomic_folder
from drlbench.results import CellResult
from drlbench.names import KEEP_THRESHOLD
from drlbench.variants import Variant, parse_variant
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


def benchmark_agent(agent: Agent, variants: list, out: Path, config: MeasureConfig | None = None,
                    progress: bool = True) -> list[CellResult]:
    """`variants`: Recipes (or names, parsed here); fp32 is measured first."""
    from tqdm import tqdm

    from drlbench.store import ResultStore

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = config or MeasureConfig()
    measurer = CellMeasurer(agent, cfg)
    recipes = [parse_variant("fp32"), *(r for r in map(parse_variant, variants) if r != "fp32")]
    bar = tqdm(total=len(recipes), unit="variant", disable=not progress)

    def prepare(recipe, fresh: bool) -> None:
        folder = out / "variants" / recipe.name
        # before a fresh cell is stored, so a stored cell has its folder; a stored cell's folder may have
        # been deleted, or overwritten by another agent, since
        if fresh or not _variant_saved(folder, agent.id, recipe.name):
            _save_variant(measurer.variant(recipe), folder)
        bar.update(1)

    with ResultStore(out / "results.db") as store:
        store.check_weights(agent.id, agent.fingerprint, hint="compress into a new --out")
        run_id = store.start_run({"agent": agent.id, "source": agent.card.get("source"),
                                  "variants": [r.name for r in recipes], "episodes": cfg.episodes, "seed": cfg.seed})
        cells, _ = store_pending(measurer, recipes, store, run_id, prepare=prepare)
        store.finish_run(run_id)
    bar.close()
    title = f"# {agent.id}: {agent.card.get('source', agent.id)} on {agent.env_id}\n\n"
    note = (f"Returns on paired seeds {cfg.seed} … {cfg.seed + cfg.episodes - 1}; normalized score = "
            f"(R_v − R_rand) / (R_base − R_rand) with R_rand = {measurer.random_return():.2f}; latency at batch 1 on "
            f"{cfg.runtime}, {cfg.threads} thread(s).\n\n")
    (out / "report.md").write_text(title + note + agent_table(cells))
    return cells


def ship(cells: list[CellResult], out: Path, objective: str = "size", rule: str = "normalized"):
    """Name the variant to ship (drlbench.recommend), copy its folder to OUT/recommended/ (atomically; removed
    when nothing keeps the return) and add the choice and the Pareto fronts to OUT/report.md."""
    import shutil

    from drlbench.recommend import pareto_front, recommend

    out = Path(out)
    rec = recommend(cells, objective=objective, rule=rule)
    target = out / "recommended"
    if rec.cell is not None:
        with atomic_folder(target) as tmp:
            shutil.copytree(out / "variants" / rec.cell.variant, tmp, dirs_exist_ok=True)
    else:
        shutil.rmtree(target, ignore_errors=True)
    fp32 = next(c for c in cells if c.kind == "fp32")
    fronts = {o: [c.variant for c in pareto_front(cells, fp32, o, rule)] for o in ("size", "latency")}
    text = (f"\n## Which variant to ship\n\nRecommended ({objective}): {rec.reason}"
            f"{' — copied to recommended/' if rec.cell else ''}.\n\n"
            + "".join(f"Hint: {h}.\n\n" for h in rec.hints) +
            f"Pareto front, return kept vs bytes: {', '.join(fronts['size'])}; vs batch-1 latency: "
            f"{', '.join(fronts['latency'])}.\n")
    with open(out / "report.md", "a") as f:
        f.write(text)
    return rec, fronts
