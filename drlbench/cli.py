"""`drlbench` command line. Every user error prints one line and exits with code 2."""

from __future__ import annotations

import argparse
import json
import sys

from drlbench.errors import DrlbenchError


def _cmd_train(ns) -> int:
    from drlbench.train import TrainArgs, train

    train(TrainArgs(algo=ns.algo, task=ns.task, steps=ns.steps, seed=ns.seed, run_dir=ns.run_dir, out=ns.out,
                    checkpoint_every=ns.checkpoint_every, progress=not ns.no_progress))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drlbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a zoo agent with SB3 (resumable) and export it")
    t.add_argument("--algo", required=True, choices=["trpo", "ppo", "ddpg", "td3", "sac"])
    t.add_argument("--task", required=True, help="HalfCheetah, HumanoidStandup, Ant, Humanoid, Hopper (-v5 default, -v4 accepted)")
    t.add_argument("--steps", type=int, default=None, help="training steps (default: the budget in hyperparams.py)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--run-dir", default="runs", help="checkpoint folder (default: runs/)")
    t.add_argument("--out", default=None, help="agent folder to write (default: drlbench/zoo/<algo>-<task>)")
    t.add_argument("--checkpoint-every", type=int, default=50_000)
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=_cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return ns.func(ns)
    except DrlbenchError as exc:
        print(f"drlbench {ns.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
