"""Figures by depth (depth.py, depth_report.py) and the opener-reuse metric, on
hand-built dialogues scored through `rolegen eval --data` (no model)."""

from __future__ import annotations

import json
import random

import pytest
from click.testing import CliRunner

from rolegen.cli import main
from rolegen.evaluation.depth import collapse_turn, window_of
from rolegen.evaluation.metrics import turn_rows

LOOP = "The storm is coming and the rope holds fast tonight, friend."
NAME = "Mara Vell"


def _fresh(seed: int, turn: int) -> str:
    """A reply of made-up words that shares no opener or 4-gram with another."""
    rng = random.Random(seed * 1000 + turn)
    return " ".join(f"w{rng.randrange(100000)}" for _ in range(12)) + "."


def _record(system: str, key: int, replies: list[str], asked: set[int] = frozenset()) -> dict:
    messages = [{"role": "system", "content": "s"}]
    for t, reply in enumerate(replies, start=1):
        user = "Who are you?" if t in asked else f"Go on ({t})."
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    return {
        "id": f"{system}/{key}",
        "system": system,
        "seed_key": str(key),
        "persona_name": NAME,
        "messages": messages,
    }


def _rows(system: str, near_copy: dict[int, list[float]]) -> list[dict]:
    return [
        {"system": system, "turn": t, "near_copy": v, "dialogue": f"d{k}", "asked": False}
        for t, values in near_copy.items()
        for k, v in enumerate(values)
    ]


@pytest.mark.parametrize(
    ("turn", "window"), [(1, "1-12"), (12, "1-12"), (13, "13-24"), (48, "37-48")]
)
def test_a_turn_falls_in_its_window_of_twelve(turn, window):
    assert window_of(turn) == window


def test_collapse_turn_ends_the_first_six_turn_run_with_over_half_near_copies():
    # two dialogues; near-copies from turn 8 in one, from turn 10 in the other
    shares = {t: [float(t >= 8), float(t >= 10)] for t in range(1, 21)}
    # turns 7-12: 5 + 3 of 12 near-copies (0.67); turns 6-11: 4 + 2 of 12 (0.5, not more)
    assert collapse_turn(_rows("s", shares)) == 12


def test_no_collapse_turn_when_no_run_exceeds_half():
    alternate = {t: [float(t % 2 == 0)] for t in range(1, 49)}  # exactly half in every run
    assert collapse_turn(_rows("s", alternate)) is None
    assert collapse_turn(_rows("s", {t: [1.0] for t in range(1, 6)})) is None  # no full run


def test_opener_reuse_counts_replies_that_open_like_an_earlier_one_greeting_included():
    replies = [
        "Hold the rope and wait here.",
        "Hold the rope and never let go.",  # the first four words of reply 1
        "Mind the gap by the door.",  # the greeting's
        "Something else entirely happens now.",
    ]
    record = _record("s", 0, replies)
    record["messages"].insert(1, {"role": "assistant", "content": "Mind the gap, traveller."})
    record["messages"][1]["content"] = "Mind the gap by the stairs."
    rows = turn_rows([record])
    assert [r["opener"] for r in rows] == [0.0, 1.0, 1.0, 0.0]


@pytest.fixture
def long_eval(tmp_path):
    """Two systems, two dialogues each, 30 turns: 'fresh' never repeats; 'loops' says
    the same line from turn 15 on (near-copies from 16). Who-are-you at 1, 13 and 25;
    'loops' names the character at turns 1 and 13 only."""
    asked = {1, 13, 25}
    records = []
    for k in range(2):
        fresh = [_fresh(k, t) for t in range(1, 31)]
        fresh = [f"I'm {NAME}. {r}" if t in asked else r for t, r in enumerate(fresh, start=1)]
        loops = fresh[:14] + [LOOP] * 16
        records += [_record("fresh", k, fresh, asked), _record("loops", k, loops, asked)]
    data = tmp_path / "run" / "dialogues.jsonl"
    data.parent.mkdir()
    data.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    out = tmp_path / "eval"
    args = ["eval", "--data", str(data), "--bootstrap", "50", "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--no-embeddings"])
    assert result.exit_code == 0, result.output
    return out


def test_eval_reports_every_metric_by_window_of_twelve_with_intervals(long_eval):
    depth = json.loads((long_eval / "results.json").read_text())["depth"]
    windows = depth["windows"]
    assert list(windows) == ["1-12", "13-24", "25-36"]  # the last holds turns 25-30
    assert windows["1-12"]["loops"]["near_copy"]["value"] == 0.0
    assert windows["13-24"]["loops"]["near_copy"]["value"] == pytest.approx(9 / 12, abs=1e-3)
    assert windows["25-36"]["loops"]["near_copy"]["value"] == 1.0
    assert windows["25-36"]["loops"]["opener_reuse"]["value"] == 1.0
    # 'fresh' opens alike only where it answers who-are-you ("I'm Mara Vell."): turn 25
    assert windows["25-36"]["fresh"]["opener_reuse"]["value"] == pytest.approx(2 / 12, abs=1e-3)
    assert windows["25-36"]["loops"]["near_copy"]["n"] == 12  # 6 turns x 2 dialogues
    assert windows["13-24"]["loops"]["near_copy"]["ci95"] is not None
    # one identity question per window per dialogue; 'loops' stops answering it at turn 25
    recall = {w: windows[w]["loops"]["identity_recall"] for w in windows}
    assert [recall[w]["value"] for w in windows] == [1.0, 1.0, 0.0]
    assert recall["25-36"] == {"value": 0.0, "ci95": [0.0, 0.0], "n": 2}
    assert depth["curves"]["loops"]["opener_reuse"]["16"] == 1.0
    assert depth["curves"]["fresh"]["crep4"]["30"] == 0.0


def test_eval_names_each_systems_collapse_turn(long_eval):
    depth = json.loads((long_eval / "results.json").read_text())["depth"]
    # near-copies from turn 16: turns 14-19 hold 4 of 6
    assert depth["collapse"] == {"turns": 6, "share": 0.5, "turn": {"fresh": None, "loops": 19}}


def test_report_shows_the_depth_tables_collapse_turns_and_figure(long_eval):
    md = (long_eval / "report.md").read_text()
    assert "## By depth" in md
    assert "| loops | 19 |" in md and "| fresh | none |" in md
    assert "| system | turns 1-12 | turns 13-24 | turns 25-36 |" in md
    assert "![by depth](report-depth.png)" in md
    assert (long_eval / "report-depth.png").stat().st_size > 10_000
    assert "<h2>By depth</h2>" in (long_eval / "report.html").read_text()
