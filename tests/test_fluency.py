"""The eval's fluency pass: dialogues packed several to a forward pass score what each
scores alone, and what a plain forward pass of the model gives."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from rolegen.evaluation import model_scores
from rolegen.generation.templates import Templates
from rolegen.models.checkpoints import load_tokenizer
from rolegen.training.batches import pack


def _record(n: int, turns: int) -> dict:
    messages = [{"role": "system", "content": f"You are Mara {n}, a ship's captain."}]
    messages.append({"role": "assistant", "content": "*She looks up.* Aboard, then."})
    for t in range(turns):
        messages.append({"role": "user", "content": f"Question {t} of dialogue {n}: where now?"})
        reply = " ".join(["*She checks the chart.*"] + ["We sail north."] * (1 + (n + t) % 4))
        messages.append({"role": "assistant", "content": reply})
    return {
        "id": f"base/mara/{n}",
        "seed_key": f"mara/{n}",
        "system": "base",
        "persona_name": "Mara",
        "user_persona": "User",
        "messages": messages,
    }


@pytest.fixture(scope="module")
def scorer(tiny_model):
    tokenizer = load_tokenizer(tiny_model)
    fmt = Templates(None).resolve_format("chat_template", tokenizer, tiny_model)
    return model_scores.FluencyScorer(tiny_model, tokenizer, 2048, row_tokens=700), fmt


def test_packed_rows_score_what_each_dialogue_scores_alone(scorer):
    scorer, fmt = scorer
    records = [_record(n, 2 + n % 5) for n in range(9)]
    rows = [
        {"system": "base", "dialogue": r["seed_key"], "index": k, "nll": None}
        for r in records
        for k in range(1, sum(m["role"] == "assistant" for m in r["messages"]))
    ]
    items = [scorer.prepare(r, fmt) for r in records]
    packed = pack([item.ids for item in items], scorer.row_tokens)
    assert len(packed) < len(records) and max(len(row) for row in packed) >= 3  # really packed

    model_scores.add_fluency(rows, records, scorer, lambda record: fmt)
    alone = {r["seed_key"]: scorer.reply_nll(r, fmt) for r in records}
    assert all(row["nll"] is not None for row in rows)
    for row in rows:
        assert row["nll"] == pytest.approx(alone[row["dialogue"]][row["index"]], abs=1e-4)


def test_reply_nll_is_the_models_own_token_loss_over_the_reply(scorer, tiny_model):
    scorer, fmt = scorer
    record = _record(3, 4)
    item = scorer.prepare(record, fmt)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=scorer.model.dtype).eval()
    with torch.inference_mode():
        logits = model(torch.tensor([item.ids])).logits[0].float()
    losses = torch.nn.functional.cross_entropy(
        logits[:-1], torch.tensor(item.ids[1:]), reduction="none"
    )
    tokenizer = scorer.tokenizer
    scores = scorer.reply_nll(record, fmt)
    assert sorted(scores) == [1, 2, 3, 4]  # the greeting comes before any user turn
    for k, positions in item.replies.items():
        reply = record["messages"][2 * k + 1]["content"]
        assert reply.split()[-1] in tokenizer.decode([item.ids[t] for t in positions])
        expected = losses[[t - 1 for t in positions]].mean().item()
        assert scores[k] == pytest.approx(expected, abs=2e-3)


def test_a_dialogue_longer_than_the_context_is_not_scored(tiny_model):
    tokenizer = load_tokenizer(tiny_model)
    fmt = Templates(None).resolve_format("chat_template", tokenizer, tiny_model)
    scorer = model_scores.FluencyScorer(tiny_model, tokenizer, 64)
    assert scorer.prepare(_record(0, 6), fmt) is None
    assert scorer.reply_nll(_record(0, 6), fmt) == {}
