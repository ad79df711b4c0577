"""The runtimes side by side: where int8 pays. One table of batch-1 latency per agent and runtime (fp32, the
fastest int8, each runtime's call floor), one finding per runtime and actor width ("int8 reduces batch-1
latency", with 95 % intervals), and whether each runtime's int8 keeps the return where ONNX Runtime's does.

Every ratio here was measured side by side in one cell (alternating blocks): int8 ÷ the same runtime's fp32,
and an edge runtime's cell ÷ ONNX Runtime fp32 on its fast path. Absolute µs of different runtimes come
from different cells, minutes apart: compare them loosely, the ratios closely.
"""

from __future__ import annotations

from drlbench.names import KEEP_THRESHOLD
from drlbench.report.markdown import md_table, num
from drlbench.report.selection import AgentCells, ReportSelection
from drlbench.report.stats import ratio_ci
from drlbench.results import score

INT8 = ("ptdq", "ptsq", "qat")
ORDER = ("onnxruntime", "litert", "executorch", "torch")  # the paper's runtime first
NARROW_MAX = 64  # widest hidden layer of a "narrow" actor (the on-policy 64x64 ones); wider: "wide"


def width(a: AgentCells) -> int | None:
    """The widest hidden layer of the agent's fp32 actor (from the fp32 or a pruned cell's build record)."""
    for c in a.cells.values():
        hidden = c.build.get("hidden") if c.kind == "fp32" else c.build.get("baseline_hidden")
        if hidden:
            return max(hidden)
    return None


def _best_int8(a: AgentCells):
    cells = [a.get(v) for v in INT8 if a.get(v) is not None and a.get(v).latency_ratio_p50 is not None]
    return min(cells, key=lambda c: c.latency_ratio_p50, default=None)


def latency_table(sels: dict[str, ReportSelection]) -> list[str]:
    names = sorted({a.agent for s in sels.values() for a in s.agents})
    header = ["agent", "width"] + [f"{rt} fp32 µs (floor)" for rt in sels] + [
        f"{rt} fastest int8: µs, ×fp32{'' if rt == 'onnxruntime' else ', ×ORT fp32'}" for rt in sels]
    rows = []
    for name in names:
        per = {rt: next((a for a in s.agents if a.agent == name), None) for rt, s in sels.items()}
        w = next((width(a) for a in per.values() if a is not None and width(a)), None)
        row = [name, str(w or "—")]
        for a in per.values():
            fp32 = a.get("fp32") if a else None
            row.append(f"{num(fp32.latency_us_p50, 1)} ({num(fp32.latency_floor_us_p50, 1)})" if fp32 else "—")
        for rt, a in per.items():
            best = _best_int8(a) if a else None
            if best is None:
                row.append("—")
                continue
            vs_ort = "" if rt == "onnxruntime" else f", {num(best.latency_ratio_ort_fp32_p50)}"
            row.append(f"{best.variant} {num(best.latency_us_p50, 1)}, {num(best.latency_ratio_p50)}{vs_ort}")
        rows.append(row)
    return md_table(header, rows)


def int8_finding(sels: dict[str, ReportSelection]) -> list[str]:
    """Per runtime and width class: geometric mean of int8 p50 ÷ fp32 p50 over agents × int8 variants."""
    rows = []
    for rt, s in sels.items():
        for label, test in (("narrow (≤ 64)", lambda w: w <= NARROW_MAX), ("wide (> 64)", lambda w: w > NARROW_MAX)):
            agents = [a for a in s.agents if width(a) and test(width(a))]
            ratios = [a.get(v).latency_ratio_p50 for a in agents for v in INT8 if a.get(v) is not None]
            stat = ratio_ci(ratios)
            if stat is None:
                continue
            answer = "yes" if stat.n > 1 and stat.hi < 1 else "no" if stat.n > 1 and stat.lo > 1 else "not resolved"
            rows.append([rt, label, str(len(agents)), stat.show(2), answer])
    return md_table(["runtime", "actor width", "agents", "int8 p50 ÷ fp32 p50 (geo. mean, 95 % CI, n cells)",
                     "int8 reduces batch-1 latency?"], rows)


def return_agreement(sels: dict[str, ReportSelection], rule: str) -> list[str]:
    """Per edge runtime: of the int8 cells whose ORT twin keeps ≥ 90 %, how many keep on this runtime."""
    ort = sels.get("onnxruntime")
    if ort is None:
        return []
    rows = []
    for rt, s in sels.items():
        if rt == "onnxruntime":
            continue
        kept = both = 0
        lost = []
        for a in s.agents:
            twin = next((o for o in ort.agents if o.agent == a.agent), None)
            for v in INT8:
                mine, theirs = a.get(v), twin.get(v) if twin else None
                if mine is None or theirs is None or not score(theirs, rule) >= KEEP_THRESHOLD:
                    continue
                both += 1
                if score(mine, rule) >= KEEP_THRESHOLD:
                    kept += 1
                else:
                    lost.append(f"{a.agent} {v} ({score(mine, rule):.2f})")
        if both:
            rows.append([rt, f"{kept} of {both}", ", ".join(lost) or "none"])
    if not rows:
        return []
    return md_table(["runtime", "int8 cells keeping where ORT's keep", "lost"], rows)


def runtimes_section(sels: dict[str, ReportSelection], rule: str) -> list[str]:
    """The section, when the store holds cells of more than one runtime."""
    sels = {rt: sels[rt] for rt in ORDER if rt in sels}
    if len(sels) < 2:
        return []
    return (["## Runtimes: where int8 pays", "",
             "Batch-1 latency, one thread, p50 of each cell's side-by-side blocks. The floor is the runtime's "
             "call path with a one-op model of the same shapes (binding and copies, not the network); "
             "×fp32 is int8 ÷ the same runtime's fp32 and ×ORT fp32 the cell ÷ ONNX Runtime fp32 on its fast "
             "path, both measured side by side ((—): a cell measured before floors were recorded). Each "
             "runtime's own report (Figure 1, Summary) is in its folder.",
             "", *latency_table(sels), *int8_finding(sels), *return_agreement(sels, rule)]
            + [f"- [{rt}]({rt}/report.md)" for rt in sels if rt != "onnxruntime"] + [""])
