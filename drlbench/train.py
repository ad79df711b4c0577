"""Train one zoo agent with Stable-Baselines3 / sb3-contrib (or sbx), resumable, and export it to the zoo.

    drlbench train --algo ppo --task Hopper [--steps N] [--seed S]

Reads top to bottom: build envs → build or resume the model → learn in chunks, checkpointing
model, replay buffer and VecNormalize statistics after each chunk → export the deterministic actor
→ evaluate it on 10 paired-seed episodes → write actor.safetensors + card.json.

Checkpoints are pickles (SB3 format) in the run folder, outside git. Each checkpoint carries a
manifest with the sha256 of every file this trainer wrote; a resume unpickles only a checkpoint whose
files all match it, so a foreign or altered file planted in --run-dir is refused, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from tqdm import tqdm

from drlbench.actor import load_actor, save_actor
from drlbench.errors import DrlbenchError
from drlbench.files import atomic_folder, recover_folder
from drlbench.hyperparams import hyperparams, lr_schedule, to_sb3_kwargs
from drlbench.importers.sb3 import actor_from_sb3, algo_class
from drlbench.importers.sbx import actor_from_sbx, sbx_class
from drlbench.tasks import DISJOINT_SEED_OFFSET, parse_task
from drlbench.zoo import agent_id


@dataclass
class TrainArgs:
    algo: str
    task: str
    steps: int | None = None  # default: the budget in hyperparams.py
    seed: int = 0
    run_dir: str = "runs"  # checkpoints (outside git)
    out: str | None = None  # agent folder; default drlbench/zoo/<algo>-<task>
    checkpoint_every: int = 50_000
    eval_episodes: int = 10
    eval_seed: int = 0
    # Model selection as rl-baselines3-zoo's EvalCallback does it: after every checkpoint the
    # deterministic policy plays `select_episodes` episodes on seeds of its own (disjoint from the
    # card's evaluation seeds, so the card's numbers are not the ones the choice was made on) and the
    # best one is exported. 0: export the final policy.
    select_episodes: int = 5
    progress: bool = True
    # recipe entries replaced for this run (recorded on the card): e.g. {"trainer": "sbx", "train_freq": 4}
    overrides: dict = field(default_factory=dict)


SELECTION_SEED = DISJOINT_SEED_OFFSET + 1000  # calibration rollouts use DISJOINT_SEED_OFFSET + 1


class _Progress(BaseCallback):
    """tqdm bar with steps/s and the mean return of the last 20 training episodes."""

    def __init__(self, total: int, start: int, enabled: bool):
        super().__init__()
        self.bar = tqdm(total=total, initial=start, unit="step", disable=not enabled, smoothing=0.05)
        self.returns: deque = deque(maxlen=20)

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            if "episode" in info:
                self.returns.append(info["episode"]["r"])
        n = self.model.num_timesteps - self.bar.n
        if n >= 1000 or self.model.num_timesteps >= self.bar.total:
            self.bar.update(n)
            if self.returns:
                self.bar.set_postfix(ret=f"{np.mean(self.returns):.0f}", refresh=False)
        return True


def _float32_obs(env):
    from gymnasium.wrappers import DtypeObservation

    return DtypeObservation(env, np.float32)


def _make_venv(env_id: str, hp: dict, seed: int, vecnorm_path: Path | None):
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    # sbx recipes store float32 observations: MuJoCo's float64 would double a 1M-step replay buffer
    # (Humanoid: 5.6 GB -> 2.8 GB in memory and in every checkpoint); the networks compute in float32.
    wrapper = _float32_obs if hp.get("trainer") == "sbx" else None
    venv = make_vec_env(env_id, n_envs=hp.get("n_envs", 1), seed=seed, wrapper_class=wrapper)
    if not hp.get("normalize"):
        return venv
    if vecnorm_path is not None and vecnorm_path.exists():
        return VecNormalize.load(str(vecnorm_path), venv)
    return VecNormalize(venv, norm_obs=True, norm_reward=True, clip_obs=10.0, gamma=hp.get("gamma", 0.99))


BEST_ACTOR = "best_actor.safetensors"
MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _write_manifest(folder: Path) -> None:
    files = {p.name: _sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps({"written_by": "drlbench train", "sha256": files}, indent=1))


def _verify_manifest(ckpt: Path, only: tuple[str, ...] | None = None) -> None:
    """Refuse, before anything is unpickled, a checkpoint this trainer did not write. `only`: check just these
    files' hashes (an interim export reads nothing else)."""
    hint = "drlbench resumes only checkpoints it wrote; delete the folder or pass another --run-dir"
    try:
        files = json.loads((ckpt / MANIFEST).read_text())["sha256"]
    except FileNotFoundError:
        raise DrlbenchError(f"{ckpt} holds a checkpoint without a drlbench manifest ({MANIFEST}): {hint}") from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise DrlbenchError(f"{ckpt}/{MANIFEST} is unreadable: {hint}") from None
    present = {p.name for p in ckpt.iterdir() if p.is_file() and p.name != MANIFEST}
    if only is not None:
        files = {k: v for k, v in files.items() if k in only}
        present &= set(only)
    if present != set(files):
        extra, missing = sorted(present - set(files)), sorted(set(files) - present)
        raise DrlbenchError(f"{ckpt} does not match its manifest (not written by drlbench: {extra or '-'}; "
                            f"missing: {missing or '-'}): {hint}")
    for name, digest in files.items():
        if _sha256(ckpt / name) != digest:
            raise DrlbenchError(f"{ckpt}/{name} changed since drlbench wrote it (sha256 differs): {hint}")


def _trainer(algo: str, hp: dict):
    """(model class, live model -> Actor) for the recipe's trainer library."""
    if hp.get("trainer", "sb3") == "sbx":
        return sbx_class(algo), lambda model: actor_from_sbx(model)
    return algo_class(algo), lambda model: actor_from_sb3(model, model.get_vec_normalize_env())


def _trainer_version(hp: dict) -> str:
    from importlib import metadata

    name = "sbx-rl" if hp.get("trainer") == "sbx" else "stable-baselines3"
    return f"{name} {metadata.version(name)}"


def _trainer_versions(hp: dict) -> dict:
    from importlib import metadata

    if hp.get("trainer") != "sbx":
        return {}
    return {name: metadata.version(name) for name in ("sbx-rl", "jax", "jaxlib", "flax", "optax")}


def _save_checkpoint(model, ckpt: Path, state: dict, best_actor=None) -> None:
    """Write into a fresh folder, then swap it in: a kill at any moment leaves one whole checkpoint.
    `best_actor`: a new best policy to keep; otherwise the previous checkpoint's best is carried over."""
    with atomic_folder(ckpt) as tmp:
        if best_actor is not None:
            save_actor(best_actor, tmp / BEST_ACTOR)
        elif (ckpt / BEST_ACTOR).exists():
            shutil.copy2(ckpt / BEST_ACTOR, tmp / BEST_ACTOR)
        model.save(tmp / "model.zip")
        if hasattr(model, "replay_buffer") and model.replay_buffer is not None:
            model.save_replay_buffer(tmp / "replay_buffer.pkl")
        if model.get_vec_normalize_env() is not None:
            model.get_vec_normalize_env().save(str(tmp / "vecnormalize.pkl"))
        (tmp / "state.json").write_text(json.dumps(state))
        _write_manifest(tmp)


def _selection_record(args: TrainArgs, state: dict, selected: bool) -> dict:
    if not selected:
        return {"rule": "final policy (no selection)"}
    return {"rule": f"best mean return of {args.select_episodes} deterministic episodes on seeds "
                    f"{SELECTION_SEED}… (disjoint from the evaluation seeds), checked every "
                    f"{args.checkpoint_every:,} steps (rl-baselines3-zoo's EvalCallback practice)",
            "selected_steps": state["best"]["steps"], "selection_mean": state["best"]["mean"]}


def _check_out(out: Path, env_id: str) -> None:
    """Refuse, before hours of training, to replace an agent of another env (a -v4 run over a bundled -v5)."""
    card = out / "card.json"
    if card.is_file():
        try:
            held = json.loads(card.read_text()).get("env_id")
        except (json.JSONDecodeError, AttributeError):
            held = None
        if held != env_id:
            raise DrlbenchError(f"{out} holds an agent for {held or 'an unreadable card'}; this run trains {env_id}: "
                                "pass --out to write it elsewhere")


def train(args: TrainArgs) -> Path:
    from drlbench.evaluate import evaluate

    torch.set_num_threads(1)
    task = parse_task(args.task)
    algo = args.algo.lower()
    hp = hyperparams(algo, task.name) | args.overrides
    total = int(hp["steps"] if args.steps is None else args.steps)
    if total < 1 or args.checkpoint_every < 1:
        raise DrlbenchError(f"steps and checkpoint_every must be >= 1, got {total} and {args.checkpoint_every}")
    name = agent_id(algo, task.name)
    out = Path(args.out) if args.out else Path(__file__).parent / "zoo" / name
    _check_out(out, task.env_id)
    run = Path(args.run_dir) / f"{name}-{task.version}-s{args.seed}"
    ckpt = run / "checkpoint"
    recover_folder(ckpt)  # killed between a checkpoint's two renames
    cls, to_actor = _trainer(algo, hp)

    resumed = ckpt.is_dir() and any(ckpt.iterdir())
    if resumed:
        _verify_manifest(ckpt)
    venv = _make_venv(task.env_id, hp, args.seed, ckpt / "vecnormalize.pkl" if resumed else None)
    if resumed:
        model = cls.load(ckpt / "model.zip", env=venv, device="cpu")
        if (ckpt / "replay_buffer.pkl").exists():
            model.load_replay_buffer(ckpt / "replay_buffer.pkl")
        state = json.loads((ckpt / "state.json").read_text())
    else:
        kwargs = to_sb3_kwargs(hp, venv.action_space.shape[0])
        model = cls("MlpPolicy", venv, seed=args.seed, device="cpu", verbose=0, **kwargs)
        state = {"wall_s": 0.0, "curve": []}
    # SB3's default logger makes a /tmp/SB3-<time> folder on every learn() call; we log through the card.
    model.set_logger(Logger(folder=None, output_formats=[]))

    progress = _Progress(total, model.num_timesteps, args.progress)
    while model.num_timesteps < total:
        t0 = time.perf_counter()
        chunk = min(args.checkpoint_every, total - model.num_timesteps)
        schedule = lr_schedule(hp, model.num_timesteps + chunk, total)
        if schedule is not None:
            model.lr_schedule = schedule
        model.learn(chunk, callback=progress, reset_num_timesteps=False, progress_bar=False)
        state["wall_s"] += time.perf_counter() - t0
        recent = [ep["r"] for ep in model.ep_info_buffer] if model.ep_info_buffer else []
        row = [int(model.num_timesteps), float(np.mean(recent)) if recent else None, round(state["wall_s"], 1)]
        best_actor = None
        if args.select_episodes:
            actor = to_actor(model)
            selection = evaluate(actor.act, task.env_id, episodes=args.select_episodes, seed=SELECTION_SEED).mean
            row.append(selection)
            if state.get("best") is None or selection > state["best"]["mean"]:
                best_actor, state["best"] = actor, {"steps": row[0], "mean": selection}
        state["curve"].append(row)
        _save_checkpoint(model, ckpt, state, best_actor)
    progress.bar.close()

    final = to_actor(model)
    selected = args.select_episodes and state.get("best") and (ckpt / BEST_ACTOR).exists()
    actor = load_actor(ckpt / BEST_ACTOR) if selected else final
    return _export(args, hp, state, actor, int(model.num_timesteps), out, final=final if selected else None)


def export_interim(args: TrainArgs) -> Path:
    """Export the best checkpoint of a run still training (its card says "N of budget"), so a cell that is
    already good ships even if the run is lost later. Reads only the checkpoint's safetensors actor and
    state.json (checked against the manifest): nothing is unpickled, and the running job is not disturbed."""
    task = parse_task(args.task)
    algo = args.algo.lower()
    hp = hyperparams(algo, task.name) | args.overrides
    name = agent_id(algo, task.name)
    out = Path(args.out) if args.out else Path(__file__).parent / "zoo" / name
    _check_out(out, task.env_id)
    ckpt = Path(args.run_dir) / f"{name}-{task.version}-s{args.seed}" / "checkpoint"
    if not (ckpt / BEST_ACTOR).is_file():
        raise DrlbenchError(f"{ckpt} holds no selected checkpoint ({BEST_ACTOR}) to export yet")
    _verify_manifest(ckpt, only=(BEST_ACTOR, "state.json"))
    state = json.loads((ckpt / "state.json").read_text())
    return _export(args, hp, state, load_actor(ckpt / BEST_ACTOR), int(state["curve"][-1][0]), out)


def _export(args: TrainArgs, hp: dict, state: dict, actor, steps: int, out: Path, final=None) -> Path:
    """Evaluate the exported actor on the card's seeds and write the agent folder (actor + card)."""
    from drlbench.evaluate import evaluate
    from drlbench.provenance import library_versions
    from drlbench.zoo import Agent, save_agent

    task, algo = parse_task(args.task), args.algo.lower()
    name = agent_id(algo, task.name)
    torch.set_num_threads(1)
    result = evaluate(actor.act, task.env_id, episodes=args.eval_episodes, seed=args.eval_seed)
    card = {
        "id": name,
        "algo": algo,
        "task": task.name,
        "env_id": task.env_id,
        "seed": args.seed,
        "training_steps": steps,
        "training_wall_s": round(state["wall_s"], 1),
        "steps_per_s": round(steps / max(state["wall_s"], 1e-9), 1),
        "hyperparams": hp,
        "hyperparams_source": "rl-baselines3-zoo 2.9 hyperparams/%s.yml, adapted (drlbench/hyperparams.py)" % algo
        if hp.get("trainer", "sb3") == "sb3" else "drlbench/hyperparams.py (sbx entries: SAC with SB3's defaults; "
        "TD3 and DDPG with the TD3 author's Humanoid setting)",
        "trainer": _trainer_version(hp),
        # [steps, mean return of the last 100 training episodes, wall s, selection return (if any)]
        "training_curve": state["curve"],
        "selection": _selection_record(args, state, bool(state.get("best"))),
        "evaluation": {k: v for k, v in result.summary().items() if k != "env_id"},
        "actor": actor.config() | {"n_params": actor.n_params()},
        "versions": library_versions() | _trainer_versions(hp),
        "train_args": asdict(args),
    }
    if final is not None:  # the final policy on the card's seeds too, so the choice's effect is visible
        last = evaluate(final.act, task.env_id, episodes=args.eval_episodes, seed=args.eval_seed)
        card["final_policy_evaluation"] = {"steps": steps, "mean": last.mean, "std": last.std,
                                           "returns": last.returns}
    save_agent(Agent(name, actor, card), out)
    print(f"{name}: {result.mean:.1f} ± {result.std:.1f} over {result.n} episodes -> {out}")
    return out
