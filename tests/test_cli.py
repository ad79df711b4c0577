"""The `drlbench` command line: JSON output, and one clear line with exit code 2 for bad input."""

import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from drlbench.actor import Actor, load_actor, save_actor
from drlbench.cli import main
from drlbench.errors import DrlbenchError
from drlbench.zoo import ZOO_DIR

from .conftest import TEST_AGENT


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_zoo_lists_bundled_agents_as_json(capsys):
    code, out, _ = run(capsys, "zoo", "--json")
    rows = {r["id"]: r for r in json.loads(out)}
    assert code == 0 and TEST_AGENT in rows
    assert rows[TEST_AGENT]["return_mean"] > 1000
    assert rows[TEST_AGENT]["paper_baseline"] == pytest.approx(164.06, abs=0.01)  # the paper's TRPO Hopper
    assert all(r["selected_steps"] is None or r["selected_steps"] <= r["training_steps"] for r in rows.values())


def test_evaluate_prints_returns_size_and_parameters(capsys):
    code, out, _ = run(capsys, "evaluate", TEST_AGENT, "--variant", "prune_l2_10", "--episodes", "2", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["variant"] == "prune_l2_10" and data["runtime"] == "onnxruntime"
    assert data["return"]["n"] == 2 and data["return"]["seeds"] == [0, 1]
    assert 0 < data["n_params"] < data["baseline"]["n_params"]
    assert 0 < data["artifact_bytes"] < data["baseline"]["artifact_bytes"]
    assert {"raw_ratio", "normalized_score"} <= data.keys()


@pytest.mark.parametrize("argv, needle", [
    (["evaluate", "nope-hopper"], "unknown agent 'nope-hopper'; accepted: "),
    (["evaluate", TEST_AGENT, "--variant", "int4"], "unknown variant 'int4'; accepted: fp32"),
    (["evaluate", TEST_AGENT, "--variant", "prune_l2_00"], "must be in (0, 1)"),
    (["train", "--algo", "ppo", "--task", "Walker"], "unknown task 'Walker'; accepted: HalfCheetah"),
    (["train", "--algo", "ppo", "--task", "Walker"], "(-v5, -v4; default -v5)"),
    (["evaluate", "./nowhere/agent"], "agent folder nowhere/agent not found"),
    (["evaluate", TEST_AGENT, "--seed", "999995"], "must lie in 0…999999"),
    (["sweep", "--seed", "999999", "--episodes", "2"], "must lie in 0…999999"),
    (["sweep", "--agents", ""], "--agents was given but names none"),
    (["sweep", "--variants", " , "], "--variants was given but names none"),
    (["train", "--algo", "ppo", "--task", "Hopper-v3"], "accepted: v5, v4"),
    (["evaluate", TEST_AGENT, "--variant", "qat", "--runtime", "torch"],  # refused before the slow QAT build
     "variant qat has no 'torch' runtime; accepted: onnxruntime"),
])
def test_bad_names_give_one_line_and_exit_2(capsys, argv, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2 and needle in err and err.count("\n") == 1 and out == ""
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_bundled_id_is_not_shadowed_by_a_folder_of_that_name(capsys, tmp_path, monkeypatch):
    """`./trpo-hopper` (say, a `train --out trpo-hopper`) is the folder; `trpo-hopper` the bundled agent."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / TEST_AGENT).mkdir()
    code, out, _ = run(capsys, "evaluate", TEST_AGENT, "--episodes", "1", "--json")
    assert code == 0 and json.loads(out)["agent"] == TEST_AGENT
    code, _, err = run(capsys, "evaluate", f"./{TEST_AGENT}")
    assert code == 2 and "no card.json" in err


def test_a_resumed_sweep_keeps_json_output_parseable(capsys, tmp_path):
    argv = ["sweep", "--agents", TEST_AGENT, "--variants", "fp32", "--episodes", "1", "--no-memory", "--no-energy",
            "--no-progress", "--out", str(tmp_path / "r.db"), "--json"]
    assert json.loads(run(capsys, *argv)[1])["cells"] == 1
    code, out, err = run(capsys, *argv)  # the "already finished" line goes to stderr
    assert code == 0 and json.loads(out)["skipped"] == 1 and "1 cells already finished" in err


def test_bad_input_from_a_real_process_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "drlbench.cli", "evaluate", TEST_AGENT, "--variant", "prune_l9_10"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "unknown variant" in proc.stderr


@pytest.mark.parametrize("argv, needle", [
    (["evaluate", TEST_AGENT, "--episodes", "0"], "expected a positive integer, got 0"),
    (["evaluate", TEST_AGENT, "--seed", "-1"], "expected a seed >= 0"),
    (["sweep", "--seed", "-3"], "expected a seed >= 0"),
    (["train", "--algo", "ppo", "--task", "Hopper", "--steps", "0"], "expected a positive integer, got 0"),
    (["train", "--algo", "ppo", "--task", "Hopper", "--checkpoint-every", "-5"], "expected a positive integer"),
])
def test_out_of_range_numbers_are_usage_errors(capsys, argv, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and needle in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_output_path_is_one_line_not_a_traceback(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out, err = run(capsys, "sweep", "--agents", TEST_AGENT, "--variants", "fp32", "--out",
                         str(blocker / "results.db"), "--no-progress")
    assert code == 2 and str(blocker) in err and err.count("\n") == 1


def test_evaluate_an_agent_on_an_env_outside_the_five_tasks(capsys, tmp_path):
    """Its random-policy return is measured on the spot (none is shipped) for the normalized score."""
    from drlbench.zoo import Agent, save_agent

    torch.manual_seed(0)
    save_agent(Agent("pendulum", Actor(3, 1, [8]), {"id": "pendulum", "algo": "sac", "task": "Pendulum",
                                                      "env_id": "Pendulum-v1"}), tmp_path / "pendulum")
    code, out, _ = run(capsys, "evaluate", str(tmp_path / "pendulum"), "--variant", "ptdq", "--episodes", "2",
                       "--json")
    data = json.loads(out)
    assert code == 0 and data["random_return_mean"] < -500  # Pendulum's random policy loses ~-1200 a run
    # This untrained actor does worse than random, so the score is undefined (null in strict JSON) rather
    # than sign-flipped.
    assert data["baseline"]["mean"] < data["random_return_mean"] and data["normalized_score"] is None


@pytest.fixture
def agent_copy(tmp_path):
    folder = tmp_path / "agent"
    shutil.copytree(ZOO_DIR / TEST_AGENT, folder)
    return folder


def test_missing_weight_file(capsys, agent_copy):
    (agent_copy / "actor.safetensors").unlink()
    code, _, err = run(capsys, "evaluate", str(agent_copy))
    assert code == 2 and "weight file not found" in err


def test_truncated_weight_file(capsys, agent_copy):
    path = agent_copy / "actor.safetensors"
    path.write_bytes(path.read_bytes()[:500])
    code, _, err = run(capsys, "evaluate", str(agent_copy))
    assert code == 2 and "corrupt weight file" in err


def test_corrupt_card(capsys, agent_copy):
    (agent_copy / "card.json").write_text("{not json")
    code, _, err = run(capsys, "evaluate", str(agent_copy))
    assert code == 2 and "corrupt card" in err


def test_nan_weights_are_refused(tmp_path):
    actor = Actor(3, 1, [4])
    with torch.no_grad():
        actor.head.weight[0, 0] = float("nan")
    save_actor(actor, tmp_path / "a.safetensors")
    with pytest.raises(DrlbenchError, match="NaN or Inf"):
        load_actor(tmp_path / "a.safetensors")


def test_failed_agent_write_leaves_nothing(tmp_path, monkeypatch):
    from drlbench import zoo

    agent = zoo.load_agent(TEST_AGENT)
    agent.card["not_json"] = np.float32  # json.dumps fails half-way through the write
    with pytest.raises(TypeError):
        zoo.save_agent(agent, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_json_output_is_strict_and_an_undefined_score_says_so():
    from drlbench.agent_bench import agent_table
    from drlbench.cli import strict_json
    from drlbench.evaluate import normalized_score

    from .test_report import fake_cell

    # fp32 returns less than a random policy: the normalized score is undefined (NaN)
    cells = [fake_cell("ext-ppo-pendulum-0", "Hopper", v, ret, 10.0, 20.0, {}) for v, ret in (("fp32", 10.0),
                                                                                              ("ptdq", 9.0))]
    cells[1].normalized_score = normalized_score(9.0, 10.0, 20.0)  # what a cell records then
    assert math.isnan(cells[1].normalized_score)
    text = json.dumps(strict_json([c.to_dict() for c in cells]), allow_nan=False)  # raises on any NaN left
    assert json.loads(text)[1]["normalized_score"] is None
    assert "| ptdq | " in agent_table(cells) and "n/a: fp32 not above random" in agent_table(cells)
