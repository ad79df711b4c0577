"""Folders written whole (agents, checkpoints, variant folders): old or new, never half."""

import os

import pytest

from drlbench.files import atomic_folder, recover_folder


def test_a_failed_write_leaves_the_old_folder_and_no_scratch(tmp_path):
    target = tmp_path / "agent"
    with atomic_folder(target) as tmp:
        (tmp / "card.json").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(target) as tmp:
        (tmp / "card.json").write_text("half")
        raise RuntimeError("killed mid-write")
    assert (target / "card.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent"]


def test_a_kill_between_the_renames_is_recovered(tmp_path):
    target = tmp_path / "checkpoint"
    with atomic_folder(target) as tmp:
        (tmp / "state.json").write_text("1")
    os.replace(target, tmp_path / ".checkpoint.old")  # first rename done, second never happened
    recover_folder(target)
    assert (target / "state.json").read_text() == "1"
    with atomic_folder(target) as tmp:  # and the next write replaces it as usual
        (tmp / "state.json").write_text("2")
    assert (target / "state.json").read_text() == "2" and sorted(os.listdir(tmp_path)) == ["checkpoint"]
