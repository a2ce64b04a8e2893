"""Training losses over packed rows: token log-probabilities, per-example sums, SFT, DPO.

Supports: the NLL of the labelled tokens (assistant-only SFT); sigmoid DPO on the
summed reply log-probabilities of (chosen, rejected) pairs packed into one row,
with the chosen replies' NLL per token for an RPO term. Every loss reads the
batches `train_data.collate_packed` / `pair_tensors` build (labels -100 where no
loss falls, `segments` numbering the examples).

Non-goals: the reference model's log-probabilities and the loop that weighs and
steps the losses (the train recipe, `trainer.py`); other preference losses (IPO,
KTO, hinge) are not written yet.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rolegen.rendering import IGNORE


def token_logps(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of the labels (0 where masked), the mask, and the
    segment of each, at the positions where some row has a target. Packed rows: no
    attention mask, position ids only. Logits are kept only where a label falls
    (`logits_to_keep`): the full-vocabulary logits of every position would take
    more memory than the model."""
    labels = batch["labels"][:, 1:]
    keep = torch.nonzero((labels != IGNORE).any(dim=0)).squeeze(-1)
    # the model may come wrapped (DistributedDataParallel under accelerate launch)
    weight = getattr(model, "module", model).get_input_embeddings().weight
    # A bf16 base with fp32 LoRA weights: autocast runs the adapters' matmuls in bf16 too
    # (measured: 413 vs 306 tokens/s on the CPU here) while AdamW updates fp32 weights.
    with torch.autocast(weight.device.type, torch.bfloat16, enabled=weight.dtype == torch.bfloat16):
        # use_cache=False: with a cache, transformers skips the packed-sequence mask
        out = model(
            input_ids=batch["input_ids"],
            position_ids=batch["position_ids"],
            cu_seq_lens_q=batch.get("cu_seq_lens_q"),
            use_cache=False,
            logits_to_keep=keep,
        )
    labels = labels[:, keep]
    mask = labels != IGNORE
    logps = -F.cross_entropy(
        out.logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE, reduction="none"
    ).view_as(labels)
    return logps * mask, mask, batch["segments"][:, 1:][:, keep]


def segment_sums(values: torch.Tensor, segments: torch.Tensor, n: int) -> torch.Tensor:
    """`values` summed per segment 0..n-1 (positions with a negative segment add nothing)."""
    flat_seg = segments.reshape(-1).clamp(min=0)
    return torch.zeros(n, dtype=values.dtype, device=values.device).index_add(
        0, flat_seg, values.reshape(-1) * (segments.reshape(-1) >= 0)
    )


def sft_loss(model, batch: dict) -> tuple[torch.Tensor, int]:
    logps, mask, _ = token_logps(model, batch)
    n = int(mask.sum())
    return -logps.sum() / max(n, 1), n


def pair_logps(
    model, batch: dict, n_pairs: int
) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]:
    """Summed reply log-probabilities of chosen and rejected, from `n_pairs` pairs in one
    `pair_tensors` row (segment 2k: pair k's chosen, 2k+1: its rejected); the chosen
    replies' token count and their NLL per token."""
    logps, mask, segments = token_logps(model, batch)
    sums = segment_sums(logps, segments, 2 * n_pairs)
    counts = segment_sums(mask.to(logps.dtype), segments, 2 * n_pairs)
    nll = -sums[0::2].sum() / counts[0::2].sum().clamp(min=1)
    return sums[0::2], sums[1::2], int(counts[0::2].sum()), nll


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sigmoid DPO (Rafailov et al. 2023) on summed reply log-probabilities; returns the
    mean loss and each pair's reward margin."""
    margin = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    return -F.logsigmoid(margin).mean(), margin.detach()
