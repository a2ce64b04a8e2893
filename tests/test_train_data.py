"""Packing and collation of training examples."""

from __future__ import annotations

import random

import pytest
import torch
from support import DIALOGUE

from rolegen.generation.templates import ChatTemplateFormat
from rolegen.models.checkpoints import load_tokenizer
from rolegen.training.batches import collate_packed, pack
from rolegen.training.data import _sample_by_reason
from rolegen.training.rendering import Example, Renderer


@pytest.fixture(scope="module")
def tokenizer(embedded_model):
    return load_tokenizer(embedded_model)


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
