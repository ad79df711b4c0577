"""Budgets for the bench suite, from one TOML file (bench/budgets.toml by default).

    [budgets]                     # relative to the fp32 baseline measured in the same run
    return_threshold = 0.9        # variant keeps >= 90 % of baseline return …
    return_rule = "normalized"    # … by random-normalized score, or "raw" (the paper's R_v / R_base)
    latency_p90_ratio = 1.25      # variant p90 / fp32 p90, same runtime, batch 1
    latency_batched_p90_ratio = 1.25  # the same for one call on a batch of states (--latency-batch, 64)
    int8_artifact_ratio = 0.30    # int8 ONNX bytes / fp32 ONNX bytes
    energy_ratio = 1.25           # joules per 1,000 actions / fp32's
    ort_vs_torch_fp32 = 0.5       # ONNX Runtime fp32 p50 / torch eager p50

    [[expect]]                    # a known cell that fails a budget, recorded from a measured run
    agent = "trpo-hopper"
    variant = "prune_l2_30"
    check = "return"              # one of CHECKS
    measured = 0.12               # the figure that run measured (same unit as the budget)
    tolerance = 0.05              # how far a later figure may lie from it (same unit)
    run = "2026-11-24 smoke run"  # where it was measured
    reason = "64-unit actor …"    # optional

A cell that fails with no expectation turns the run red. A cell with one must fail the same check with
a figure within `tolerance` of `measured` (reported as XFAIL); a figure that moved beyond it, better or
worse, fails and asks for the entry to be updated (drlbench.gates).
"""

from __future__ import annotations

import fnmatch
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from drlbench.errors import DrlbenchError
from drlbench.names import KEEP_THRESHOLD, RULES

DEFAULTS = {
    "return_threshold": KEEP_THRESHOLD,
    "return_rule": "normalized",
    "latency_p90_ratio": 1.25,
    "latency_batched_p90_ratio": 1.25,
    "int8_artifact_ratio": 0.30,
    "energy_ratio": 1.25,
    "ort_vs_torch_fp32": 0.5,
    "rss_running_ratio": 1.10,
}
CHECKS = ("return", "latency", "latency_torch", "latency_batched", "artifact", "energy", "runtime", "memory")
EXPECT_REQUIRED = ("agent", "variant", "check", "measured", "tolerance", "run")
EXPECT_KEYS = (*EXPECT_REQUIRED, "reason")


@dataclass(frozen=True)
class Expectation:
    agent: str
    variant: str
    check: str
    measured: float
    tolerance: float
    run: str
    reason: str = ""


@dataclass
class Budgets:
    values: dict = field(default_factory=lambda: dict(DEFAULTS))
    expectations: list[Expectation] = field(default_factory=list)
    path: str = "<defaults>"

    def __getitem__(self, key: str):
        return self.values[key]

    def expectation(self, agent: str, variant, check: str) -> Expectation | None:
        """The first [[expect]] entry for this cell and check (`variant`: a name or a Recipe), or None."""
        for e in self.expectations:
            if (e.check == check and fnmatch.fnmatchcase(agent, e.agent)
                    and fnmatch.fnmatchcase(str(variant), e.variant)):
                return e
        return None


def _line_of(text: str, needle: str, start: int = 0) -> int:
    for i, line in enumerate(text.splitlines()[start:], start + 1):
        if line.strip().startswith(needle):
            return i
    return 0


def load_budgets(path: str | Path) -> Budgets:
    path = Path(path)
    if not path.is_file():
        raise DrlbenchError(f"budgets file not found: {path}")
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DrlbenchError(f"{path}: malformed TOML: {exc}") from None

    def fail(key: str, msg: str, line: int | None = None) -> DrlbenchError:
        line = line or _line_of(text, key)
        return DrlbenchError(f"{path}:{line}: {key}: {msg}")

    unknown_sections = set(data) - {"budgets", "expect"}
    if unknown_sections:
        key = sorted(unknown_sections)[0]
        raise fail(key, "unknown section; accepted: [budgets], [[expect]]",
                   _line_of(text, f"[{key}") or _line_of(text, key))
    values = dict(DEFAULTS)
    for key, value in data.get("budgets", {}).items():
        if key not in DEFAULTS:
            raise fail(key, f"unknown budget; accepted: {', '.join(DEFAULTS)}")
        if key == "return_rule":
            if value not in RULES:
                raise fail(key, f"must be one of {', '.join(RULES)}, got {value!r}")
        elif not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise fail(key, f"must be a number > 0, got {value!r}")
        values[key] = value
    expectations = []
    entries = data.get("expect", [])
    if not isinstance(entries, list):
        raise fail("expect", "must be an array of tables: [[expect]]")
    start = 0
    for entry in entries:
        line = _line_of(text, "[[expect]]", start)
        start = line
        for key in entry:
            if key not in EXPECT_KEYS:
                raise fail(key, f"unknown key in [[expect]]; accepted: {', '.join(EXPECT_KEYS)}", line)
        for key in EXPECT_REQUIRED:
            if key not in entry:
                raise fail("[[expect]]", f"missing {key!r} (an expectation needs {', '.join(EXPECT_REQUIRED)}; "
                           "'measured' is the figure from the run that showed the failure, 'tolerance' how far a later "
                           "run's may lie from it)", line)
        if entry["check"] not in CHECKS:
            raise fail("check", f"must be one of {', '.join(CHECKS)}, got {entry['check']!r}", line)
        for key, low in (("measured", -math.inf), ("tolerance", 0.0)):
            value = entry[key]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value < math.inf:
                raise fail(key, f"must be a finite number{' >= 0' if low == 0 else ''}, got {value!r}", line)
        expectations.append(Expectation(**entry))
    return Budgets(values, expectations, str(path))
