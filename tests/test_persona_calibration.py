"""The persona checks against character turns labelled by reading
(tests/data/labelled_persona_turns.jsonl), split by card: the development split, whose
cards the patterns were fitted on, and the frozen test split (tests/data/persona_split.json),
whose cards no pattern change looked at. The floors below are pinned on the test split,
out of sample, at the figures first measured there; they are not lowered to pass.

`python bench/persona_calibration.py` prints the figures of both splits and writes
bench/results/persona_calibration.json."""

import json
from pathlib import Path

import pytest

from rolegen.evaluation.judge import cohen_kappa
from rolegen.evaluation.labels import agreement, card_facts_of, labelled_card_folders, read_labelled

DATA = Path(__file__).parent / "data" / "labelled_persona_turns.jsonl"
SECOND = Path(__file__).parent / "data" / "labelled_persona_second.jsonl"
SPLIT = Path(__file__).parent / "data" / "persona_split.json"
# label -> the check reasons that stand for it
CHECKS = {
    "wrong_identity": {"wrong_identity"},
    "acts_for_user": {"user"},
    "drift": {"assistant_drift"},
    "confusion": {"identity_confusion"},
    "miss": {"identity_miss"},
}
# (precision, recall) at least on the first four cards of the frozen test split, at the
# defaults: the figures measured there on 2026-12-05, rounded down
TEST_FLOORS = {
    "wrong_identity": (0.96, 0.51),
    "acts_for_user": (0.44, 1.0),
    "drift": (0.82, 0.6),
    "confusion": (1.0, 0.94),
    "miss": (0.81, 0.46),
}
# The same on each blind holdout's eight cards (persona_split.json "<holdout>_blind"),
# measured once, blind, rounded down (bench/results/persona_calibration_<holdout>_blind.json).
# The second holdout's cards (2026-12-05) are development data now and keep their blind
# figures as floors; the third and fourth (2026-12-06) are part of the frozen test split.
HOLDOUTS = {
    "holdout2": {
        "wrong_identity": (0.82, 0.41),
        "acts_for_user": (0.35, 0.31),
        "drift": (0.81, 0.68),
        "confusion": (0.83, 0.83),
        "miss": (1.0, 0.64),
    },
    "holdout3": {
        "wrong_identity": (0.87, 0.6),
        "acts_for_user": (0.78, 0.39),
        "drift": (0.73, 0.93),
        "confusion": (0.46, 0.42),
        "miss": (1.0, 0.72),
    },
    "holdout4": {
        "wrong_identity": (0.84, 0.62),
        "acts_for_user": (0.83, 0.64),
        "drift": (0.93, 0.73),
        "confusion": (0.11, 0.4),
        "miss": (0.84, 0.96),
    },
}


@pytest.fixture(scope="module")
def labelled():
    return read_labelled(DATA, card_facts_of(labelled_card_folders()))


@pytest.fixture(scope="module")
def by_split(labelled):
    rows, items = labelled
    split = json.loads(SPLIT.read_text(encoding="utf-8"))
    second, third = set(split["holdout2_blind"]), set(split["holdout3_blind"])
    fourth = set(split["holdout4_blind"])
    groups = {
        "dev": lambda r: r["split"] == "dev",
        "test": lambda r: r["split"] == "test" and r["persona_name"] not in third | fourth,
        "holdout2": lambda r: r["persona_name"] in second,
        "holdout3": lambda r: r["persona_name"] in third,
        "holdout4": lambda r: r["persona_name"] in fourth,
    }
    out = {}
    for name, belongs in groups.items():
        keep = [k for k, r in enumerate(rows) if belongs(r)]
        out[name] = agreement([rows[k] for k in keep], [items[k] for k in keep], CHECKS)
    return out


def test_the_test_split_holds_exactly_the_frozen_cards(labelled):
    rows, _ = labelled
    frozen = set(json.loads(SPLIT.read_text(encoding="utf-8"))["test"])
    assert {r["persona_name"] for r in rows if r["split"] == "test"} == frozen
    assert all((r["split"] == "test") == (r["persona_name"] in frozen) for r in rows)


def test_every_check_has_forty_labelled_positives(labelled):
    rows, _ = labelled
    for label in CHECKS:
        assert sum(label in r["label"] for r in rows) >= 40, label


def test_the_set_spans_cards_systems_and_prompts(labelled):
    rows, _ = labelled
    systems = {r["system"] for r in rows}
    assert len(rows) >= 600
    assert len({r["persona_name"] for r in rows}) >= 12
    assert {"base", "base @ plain"} <= systems
    assert any("frequency-penalty" in s for s in systems)
    assert any("no-repeat-ngram" in s for s in systems)
    assert any(s.startswith("adapter") for s in systems)


@pytest.mark.parametrize("label", sorted(CHECKS))
def test_out_of_sample_precision_and_recall_at_defaults(by_split, label):
    if label not in TEST_FLOORS:
        pytest.skip(f"{label}: no floor pinned on the test split")
    floor_p, floor_r = TEST_FLOORS[label]
    got = by_split["test"][label]
    assert got["precision"] is not None and got["precision"] >= floor_p, got
    assert got["recall"] is not None and got["recall"] >= floor_r, got


@pytest.mark.parametrize("label", sorted(CHECKS))
@pytest.mark.parametrize("holdout", sorted(HOLDOUTS))
def test_out_of_sample_precision_and_recall_on_each_blind_holdout(by_split, holdout, label):
    floor_p, floor_r = HOLDOUTS[holdout][label]
    got = by_split[holdout][label]
    assert got["precision"] >= floor_p, got
    assert got["recall"] >= floor_r, got


def test_a_second_reading_agrees_with_the_first(labelled):
    rows, _ = labelled
    first = {r["id"]: set(r["label"]) for r in rows}
    second = [json.loads(line) for line in SECOND.read_text(encoding="utf-8").splitlines()]
    assert len(second) >= 100 and all(s["id"] in first for s in second)
    for label in ("wrong_identity", "acts_for_user", "miss"):
        a = [label in first[s["id"]] for s in second]
        b = [label in s["label"] for s in second]
        kappa = cohen_kappa(a, b)
        assert kappa is not None and kappa >= 0.6, (label, kappa)
