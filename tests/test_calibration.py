"""The checks against 272 hand-labelled character turns of the embedded model
(tests/data/labelled_turns.jsonl: echo / repeat / loop / ok, labelled by reading each
turn in its dialogue, without the checks). Pins precision and recall at the defaults."""

import json
from pathlib import Path

import pytest

from rolegen.checks import DialogueTurns, check_dialogues
from rolegen.config import CheckConfig

DATA = Path(__file__).parent / "data" / "labelled_turns.jsonl"
# label -> the check reasons that stand for it
CHECKS = {"echo": {"echo"}, "repeat": {"repeat", "crep4", "opener"}, "loop": {"loop"}}
# (precision, recall) at least; measured at the defaults: see README
FLOORS = {"echo": (0.95, 0.80), "repeat": (0.95, 0.85), "loop": (0.97, 0.87)}


@pytest.fixture(scope="module")
def scored():
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    items = []
    for r in rows:
        d = DialogueTurns(
            character=[*r["earlier"], r["reply"]],
            users=[None] * len(r["earlier"]) + [r["user"]],
            name=r["persona_name"],
            intro=r["persona_intro"],
            user_name=r["user_persona"],
            language=r["persona_language"],
            has_greeting=True,
        )
        d.score_from = len(d.character) - 1
        items.append(d)
    return rows, [turns[-1] for turns in check_dialogues(items, CheckConfig())]


def test_labelled_set_is_big_enough_and_complete(scored):
    rows, _ = scored
    assert len(rows) >= 200
    assert all(r["label"] and set(r["label"]) <= {"echo", "repeat", "loop", "ok"} for r in rows)


@pytest.mark.parametrize("label", sorted(CHECKS))
def test_precision_and_recall_at_defaults(scored, label):
    rows, checks = scored
    hit = [bool(set(c.reasons) & CHECKS[label]) for c in checks]
    truth = [label in r["label"] for r in rows]
    tp = sum(h and t for h, t in zip(hit, truth))
    precision = tp / sum(hit)
    recall = tp / sum(truth)
    floor_p, floor_r = FLOORS[label]
    assert precision >= floor_p, f"{label}: precision {precision:.3f}"
    assert recall >= floor_r, f"{label}: recall {recall:.3f}"


def test_turns_labelled_ok_are_not_rejected(scored):
    rows, checks = scored
    ok = [c for r, c in zip(rows, checks) if r["label"] == ["ok"]]
    wrongly = [c for c in ok if set(c.reasons) & set().union(*CHECKS.values())]
    assert len(wrongly) <= 0.05 * len(ok)
