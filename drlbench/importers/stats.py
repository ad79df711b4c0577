"""Observation statistics given beside a model: a VecNormalize .pkl or an obs_stats .npz."""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from pathlib import Path

import numpy as np

from drlbench.errors import DrlbenchError
from drlbench.importers.spec import ObsNorm, Spaces, first_line

NO_STATS = "none"  # obs_stats: the agent was trained on raw observations
OBS_STATS_KEYS = "mean and var (optional: clip, default 10; epsilon, default 1e-8)"


def vecnormalize_path(path: Path, env_id: str, given, fmt: str) -> Path | None:
    """The explicit file, else (SB3 zips only) where rl-baselines3-zoo or its Hugging Face repos keep it."""
    if given is not None:
        given = Path(given)
        if not given.is_file():
            raise DrlbenchError(f"vecnormalize file not found: {given} (expected a VecNormalize .pkl saved by SB3)")
        return given
    if fmt != "sb3":
        return None
    candidates = (path.parent / "vecnormalize.pkl", path.parent / "vec_normalize.pkl",
                  path.parent / env_id / "vecnormalize.pkl")
    return next((p for p in candidates if p.is_file()), None)


def norm_digest(norm: ObsNorm | None) -> str | None:
    """sha256 of the observation statistics the actor applies (not of the .pkl, which also holds
    reward statistics and the pickled env); None without normalization."""
    if norm is None:
        return None
    h = hashlib.sha256()
    for array in (norm.mean, norm.var):
        h.update(np.ascontiguousarray(array, np.float64).tobytes())
    h.update(np.array([norm.clip, norm.eps], np.float64).tobytes())
    return h.hexdigest()


def read_vecnormalize(path: Path, spaces: Spaces) -> ObsNorm | None:
    """Unpickles (the caller checked trust_pickle); None when the file does not normalize observations."""
    from stable_baselines3.common.vec_env import VecNormalize

    try:
        with path.open("rb") as f:
            vn = pickle.load(f)
    except Exception as exc:  # a bad pickle can raise anything: EOFError, UnpicklingError, ImportError, …
        raise DrlbenchError(f"cannot read VecNormalize file {path}: {type(exc).__name__}: {first_line(exc)}") from None
    if not isinstance(vn, VecNormalize):
        raise DrlbenchError(f"{path} holds a {type(vn).__name__}, not a VecNormalize (saved by VecNormalize.save)")
    if not vn.norm_obs:
        return None
    mean, var = vn.obs_rms.mean, vn.obs_rms.var
    return obs_norm(mean, var, float(vn.clip_obs), float(vn.epsilon), f"VecNormalize file {path}", spaces)


def obs_norm(mean, var, clip: float, eps: float, what: str, spaces: Spaces) -> ObsNorm:
    mean, var = np.asarray(mean, np.float64), np.asarray(var, np.float64)
    if mean.shape != (spaces.obs_dim,) or var.shape != (spaces.obs_dim,):
        raise DrlbenchError(f"{what} normalizes {mean.shape} observations but {spaces.env_id} gives "
                            f"({spaces.obs_dim},)")
    if not (np.isfinite(mean).all() and np.isfinite(var).all() and (var >= 0).all()):
        raise DrlbenchError(f"{what} has NaN, Inf or negative variance in its statistics")
    if not (clip > 0 and eps >= 0):
        raise DrlbenchError(f"{what} has clip {clip} and epsilon {eps}; expected clip > 0 and epsilon >= 0")
    return ObsNorm(mean, var, clip, eps)


def read_obs_stats(path: Path, spaces: Spaces) -> ObsNorm:
    """An .npz of observation statistics, read without pickle (gymnasium's NormalizeObservation: mean, var)."""
    if not path.is_file():
        raise DrlbenchError(f"obs stats file not found: {path} (expected an .npz holding {OBS_STATS_KEYS})")
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with npz:
            arrays = {k: np.asarray(npz[k]) for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # pickled arrays raise ValueError
        raise DrlbenchError(f"cannot read obs stats {path}: {first_line(exc)} (expected an .npz holding "
                            f"{OBS_STATS_KEYS}, saved with np.savez)") from None
    missing = [k for k in ("mean", "var") if k not in arrays]
    if missing:
        raise DrlbenchError(f"obs stats {path} has no {' and no '.join(missing)} (it holds "
                            f"{sorted(arrays) or 'nothing'}); expected {OBS_STATS_KEYS}")
    try:
        clip, eps = float(arrays.get("clip", 10.0)), float(arrays.get("epsilon", 1e-8))
    except (TypeError, ValueError):
        raise DrlbenchError(f"obs stats {path}: clip and epsilon must be numbers") from None
    return obs_norm(arrays["mean"], arrays["var"], clip, eps, f"obs stats {path}", spaces)
