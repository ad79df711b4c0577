"""Input sensitivity: the return kept when only the observation is quantized (`input_i<k>[t]` variants),
per agent, so a deployer with a low-precision sensor path knows the margin before any weight is touched."""

from __future__ import annotations

from drlbench.names import KEEP_THRESHOLD, RULES
from drlbench.report.markdown import bold, md_table
from drlbench.report.selection import ReportSelection
from drlbench.report.verdicts import score
from drlbench.variants import INPUT_KIND


def input_sensitivity_section(sel: ReportSelection, rule: str) -> list[str]:
    names = sorted({c.variant for c in sel.cells if c.kind == INPUT_KIND},
                   key=lambda n: (-int("".join(ch for ch in n.split("_i")[1] if ch.isdigit())), n))
    if not names:
        return []
    rows, kept = [], {n: 0 for n in names}
    for a in sel.agents:
        cells = [a.get(n) for n in names]
        if all(c is None for c in cells):
            continue
        row = [a.agent]
        for n, c in zip(names, cells):
            s = None if c is None else score(c, rule)
            ok = s is not None and s >= KEEP_THRESHOLD
            kept[n] += ok
            row.append("—" if s is None else bold(f"{s:.2f}", not ok))
        rows.append(row)
    summary = ", ".join(f"{n}: {kept[n]} of {len(rows)}" for n in names)
    return ["## Input sensitivity — only the observation quantized (beyond the paper)", "",
            f"Score ({RULES[rule]}) when only the normalized observation is quantized (per feature, min/max "
            "on the calibration states), the network left in fp32; bold: below the keep threshold "
            f"{KEEP_THRESHOLD}. Agents keeping: {summary}.", "",
            *md_table(["agent", *names], rows)]
