"""Eval metrics on hand-built dialogues whose values are known, and the bootstrap."""

from __future__ import annotations

import pytest
import torch

from rolegen.evaluation.metrics import summarize, turn_rows
from rolegen.generation.engines.no_repeat import CountPenalty, NoRepeatInReply, banned_next

INTRO = "I'm Captain Mara Vell, master of the airship Kestrel."


def _record(system, key, replies, users, greeting="Hold the rope."):
    messages = [{"role": "system", "content": "sys"}]
    if greeting:
        messages.append({"role": "assistant", "content": greeting})
    for u, r in zip(users, replies):
        messages += [{"role": "user", "content": u}, {"role": "assistant", "content": r}]
    return {
        "id": f"{system}/{key}",
        "system": system,
        "seed_key": key,
        "persona": "mara",
        "persona_name": "Captain Mara Vell",
        "persona_intro": INTRO,
        "messages": messages,
    }


USERS = ["Hi there.", "Where are we going?", "Sorry, what's your name again?", "Nice weather."]
BASE = [
    "Welcome aboard the Kestrel, friend, mind the ropes.",
    "Welcome aboard the Kestrel, friend, mind the ropes!",  # near-copy of turn 1
    "I am the captain of this ship.",  # asked, no name: recall 0
    INTRO + " Up we go up we go up we go up we go.",  # echo (unasked), and a loop
]
TUNED = [
    "Sit by the crates and hold on tight.",
    "North, past the storm front, if the wind allows.",
    "Mara. Captain Vell to you.",  # asked, names: recall 1
    "Enjoy it while it lasts; clouds are coming.",
]


def test_turn_rows_score_known_dialogues():
    rows = turn_rows([_record("base", "d1", BASE, USERS)])
    assert [r["turn"] for r in rows] == [1, 2, 3, 4]  # the greeting is context, not scored
    assert [r["near_copy"] for r in rows] == [0.0, 1.0, 0.0, 0.0]
    assert rows[1]["repeat"] == 100.0  # punctuation is dropped before fuzz.ratio
    assert [r["asked"] for r in rows] == [False, False, True, False]
    assert rows[2]["recall"] == 0.0 and rows[0]["recall"] is None
    assert [r["echo"] for r in rows] == [0.0, 0.0, 0.0, 1.0]
    # "up we go" x4: 4-grams 13, unique 3 ... + the intro's; seq-rep-4 of the whole reply
    words = rows[3]["text"].lower().replace(",", "").replace(".", "").replace("'", " ").split()
    grams = list(zip(*(words[i:] for i in range(4))))
    assert rows[3]["seq_rep4"] == pytest.approx(1 - len(set(grams)) / len(grams), abs=0.02)
    assert rows[3]["loop"] == 1.0
    assert rows[0]["words"] == 8.0


def test_echo_answering_an_identity_question_is_not_counted():
    users = ["Hi.", "Who are you?"]
    rows = turn_rows([_record("base", "d", ["Hello.", INTRO], users)])
    assert rows[1]["asked"] and rows[1]["echo"] == 0.0 and rows[1]["recall"] == 1.0


PERSONA_USERS = [
    "Hi there.", "Where are we going?", "Sorry, what's your name again?", "Nice weather.",
    "What now?", "Tell me more.",
]  # fmt: skip
PERSONA_REPLIES = [
    "I am Akua. I am the keeper of the winds.",  # wrong identity (t = 1: no echo)
    "I'm here to help you with anything you're looking for. How can I assist you?",  # drift
    "I am the captain of this ship.",  # asked, no name: a miss
    "Mara, I'm not sure the weather holds.",  # her own name for the user
    "There's a little thing called Captain Mara Vell. He's my dad.",  # third person
    "I am Akua, the wind keeper.",  # an unasked self-introduction, under another name
]


def test_turn_rows_carry_the_persona_faults_the_checks_flag():
    rows = turn_rows([_record("base", "d", PERSONA_REPLIES, PERSONA_USERS)])
    assert [r["wrong_identity"] for r in rows] == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert [r["echo"] for r in rows] == [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert [r["assistant_drift"] for r in rows] == [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert [r["identity_confusion"] for r in rows] == [0.0, 0.0, 0.0, 1.0, 1.0, 0.0]
    assert [r["identity_miss"] for r in rows] == [None, None, 1.0, None, None, None]
    assert rows[2]["recall"] == 0.0
    assert all(r["persona_rank"] is None and r["persona_top1"] is None for r in rows)


def test_persona_metrics_are_shares_of_the_turns_they_apply_to():
    records = [_record("base", f"d{k}", PERSONA_REPLIES, PERSONA_USERS) for k in range(3)]
    rows = turn_rows(records)
    for row in rows:  # persona ranks as distinctiveness.py fills them in
        rank = 1 if row["turn"] <= 3 else 4
        row.update(persona_rank=rank, persona_top1=float(rank == 1), persona_rr=1 / rank)
    figures = summarize(rows, resamples=20)["systems"]["base"]
    assert figures["wrong_identity"]["value"] == pytest.approx(2 / 6, abs=1e-4)  # every turn
    assert figures["wrong_identity"]["n"] == 18
    assert figures["assistant_drift"]["value"] == pytest.approx(1 / 6, abs=1e-4)
    # unasked turns t >= 2: turns 2, 4, 5, 6
    assert figures["identity_echo"]["value"] == pytest.approx(1 / 4)
    # unasked turns t >= 1: turns 1, 2, 4, 5, 6
    assert figures["identity_confusion"]["value"] == pytest.approx(2 / 5)
    assert figures["identity_confusion"]["n"] == 15
    assert figures["identity_miss"] == {"value": 1.0, "ci95": [1.0, 1.0], "n": 3}  # asked once
    assert figures["persona_top1"]["value"] == pytest.approx(0.5)
    assert figures["persona_mrr"]["value"] == pytest.approx((3 * 1 + 3 * 0.25) / 6, abs=1e-4)


def test_summarize_values_deltas_and_paired_intervals():
    records = []
    for k in range(6):
        records.append(_record("base", f"d{k}", BASE, USERS))
        records.append(_record("adapter", f"d{k}", TUNED, USERS))
    out = summarize(turn_rows(records), reference="base", resamples=200)
    base, tuned = out["systems"]["base"], out["systems"]["adapter"]
    assert base["near_copy"]["value"] == pytest.approx(0.25)  # 1 of 4 turns, every dialogue
    assert tuned["near_copy"]["value"] == 0.0
    assert tuned["near_copy"]["delta"] == pytest.approx(-0.25)
    # identical dialogues in every resample: the paired interval collapses on the delta
    assert tuned["near_copy"]["delta_ci95"] == pytest.approx([-0.25, -0.25])
    assert base["identity_echo"]["value"] == pytest.approx(0.5)  # turns 2 and 4 unasked, t>=2
    assert base["identity_echo"]["n"] == 12
    assert base["identity_recall"] == {"value": 0.0, "ci95": [0.0, 0.0], "n": 6}
    assert tuned["identity_recall"]["value"] == 1.0
    assert out["curves"]["base"]["near_copy"] == {1: 0.0, 2: 1.0, 3: 0.0, 4: 0.0}
    assert 0 < tuned["distinct_2"]["value"] <= 1 and tuned["dialogues"] == 6


def test_bootstrap_interval_covers_the_spread_across_dialogues():
    records = [
        _record("base", f"d{k}", BASE if k % 2 else TUNED, USERS) for k in range(20)
    ]  # half the dialogues have a near-copy turn
    entry = summarize(turn_rows(records), resamples=500)["systems"]["base"]["near_copy"]
    assert entry["value"] == pytest.approx(0.125)
    lo, hi = entry["ci95"]
    assert lo < 0.125 < hi and hi - lo > 0.05


@pytest.mark.parametrize(
    "ids, n, want",
    [([1, 2, 3, 1, 2], 3, {3}), ([1, 2, 3], 3, set()), ([5, 5], 2, {5}), ([4, 7], 1, {4, 7})],
)
def test_no_repeat_ngram_bans_the_completing_token(ids, n, want):
    assert banned_next(ids, n) == want


def test_transformers_processors_act_per_row_on_the_reply_only():
    ids = torch.tensor([[7, 1, 2, 1], [7, 1, 2, 1]])  # prompt [7], reply [1, 2, 1]
    scores = NoRepeatInReply([2, 0], prompt_width=1)(ids, torch.zeros(2, 10))
    assert scores[0, 2] == -float("inf") and torch.isfinite(scores[0, [0, 1, 3]]).all()
    assert torch.isfinite(scores[1]).all()  # row 1: off
    scores = CountPenalty([0.5, 0.0], [0.0, 1.0], prompt_width=1)(ids, torch.zeros(2, 10))
    assert scores[0, 1] == -1.0 and scores[0, 2] == -0.5 and scores[0, 7] == 0.0  # 7: prompt
    assert scores[1, 1] == -1.0 and scores[1, 2] == -1.0 and scores[1, 3] == 0.0


def test_clean_fluency_leaves_out_turns_that_loop_or_copy():
    rows = turn_rows([_record("base", "d1", BASE, USERS)])
    for row, nll in zip(rows, [1.0, 0.1, 2.0, 0.3]):  # turn 2 copies, turn 4 loops
        row["nll"] = nll
    figures = summarize(rows, resamples=20)["systems"]["base"]
    assert figures["fluency_nll"]["value"] == pytest.approx(0.85)
    assert figures["fluency_nll_clean"]["value"] == pytest.approx(1.5)
    assert figures["fluency_nll_clean"]["n"] == 2


def test_endings_count_early_ends_by_reason_and_the_turns_each_system_is_scored_on():
    from rolegen.evaluation.metrics import endings

    records = [
        {**_record("base", "a", BASE[:2], USERS[:2]), "end_reason": "completed"},
        {**_record("base", "b", [], []), "end_reason": "empty_assistant_reply"},
        {**_record("tuned", "a", TUNED[:2], USERS[:2]), "end_reason": "script_exhausted"},
        {**_record("tuned", "b", TUNED[:1], USERS[:1]), "end_reason": "context_overflow"},
    ]
    empty = {"reasons": ["empty"], "content": "User: hi"}
    records[2]["meta"] = [
        {"role": "assistant", "source": "greeting"},
        {"role": "user", "source": "script"},
        {"role": "assistant", "source": "model", "rejected": [empty, empty]},
    ]
    got = endings(records, turn_rows(records))
    assert got == {
        "base": {
            "dialogues": 2,
            "ended_early": {"empty_assistant_reply": 1},
            "empty_resampled": 0,
            "turns_scored": 2,
        },
        "tuned": {
            "dialogues": 2,
            "ended_early": {"context_overflow": 1},  # a script played to its end is no early end
            "empty_resampled": 2,
            "turns_scored": 3,
        },
    }


def test_acting_for_the_user_is_a_per_turn_share():
    users = ["Hi.", "Where to?", "And then?"]
    replies = [
        "*You look around, taking a deep breath.* *Your eyes widen at the harbour.*",
        "North, past the reef. Keep your hands off the wheel.",
        "User: Can I steer?\nNo.",
    ]
    record = {**_record("base", "d", replies, users), "user_persona": "User"}
    rows = turn_rows([record])
    assert [r["acts_for_user"] for r in rows] == [1.0, 0.0, 1.0]
    figures = summarize(rows, resamples=20)["systems"]["base"]
    assert figures["acts_for_user"]["value"] == pytest.approx(2 / 3, abs=1e-4)


@pytest.mark.parametrize(
    "reply, tics",
    [
        # the adapter's tic at depth, read in the long suite: neither 4-grams nor loops
        (
            "I'm just a little guy, you know? I've got a lot going on, you know? I'd take a "
            "walk, you know? It'd be just as I imagined.",
            ["you know"],
        ),
        ("You're asking, Captain? I love the morning, Captain. And the sea, Captain.", ["captain"]),
        ("No, no, no. You can't do that. Come back tomorrow.", []),  # emphasis, back to back
        ("I'm so sorry. I'm so sorry. I'm so sorry. I'm so sorry.", []),  # a loop, not a tic
        ("Well, I think so. It rains. Well, maybe.", []),  # twice is not a tic yet
        ("Fine, but the long phrase here, fine, and then the long phrase here, fine.", ["fine"]),
    ],
)
def test_filler_tics_are_short_phrases_a_reply_keeps_coming_back_to(reply, tics):
    from rolegen.checks.tics import filler_tics

    assert filler_tics(reply) == tics


def test_filler_tic_is_a_per_turn_share():
    users = ["Hi.", "Where to?"]
    replies = ["North, you know? Past the reef, you know? Then home, you know?", "North."]
    rows = turn_rows([_record("base", "d", replies, users)])
    assert [r["tic"] for r in rows] == [1.0, 0.0]
    assert summarize(rows, resamples=20)["systems"]["base"]["filler_tic"]["value"] == 0.5
