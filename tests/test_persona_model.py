"""The learned persona check: the shipped weights' shape, the score by hand, what the
classifier says of a few development turns it was fitted on (a guard that features and
weights still meet), and `eval --data --persona-model` on the embedded model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from rolegen.cli import main
from rolegen.errors import RolegenError
from rolegen.evaluation import persona_features, persona_model
from rolegen.evaluation.labels import labelled_card_folders

WIDTHS = {
    "lm": len(persona_features.LM_NAMES),
    "mini": len(persona_features.MINI_NAMES),
    "text": len(persona_features.TEXT_NAMES),
    "hid": 576,
    "emb": 384,
}


def test_the_shipped_weights_fit_the_features_they_name():
    spec = persona_model.load()
    assert spec["hidden_layer"] in persona_features.HIDDEN_LAYERS
    assert spec["labels"], "no label shipped"
    for label, m in spec["labels"].items():
        assert label in persona_model.FIELDS
        width = sum(WIDTHS[b] for b in m["features"].split("+"))
        assert len(m["mu"]) == len(m["sd"]) == width and len(m["w"]) == width + 1
        assert math.isfinite(m["cut"]) and min(m["sd"]) > 0


def test_the_score_is_the_standardized_features_times_the_weights():
    spec = {"labels": {"wrong_identity": {"features": "text+lm", "cut": 0.0}}}
    rng = np.random.default_rng(0)
    blocks = {"text": rng.normal(size=(3, 2)), "lm": rng.normal(size=(3, 1))}
    m = spec["labels"]["wrong_identity"]
    m.update(mu=[1.0, 0.0, -1.0], sd=[2.0, 1.0, 0.5], w=[0.5, -1.0, 2.0, 0.25])
    x = np.hstack([blocks["text"], blocks["lm"]])
    by_hand = ((x - [1.0, 0.0, -1.0]) / [2.0, 1.0, 0.5]) @ [0.5, -1.0, 2.0] + 0.25
    assert np.allclose(persona_model.scores(spec, blocks)["wrong_identity"], by_hand)


def test_an_unreadable_weights_file_names_itself(tmp_path):
    bad = tmp_path / "persona_model.json"
    bad.write_text("{not json")
    with pytest.raises(RolegenError, match="persona_model.json: cannot read the persona model"):
        persona_model.load(bad)


# Development turns the patterns miss: three the readers labelled wrong identity and the
# fitted classifier flags well above its cut, two labelled ok well below it.
FLAGGED = (
    "base+no-repeat-ngram=3 @ plain/base+no-repeat-ngram=3 @ plain/mmorrhai-tesk/probe-t/0-t4",
    "base+no-repeat-ngram=3/base+no-repeat-ngram=3/anselm-varga/probe-q/0-t3",
    "adapter @ plain/adapter @ plain/agnes-pryce/probe-i/0-t2",
)
NOT_FLAGGED = (
    "adapter @ plain/adapter @ plain/eudora-pemberton-ngata/probe-w/0-t11",
    "base+no-repeat-ngram=3 @ plain/base+no-repeat-ngram=3 @ plain/gus-almeer/probe-f/0-t11",
)


def test_the_classifier_still_says_what_it_was_fitted_to_say():
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
    found = persona_model.verdicts(items, cards)
    assert [v["wrong_identity"] for v in found] == [True] * len(FLAGGED) + [False] * len(
        NOT_FLAGGED
    )
    # a turn's verdict depends on it alone, not on the turns scored beside it
    pair = [items[0], items[-1]]
    assert persona_model.verdicts(pair, cards) == [found[0], found[-1]]


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
