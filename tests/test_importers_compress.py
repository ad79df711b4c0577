"""What `compress` resumes from (stored cells, variant folders) and saved actors with bad metadata: each
damage is one clear error or a rerun that measures only what is missing."""

import copy
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from drlbench.actor import Actor, load_actor
from drlbench.agent_bench import benchmark_agent
from drlbench.cells import CellMeasurer, MeasureConfig
from drlbench.cli import main
from drlbench.errors import DrlbenchError
from drlbench.store import ResultStore
from drlbench.variants import Variant
from drlbench.zoo import ZOO_DIR, Agent

from .conftest import TEST_AGENT

FAST = MeasureConfig(episodes=1, ratio_block_s=0.01, memory=False, energy=False)
COMPRESSED = ["fp32", "prune_l2_30"]


@pytest.fixture
def small_agent():
    torch.manual_seed(0)
    actor = Actor(3, 1, [16], squash="tanh", action_low=[-2.0], action_high=[2.0])
    return Agent("ext-sac-pendulum-0123abcd", actor,
                 {"id": "ext-sac-pendulum-0123abcd", "algo": "sac", "task": "Pendulum", "env_id": "Pendulum-v1"})


def test_compress_refuses_cells_measured_on_other_weights_under_the_same_id(tmp_path, small_agent):
    benchmark_agent(small_agent, ["fp32"], tmp_path, FAST, progress=False)
    renormalized = Agent(small_agent.id, copy.deepcopy(small_agent.actor), small_agent.card)
    renormalized.actor.obs_mean += 1.0  # e.g. other VecNormalize statistics under an id that ignores them
    with ResultStore(tmp_path / "results.db") as store:
        runs = len(store.runs())
    with pytest.raises(DrlbenchError, match=rf"results.db holds cells of {small_agent.id} measured on other "
                                            r"weights \(fingerprint .*\).*compress into a new --out") as info:
        benchmark_agent(renormalized, ["fp32"], tmp_path, FAST, progress=False)
    assert "\n" not in str(info.value)
    with ResultStore(tmp_path / "results.db") as store:
        assert len(store.runs()) == runs and len(store) == 1


class Killed(BaseException):
    """Stands for a kill: nothing between the save and the test catches it."""


def _kill_while_saving(monkeypatch):
    save = Variant.save

    def half_save(self, folder):
        if self.name != "prune_l2_30":
            return save(self, folder)
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "model.onnx").write_bytes(self.onnx)
        raise Killed

    monkeypatch.setattr(Variant, "save", half_save)


def _rewrite_variant_json(folder: Path, **changes) -> None:
    meta = json.loads((folder / "variant.json").read_text())
    (folder / "variant.json").write_text(json.dumps(meta | changes))


# damage done to variants/prune_l2_30 by the first run (during it, or after it)
FOLDER_DAMAGE = {
    "killed-while-saving": None,
    "folder-deleted": shutil.rmtree,
    "model-onnx-deleted": lambda folder: (folder / "model.onnx").unlink(),
    "overwritten-by-another-agent": lambda folder: _rewrite_variant_json(folder, agent="ppo-hopper"),
}


@pytest.mark.parametrize("damage", list(FOLDER_DAMAGE))
def test_compress_rerun_leaves_every_stored_cell_with_its_variant_folder(tmp_path, small_agent, monkeypatch, damage):
    out = tmp_path / "out"
    if damage == "killed-while-saving":
        _kill_while_saving(monkeypatch)
        with pytest.raises(Killed):
            benchmark_agent(small_agent, COMPRESSED, out, FAST, progress=False)
        monkeypatch.undo()
        with ResultStore(out / "results.db") as store:
            assert [c.variant for c in store.cells()] == ["fp32"]  # no cell without its folder
        assert sorted(p.name for p in (out / "variants").iterdir()) == ["fp32"]  # no half-written folder
    else:
        benchmark_agent(small_agent, COMPRESSED, out, FAST, progress=False)
        FOLDER_DAMAGE[damage](out / "variants" / "prune_l2_30")

    measured = []
    measure = CellMeasurer.measure
    monkeypatch.setattr(CellMeasurer, "measure", lambda self, name: measured.append(name) or measure(self, name))
    cells = benchmark_agent(small_agent, COMPRESSED, out, FAST, progress=False)
    assert [c.variant for c in cells] == COMPRESSED
    assert measured == (["prune_l2_30"] if damage == "killed-while-saving" else [])  # stored cells are reused
    assert sorted(p.name for p in (out / "variants").iterdir()) == COMPRESSED
    for name in COMPRESSED:
        folder = out / "variants" / name
        meta = json.loads((folder / "variant.json").read_text())
        assert (meta["agent"], meta["variant"]) == (small_agent.id, name)
        assert (folder / "model.onnx").stat().st_size > 0
        assert load_actor(folder / "actor.safetensors").hidden == meta["build"].get("hidden", [16])


# ------------------------------------------------------------------------------------- saved actors

BAD_ACTOR_METADATA = {
    "invalid-json": (lambda cfg: "{not json", "Expecting property name"),
    "not-an-object": (lambda cfg: json.dumps(cfg["hidden"]), "expected a JSON object of Actor arguments"),
    "unknown-key": (lambda cfg: json.dumps(cfg | {"dropout": 0.1}), "unexpected keyword argument 'dropout'"),
    "negative-width": (lambda cfg: json.dumps(cfg | {"hidden": [-5, 64]}), "negative dimension"),
    "widths-unlike-the-tensors": (lambda cfg: json.dumps(cfg | {"hidden": [32, 64]}), "size mismatch"),
}


@pytest.mark.parametrize("case", list(BAD_ACTOR_METADATA))
def test_bad_actor_metadata_is_one_line_error_not_a_traceback(tmp_path, capsys, case):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    edit, reason = BAD_ACTOR_METADATA[case]
    folder = tmp_path / "agent"
    shutil.copytree(ZOO_DIR / TEST_AGENT, folder)
    path = folder / "actor.safetensors"
    with safe_open(str(path), framework="pt") as f:
        cfg = json.loads(f.metadata()["drlbench_actor"])
    save_file(load_file(str(path)), str(path), metadata={"drlbench_actor": edit(cfg)})
    what = "tensors do not match the stored architecture" if "tensors" in case else "bad drlbench_actor metadata"
    message = rf"corrupt weight file {re.escape(str(path))}: {what} \(.*{reason}.*\)"
    with pytest.raises(DrlbenchError, match=message) as info:
        load_actor(path)
    assert "\n" not in str(info.value)
    code = main(["evaluate", str(folder)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1
    assert re.search(message, err)
