"""Training losses over packed rows: token log-probabilities, per-example sums, SFT,
DPO, a token-level preference at the divergence point, sequence-level unlikelihood.

Supports:
- the NLL of the labelled tokens (assistant-only SFT);
- sigmoid DPO on the summed reply log-probabilities of (chosen, rejected) pairs, with
  the chosen replies' NLL per token for an RPO term. The pairs come packed either as
  two sequences each (`pair_logps` over `batches.pair_tensors`) or prefix-shared,
  context once and both replies after it (`shared_pair_logps` over
  `batches.shared_pair_tensors`): the same sums to float rounding, with the context
  computed once;
- FTPO (`ftpo_loss`, Paech et al. 2025, the antislop paper, arXiv 2510.15061): a
  preference between the chosen and the rejected token at the first position where
  the two replies differ, on raw logits, with the rest of the vocabulary tethered to
  the reference there (`divergence_logits` reads the logits at that one position);
- sequence-level unlikelihood (`unlikelihood_loss`, Welleck et al. 2019, arXiv
  1908.04319): -log(1 - p) on the tokens of the model's own greedy continuation
  (`greedy_continuation`) that repeat an earlier n-gram (`repeat_mask`).
Every loss reads the batches `train_data` builds (labels -100 where no loss falls,
`segments` numbering the examples).

Non-goals: the reference model's log-probabilities and the loop that weighs and
steps the losses (the train recipe, `trainer.py`); other preference losses (IPO,
KTO, hinge) are not written yet; token-level unlikelihood (on the training data's
own tokens) is not either.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rolegen.training.rendering import IGNORE


def _autocast(model):
    # the model may come wrapped (DistributedDataParallel under accelerate launch)
    weight = getattr(model, "module", model).get_input_embeddings().weight
    # A bf16 base with fp32 LoRA weights: autocast runs the adapters' matmuls in bf16 too
    # (measured: 413 vs 306 tokens/s on the CPU here) while AdamW updates fp32 weights.
    return torch.autocast(
        weight.device.type, torch.bfloat16, enabled=weight.dtype == torch.bfloat16
    )


def _logits(model, batch: dict, keep: torch.Tensor) -> torch.Tensor:
    """The logits at row positions `keep` ([1, len(keep), vocab]) of a packed batch. Packed
    rows: no attention mask, position ids and the blocks of packed_attention.py only.
    Logits are kept only where needed (`logits_to_keep`): the full-vocabulary logits of
    every position would take more memory than the model."""
    with _autocast(model):
        # use_cache=False: with a cache, transformers skips the packed-sequence mask
        extra = {"prefix_groups": batch["prefix_groups"]} if "prefix_groups" in batch else {}
        out = model(
            input_ids=batch["input_ids"],
            position_ids=batch["position_ids"],
            cu_seq_lens_q=batch.get("cu_seq_lens_q"),
            use_cache=False,
            logits_to_keep=keep,
            **extra,
        )
    return out.logits


def token_logps(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of the labels (0 where masked), the mask, and the
    segment of each, at the positions where some row has a target."""
    labels = batch["labels"][:, 1:]
    keep = torch.nonzero((labels != IGNORE).any(dim=0)).squeeze(-1)
    logits = _logits(model, batch, keep)
    labels = labels[:, keep]
    mask = labels != IGNORE
    logps = -F.cross_entropy(
        logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE, reduction="none"
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


def shared_token_logps(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The log-probability of every target of a `shared_pair_tensors` row and its segment
    (in the row's target order: pair by pair, chosen then rejected, by position). The
    context runs through the model once for both replies. Needs the `rolegen_packed`
    attention (the only one that reads `prefix_groups`; any other would let the rejected
    reply see the chosen one)."""
    config = getattr(getattr(model, "module", model), "config", None)
    attention = getattr(config, "_attn_implementation", None)
    if attention != "rolegen_packed":
        raise ValueError(f"prefix-shared pairs need the rolegen_packed attention, not {attention}")
    keep, inverse = torch.unique(batch["logit_index"], return_inverse=True)
    logits = _logits(model, batch, keep)[0].float()
    logps = logits[inverse, batch["targets"]] - logits.logsumexp(-1)[inverse]
    return logps, batch["target_segments"]


def shared_pair_logps(
    model, batch: dict, n_pairs: int
) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]:
    """`pair_logps` of a `shared_pair_tensors` row."""
    logps, seg = shared_token_logps(model, batch)
    sums = torch.zeros(2 * n_pairs, dtype=logps.dtype, device=logps.device).index_add(0, seg, logps)
    counts = torch.bincount(seg, minlength=2 * n_pairs).to(logps.dtype)
    nll = -sums[0::2].sum() / counts[0::2].sum().clamp(min=1)
    return sums[0::2], sums[1::2], int(counts[0::2].sum()), nll


# FTPO's settings that rolegen does not expose: the softness of the preference term
# and the free band of the target tether (both 1.0 in the antislop trainer).
FTPO_TEMPERATURE = 1.0
FTPO_TARGET_FREE = 1.0


def divergence_logits(model, batch: dict) -> torch.Tensor:
    """The full-vocabulary logits [pairs, vocab] (fp32) at each pair's divergence point,
    from a `batches.divergence_tensors` row."""
    return _logits(model, batch, batch["logit_index"])[0].float()


def ftpo_loss(
    logits: torch.Tensor,
    ref_logits: torch.Tensor,
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    margin: float,
    target_weight: float,
    nontarget_weight: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Final-token preference optimisation on the logits [pairs, vocab] at the divergence
    point, against the reference's logits there; returns the loss and each pair's logit
    gap (chosen - rejected).

    What the antislop paper and its trainer (sam-paech/auto-antislop, ftpo_trainer.py)
    do, and rolegen with them:
    - preference in logit space: softplus((margin - gap) / T), T = 1, weighted per pair
      by w = clamp((margin - gap) / margin, 0, 1), normalised by the sum of w: a pair
      whose gap passes the margin stops pulling (the paper's margin deactivation);
    - a target tether: the chosen and rejected logits may move `FTPO_TARGET_FREE` from
      the reference freely, past that a squared cost (mean over the target logits);
    - a non-target tether: every other logit at that position held to the reference by
      a squared cost (mean over them), so the step changes little but the two tokens.
    Where rolegen differs: one chosen token per pair (the chosen reply's), not a set of
    acceptable alternatives; w is a constant in the gradient (the trainer lets it carry
    gradient, which reads as an oversight); and when every pair of a batch has passed
    the margin the preference term is 0, where the trainer falls back to weight 1 and
    keeps pushing. Defaults for margin and the weights are the trainer's (2.0, 0.05, 0.4).
    """
    rows = torch.arange(len(logits), device=logits.device)
    gap = logits[rows, chosen] - logits[rows, rejected]
    w = ((margin - gap) / margin).clamp(0.0, 1.0).detach()
    pref = (w * F.softplus((margin - gap) / FTPO_TEMPERATURE)).sum() / w.sum().clamp(min=1e-12)
    diff = logits - ref_logits.to(logits)
    target = torch.zeros_like(diff, dtype=torch.bool)
    target[rows, chosen] = True
    target[rows, rejected] = True
    moved = (diff[target].abs() - FTPO_TARGET_FREE).clamp(min=0.0)
    target_mse = moved.pow(2).mean()
    nontarget_mse = diff[~target].pow(2).mean()
    loss = pref + target_weight * target_mse + nontarget_weight * nontarget_mse
    return loss, gap.detach()


def repeat_mask(tokens: list[int], n: int, seen: set[tuple[int, ...]] = frozenset()) -> list[bool]:
    """Welleck et al.'s candidates for sequence-level unlikelihood: every token of each
    n-gram of `tokens` that already occurred, earlier in `tokens` or in `seen` (here the
    n-grams of the dialogue's earlier character turns). As in the paper all n tokens of
    the repeated n-gram are marked, not only the one that completes it; unlike the
    reference code (`ngram_repeat_mask`, whose loop stops one n-gram short), the last
    n-gram counts too."""
    mask = [False] * len(tokens)
    earlier = set(seen)
    for j in range(len(tokens) - n + 1):
        gram = tuple(tokens[j : j + n])
        if gram in earlier:
            mask[j : j + n] = [True] * n
        earlier.add(gram)
    return mask


def unlikelihood_loss(model, batch: dict, n_tokens: int) -> torch.Tensor:
    """Sequence-level unlikelihood: the sum of -log(1 - p(token)) over the labelled tokens
    of `batch` (a context + continuation row whose labels mark the repeated tokens), over
    `n_tokens`, the continuation tokens (the paper's normalisation)."""
    logps, mask, _ = token_logps(model, batch)
    # 1 - p as -expm1(log p): exact where p is tiny; clamped where p rounds to 1
    one_minus = (-torch.expm1(logps)).clamp(min=1e-20)
    return -(torch.log(one_minus) * mask).sum() / max(n_tokens, 1)


@torch.no_grad()
def greedy_continuation(model, ids: list[int], max_new: int, stop: set[int]) -> list[int]:
    """The model's greedy continuation of `ids`: at most `max_new` tokens, up to and with
    the first stop token. One sequence at a time with a KV cache (the packed attention
    takes no padding mask). The model's mode is left as it was."""
    model = getattr(model, "module", model)
    was_training = model.training
    model.eval()
    out, past = [], None
    inp = torch.tensor([ids], device=model.get_input_embeddings().weight.device)
    pos = torch.arange(len(ids), device=inp.device)[None]
    try:
        with _autocast(model):
            for _ in range(max_new):
                res = model(
                    input_ids=inp,
                    position_ids=pos,
                    past_key_values=past,
                    use_cache=True,
                    logits_to_keep=1,
                )
                past = res.past_key_values
                token = int(res.logits[0, -1].argmax())
                out.append(token)
                if token in stop:
                    break
                inp = torch.tensor([[token]], device=inp.device)
                pos = pos[:, -1:] + 1
    finally:
        model.train(was_training)
    return out
