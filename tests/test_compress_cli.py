"""`drlbench compress`: a user's own actor through the variants, into a store, a report and artifacts."""

import json

import pytest

import torch
from torch import nn

from drlbench.cli import main
from drlbench.store import ResultStore


def _onnx_actor(path):
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(3, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))
    torch.onnx.export(mlp, (torch.zeros(1, 3),), str(path), input_names=["obs"], output_names=["action"],
                      dynamic_axes={"obs": {0: "batch"}}, dynamo=False)
    return path


def test_compress_an_onnx_actor_on_a_non_mujoco_env(tmp_path, capsys):
    actor = _onnx_actor(tmp_path / "actor.onnx")
    out = tmp_path / "out"
    argv = ["compress", str(actor), "--task", "Pendulum-v1", "--variants", "ptdq,prune_l2_30", "--episodes", "2",
            "--out", str(out), "--no-progress", "--json"]
    assert main(argv) == 0
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert [c["variant"] for c in cells] == ["fp32", "ptdq", "prune_l2_30"]
    assert all(c["env_id"] == "Pendulum-v1" and c["random_return_mean"] is not None for c in cells)
    report = (out / "report.md").read_text()
    assert report.count("\n| ") == 4  # header + 3 variants
    assert (out / "variants" / "ptdq" / "model.onnx").is_file()
    assert (out / "variants" / "prune_l2_30" / "actor.safetensors").is_file()
    with ResultStore(out / "results.db") as store:
        assert len(store) == 3
    # a rerun reuses the finished cells instead of measuring them again
    assert main(argv) == 0
    assert [c["return_mean"] for c in json.loads(capsys.readouterr().out)["cells"]] == [c["return_mean"] for c in cells]


def test_compress_refuses_a_pickle_checkpoint_without_trust(tmp_path, capsys):
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", "Pendulum-v1", n_steps=64, batch_size=64, seed=0, device="cpu")
    model.save(tmp_path / "ppo.zip")
    out = tmp_path / "out"
    code = main(["compress", str(tmp_path / "ppo.zip"), "--task", "Pendulum-v1", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "--trust-pickle" in err and err.count("\n") == 1
    assert not out.exists()


def test_compress_a_cleanrl_ppo_checkpoint_with_its_observation_statistics(tmp_path, capsys):
    import numpy as np

    from .test_importers_files import OBS_STATS, CleanRLAgent

    torch.save(CleanRLAgent(11, 3).state_dict(), tmp_path / "ppo_continuous_action.cleanrl_model")
    np.savez(tmp_path / "obs_stats.npz", **OBS_STATS)
    out = tmp_path / "out"
    argv = ["compress", str(tmp_path / "ppo_continuous_action.cleanrl_model"), "--task", "Hopper-v5", "--trust-pickle",
            "--obs-stats", str(tmp_path / "obs_stats.npz"), "--variants", "ptdq", "--episodes", "2", "--out", str(out),
            "--no-progress", "--json"]
    assert main(argv) == 0
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert [c["variant"] for c in cells] == ["fp32", "ptdq"] and cells[0]["algo"] == "ppo"
    assert (out / "variants" / "ptdq" / "model.onnx").is_file()
    # other statistics make another agent: its cells are not the stored ones
    np.savez(tmp_path / "obs_stats.npz", mean=OBS_STATS["mean"] + 1, var=OBS_STATS["var"])
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["cells"][0]["agent"] != cells[0]["agent"]


@pytest.mark.parametrize("optimize", ["size", "latency"])
def test_compress_names_the_variant_to_ship_and_copies_it(tmp_path, capsys, optimize):
    """trpo-hopper exported to ONNX: PTDQ keeps its return, L2 pruning at 30 % collapses it (docs/report)."""
    from drlbench.compress.onnx_export import export_onnx
    from drlbench.zoo import load_agent

    actor = load_agent("trpo-hopper").actor
    (tmp_path / "policy.onnx").write_bytes(export_onnx(actor, actor.obs_dim))
    out = tmp_path / "out"
    assert main(["compress", str(tmp_path / "policy.onnx"), "--task", "Hopper-v5", "--variants", "ptdq,prune_l2_30",
                 "--episodes", "2", "--out", str(out), "--no-progress", "--json", "--optimize", optimize]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["recommended"]["variant"] == "ptdq" and got["recommended"]["objective"] == optimize
    assert "prune_l2_30" not in got["recommended"]["reason"]
    assert set(got["pareto_front"]) == {"size", "latency"} and "ptdq" in got["pareto_front"]["size"]
    shipped = (out / "recommended" / "model.onnx").read_bytes()
    assert shipped == (out / "variants" / "ptdq" / "model.onnx").read_bytes()
    assert "## Which variant to ship" in (out / "report.md").read_text()
