"""Repetition at matched length on hand-built dialogues whose cut scores are known."""

from __future__ import annotations

import pytest

from rolegen.checks.turns import CheckConfig
from rolegen.evaluation.matched import cut, summarize_matched, words
from rolegen.evaluation.metrics import turn_rows

GREETING = "The lamps are lit."
COPY = "Welcome aboard the Kestrel friend mind the ropes and the crates"  # 11 words


def _record(system: str, key: str, replies: list[str]) -> dict:
    messages = [{"role": "system", "content": "s"}, {"role": "assistant", "content": GREETING}]
    for k, reply in enumerate(replies):
        messages += [{"role": "user", "content": f"Go on ({k})."}]
        messages += [{"role": "assistant", "content": reply}]
    return {"id": f"{system}/{key}", "system": system, "seed_key": key, "messages": messages}


def _matched(records, resamples=50, **kw):
    rows = turn_rows(records)
    return summarize_matched(rows, records, CheckConfig(), "base", resamples=resamples, **kw)


def test_words_and_cuts_are_the_checks_words():
    assert words("Hello, World!  Again") == ["hello", "world", "again"]
    assert cut("Hello, World!  Again", 2) == "hello world"
    assert cut("One two", 5) == "one two"


def test_a_loop_past_the_shorter_reply_is_cut_away():
    loop = "Fair winds. " + "up we go " * 6  # 20 words, seq-rep-4 well above 0
    records = [_record("base", "d0", [loop]), _record("adapter", "d0", ["Fair winds to you."])]
    entry = _matched(records)["systems"]["adapter"]["seq_rep4_matched"]
    # both cut to 4 words: "fair winds up we" / "fair winds to you", one 4-gram each
    assert entry["value"] == 0.0 and entry["reference_value"] == 0.0
    assert entry["n"] == 1 and entry["delta"] == 0.0
    assert turn_rows(records)[0]["seq_rep4"] > 0.5  # as generated, base loops


def test_a_copy_stays_a_copy_when_the_earlier_turn_is_cut_too():
    # base's turn 2 copies its turn 1 (11 words); the adapter's turn 2 has 5 words. Cut to
    # 5 words both heads still match word for word; a 5-word head against the whole
    # 11-word turn would read 200 * 5 / 16 = 62.5, below the threshold of 80.
    records = [
        _record("base", "d0", [COPY, COPY]),
        _record("adapter", "d0", ["Sit by the crates.", "North past the storm front."]),
    ]
    out = _matched(records)
    near = out["systems"]["adapter"]["near_copy_matched"]
    # turn 1: cut to 4 words, no earlier turn is a copy; turn 2: base copies, adapter not
    assert near["reference_value"] == 0.5 and near["value"] == 0.0
    assert near["delta"] == -0.5 and near["n"] == 2
    assert out["pairwise"]["near_copy_matched"]["adapter"]["base"] == [-0.5, -0.5]
    assert out["pairwise"]["near_copy_matched"]["base"]["adapter"] == [0.5, 0.5]
    assert "base" not in out["systems"]  # the reference's cut depends on its partner


def test_only_turns_both_systems_have_are_paired_and_empty_ones_left_out():
    records = [
        _record("base", "d0", [COPY, COPY, "A third turn."]),
        _record("adapter", "d0", [COPY, "..."]),  # turn 2 has no word; no turn 3
    ]
    near = _matched(records)["systems"]["adapter"]["near_copy_matched"]
    assert near["n"] == 1  # turn 1 alone


def test_matched_deltas_resample_whole_dialogues_for_both_systems():
    records = []
    for k in range(6):
        base = [COPY, COPY] if k % 2 else [COPY, "North past the storm front, far away."]
        records += [_record("base", f"d{k}", base)]
        records += [_record("adapter", f"d{k}", [COPY, "North past the storm front."])]
    near = _matched(records, resamples=400)["systems"]["adapter"]["near_copy_matched"]
    assert near["reference_value"] == pytest.approx(0.25)  # 3 copies in 12 paired turns
    lo, hi = near["delta_ci95"]
    assert lo < -0.25 < hi <= 0.0


def test_each_system_is_cut_against_its_own_reference():
    records = [
        _record("base", "d0", [COPY, COPY]),
        _record("adapter", "d0", [COPY, "Short one here."]),
        _record("base @ plain", "d0", [COPY, "Different words entirely this time round."]),
        _record("adapter @ plain", "d0", [COPY, COPY]),
    ]
    refs = {"base": "base", "adapter": "base", "base @ plain": "base @ plain"}
    refs["adapter @ plain"] = "base @ plain"
    out = _matched(records, references=refs)
    assert out["systems"]["adapter"]["near_copy_matched"]["reference"] == "base"
    plain = out["systems"]["adapter @ plain"]["near_copy_matched"]
    assert plain["reference"] == "base @ plain" and plain["delta"] == 0.5
    assert set(out["systems"]) == {"adapter", "adapter @ plain"}
