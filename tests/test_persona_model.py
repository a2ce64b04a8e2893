"""The learned persona check: the shipped encoder's settings and weights, the pair it
reads, what it says of a few development turns it was fitted on (a guard that the pair,
the weights and the threshold still meet), and `eval --data --persona-model`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from rolegen.cards.personas import Persona
from rolegen.checks.persona_facts import persona_facts
from rolegen.cli import main
from rolegen.errors import RolegenError
from rolegen.evaluation import persona_encoder, persona_model
from rolegen.evaluation.labels import labelled_card_folders


def test_the_shipped_settings_name_a_cut_for_each_label_the_eval_reads():
    spec = persona_encoder.load_spec()
    for label in persona_model.FIELDS:
        assert label in spec["labels"] and math.isfinite(spec["cut"][label])
    assert spec["max_tokens"] > 0 and spec["lora"]["r"] > 0


def test_unreadable_settings_or_weights_name_their_file(tmp_path):
    bad = tmp_path / "persona_encoder.json"
    bad.write_text("{not json")
    with pytest.raises(RolegenError, match="persona_encoder.json: cannot read the persona enc"):
        persona_encoder.load_spec(bad)
    weights = tmp_path / "persona_encoder.safetensors"
    weights.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(RolegenError, match="persona_encoder.safetensors: cannot read"):
        persona_encoder.PersonaEncoder(weights=weights)


def test_the_pair_is_the_cards_facts_beside_the_replys_own_sentences():
    card = Persona(
        name="Agnes Pryce",
        description="Agnes Pryce is an 83-year-old woman, a ropemaker in Cornwall. " + "x" * 400,
        scenario="Her rope walk, at dusk.",
    )
    side = persona_encoder.card_side(card, persona_facts(card))
    assert side.startswith("Agnes Pryce. sex: female. age: 83.")
    assert "ropemaker" in side and "x" * 300 not in side and "dusk" not in side
    full = persona_encoder.card_side(card, persona_facts(card), chars=None, scenario=True)
    assert "x" * 400 in full and full.endswith("Her rope walk, at dusk.")
    reply = "The tide is in. I'm 22, and my name is Luna! Ropes are heavy."
    assert persona_encoder.reply_side(reply) == "I'm 22, and my name is Luna!"
    assert persona_encoder.reply_side("The tide is in.") == "The tide is in."


# Development turns the patterns miss: three the readers labelled wrong identity and the
# fitted encoder flags above its cut, two labelled ok far below it.
FLAGGED = (
    "base+frequency-penalty=0.5/base+frequency-penalty=0.5/walther-brenner/probe-g/0-t4",
    "base+frequency-penalty=0.5 @ plain/base+frequency-penalty=0.5 @ plain/meson/probe-y/0-t6",
    "base+frequency-penalty=0.5/base+frequency-penalty=0.5/pell/probe-h/0-t3",
)
NOT_FLAGGED = ("data/elias-crane-0001-t11-c6", "data/hana-moriyama-0001-t7-c5")


def test_the_encoder_still_says_what_it_was_fitted_to_say():
    from rolegen.cards.files import load_personas
    from rolegen.generation.prompts import resolve_persona

    path = Path(__file__).parent / "data" / "labelled_persona_turns.jsonl"
    wanted = set(FLAGGED + NOT_FLAGGED)
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r["id"] in wanted:
            rows[r["id"]] = r
    assert set(rows) == wanted
    cards = {
        p.name: resolve_persona(p, "User")
        for folder in labelled_card_folders()
        for p in load_personas(str(folder))
    }
    items = [rows[i] for i in FLAGGED + NOT_FLAGGED]
    assert all("wrong_identity" in r["label"] for r in items[: len(FLAGGED)])
    assert all(r["label"] == ["ok"] for r in items[len(FLAGGED) :])
    encoder = persona_encoder.PersonaEncoder()
    found = persona_model.verdicts(items, cards, encoder)
    assert [v["wrong_identity"] for v in found] == [True] * len(FLAGGED) + [False] * len(
        NOT_FLAGGED
    )
    # a turn's verdict depends on it alone, not on the turns scored beside it
    pair = [items[0], items[-1]]
    assert persona_model.verdicts(pair, cards, encoder) == [found[0], found[-1]]


def _dialogue(system, replies):
    messages = [{"role": "system", "content": "s"}]
    for user, reply in zip(("Who are you?", "How old are you?", "What do you do?"), replies):
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    return {
        "id": f"{system}/d0",
        "system": system,
        "seed_key": "d0",
        "persona": "captain-mara-vell",
        "persona_name": "Captain Mara Vell",
        "messages": messages,
    }


def test_eval_data_counts_the_learned_wrong_identity_beside_the_patterns(tmp_path):
    lines = [
        _dialogue(
            "base",
            [
                "I'm Dr. Elena Ruiz, a pediatrician from Madrid.",
                "I'm 22, actually, a college student.",
                "I help people with their questions as an AI assistant.",
            ],
        ),
        _dialogue(
            "adapter",
            [
                "Captain Mara Vell, of the Gull's Wager. Mind the rigging.",
                "Old enough to have buried two crews. Why?",
                "I keep this ship afloat and my crew paid.",
            ],
        ),
    ]
    data = tmp_path / "run" / "dialogues.jsonl"
    data.parent.mkdir()
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    args = ["eval", "--data", str(data), "--no-fluency", "--no-embeddings", "--bootstrap", "50"]
    out = tmp_path / "learned"
    result = CliRunner().invoke(main, [*args, "--persona-model", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in (out / "turns.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    for row in rows:
        assert row["wrong_identity_learned"] in (0.0, 1.0)
        assert row["wrong_identity_learned"] >= row["wrong_identity"]
    results = json.loads((out / "results.json").read_text())
    added = results["persona_model"]["added_to_patterns"]["wrong_identity"]
    assert results["persona_model"]["replies"] == 6
    assert added == sum(r["wrong_identity_learned"] > r["wrong_identity"] for r in rows)
    base = results["systems"]["base"]
    assert base["wrong_identity_learned"]["value"] >= base["wrong_identity"]["value"]
    assert "the patterns or the learned check" in (out / "report.md").read_text()

    plain = tmp_path / "plain"
    result = CliRunner().invoke(main, [*args, "--out", str(plain)])
    assert result.exit_code == 0, result.output
    results = json.loads((plain / "results.json").read_text())
    assert results["persona_model"] is None
    assert results["systems"]["base"]["wrong_identity_learned"]["n"] == 0
    assert "the patterns or the learned check" not in (plain / "report.md").read_text()


def test_replies_without_a_card_to_read_keep_the_pattern_flag_alone(tmp_path):
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Hm?"},
        {"role": "assistant", "content": "I'm Zed, a plumber."},
    ]
    record = {"id": "x/d0", "system": "x", "seed_key": "d0", "persona_name": "Nobody Known",
              "messages": messages}  # fmt: skip
    data = tmp_path / "dialogues.jsonl"
    data.write_text(json.dumps(record) + "\n")
    out = tmp_path / "out"
    args = ["eval", "--data", str(data), "--no-fluency", "--no-embeddings", "--persona-model"]
    result = CliRunner().invoke(main, [*args, "--bootstrap", "50", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "left 2 replies to the patterns alone" in result.output
    rows = [json.loads(x) for x in (out / "turns.jsonl").read_text().splitlines()]
    assert [r["wrong_identity_learned"] for r in rows] == [r["wrong_identity"] for r in rows]
    info = json.loads((out / "results.json").read_text())["persona_model"]
    assert info["replies"] == 0 and info["unscored"] == 2
