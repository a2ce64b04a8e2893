"""Packing and collation of training examples."""

from __future__ import annotations

import random

import pytest
import torch
from support import DIALOGUE

from rolegen.errors import RolegenError
from rolegen.generation.templates import ChatTemplateFormat
from rolegen.training.batches import collate_packed, pack
from rolegen.training.copy_pairs import copy_pairs
from rolegen.training.data import (
    TrainData,
    _sample_by_reason,
    encode_pair_splits,
    load_train_data,
)
from rolegen.training.name_pairs import name_pairs, swap_name
from rolegen.training.rendering import Example, Renderer


@pytest.mark.parametrize("lengths", [[5, 9, 3, 7, 2, 8], [10, 10, 10], [1] * 17])
def test_pack_fills_rows_without_overflow_and_keeps_every_example(lengths):
    examples = [Example([1] * n, [1] * n) for n in lengths]
    rows = pack(examples, 10)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 10 for row in rows)
    assert len(rows) <= -(-sum(lengths) // 10) + 1


def _pairs(counts: dict[str, int]) -> list[dict]:
    rows = [{"id": f"{r}-{k}", "reasons": [r, "loop"]} for r, n in counts.items() for k in range(n)]
    random.Random(0).shuffle(rows)  # the reasons interleaved, as a run writes them
    return rows


def test_by_reason_sample_takes_a_rare_reason_whole_and_splits_the_rest_evenly():
    rows = _pairs({"loop": 300, "plain_decoding": 200, "identity_miss": 6, "drift": 11})
    kept = _sample_by_reason(rows, 64, seed=3)
    counts = {r: sum(row["reasons"][0] == r for row in kept) for r in ("identity_miss", "drift")}
    assert counts == {"identity_miss": 6, "drift": 11}  # whole: under their share of 16
    rest = [sum(row["reasons"][0] == r for row in kept) for r in ("loop", "plain_decoding")]
    assert sorted(rest) == [23, 24]  # 64 - 17 split between the two
    assert [rows.index(row) for row in kept] == sorted(rows.index(row) for row in kept)
    assert kept == _sample_by_reason(rows, 64, seed=3)
    assert kept != _sample_by_reason(rows, 64, seed=4)


def test_by_reason_sample_keeps_everything_when_it_fits():
    rows = _pairs({"loop": 5, "drift": 2})
    assert _sample_by_reason(rows, 7, seed=0) == rows


def _chat(replies: list[str], row_id: str = "d0") -> dict:
    messages = [{"role": "system", "content": "You are Mara."}]
    messages.append({"role": "assistant", "content": replies[0]})  # the greeting
    for k, reply in enumerate(replies[1:]):
        messages.append({"role": "user", "content": f"question {k}"})
        messages.append({"role": "assistant", "content": reply})
    return {"id": row_id, "persona_name": "Mara", "user_name": "Ann", "messages": messages}


def test_copy_pairs_reject_the_latest_earlier_reply_in_the_same_context():
    replies = ["Welcome aboard.", "The sea is calm.", "We sail at dawn.", "Mind the rigging."]
    pairs = copy_pairs([_chat(replies)], per_turn=1)
    # turns with two earlier replies or more (the greeting counts): the third and fourth
    assert [p["chosen"][0]["content"] for p in pairs] == replies[2:]
    assert [p["rejected"][0]["content"] for p in pairs] == replies[1:3]  # the reply before
    for p in pairs:
        chosen = p["chosen"][0]["content"]
        earlier = [m["content"] for m in p["prompt"] if m["role"] == "assistant"]
        assert earlier == replies[: replies.index(chosen)]  # the same context
        assert p["prompt"][0]["role"] == "system" and p["prompt"][-1]["role"] == "user"
        assert p["reasons"] == ["self_copy"]
        assert (p["persona_name"], p["user_name"]) == ("Mara", "Ann")
    many = copy_pairs([_chat(replies)], per_turn=5)
    # every earlier reply once, newest first: 2 at the third reply, 3 at the fourth
    assert [p["rejected"][0]["content"] for p in many] == [
        replies[1],
        replies[0],
        replies[2],
        replies[1],
        replies[0],
    ]
    assert len({p["id"] for p in many}) == 5


def test_copy_pairs_never_reject_the_chosen_text():
    same = _chat(["Hello.", "Aye.", "Aye.", "Aye."])
    pairs = copy_pairs([same], per_turn=3)
    # the earlier "Aye." replies are the chosen text: only the greeting is left to reject
    assert [p["rejected"][0]["content"] for p in pairs] == ["Hello.", "Hello."]


def test_copy_pairs_skip_identity_questions_and_replies_that_name_the_character():
    chat = _chat(["Ahoy, I'm Mara.", "The sea is calm.", "Fog ahead.", "Aye, Mara it is."])
    chat["messages"][-2]["content"] = "Who are you again?"  # the user turn before the last
    pairs = copy_pairs([chat])
    # the third reply may reject "The sea is calm."; the fourth answers who she is: none
    assert [p["rejected"][0]["content"] for p in pairs] == ["The sea is calm."]
    named = _chat(["Ahoy, I'm Mara.", "Call me Mara, traveller.", "Fog ahead."])
    assert copy_pairs([named]) == []  # every earlier reply names her


def test_copy_pairs_are_added_to_the_sample_of_logged_pairs(tokenizer):
    renderer = Renderer(ChatTemplateFormat(tokenizer), tokenizer, 4096)
    chats = [_chat([f"reply {k} {j}" for j in range(6)], f"d{k}") for k in range(4)]
    logged = _chat(["Hi.", "One.", "Two."], "x")
    pairs = [
        {
            **{k: logged[k] for k in ("persona_name", "user_name")},
            "id": f"x-{n}",
            "prompt": logged["messages"][:-1],
            "chosen": [logged["messages"][-1]],
            "rejected": [{"role": "assistant", "content": f"A loop {n} a loop a loop."}],
            "reasons": ["loop"],
        }
        for n in range(10)
    ]
    data = TrainData(chats, chats[:1], pairs, pairs[:2], None, None, "test")
    _, _, off = encode_pair_splits(renderer, data, 8, seed=0)
    assert off["dpo_train"]["reasons"] == {"loop": 8}
    train, test, on = encode_pair_splits(renderer, data, 8, seed=0, copies=5)
    # the logged sample is the same, and 5 of the 16 copy pairs (4 dialogues x 4 turns) join it
    assert on["dpo_train"]["reasons"] == {"loop": 8, "self_copy": 5}
    assert len(train) == 13 and len(test) == 1 + 1  # test: max(1, 8 // 8) + max(1, 5 // 8)
    assert [p.id for p in train[:8]] == [p.id for p in encode_pair_splits(renderer, data, 8, 0)[0]]
    alone = TrainData(chats, chats[:1], [], [], None, None, "test")
    assert encode_pair_splits(renderer, alone, 8, seed=0, copies=40)[2]["dpo_train"]["reasons"] == {
        "self_copy": 16
    }


@pytest.mark.parametrize(
    "reply, name, other, swapped",
    [
        ("I'm Captain Mara Vell. Vell's the name.", "Captain Mara Vell", "Hana Moriyama",
         "I'm Captain Hana Moriyama. Moriyama's the name."),
        ("I'm Captain Mara Vell, of the Kestrel.", "Captain Mara Vell", "VEGA-7",
         "I'm Captain VEGA-7, of the Kestrel."),  # the surname dropped, its space too
        ("I'm Sir Aldric of Wenmoor.", "Sir Aldric of Wenmoor", "Priya Nair",
         "I'm Sir Priya of Wenmoor."),  # the epithet's place is not the name
        ("Marathon runner, I am not.", "Mara", "Priya", None),  # a word, not the name
        ("I'm Mara.", "Mara", "Mara Soto", None),  # the names share a part
    ],
)  # fmt: skip
def test_swap_name_replaces_the_name_part_by_part(reply, name, other, swapped):
    assert swap_name(reply, name, other) == swapped


def test_name_pairs_reject_a_self_introduction_under_another_cards_name():
    mara = _chat(["I'm Mara, welcome.", "I'm Mara, captain here.", "Fog ahead.", "I'm Akua."])
    hana = _chat(["Tea?", "I'm Hana, and this is my tea house."], "d1")
    hana["persona_name"] = "Hana"
    pairs = name_pairs([mara, hana], per_turn=3, seed=0)
    by_id = {p["id"]: p for p in pairs}
    # Mara's second reply introduces her (the greeting has no user turn before it and
    # "I'm Akua" is another name): one other card, so one pair; Hana's reply: one pair
    assert sorted(by_id) == ["d0-m3-name0", "d1-m3-name0"]
    first = by_id["d0-m3-name0"]
    assert first["chosen"][0]["content"] == "I'm Mara, captain here."
    assert first["rejected"][0]["content"] == "I'm Hana, captain here."
    assert first["prompt"] == mara["messages"][:3] and first["reasons"] == ["name_swap"]
    assert by_id["d1-m3-name0"]["rejected"][0]["content"] == "I'm Mara, and this is my tea house."
    assert name_pairs([mara]) == []  # no other card to take a name from
    assert name_pairs([mara, hana], seed=0) == pairs  # seeded


def test_name_pairs_are_added_to_the_sample_of_logged_pairs(tokenizer):
    renderer = Renderer(ChatTemplateFormat(tokenizer), tokenizer, 4096)
    chats = []
    for k, name in enumerate(["Mara", "Hana", "Odile", "Leo"]):
        chat = _chat(["Hello.", f"I'm {name}, at your service.", f"Yes, I'm {name}."], f"d{k}")
        chats.append({**chat, "persona_name": name})
    logged = {**chats[0], "prompt": chats[0]["messages"][:-1], "reasons": ["loop"]}
    logged["chosen"] = [chats[0]["messages"][-1]]
    logged["rejected"] = [{"role": "assistant", "content": "A loop a loop a loop."}]
    data = TrainData(chats, chats[:2], [logged], [logged], None, None, "test")
    train, test, stats = encode_pair_splits(renderer, data, 8, seed=0, names=5)
    # 4 dialogues x 2 introductions x 3 other cards = 24 name pairs, 5 of them sampled
    assert stats["dpo_train"]["reasons"] == {"loop": 1, "name_swap": 5}
    assert len(train) == 6 and len(test) == 1 + 1


@pytest.mark.parametrize("attention", ["sdpa", "rolegen_packed"])
def test_packed_rows_give_the_same_log_probs_as_separate_sequences(
    tiny_model, tokenizer, attention
):
    """Position ids restart per example, so the packed row's attention stays inside each
    example: per-example log-probs equal those of each example run alone."""
    from transformers import AutoModelForCausalLM

    from rolegen.training import packed_attention
    from rolegen.training.losses import segment_sums, token_logps

    packed_attention.register()
    model = AutoModelForCausalLM.from_pretrained(
        tiny_model, dtype=torch.float32, attn_implementation=attention
    ).eval()
    renderer = Renderer(ChatTemplateFormat(tokenizer), tokenizer, 4096)
    a = renderer.sft_example(DIALOGUE, ("Mara", "Ann"))
    b = renderer.sft_example(DIALOGUE[:4], ("Mara", "Ann"))
    with torch.no_grad():
        packed = collate_packed([[a, b]])
        logps, _, seg = token_logps(model, packed)
        together = segment_sums(logps, seg, 2)
        alone = []
        for e in (a, b):
            single = collate_packed([[e]])
            lp, _, s = token_logps(model, single)
            alone.append(float(segment_sums(lp, s, 1)[0]))
    assert torch.allclose(together, torch.tensor(alone), atol=1e-3)
    # and the mask matters: without restarting positions the second example sees the first
    with torch.no_grad():
        flat = dict(
            packed,
            position_ids=torch.arange(packed["input_ids"].shape[1])[None],
            cu_seq_lens_q=None,
        )
        lp, _, s = token_logps(model, flat)
    assert abs(float(segment_sums(lp, s, 2)[1]) - alone[1]) > 1e-3


def test_a_pair_whose_replies_are_the_same_text_is_counted_and_left_out(tokenizer):
    renderer = Renderer(ChatTemplateFormat(tokenizer), tokenizer, 4096)
    logged = _chat(["Hi.", "One.", "Two."], "x")

    def pair(n: int, rejected: str) -> dict:
        return {
            **{k: logged[k] for k in ("persona_name", "user_name")},
            "id": f"x-{n}",
            "prompt": logged["messages"][:-1],
            "chosen": [logged["messages"][-1]],
            "rejected": [{"role": "assistant", "content": rejected}],
            "reasons": ["loop"],
        }

    same = logged["messages"][-1]["content"]
    pairs = [pair(0, same), pair(1, "A loop a loop a loop."), pair(2, same)]
    data = TrainData([logged], [], pairs, [pair(3, same)], None, None, "test")
    train, test, stats = encode_pair_splits(renderer, data, None, seed=0)
    assert [p.id for p in train] == ["x-1"] and test == []
    assert stats["dpo_train"]["same_reply"] == 2 and stats["dpo_test"]["same_reply"] == 1
    only_same = TrainData([logged], [], [pair(0, same)], [], None, None, "test")
    with pytest.raises(RolegenError, match="two different replies.*'same_reply': 1"):
        encode_pair_splits(renderer, only_same, None, seed=0)


@pytest.mark.parametrize(
    "index, message",
    [
        ("{not json", "dataset_dict.json: not a dataset index"),
        ('["train"]', "dataset_dict.json: not a dataset index"),
        ('{"splits": "train"}', "field 'splits' must be a list"),
        ('{"splits": ["train"]}', "split 'train' is not readable"),  # no train/ folder
    ],
)
def test_an_unreadable_dataset_index_or_split_is_named(tmp_path, index, message):
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "dataset_dict.json").write_text(index)
    with pytest.raises(RolegenError, match=message):
        load_train_data(folder)
