"""`drlbench train` smoke tests (tiny budgets): every algorithm trains, checkpoints, resumes, exports."""

import json

import pytest

from drlbench.actor import load_actor
from drlbench.cli import main
from drlbench.names import ALGOS


@pytest.mark.parametrize("algo", ALGOS)
def test_train_exports_an_agent_with_its_card(algo, tmp_path, capsys):
    out = tmp_path / "agent"
    code = main(["train", "--algo", algo, "--task", "Hopper", "--steps", "300", "--checkpoint-every", "300",
                 "--run-dir", str(tmp_path / "runs"), "--out", str(out), "--no-progress"])
    assert code == 0
    card = json.loads((out / "card.json").read_text())
    assert card["id"] == f"{algo}-hopper" and card["env_id"] == "Hopper-v5"
    assert card["training_steps"] >= 300 and card["evaluation"]["n"] == 10
    assert card["hyperparams"]["steps"] > 0 and "rl-baselines3-zoo" in card["hyperparams_source"]
    assert load_actor(out / "actor.safetensors").obs_dim == 11
    assert (tmp_path / "runs" / f"{algo}-hopper-v5-s0" / "checkpoint" / "model.zip").is_file()


def test_train_exports_the_best_checkpoint_and_records_the_choice(tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "agent"
    assert main(["train", "--algo", "ppo", "--task", "Hopper", "--steps", "1500", "--checkpoint-every", "200",
                 "--run-dir", str(runs), "--out", str(out), "--no-progress"]) == 0
    card = json.loads((out / "card.json").read_text())
    selections = {row[0]: row[3] for row in card["training_curve"]}
    best = max(selections, key=selections.get)
    assert card["selection"]["selected_steps"] == best and card["selection"]["selection_mean"] == selections[best]
    assert "seeds 1001000" in card["selection"]["rule"]
    assert card["final_policy_evaluation"]["steps"] == card["training_steps"] == 1536  # 3 rollouts of 512
    exported = load_actor(out / "actor.safetensors")
    kept = load_actor(runs / "ppo-hopper-v5-s0" / "checkpoint" / "best_actor.safetensors")
    assert all((a == b).all() for a, b in zip(exported.state_dict().values(), kept.state_dict().values()))


def test_linear_learning_rate_decays_over_the_whole_budget_across_checkpoint_chunks(tmp_path):
    from stable_baselines3 import PPO

    from drlbench.train import TrainArgs, train

    # budget 2048, this pass capped at 1024 in two 512-step chunks: the last update sees half the budget left
    runs = tmp_path / "runs"
    train(TrainArgs(algo="ppo", task="Hopper", steps=1024, checkpoint_every=512, run_dir=str(runs),
                    out=str(tmp_path / "agent"), select_episodes=0, progress=False,
                    overrides={"learning_rate": "lin_1e-3", "steps": 2048}))
    model = PPO.load(runs / "ppo-hopper-v5-s0" / "checkpoint" / "model.zip", device="cpu")
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 - 1024 / 2048))
    card = json.loads((tmp_path / "agent" / "card.json").read_text())
    assert card["hyperparams"]["learning_rate"] == "lin_1e-3"


def test_a_run_extended_past_its_budget_decays_over_the_steps_asked_for():
    from drlbench.hyperparams import lr_schedule

    hp = {"learning_rate": "lin_1e-3", "steps": 2048}
    assert lr_schedule(hp, 1024, total=1024)(0.0) == pytest.approx(5e-4)  # a capped pass: the budget rules
    assert lr_schedule(hp, 3072, total=4096)(0.0) == pytest.approx(2.5e-4)  # extended to 4096: decays over that
    assert lr_schedule({"learning_rate": 3e-4, "steps": 2048}, 1024, total=1024) is None  # constant


@pytest.mark.parametrize("rate", ["cos_3e-4", "lin_fast"])
def test_an_unknown_learning_rate_schedule_is_refused_by_name(rate, tmp_path):
    from drlbench.errors import DrlbenchError
    from drlbench.train import TrainArgs, train

    with pytest.raises(DrlbenchError, match="lin_<initial>"):
        train(TrainArgs(algo="ppo", task="Hopper", steps=64, run_dir=str(tmp_path / "runs"),
                        out=str(tmp_path / "agent"), progress=False, overrides={"learning_rate": rate}))
    assert not (tmp_path / "agent").exists()


def test_train_without_selection_exports_the_final_policy(tmp_path, capsys):
    out = tmp_path / "agent"
    assert main(["train", "--algo", "ppo", "--task", "Hopper", "--steps", "200", "--checkpoint-every", "200",
                 "--select-episodes", "0", "--run-dir", str(tmp_path / "runs"), "--out", str(out),
                 "--no-progress"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["selection"] == {"rule": "final policy (no selection)"} and "final_policy_evaluation" not in card
    assert all(len(row) == 3 for row in card["training_curve"])


def test_train_resumes_from_its_last_checkpoint(tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "agent"
    base = ["train", "--algo", "sac", "--task", "Hopper", "--checkpoint-every", "200", "--run-dir", str(runs),
            "--out", str(out), "--no-progress"]
    assert main(base + ["--steps", "200"]) == 0
    assert (runs / "sac-hopper-v5-s0" / "checkpoint" / "replay_buffer.pkl").is_file()
    assert main(base + ["--steps", "400"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["training_steps"] == 400
    assert [row[0] for row in card["training_curve"]] == [200, 400]  # the first 200 steps were not redone


def test_train_refuses_to_replace_an_agent_of_another_env_before_training(tmp_path, capsys):
    out = tmp_path / "ppo-hopper"
    out.mkdir()
    (out / "card.json").write_text(json.dumps({"id": "ppo-hopper", "env_id": "Hopper-v5"}))
    code = main(["train", "--algo", "ppo", "--task", "Hopper-v4", "--steps", "300", "--run-dir", str(tmp_path / "runs"),
                 "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "holds an agent for Hopper-v5; this run trains Hopper-v4" in err
    assert not (tmp_path / "runs").exists()  # refused before any training


@pytest.mark.parametrize("plant", ["extra_file", "changed_file", "no_manifest"])
def test_train_refuses_to_unpickle_a_checkpoint_it_did_not_write(plant, tmp_path, capsys):
    runs, out = tmp_path / "runs", tmp_path / "agent"
    base = ["train", "--algo", "td3", "--task", "Hopper", "--checkpoint-every", "200", "--run-dir", str(runs),
            "--out", str(out), "--no-progress", "--select-episodes", "0"]
    assert main(base + ["--steps", "200"]) == 0
    ckpt = runs / "td3-hopper-v5-s0" / "checkpoint"
    if plant == "extra_file":
        (ckpt / "evil.pkl").write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    elif plant == "changed_file":
        (ckpt / "replay_buffer.pkl").write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    else:
        (ckpt / "manifest.json").unlink()
    capsys.readouterr()
    assert main(base + ["--steps", "400"]) == 2
    err = capsys.readouterr().err
    assert "drlbench resumes only checkpoints it wrote" in err and len(err.strip().splitlines()) == 1


SBX_ALGOS = ("ddpg", "td3", "sac")


@pytest.mark.parametrize("algo", SBX_ALGOS)
def test_sbx_actor_reproduces_sbx_predict(algo):
    sbx = pytest.importorskip("sbx", reason="the sbx extra: pip install -e '.[sbx]'")
    import gymnasium as gym
    import numpy as np

    from drlbench.importers.sbx import actor_from_sbx

    model = getattr(sbx, algo.upper())("MlpPolicy", gym.make("Hopper-v5"), seed=0, learning_starts=50,
                                       policy_kwargs=dict(net_arch=[32, 16]))
    model.learn(150)  # a few updates, so the weights are not the initial ones
    actor = actor_from_sbx(model)
    obs = np.random.default_rng(0).normal(0, 3, size=(256, 11)).astype(np.float32)
    expected, _ = model.predict(obs, deterministic=True)
    assert actor.hidden == [32, 16] and actor.squash == "tanh"
    assert np.abs(actor.act(obs) - expected).max() < 1e-5


def test_sbx_parameters_that_are_not_an_mlp_actor_are_refused():
    import numpy as np

    from drlbench.errors import DrlbenchError
    from drlbench.importers.sbx import actor_from_params

    params = {"params": {"Dense_0": {"kernel": np.zeros((3, 4)), "bias": np.zeros(4)}, "LayerNorm_0": {}}}
    with pytest.raises(DrlbenchError, match="not an sbx MLP actor"):
        actor_from_params(params, "td3", "relu", [-1, -1], [1, 1])
    params = {"params": {"Dense_0": {"kernel": np.zeros((3, 4)), "bias": np.zeros(4)},
                         "Dense_1": {"kernel": np.zeros((5, 2)), "bias": np.zeros(2)}}}
    with pytest.raises(DrlbenchError, match="do not chain"):
        actor_from_params(params, "td3", "relu", [-1, -1], [1, 1])


def test_interim_export_ships_the_best_checkpoint_of_a_run_still_training(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "--algo", "td3", "--task", "Hopper", "--steps", "400", "--checkpoint-every", "200",
                 "--run-dir", str(runs), "--out", str(tmp_path / "final"), "--no-progress"]) == 0
    ckpt = runs / "td3-hopper-v5-s0" / "checkpoint"
    out = tmp_path / "interim"
    assert main(["train", "--algo", "td3", "--task", "Hopper", "--run-dir", str(runs), "--out", str(out),
                 "--export-interim", "--no-progress"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["training_steps"] == 400 and card["hyperparams"]["steps"] == 600_000  # "400 of 600,000"
    assert card["selection"]["selected_steps"] in (200, 400) and card["evaluation"]["n"] == 10
    kept = load_actor(ckpt / "best_actor.safetensors")
    assert all((a == b).all() for a, b in zip(load_actor(out / "actor.safetensors").state_dict().values(),
                                              kept.state_dict().values()))
    (ckpt / "best_actor.safetensors").write_bytes(b"not the actor drlbench wrote")
    capsys.readouterr()
    assert main(["train", "--algo", "td3", "--task", "Hopper", "--run-dir", str(runs), "--out", str(out),
                 "--export-interim", "--no-progress"]) == 2
    assert "changed since drlbench wrote it" in capsys.readouterr().err
