"""The training losses: on hand-made logits and tokens with known values, and on the
tiny LLaMA where a loss needs a model (prefix-shared pairs, the divergence token, the
model's own greedy replies)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from support import DIALOGUE

from rolegen.generation.templates import ChatTemplateFormat
from rolegen.training.batches import (
    collate_packed,
    divergence,
    divergence_tensors,
    pair_tensors,
    shared_pair_tensors,
)
from rolegen.training.losses import (
    divergence_logits,
    dpo_loss,
    ftpo_loss,
    greedy_continuation,
    pair_logps,
    repeat_mask,
    shared_pair_logps,
    shared_token_logps,
    token_logps,
    unlikelihood_loss,
)
from rolegen.training.rendering import IGNORE, Example, Renderer

NAMES = ("Mara", "Ann")


def test_dpo_loss_is_log2_at_the_reference_and_falls_with_the_margin():
    zero = torch.zeros(3)
    loss, margin = dpo_loss(zero, zero, zero, zero, beta=0.1)
    assert math.isclose(float(loss), math.log(2), rel_tol=1e-6)
    better, _ = dpo_loss(torch.tensor([-1.0]), torch.tensor([-9.0]), zero[:1], zero[:1], beta=0.1)
    assert float(better) < math.log(2)


def _tiny(tiny_model, attention="rolegen_packed"):
    from transformers import AutoModelForCausalLM

    from rolegen.training import packed_attention

    packed_attention.register()
    return AutoModelForCausalLM.from_pretrained(
        tiny_model, dtype=torch.float32, attn_implementation=attention
    ).eval()


@pytest.fixture(scope="module")
def pairs(tokenizer):
    """Rendered pairs: one whose replies share their first words, one that differs from
    the first reply token, one over a shorter context."""
    renderer = Renderer(ChatTemplateFormat(tokenizer), tokenizer, 4096)
    return [
        renderer.pair_example(
            DIALOGUE[:5], "North, into the storm.", "North, into the fog.", NAMES
        ),
        renderer.pair_example(DIALOGUE[:5], "North.", "I am Mara. I am Mara.", NAMES),
        renderer.pair_example(DIALOGUE[:3], "Hello, traveler.", "Hello! Hello! Hello!", NAMES),
    ]


def test_prefix_shared_pairs_give_the_log_probs_of_separate_sequences(tiny_model, pairs):
    """Context once, then the chosen and the rejected reply, each attending to the context
    only: the summed reply log-probs, token counts and chosen NLL of two rows per pair."""
    model = _tiny(tiny_model)
    separate, shared = pair_tensors(pairs), shared_pair_tensors(pairs)
    with torch.no_grad():
        c1, r1, n1, nll1 = pair_logps(model, separate, len(pairs))
        c2, r2, n2, nll2 = shared_pair_logps(model, shared, len(pairs))
        logps, mask, segments = token_logps(model, separate)
        shared_logps, shared_segments = shared_token_logps(model, shared)
    for k in range(2 * len(pairs)):  # every reply token, in order
        one = logps[mask & (segments == k)]
        other = shared_logps[shared_segments == k]
        assert len(one) == len(other) and torch.allclose(one, other, atol=1e-5, rtol=0)
    # the sums (about -50 here, where a float32 step is 4e-6) to the rounding of a sum
    assert torch.allclose(c1, c2, atol=1e-5, rtol=1e-6)
    assert torch.allclose(r1, r2, atol=1e-5, rtol=1e-6)
    assert n1 == n2 and abs(float(nll1 - nll2)) < 1e-5
    # the first pair's replies share "North, into the": those tokens count for both
    assert shared["input_ids"].shape[1] < separate["input_ids"].shape[1] * 0.6
    # and the rejected reply must not see the chosen one: with one causal block per
    # pair instead, its log-probs change
    with torch.no_grad():
        leaky = dict(shared, prefix_groups=shared["prefix_groups"][:, [0, 3, 3, 3]])
        _, r3, *_ = shared_pair_logps(model, leaky, len(pairs))
    assert (r3 - r1).abs().max() > 1e-3


def test_prefix_shared_pairs_refuse_an_attention_that_ignores_the_blocks(tiny_model, pairs):
    with pytest.raises(ValueError, match="rolegen_packed"):
        shared_pair_logps(_tiny(tiny_model, "sdpa"), shared_pair_tensors(pairs), len(pairs))


def test_ftpo_loss_on_hand_made_logits():
    """gap 1.5 under margin 2: weight 0.25, preference softplus(0.5); the chosen logit moved
    2 from the reference (1 past the free band), the rejected 0.5 (inside it); the
    non-target logits moved 0 and 1."""
    logits = torch.tensor([[2.0, 0.5, 0.0, -1.0]])
    ref = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    chosen, rejected = torch.tensor([0]), torch.tensor([1])
    loss, gap = ftpo_loss(logits, ref, chosen, rejected, 2.0, 0.05, 0.4)
    expected = math.log1p(math.exp(0.5)) + 0.05 * (1.0**2 + 0.0) / 2 + 0.4 * (0.0 + 1.0) / 2
    assert math.isclose(float(loss), expected, rel_tol=1e-6)
    assert float(gap[0]) == 1.5
    # a pair already past the margin adds nothing to the preference term
    done = torch.tensor([[0.0, 3.0, 0.0, 0.0]])
    both, _ = ftpo_loss(
        torch.cat([logits, done]), torch.cat([logits, done]), torch.tensor([0, 1]),
        torch.tensor([1, 0]), 2.0, 0.0, 0.0,
    )  # fmt: skip
    assert math.isclose(float(both), math.log1p(math.exp(0.5)), rel_tol=1e-6)


def test_ftpo_gradient_falls_only_on_the_divergence_token(tiny_model, pairs):
    """Over the logits of the whole chosen sequence, the loss reaches only the position
    that predicts the first token where chosen and rejected differ; the training path's
    logits there (the shared prefix alone through the model) are those logits."""
    model = _tiny(tiny_model)
    pair = pairs[0]
    d = divergence(pair)
    assert pair.chosen.labels[d] != IGNORE  # inside the reply: after "North, into the"
    assert pair.chosen.labels[d - 1] != IGNORE
    batch = divergence_tensors([pair])
    ids = torch.tensor([pair.chosen.input_ids])
    logits = model(input_ids=ids, position_ids=torch.arange(ids.shape[1])[None]).logits
    logits.retain_grad()
    at = logits[0, batch["logit_index"]]
    loss, _ = ftpo_loss(
        at, at.detach() + 0.3, batch["chosen_tokens"], batch["rejected_tokens"], 2.0, 0.05, 0.4
    )
    loss.backward()
    grad = logits.grad[0].abs().sum(-1)
    assert grad[d - 1] > 0
    assert torch.count_nonzero(grad) == 1
    assert int(batch["chosen_tokens"][0]) == pair.chosen.input_ids[d]
    assert int(batch["rejected_tokens"][0]) == pair.rejected.input_ids[d]
    with torch.no_grad():
        short = divergence_logits(model, divergence_tensors(pairs))
    assert torch.allclose(short[0], logits[0, d - 1].detach(), atol=1e-5)
    assert short.shape == (len(pairs), logits.shape[-1])


def test_repeat_mask_marks_every_token_of_each_repeated_ngram():
    # (1 2 3 4) again at 5..8; (7 8 9 10) seen in an earlier turn, at the very end
    tokens = [1, 2, 3, 4, 5, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    mask = repeat_mask(tokens, 4, {(7, 8, 9, 10)})
    assert [i for i, m in enumerate(mask) if m] == [5, 6, 7, 8, 10, 11, 12, 13]
    assert [i for i, m in enumerate(repeat_mask(tokens, 4)) if m] == [5, 6, 7, 8]
    assert repeat_mask([3, 3, 3, 3, 3], 4) == [False, True, True, True, True]
    assert repeat_mask([1, 2, 3], 4, {(1, 2, 3, 4)}) == [False] * 3


class _Bigram(torch.nn.Module):
    """A model whose next-token logits are a row of `table` chosen by the current token."""

    def __init__(self, table):
        super().__init__()
        self.emb = torch.nn.Embedding.from_pretrained(table, freeze=False)

    def get_input_embeddings(self):
        return self.emb

    def forward(self, input_ids, logits_to_keep, **kwargs):
        return SimpleNamespace(logits=self.emb(input_ids)[:, logits_to_keep])


def test_unlikelihood_loss_on_a_hand_made_batch():
    """Context [0], continuation [1, 2, 1] with its last two tokens marked: the loss is
    -(log(1 - p(2|1)) + log(1 - p(1|2))) over the three continuation tokens."""
    table = torch.tensor(
        [[0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0], [0.5, 3.0, 0.0, 0.0], [0.0] * 4]
    )
    batch = collate_packed([[Example([0, 1, 2, 1], [IGNORE, IGNORE, 2, 1])]])
    loss = unlikelihood_loss(_Bigram(table), batch, n_tokens=3)
    p = F.softmax(table, dim=-1)
    expected = -(math.log(1 - p[1, 2]) + math.log(1 - p[2, 1])) / 3
    assert math.isclose(float(loss.detach()), expected, rel_tol=1e-6)
    # and a step down its gradient lowers the marked tokens' probabilities
    model = _Bigram(table.clone())
    unlikelihood_loss(model, batch, n_tokens=3).backward()
    after = F.softmax(table - 0.5 * model.emb.weight.grad, dim=-1)
    assert after[1, 2] < p[1, 2] and after[2, 1] < p[2, 1]


def test_greedy_continuation_with_the_packed_attention_matches_generate(tiny_model, tokenizer):
    """One token at a time over a cache, the packed attention's queries see every earlier
    key: the same tokens as transformers' greedy generate with its own attention."""
    renderer = Renderer(ChatTemplateFormat(tokenizer), tokenizer, 4096)
    ids = renderer.sft_example(DIALOGUE[:5], NAMES).input_ids
    ours = greedy_continuation(_tiny(tiny_model), ids, 12, stop={2})
    sdpa = _tiny(tiny_model, "sdpa")
    with torch.no_grad():
        out = sdpa.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            do_sample=False,
            max_new_tokens=12,
            eos_token_id=2,
            pad_token_id=2,
        )
    assert ours == out[0, len(ids) :].tolist()
    assert len(ours) >= 1
