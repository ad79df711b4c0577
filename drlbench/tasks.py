"""The five MuJoCo tasks of the paper, seeded env construction and random-policy reference returns."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from importlib import resources

import gymnasium as gym
import mujoco
import numpy as np

from drlbench.errors import DrlbenchError, unknown

# MuJoCo 4 prints a deprecation warning ('settotalmass') each time HalfCheetah's XML is compiled,
# i.e. for every env a sweep creates; keep every other MuJoCo warning.
mujoco.set_mju_user_warning(
    lambda msg: None if "deprecated" in msg else print(f"MuJoCo warning: {msg}", file=sys.stderr))

DEFAULT_VERSION = "v5"
ACCEPTED_VERSIONS = ("v5", "v4")
TASK_NAMES = ("HalfCheetah", "HumanoidStandup", "Ant", "Humanoid", "Hopper")
# Calibration / distillation rollouts use seeds from this offset on, so they never overlap
# evaluation seeds (which start at the user's --seed, a small number in practice).
DISJOINT_SEED_OFFSET = 1_000_000


def check_episodes_and_seed(episodes, seed, *, names: tuple[str, str] = ("episodes", "seed"),
                            evaluation: bool = True) -> None:
    """The one check of an episode count and a first seed (CLI, sweep, MeasureConfig, bench options,
    `evaluate`); `names` are how the caller spells the two in its errors. Evaluation seeds
    seed … seed+episodes-1 must also stay below the calibration / distillation seeds; `evaluation=False`
    (model selection in training, which runs on those disjoint seeds on purpose) skips that bound."""
    n_name, s_name = names
    if int(episodes) != episodes or episodes < 1:
        raise DrlbenchError(f"{n_name} must be >= 1, got {episodes}")
    if int(seed) != seed or seed < 0:
        raise DrlbenchError(f"{s_name} must be an integer >= 0 (Gymnasium accepts no other), got {seed!r}")
    if evaluation and seed + episodes > DISJOINT_SEED_OFFSET:
        raise DrlbenchError(f"{s_name}: evaluation seeds {seed}…{seed + episodes - 1} must lie in "
                            f"0…{DISJOINT_SEED_OFFSET - 1}: seeds from {DISJOINT_SEED_OFFSET:,} on are the "
                            "calibration / distillation rollouts'")


@dataclass(frozen=True)
class Task:
    name: str  # "Hopper"
    version: str  # "v5"

    @property
    def env_id(self) -> str:
        return f"{self.name}-{self.version}"


def parse_task(name: str) -> Task:
    """Accept `Hopper`, `hopper`, `Hopper-v5`, `hopper-v4`."""
    if not isinstance(name, str) or not name:
        raise unknown("task", name, TASK_NAMES)
    base, _, version = name.partition("-")
    version = version or DEFAULT_VERSION
    by_key = {t.lower(): t for t in TASK_NAMES}
    if base.lower() not in by_key:
        suffixes = ", ".join("-" + v for v in ACCEPTED_VERSIONS)
        raise DrlbenchError(f"unknown task {name!r}; accepted: {', '.join(TASK_NAMES)}, each with an optional "
                            f"version suffix ({suffixes}; default -{DEFAULT_VERSION})")
    if version not in ACCEPTED_VERSIONS:
        raise DrlbenchError(f"unsupported version {version!r} for task {base}; "
                            f"accepted: {', '.join(ACCEPTED_VERSIONS)}")
    return Task(by_key[base.lower()], version)


def make_env(env_id: str, **kwargs) -> gym.Env:
    """gym.make with a clear error for unknown ids and for non-Box spaces."""
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.Error as exc:  # NameNotFound, VersionNotFound, …
        raise DrlbenchError(f"unknown env id {env_id!r}: {exc}") from None
    for what, space in (("observation", env.observation_space), ("action", env.action_space)):
        if not isinstance(space, gym.spaces.Box):
            env.close()
            raise DrlbenchError(
                f"{env_id} has a {type(space).__name__} {what} space; not supported yet "
                "(drlbench accepts Box observation and Box action spaces)"
            )
    return env


def random_returns() -> dict:
    """Measured random-policy returns (see `measure_random_return`), kept as package data."""
    text = resources.files("drlbench.data").joinpath("random_returns.json").read_text()
    return json.loads(text)


def measure_random_return(env_id: str, episodes: int = 10, seed: int = 0) -> dict:
    """Average return of uniform random actions, seeded (env and action space)."""
    env = make_env(env_id)
    returns, lengths = [], []
    for i in range(episodes):
        env.action_space.seed(seed + i)
        env.reset(seed=seed + i)
        total, steps, done = 0.0, 0, False
        while not done:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            total += float(r)
            steps += 1
            done = term or trunc
        returns.append(total)
        lengths.append(steps)
    env.close()
    return {
        "mean": float(np.mean(returns)),
        "std": float(np.std(returns)),
        "episodes": episodes,
        "seed": seed,
        "mean_length": float(np.mean(lengths)),
    }


def random_action_observations(env: gym.Env, n: int, seed: int = 0) -> np.ndarray:
    """`n` observations visited under seeded uniform random actions (inputs to check an actor on)."""
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(n):
        out.append(obs)
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            obs, _ = env.reset()
    return np.asarray(out, dtype=np.float32)
