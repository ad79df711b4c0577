"""Average return over N episodes with paired seeds, the policy batched across episodes.

Episode i always runs on env seed `seed + i`, for the baseline and for every variant, so a variant's
return is compared with the baseline's on the same initial states (a paired design). All live
episodes step together and the policy sees one [B, obs_dim] batch per step: the physics is the cost,
the policy call is amortized. `physics_s` is the time spent inside env.step (the sweep's yardstick:
its efficiency is Σ physics_s / (wall × workers)); timing the calls changes no number.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
from scipy import stats

from drlbench.errors import DrlbenchError
from drlbench.tasks import check_episodes_and_seed, make_env

Policy = Callable[[np.ndarray], np.ndarray]


@dataclass
class EvalResult:
    env_id: str
    seeds: list[int]
    returns: list[float]
    lengths: list[int]
    physics_s: float = field(default=0.0, compare=False)  # seconds inside env.step, all episodes

    @property
    def actions(self) -> int:
        """Env steps taken in total (= policy actions)."""
        return int(sum(self.lengths))

    @property
    def n(self) -> int:
        return len(self.returns)

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns, ddof=1)) if self.n > 1 else 0.0

    @property
    def ci95(self) -> tuple[float, float]:
        """Student-t 95 % interval of the mean."""
        if self.n < 2:
            return (self.mean, self.mean)
        half = stats.t.ppf(0.975, self.n - 1) * self.std / np.sqrt(self.n)
        return (self.mean - half, self.mean + half)

    def summary(self) -> dict:
        lo, hi = self.ci95
        # a timing, not a result: a card's evaluation (train.py) must reproduce bit-exactly
        return {
            **{k: v for k, v in asdict(self).items() if k != "physics_s"},
            "actions": self.actions,
            "n": self.n,
            "mean": self.mean,
            "std": self.std,
            "ci95": [lo, hi],
            "mean_length": float(np.mean(self.lengths)),
        }


def evaluate(policy: Policy, env_id: str, episodes: int = 10, seed: int = 0,
             max_batch: int | None = None) -> EvalResult:
    """Run `episodes` episodes on seeds seed, seed+1, …; `policy` maps [B, obs] -> [B, act]."""
    check_episodes_and_seed(episodes, seed, evaluation=False)  # training's selection seeds lie above on purpose
    seeds = [seed + i for i in range(episodes)]
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=int)
    step = max_batch or episodes
    physics = 0.0
    for start in range(0, episodes, step):
        idx = list(range(start, min(start + step, episodes)))
        envs = [make_env(env_id) for _ in idx]
        obs = np.stack([env.reset(seed=seeds[i])[0] for env, i in zip(envs, idx)]).astype(np.float32)
        alive = np.ones(len(idx), dtype=bool)
        while alive.any():
            live = np.flatnonzero(alive)
            actions = np.asarray(policy(obs[live]), dtype=np.float32)
            for k, j in enumerate(live):
                t0 = time.perf_counter()
                o, r, term, trunc, _ = envs[j].step(actions[k])
                physics += time.perf_counter() - t0
                returns[idx[j]] += float(r)
                lengths[idx[j]] += 1
                obs[j] = o
                if term or trunc:
                    alive[j] = False
        for env in envs:
            env.close()
    return EvalResult(env_id, seeds, returns.tolist(), lengths.tolist(), physics)


def rollout_observations(policy: Policy, env_id: str, n_obs: int, seed: int) -> np.ndarray:
    """Observations visited by `policy` (calibration / distillation data), on seeds from `seed` on."""
    collected: list[np.ndarray] = []
    total, episode = 0, 0
    env = make_env(env_id)
    while total < n_obs:
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done and total < n_obs:
            collected.append(np.asarray(obs, dtype=np.float32))
            total += 1
            obs, _, term, trunc, _ = env.step(np.asarray(policy(obs[None].astype(np.float32)))[0])
            done = term or trunc
        episode += 1
    env.close()
    return np.stack(collected)


def paired_difference(variant_returns, baseline_returns) -> tuple[float, float, float]:
    """Mean per-seed difference R_v - R_base and its Student-t 95 % interval.

    Episodes are paired (same seed, same initial state), so the differences carry less noise than
    the two means' own intervals: an interval entirely below 0 is a drop the seeds agree on."""
    v, b = np.asarray(variant_returns, dtype=float), np.asarray(baseline_returns, dtype=float)
    if v.shape != b.shape or v.ndim != 1 or v.size < 2:
        raise DrlbenchError(f"paired difference needs two equal-length runs of >= 2 episodes, "
                            f"got {v.size} and {b.size}")
    d = v - b
    half = float(stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size))
    return float(d.mean()), float(d.mean()) - half, float(d.mean()) + half


def raw_ratio(variant_mean: float, baseline_mean: float) -> float:
    """The paper's rule: R_v / R_base (meaningless when R_base <= 0; returned as NaN then)."""
    return variant_mean / baseline_mean if baseline_mean > 0 else float("nan")


def normalized_score(variant_mean: float, baseline_mean: float, random_mean: float | None) -> float:
    """(R_v - R_rand) / (R_base - R_rand): 1 = baseline, 0 = random policy.

    NaN when the baseline is not above the random policy: the scale would flip its sign and a
    variant worse than the baseline would score above 1."""
    if random_mean is None or baseline_mean <= random_mean:
        return float("nan")
    return (variant_mean - random_mean) / (baseline_mean - random_mean)
