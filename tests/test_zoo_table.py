"""scripts/zoo_table.py: a row per paper cell, untrained cells marked, and docs/zoo.md kept in sync with the cards."""

import importlib.util
from pathlib import Path

import pytest

from drlbench.report import paper_results

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def zoo_table():
    # scripts/ is not a package: load the script by path, as `python scripts/zoo_table.py` would run it
    spec = importlib.util.spec_from_file_location("zoo_table", ROOT / "scripts" / "zoo_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_row_per_paper_cell_in_paper_order(zoo_table):
    cards = zoo_table.load_cards()
    rows = zoo_table.table_rows(cards)
    algos = ["trpo", "ppo", "ddpg", "td3", "sac"]
    tasks = ["HalfCheetah", "HumanoidStandup", "Ant", "Humanoid", "Hopper"]
    assert [r[0] for r in rows] == [f"{a}-{t.lower()}" for a in algos for t in tasks]
    assert all(len(r) == len(zoo_table.HEADER) for r in rows)
    for row in rows:
        trained = row[0] in cards
        assert (row[zoo_table.RETURN_COL] == zoo_table.UNTRAINED) != trained
        assert row[zoo_table.VS_PAPER_COL] in (("yes", "no") if trained else ("—",))


def test_cells_without_a_card_are_not_yet_trained(zoo_table):
    rows = zoo_table.table_rows({})
    assert len(rows) == 25 and all(r[zoo_table.RETURN_COL] == zoo_table.UNTRAINED for r in rows)
    assert "0 of 0 trained cells at or above the paper's Table 1 baseline" in zoo_table.render({})


def test_trained_cell_compares_with_the_paper(zoo_table):
    aid, card = next(iter(zoo_table.load_cards().items()))  # test_zoo asserts the zoo is not empty
    baseline = paper_results()["table1"][card["algo"]][card["task"]]["baseline"]
    for mean, verdict in ((baseline + 0.5, "yes"), (baseline, "yes"), (baseline - 0.5, "no")):
        card = card | {"evaluation": card["evaluation"] | {"mean": mean}}
        row = next(r for r in zoo_table.table_rows({aid: card}) if r[0] == aid)
        assert row[1] == card["env_id"]
        assert row[zoo_table.RETURN_COL].startswith(f"{mean:.1f} ± ")
        assert row[zoo_table.VS_PAPER_COL] == verdict
    assert f"### {aid}" in zoo_table.render({aid: card})


def test_curve_subsample_keeps_ends_and_caps_rows(zoo_table):
    assert zoo_table.subsample(list(range(5))) == list(range(5))
    picked = zoo_table.subsample(list(range(37)))
    assert len(picked) == zoo_table.CURVE_ROWS and picked[0] == 0 and picked[-1] == 36
    assert picked == sorted(set(picked))


def test_docs_zoo_md_is_up_to_date(zoo_table):
    assert zoo_table.DOC.read_text() == zoo_table.render(zoo_table.load_cards()), (
        "docs/zoo.md is stale: run `python scripts/zoo_table.py`")
