"""Bring your own agent: a model file in one of several formats becomes a drlbench `Agent`.

    load_external(path, env_id, *, trust_pickle=False, vecnormalize=None, obs_stats=None, algo=None) -> Agent

Formats, detected from the file's bytes (never from its name), one reader module each, all with the
signature `read(Request) -> Imported` (spec.py), looked up in `READERS`:
    sb3           a zip holding `data` and `policy.pth` (Stable-Baselines3 / sb3-contrib `model.save`)
    sbx           a zip holding `data` whose policy class is sbx's (sbx `model.save`): DDPG, TD3, SAC
    cleanrl       a `torch.save` zip (`data.pkl`) of CleanRL `--save-model` state dicts
    torchscript   a zip with a `code/` folder (`torch.jit.script` / `trace`, then `.save`)
    torch_export  a zip with an `archive_format` entry (`torch.export.save`, .pt2)
    onnx          anything else that parses as an ONNX model (input float32 [batch, obs_dim])
ONNX, TorchScript and torch.export graphs are followed back from the action output (graph.py), so SB3's
export-guide files (SAC/TD3/DDPG actors with their log-std heads and shape arithmetic, PPO policies
with value and log-prob outputs), observation normalization inside (Sub/Div, Clip) and action
post-processing (tanh rescaled to the bounds, clip) are read; every format except SB3 zips is then
checked against the file's own runtime on env observations (SB3 zips against SB3 in the tests).

Safety. SB3 and sbx zips, CleanRL checkpoints, .pt2 archives and vecnormalize.pkl are pickle-based
and unpickling can run arbitrary code, so all are refused unless the user passes `trust_pickle=True`
(`--trust-pickle`). Even then SB3 zips and CleanRL checkpoints are read without executing them (JSON +
`torch.load(weights_only=True)`); sbx zips, .pt2 archives and vecnormalize.pkl are really unpickled
(by sbx, torch.export.load and pickle). Observation statistics in an .npz are read with
`allow_pickle=False`. ONNX is protobuf and TorchScript has its own deserializer, so neither needs
pickle: loading a TorchScript file does not run Python, but verifying it runs its `forward`.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from pathlib import Path

from drlbench.errors import DrlbenchError, unknown
from drlbench.importers import cleanrl, onnx, sb3, sbx, torch_export, torchscript
from drlbench.importers.spec import (
    ACCEPTED,
    CLIPPED,
    ENV_UNITS,
    PROBE_STEPS,
    TANH_SCALED,
    TANH_UNIT,
    Request,
    first_line,
    require_trust,
    spaces_of,
)
from drlbench.importers.stats import NO_STATS, norm_digest, read_obs_stats, read_vecnormalize, vecnormalize_path
from drlbench.names import ALGOS
from drlbench.provenance import library_versions
from drlbench.tasks import make_env, random_action_observations
from drlbench.zoo import Agent

READERS = {"sb3": sb3.read, "sbx": sbx.read, "cleanrl": cleanrl.read, "onnx": onnx.read,
           "torchscript": torchscript.read, "torch_export": torch_export.read}
PICKLED = ("sb3", "sbx", "cleanrl", "torch_export")  # formats read only with trust_pickle
__all__ = ["ACCEPTED", "CLIPPED", "ENV_UNITS", "READERS", "TANH_SCALED", "TANH_UNIT", "detect_format", "load_external"]


def load_external(path, env_id: str, *, trust_pickle: bool = False, vecnormalize=None, obs_stats=None,
                  algo: str | None = None) -> Agent:
    """An external checkpoint as an `Agent` whose actor acts in `env_id`'s units. Writes nothing.

    trust_pickle   allow the pickle-based files (SB3/sbx zip, CleanRL checkpoint, .pt2, VecNormalize .pkl)
    vecnormalize   a VecNormalize .pkl whose observation statistics are baked into the actor (any
                   format); for SB3 zips it is looked up beside the zip when not given
    obs_stats      observation statistics as an .npz (`mean`, `var`; optional `clip`, default 10, and
                   `epsilon`, default 1e-8: gymnasium's NormalizeObservation and CleanRL's clip), baked
                   into the actor (any format); "none" says a CleanRL PPO agent was trained without them
    algo           one of ALGOS: required for SB3 zips whose algorithm cannot be detected, a label
                   for the card otherwise (a checkpoint that says otherwise is refused)
    Every bad input raises one DrlbenchError naming what was wrong and what is accepted.
    """
    path = Path(path)
    if path.is_dir():
        raise DrlbenchError(f"{path} is a folder; pass the checkpoint file in it (e.g. {path / env_id}.zip, as "
                            f"rl-baselines3-zoo names it); accepted: {ACCEPTED}")
    if not path.is_file():
        raise DrlbenchError(f"agent file not found: {path} (expected {ACCEPTED})")
    if algo is not None and algo.lower() not in ALGOS:
        raise unknown("algorithm", algo, ALGOS)
    algo = algo.lower() if algo else None
    if vecnormalize is not None and obs_stats is not None:
        raise DrlbenchError("give the observation statistics once: vecnormalize (.pkl) or obs_stats (.npz), not both")
    env = make_env(env_id)
    try:
        spaces = spaces_of(env, env_id)
        fmt = detect_format(path)
        vn_path = vecnormalize_path(path, env_id, vecnormalize, fmt) if obs_stats is None else None
        if fmt in PICKLED or vn_path is not None:
            require_trust(trust_pickle, path if fmt in PICKLED else vn_path)
        if vn_path is not None:
            norm = read_vecnormalize(vn_path, spaces)
        else:
            norm = None if obs_stats in (None, NO_STATS) else read_obs_stats(Path(obs_stats), spaces)
        req = Request(path, spaces, norm, algo, obs_stats, vn_path, random_action_observations(env, PROBE_STEPS))
        imported = READERS[fmt](req)
    finally:
        env.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    stats_digest = norm_digest(norm)
    # the id names the actor, not the file: the same file with other statistics is another agent (a
    # resumed `compress` keys its finished cells by this id); without normalization it is the file's
    ident = digest if stats_digest is None else hashlib.sha256(f"{digest}:{stats_digest}".encode()).hexdigest()
    task = env.spec.name if env.spec is not None else env_id
    extra = dict(imported.extra)
    algo = extra.pop("algo", algo)
    card = {
        "id": f"ext-{algo or fmt}-{task.lower()}-{ident[:8]}",  # never collides with a bundled id
        "algo": algo,
        "task": task,
        "env_id": env_id,
        "source": str(path.resolve()),
        "format": fmt,
        "sha256": digest,
        "trust_pickle": trust_pickle,
        "vecnormalize": str(vn_path.resolve()) if vn_path is not None else None,
        "obs_stats": str(Path(obs_stats).resolve()) if obs_stats not in (None, NO_STATS) else obs_stats,
        "vecnormalize_sha256": stats_digest,  # of the statistics baked into the actor; None: none are
        "output": imported.output,
        **extra,
        "actor": imported.actor.config() | {"n_params": imported.actor.n_params()},
        "versions": library_versions(),
    }
    return Agent(card["id"], imported.actor, card)


def detect_format(path: Path) -> str:
    """A key of READERS, from the bytes; bare pickles and unknown zips are refused."""
    with path.open("rb") as f:
        head = f.read(4)
    if head[:1] == b"\x80":  # pickle protocol 2+ opcode: a .pkl or a legacy torch.save file
        raise DrlbenchError(f"{path} is a pickle, which drlbench never loads as an agent (unpickling can run "
                            f"arbitrary code); accepted: {ACCEPTED}")
    if not head.startswith(b"PK"):
        return "onnx"
    try:
        with zipfile.ZipFile(path) as zf:
            names, first = zf.namelist(), min((i.header_offset for i in zf.infolist()), default=0)
            if first != 0:
                # a cut SB3 zip can still hold its policy.pth, itself a zip, whose directory zipfile then finds
                raise zipfile.BadZipFile("its directory does not describe the file's first entry")
            sbx_data = "data" in names and "policy.pth" not in names and _is_sbx(zf.read("data"))
    except (zipfile.BadZipFile, NotImplementedError, ValueError, OSError, EOFError, RuntimeError, zlib.error) as exc:
        raise DrlbenchError(f"{path} is a truncated or corrupt zip ({first_line(exc)}); "
                            f"accepted: {ACCEPTED}") from None
    if {"data", "policy.pth"} <= set(names):
        return "sb3"
    if sbx_data:
        return "sbx"
    if any(n == "archive_format" or n.endswith("/archive_format") for n in names):
        return "torch_export"
    if any("/code/" in n for n in names):
        return "torchscript"
    if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        return "cleanrl"  # a torch.save zip; whether it holds a CleanRL actor is read after the trust check
    raise DrlbenchError(f"{path} is a zip but neither an SB3 or sbx checkpoint (data, policy.pth), a TorchScript "
                        f"archive (code/) nor a torch.export archive (archive_format); accepted: {ACCEPTED}")


def _is_sbx(raw: bytes) -> bool:
    """sbx's `data` is SB3's JSON; its policy_class entry names an sbx module (read as JSON, never unpickled)."""
    try:
        module = json.loads(raw).get("policy_class", {}).get("__module__", "")
    except (ValueError, AttributeError):  # not JSON, or not SB3's layout of it
        return False
    return isinstance(module, str) and module.split(".")[0] == "sbx"
