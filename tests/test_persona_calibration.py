"""The persona checks against hand-labelled character turns of the embedded model
(tests/data/labelled_persona_turns.jsonl: base and adapter turns of a pipeline eval,
each labelled by reading it in its dialogue, without the checks). Pins precision and
recall at the defaults, as tests/test_calibration.py does for the repetition checks.

`python tests/test_persona_calibration.py` prints the figures and writes them to
bench/results/persona_calibration.json."""

import json
from pathlib import Path

import pytest
from test_calibration import load_labelled

from rolegen.checks import CheckConfig, check_dialogues

DATA = Path(__file__).parent / "data" / "labelled_persona_turns.jsonl"
RESULTS = Path(__file__).parent.parent / "bench" / "results" / "persona_calibration.json"
# label -> the check reason that stands for it
CHECKS = {
    "drift": "assistant_drift",
    "acts_for_user": "user",
    "wrong_identity": "wrong_identity",
    "confusion": "identity_confusion",
    "miss": "identity_miss",
}
# (precision, recall) at least, measured at the defaults (see README, Checks)
FLOORS = {
    "drift": (0.9, 0.85),
    "wrong_identity": (0.95, 0.7),
    "confusion": (0.85, 0.95),
    "miss": (0.95, 0.95),
}


def figures(cfg: CheckConfig | None = None) -> dict:
    rows, items = load_labelled(DATA)
    checks = [turns[-1] for turns in check_dialogues(items, cfg or CheckConfig())]
    out = {}
    for label, reason in CHECKS.items():
        hit = [reason in c.reasons for c in checks]
        truth = [label in r["label"] for r in rows]
        tp = sum(h and t for h, t in zip(hit, truth))
        out[label] = {
            "reason": reason,
            "precision": round(tp / sum(hit), 4) if any(hit) else None,
            "recall": round(tp / sum(truth), 4) if any(truth) else None,
            "flagged": sum(hit),
            "labelled": sum(truth),
        }
    out["turns"] = len(rows)
    out["by_system"] = {
        s: sum(r.get("system") == s for r in rows) for s in sorted({r.get("system") for r in rows})
    }
    return out


@pytest.fixture(scope="module")
def measured():
    return figures()


def test_the_set_is_large_enough(measured):
    assert measured["turns"] >= 150


@pytest.mark.parametrize("label", sorted(CHECKS))
def test_precision_and_recall_at_defaults(measured, label):
    if label not in FLOORS:
        pytest.skip(f"{label}: no floor pinned")
    floor_p, floor_r = FLOORS[label]
    got = measured[label]
    assert got["precision"] is not None and got["precision"] >= floor_p, got
    assert got["recall"] is not None and got["recall"] >= floor_r, got


if __name__ == "__main__":
    result = figures()
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for label in CHECKS:
        print(label, result[label])
    print(result["turns"], "turns", result["by_system"])
