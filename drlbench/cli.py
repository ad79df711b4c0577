"""`drlbench` command line. Every user error prints one line and exits with code 2."""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import sys

from drlbench.errors import DrlbenchError
from drlbench.names import ALGOS, EXECUTORS, GRIDS, RULES, RUNTIMES


def _int_at_least(low: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    return parse


_positive_int = _int_at_least(1, "a positive integer")
_seed = _int_at_least(0, "a seed >= 0 (Gymnasium accepts no negative seed)")


def _cmd_train(ns) -> int:
    from drlbench.train import TrainArgs, export_interim, train

    args = TrainArgs(algo=ns.algo, task=ns.task, steps=ns.steps, seed=ns.seed, run_dir=ns.run_dir, out=ns.out,
                     checkpoint_every=ns.checkpoint_every, select_episodes=ns.select_episodes,
                     progress=not ns.no_progress)
    (export_interim if ns.export_interim else train)(args)
    return 0


def _print(obj, as_json: bool, text: str) -> None:
    print(json.dumps(strict_json(obj), indent=2, allow_nan=False) if as_json else text)


def strict_json(obj):
    """NaN / ±inf (an undefined score) as null: standard JSON has no NaN, and jq or JSON.parse reject it."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def _cmd_zoo(ns) -> int:
    from drlbench.report import paper_results
    from drlbench.zoo import ZOO_DIR, bundled_ids, load_card

    table1 = paper_results()["table1"]
    rows = []
    for aid in bundled_ids():
        card = load_card(aid)
        ev = card.get("evaluation", {})
        paper = table1.get(card["algo"], {}).get(card.get("task"), {}).get("baseline")
        rows.append({"id": aid, "algo": card["algo"], "env_id": card["env_id"],
                     "training_steps": card.get("training_steps"),
                     "selected_steps": (card.get("selection") or {}).get("selected_steps"),
                     "return_mean": ev.get("mean"), "return_std": ev.get("std"), "episodes": ev.get("n"),
                     "paper_baseline": paper, "hidden": card.get("actor", {}).get("hidden"),
                     "path": str(ZOO_DIR / aid)})
    lines = [f"{'agent':22s} {'env':19s} {'trained':>9s} {'exported':>9s} {'return (10 seeds)':>18s} "
             f"{'paper':>9s}  hidden"]
    for r in rows:
        ret = f"{r['return_mean']:.1f} ± {r['return_std']:.1f}" if r["return_mean"] is not None else "-"
        paper = f"{r['paper_baseline']:.1f}" if r["paper_baseline"] is not None else "-"
        lines.append(f"{r['id']:22s} {r['env_id']:19s} {r['training_steps'] or 0:9d} "
                     f"{r['selected_steps'] or r['training_steps'] or 0:9d} {ret:>18s} {paper:>9s}  {r['hidden']}")
    lines.append("trained: env steps; exported: the checkpoint model selection kept; paper: its Table 1 baseline "
                 "(its own agents, MuJoCo v4)")
    _print(rows, ns.json, "\n".join(lines) if rows else "no bundled agents")
    return 0


def _cmd_evaluate(ns) -> int:
    from drlbench.cells import CellMeasurer, MeasureConfig
    from drlbench.variants import parse_variant
    from drlbench.zoo import load_agent

    recipe = parse_variant(ns.variant)  # fail on a bad name or runtime before loading or building anything
    if ns.runtime not in recipe.runtimes:
        raise DrlbenchError(f"variant {recipe.name} has no {ns.runtime!r} runtime; accepted: "
                            f"{', '.join(recipe.runtimes)}")
    agent = load_agent(ns.agent)
    cells = CellMeasurer(agent, MeasureConfig(episodes=ns.episodes, seed=ns.seed, runtime=ns.runtime))
    variant, runner = cells.variant(recipe.name), cells.runner(recipe.name)
    result = cells.evaluation(recipe.name)
    out = {"agent": agent.id, "variant": variant.name, "runtime": runner.runtime, "env_id": agent.env_id,
           "return": {k: v for k, v in result.summary().items() if k != "env_id"},
           "artifact_bytes": variant.artifact_bytes, "n_params": variant.n_params, "build": variant.build}
    text = [f"{agent.id} / {variant.name} on {runner.runtime}: return {result.mean:.2f} ± {result.std:.2f} "
            f"(95% CI {result.ci95[0]:.2f} … {result.ci95[1]:.2f}, n={result.n}, "
            f"seeds {ns.seed}…{ns.seed + ns.episodes - 1}, "
            f"mean length {out['return']['mean_length']:.0f})",
            f"artifact {variant.artifact_bytes:,} bytes, {variant.n_params:,} parameters"]
    if variant.name != "fp32" and not ns.no_baseline:
        base, scores, fp32 = cells.evaluation("fp32"), cells.return_scores(recipe.name), cells.variant("fp32")
        out["baseline"] = {"mean": base.mean, "std": base.std, "returns": base.returns,
                           "artifact_bytes": fp32.artifact_bytes, "n_params": fp32.n_params}
        out["raw_ratio"], out["normalized_score"] = scores["raw_ratio"], scores["normalized_score"]
        out["random_return_mean"] = scores["random"]
        text.append(f"fp32 baseline (same seeds): {base.mean:.2f} ± {base.std:.2f}; raw ratio {out['raw_ratio']:.3f}, "
                    f"random-normalized score {out['normalized_score']:.3f} (random policy {scores['random']:.1f})")
    _print(out, ns.json, "\n".join(text))
    return 0


def _cmd_sweep(ns) -> int:
    from drlbench.sweep import SweepArgs, sweep

    args = SweepArgs(out=ns.out, agents=ns.agents, variants=ns.variants, grid=ns.grid, episodes=ns.episodes,
                     seed=ns.seed, workers=ns.workers, executor=ns.executor, address=ns.address, runtime=ns.runtime,
                     memory=not ns.no_memory, energy=not ns.no_energy, progress=not ns.no_progress,
                     remeasure_retrained=ns.remeasure_retrained)
    summary = sweep(args)
    text = (f"{summary['cells']} cells measured ({summary['skipped']} already in {ns.out}) in "
            f"{summary['wall_s']:.1f} s with {summary['workers']} {summary['executor']} worker(s); efficiency "
            f"{summary['efficiency']:.2f} (time inside env.step / (wall × workers))")
    failed = summary["failed"]
    if failed:  # each was reported as it failed; the list again, where it is seen last
        text += f"\n{len(failed)} cells failed (rerun the same command to retry them): " + ", ".join(
            f"{f['agent']} × {f['variant']}" for f in failed)
    _print(summary, ns.json, text)
    return 1 if failed else 0


def _cmd_report(ns) -> int:
    from drlbench.report import write_report
    from drlbench.store import ResultStore

    with ResultStore(ns.store, create=False) as store:
        paths = write_report(store, ns.out, rule=ns.rule)
    _print([str(p) for p in paths], ns.json, "\n".join(str(p) for p in paths))
    return 0


def _cmd_compress(ns) -> int:
    from drlbench.agent_bench import agent_table, benchmark_agent, ship
    from drlbench.cells import MeasureConfig
    from drlbench.grid import split
    from drlbench.importers import load_external
    from drlbench.sweep import runnable
    from drlbench.variants import VARIANTS, parse_variant, select

    variants = select(split(ns.variants), list(VARIANTS), "variant") if ns.variants else list(VARIANTS)
    variants = [r.name for r in runnable([parse_variant(v) for v in variants], ns.runtime)]
    agent = load_external(ns.path, ns.task, trust_pickle=ns.trust_pickle, vecnormalize=ns.vecnormalize,
                          obs_stats=ns.obs_stats, algo=ns.algo)
    cells = benchmark_agent(agent, variants, ns.out, MeasureConfig(episodes=ns.episodes, seed=ns.seed,
                                                                   runtime=ns.runtime), progress=not ns.no_progress)
    rec, fronts = ship(cells, ns.out, objective=ns.optimize)
    text = (agent_table(cells) + f"\nrecommended ({ns.optimize}): {rec.reason}"
            + "".join(f"\n  hint: {h}" for h in rec.hints)
            + (f"\n  -> {ns.out}/recommended/" if rec.cell else "")
            + f"\nPareto front, return kept vs bytes: {', '.join(fronts['size'])}"
            + f"\nPareto front, return kept vs latency: {', '.join(fronts['latency'])}\nwritten to {ns.out}/")
    _print({"cells": [c.to_dict() for c in cells], "recommended": rec.to_dict(), "pareto_front": fronts}, ns.json, text)
    return 0


RUNTIME_HELP = ("where returns and latency are measured (default onnxruntime); litert and executorch are extras: "
                'pip install "drlbench[litert]" / "drlbench[executorch]"')


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drlbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a zoo agent with SB3 (resumable) and export it")
    t.add_argument("--algo", required=True, choices=ALGOS)
    t.add_argument("--task", required=True,
                   help="HalfCheetah, HumanoidStandup, Ant, Humanoid, Hopper (-v5 default, -v4 accepted)")
    t.add_argument("--steps", type=_positive_int, default=None,
                   help="training steps (default: the budget in hyperparams.py)")
    t.add_argument("--seed", type=_seed, default=0)
    t.add_argument("--run-dir", default="runs", help="checkpoint folder (default: runs/); resuming unpickles the SB3 "
                   "checkpoint found there, so use only folders you trust")
    t.add_argument("--out", default=None, help="agent folder to write (default: drlbench/zoo/<algo>-<task>)")
    t.add_argument("--checkpoint-every", type=_positive_int, default=50_000)
    t.add_argument("--select-episodes", type=_int_at_least(0, "an integer >= 0"), default=5,
                   help="episodes of the model-selection check after each checkpoint; the best policy is "
                        "exported (default 5; 0 exports the final policy)")
    t.add_argument("--export-interim", action="store_true",
                   help="export the best checkpoint so far of a run still training (card: 'N of budget'); reads "
                        "only its safetensors actor and state, checked against the run's manifest")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=_cmd_train)

    z = sub.add_parser("zoo", help="list the bundled agents")
    z.add_argument("--json", action="store_true")
    z.set_defaults(func=_cmd_zoo)

    e = sub.add_parser("evaluate", help="build one variant of an agent and measure its return")
    e.add_argument("agent", help="bundled agent id (drlbench zoo) or an agent folder")
    e.add_argument("--variant", default="fp32", help="fp32, ptdq, ptsq, qat, prune_l1_05 … prune_l2_70; off the paper "
                   "grid: e.g. ptdq_eq, ptdq_mixed, qat_w4a8, fp16, prune_l1_30+ptdq, input_i8")
    e.add_argument("--episodes", type=_positive_int, default=10)
    e.add_argument("--seed", type=_seed, default=0)
    e.add_argument("--runtime", default="onnxruntime", choices=RUNTIMES, help=RUNTIME_HELP)
    e.add_argument("--no-baseline", action="store_true", help="skip the paired fp32 run")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_cmd_evaluate)

    s = sub.add_parser("sweep", help="measure every agent × variant cell into a resumable SQLite store")
    s.add_argument("--out", default="results.db", help="result store (SQLite), created or resumed")
    s.add_argument("--agents", action="append", default=[], help="agent ids or globs, comma-separated")
    s.add_argument("--variants", action="append", default=[], help="variant names or globs, comma-separated")
    s.add_argument("--grid", default="paper", choices=GRIDS)
    s.add_argument("--episodes", type=_positive_int, default=10)
    s.add_argument("--seed", type=_seed, default=0)
    s.add_argument("--workers", type=_positive_int, default=1,
                   help="parallel processes, one thread each (with --address: the cluster's workers instead)")
    s.add_argument("--executor", default="local", choices=EXECUTORS,
                   help="local: processes on this machine (default); dask: a Dask cluster, started here with "
                        "--workers processes or joined with --address (pip install -e \".[dask]\")")
    s.add_argument("--address", default=None,
                   help="a running Dask scheduler to join (tcp://host:8786); its workers need drlbench installed")
    s.add_argument("--runtime", default="onnxruntime", choices=RUNTIMES, help=RUNTIME_HELP)
    s.add_argument("--no-memory", action="store_true", help="skip the isolated-process RSS probe")
    s.add_argument("--no-energy", action="store_true", help="skip the energy meter")
    s.add_argument("--remeasure-retrained", action="store_true",
                   help="replace the stored cells of an agent whose weights changed since (default: refuse)")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_sweep)

    c = sub.add_parser("compress", help="benchmark your own agent (SB3 or sbx zip, CleanRL checkpoint, ONNX, "
                                        "TorchScript or torch.export actor) on any Box env")
    c.add_argument("path", help="SB3 / sb3-contrib / sbx .zip, CleanRL .cleanrl_model, ONNX actor (.onnx), "
                                "TorchScript actor (.pt) or torch.export program (.pt2)")
    c.add_argument("--task", required=True, help="Gymnasium env id with Box spaces, e.g. Walker2d-v5, Pendulum-v1")
    c.add_argument("--variants", action="append", default=[], help="names or globs (default: all 32 of the paper "
                   "grid); off it by exact name, e.g. ptdq_mixed, qat_w4a8, prune_l1_30+ptdq, input_i8")
    c.add_argument("--episodes", type=_positive_int, default=10)
    c.add_argument("--seed", type=_seed, default=0)
    c.add_argument("--out", default="drlbench-out", help="folder for results.db, report.md and variants/")
    c.add_argument("--trust-pickle", action="store_true",
                   help="allow pickle-based files (SB3 zip, CleanRL checkpoint, vecnormalize.pkl): only for files "
                        "you trust")
    c.add_argument("--vecnormalize", default=None, help="VecNormalize statistics (.pkl; needs --trust-pickle)")
    c.add_argument("--obs-stats", default=None,
                   help="observation statistics as an .npz of mean and var (optional clip, epsilon), e.g. a CleanRL "
                        "PPO agent's NormalizeObservation obs_rms; 'none': trained without normalization")
    c.add_argument("--algo", default=None, choices=ALGOS,
                   help="algorithm of an SB3 zip or CleanRL checkpoint when it cannot be detected")
    c.add_argument("--runtime", default="onnxruntime", choices=RUNTIMES, help=RUNTIME_HELP)
    c.add_argument("--optimize", choices=("size", "latency"), default="size",
                   help="the recommended variant: the smallest artifact (default) or the fastest at batch 1, among "
                        "variants keeping >= 90 %% with no paired drop; copied to OUT/recommended/")
    c.add_argument("--no-progress", action="store_true")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_cmd_compress)

    r = sub.add_parser("report", help="Markdown + PNG report (the paper's Tables 1-3, Figures 1-3) from a store")
    r.add_argument("store", help="result store written by drlbench sweep")
    r.add_argument("--out", default="report", help="output folder")
    r.add_argument("--rule", default="normalized", choices=RULES, help="90 %% rule")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return ns.func(ns)
    except DrlbenchError as exc:
        print(f"drlbench {ns.command}: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:  # unwritable --out, a file where a folder should be, a locked store
        print(f"drlbench {ns.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
