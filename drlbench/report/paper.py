"""The paper's published numbers (Tables 1–3, drlbench/data/paper_results.json) and what the report reads
from them. The paper's rule is its own: 90 % of the raw baseline return."""

from __future__ import annotations

import json
from importlib import resources

from drlbench.variants import QUANT_VARIANTS

PTQ = ("ptdq", "ptsq")  # post-training only: the paper's QAT losses mix in its fine-tuning's failures


def paper_results() -> dict:
    """The paper's Tables 1–3, transcribed (drlbench/data/paper_results.json)."""
    return json.loads(resources.files("drlbench.data").joinpath("paper_results.json").read_text())


def paper_cell(paper: dict, table: str, algo: str, task: str) -> dict | None:
    return paper[table].get(algo, {}).get(task)


def paper_cells(paper: dict, table: str) -> list[dict]:
    """Every algo × task entry of one table."""
    return [cell for tasks in paper[table].values() for cell in tasks.values()]


def paper_quant(paper: dict) -> list[dict[str, float]]:
    """Table 1's PTDQ, PTSQ and QAT returns, one dict per row."""
    return [{q: cell[q] for q in QUANT_VARIANTS} for cell in paper_cells(paper, "table1")]


def paper_threshold(cell: dict) -> float:
    """A Table 2 row's highest ratio keeping 90 %, of either method."""
    return max(cell["l1_ratio"], cell["l2_ratio"])


def paper_thresholds(paper: dict) -> dict[str, list[float]]:
    """Per algorithm, the paper's Table 2 highest ratio keeping 90 % of either method, per task."""
    return {algo: [paper_threshold(c) for c in tasks.values()] for algo, tasks in paper["table2"].items()}


def paper_rows_below_random(paper: dict) -> list[str]:
    """Paper baselines no better than a random policy (our measurement on the paper's v4 tasks): their
    raw ratios, and the picks made from them, mean nothing."""
    from drlbench.tasks import random_returns  # gymnasium and mujoco: only when a report is written

    rand = random_returns()
    rows = []
    for algo, tasks in paper["table1"].items():
        for task, cell in tasks.items():
            r = rand.get(f"{task}-v4")
            if r is not None and cell["baseline"] <= r["mean"]:
                rows.append(f"{algo}/{task} {cell['baseline']:.2f} vs random {r['mean']:.1f}")
    return rows


def paper_scores(paper: dict, rule: str) -> dict[tuple[str, str], dict[str, float]]:
    """Table 1's PTQ scores per (algo, task) under `rule`; the normalized rule uses our random-policy
    return on the paper's v4 task. Rows whose score is undefined (baseline not above random, or ≤ 0) are
    left out."""
    from drlbench.tasks import random_returns  # gymnasium and mujoco: only when a report is written

    rand = random_returns()
    out = {}
    for algo, tasks in paper["table1"].items():
        for task, cell in tasks.items():
            base = cell["baseline"]
            low = 0.0 if rule == "raw" else rand.get(f"{task}-v4", {}).get("mean")
            if low is None or base <= low:
                continue
            out[(algo, task)] = {q: (cell[q] - low) / (base - low) for q in PTQ}
    return out
