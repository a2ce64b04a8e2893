"""Rendering, label masking and packing of training examples."""

from __future__ import annotations

import pytest
import torch

from rolegen.models import load_tokenizer
from rolegen.templates import ChatTemplateFormat, Templates
from rolegen.train_data import IGNORE, Example, Renderer, collate_packed, pack

DIALOGUE = [
    {"role": "system", "content": "You are Mara, captain of the Gale."},
    {"role": "assistant", "content": "Welcome aboard the Gale!"},
    {"role": "user", "content": "Hi there."},
    {"role": "assistant", "content": "Hello, traveler."},
    {"role": "user", "content": "Where are we headed?"},
    {"role": "assistant", "content": "North, into the storm."},
]


@pytest.fixture(scope="module")
def tokenizer(embedded_model):
    return load_tokenizer(embedded_model)


def _labelled_runs(example: Example, tokenizer) -> list[str]:
    runs, cur = [], []
    for i, label in zip(example.input_ids, example.labels):
        if label != IGNORE:
            assert label == i
            cur.append(i)
        elif cur:
            runs.append(tokenizer.decode(cur))
            cur = []
    if cur:
        runs.append(tokenizer.decode(cur))
    return runs


def test_loss_only_on_character_replies_and_their_end_of_turn(tokenizer):
    example = Renderer(ChatTemplateFormat(tokenizer), tokenizer, 4096).sft_example(
        DIALOGUE, ("Mara", "Ann")
    )
    # The greeting is the card's text, not a reply: masked like system and user turns.
    assert _labelled_runs(example, tokenizer) == [
        "Hello, traveler.<|im_end|>",
        "North, into the storm.<|im_end|>",
    ]
    # Exact positions: the reply tokens sit right after "<|im_start|>assistant\n".
    text = tokenizer.apply_chat_template(DIALOGUE, tokenize=False)
    ids = tokenizer(text).input_ids
    assert example.input_ids == ids
    reply = tokenizer("Hello, traveler.<|im_end|>").input_ids
    header = tokenizer("<|im_start|>assistant\n").input_ids
    starts = [
        i + len(header)
        for i in range(len(ids))
        if ids[i : i + len(header)] == header and ids[i + len(header) :][: len(reply)] == reply
    ]
    assert len(starts) == 1
    s = starts[0]
    assert example.labels[s - 1] == IGNORE
    assert example.labels[s : s + len(reply)] == reply
    assert example.labels[s + len(reply)] == IGNORE  # the newline after <|im_end|>
    assert example.target_tokens == len(reply) + len(
        tokenizer("North, into the storm.<|im_end|>").input_ids
    )
    assert tokenizer.eos_token_id in [x for x in example.labels if x != IGNORE]


def test_format_template_labels_end_with_the_turn_marker(tokenizer):
    fmt = Templates().prompt_format("alpaca-roleplay")
    example = Renderer(fmt, tokenizer, 4096).sft_example(DIALOGUE, ("Mara", "Ann"))
    runs = _labelled_runs(example, tokenizer)
    # The first reply is followed by the next user turn: its marker is learned as the stop.
    assert runs[0] == " Hello, traveler.\n\n### Input:"
    assert runs[1].strip() == "North, into the storm."
    assert "Ann: Hi there." not in "".join(runs)


def test_truncation_drops_the_oldest_exchanges_whole(tokenizer):
    long = [*DIALOGUE]
    for k in range(20):
        long += [
            {"role": "user", "content": f"Question number {k} about the voyage ahead?"},
            {"role": "assistant", "content": f"Answer number {k}: the winds are kind today."},
        ]
    renderer = Renderer(ChatTemplateFormat(tokenizer), tokenizer, 300)
    example = renderer.sft_example(long, ("Mara", "Ann"))
    assert len(example) <= 300
    assert example.dropped_messages > 0 and example.dropped_messages % 2 == 0
    text = tokenizer.decode(example.input_ids)
    assert "captain of the Gale" in text and "Welcome aboard" in text  # system + greeting stay
    assert "Answer number 19" in text  # the newest exchange stays
    assert "Question number 0 " not in text
    # Nothing fits: None, not a half turn.
    assert (
        Renderer(ChatTemplateFormat(tokenizer), tokenizer, 20).sft_example(long, ("M", "A")) is None
    )


def test_pair_example_scores_only_the_reply(tokenizer):
    renderer = Renderer(ChatTemplateFormat(tokenizer), tokenizer, 4096)
    pair = renderer.pair_example(
        DIALOGUE[:5], "Due north.", "I am Mara. I am Mara.", ("Mara", "Ann")
    )
    assert _labelled_runs(pair.chosen, tokenizer) == ["Due north.<|im_end|>"]
    assert _labelled_runs(pair.rejected, tokenizer) == ["I am Mara. I am Mara.<|im_end|>"]
    n = next(i for i, x in enumerate(pair.chosen.labels) if x != IGNORE)
    assert n == next(i for i, x in enumerate(pair.rejected.labels) if x != IGNORE)
    assert pair.chosen.input_ids[:n] == pair.rejected.input_ids[:n]  # same context


@pytest.mark.parametrize("lengths", [[5, 9, 3, 7, 2, 8], [10, 10, 10], [1] * 17])
def test_pack_fills_rows_without_overflow_and_keeps_every_example(lengths):
    examples = [Example([1] * n, [1] * n) for n in lengths]
    rows = pack(examples, 10)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 10 for row in rows)
    assert len(rows) <= -(-sum(lengths) // 10) + 1


@pytest.mark.parametrize("attention", ["sdpa", "rolegen_packed"])
def test_packed_rows_give_the_same_log_probs_as_separate_sequences(
    tiny_model, tokenizer, attention
):
    """Position ids restart per example, so the packed row's attention stays inside each
    example: per-example log-probs equal those of each example run alone."""
    from transformers import AutoModelForCausalLM

    from rolegen import packed_attention
    from rolegen.recipes.train import segment_sums, token_logps

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
