"""No-repeat n-gram decoding, inside one reply: the decoding-only fix a user tries first.

A token that would complete an n-gram the reply already contains is banned. Only
the reply's own tokens count (transformers' `no_repeat_ngram_size` also scans the
prompt, which would ban every phrase of a long roleplay context). The rule is
written once here; the vLLM logits processor and the transformers one both call it.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor


def banned_next(output_ids: list[int], n: int) -> set[int]:
    """Tokens that would repeat an n-gram already in `output_ids`."""
    if n < 1 or len(output_ids) < n - 1:
        return set()
    if n == 1:
        return set(output_ids)
    prefix = tuple(output_ids[len(output_ids) - n + 1 :])
    return {
        output_ids[i + n - 1]
        for i in range(len(output_ids) - n + 1)
        if tuple(output_ids[i : i + n - 1]) == prefix
    }


class NoRepeatInReply(LogitsProcessor):
    """transformers: per-row n-gram sizes (0 = off), counting tokens after `prompt_width`."""

    def __init__(self, sizes: list[int], prompt_width: int):
        self.sizes = sizes
        self.start = prompt_width

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor):
        for row, n in enumerate(self.sizes):
            if n:
                banned = banned_next(input_ids[row, self.start :].tolist(), n)
                if banned:
                    scores[row, list(banned)] = -float("inf")
        return scores


class CountPenalty(LogitsProcessor):
    """transformers: OpenAI-style frequency and presence penalties on the reply's tokens,
    as vLLM applies them (logit - frequency * count - presence * [count > 0])."""

    def __init__(self, frequency: list[float], presence: list[float], prompt_width: int):
        self.frequency = torch.tensor(frequency)
        self.presence = torch.tensor(presence)
        self.start = prompt_width

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor):
        reply = input_ids[:, self.start :]
        if reply.shape[1] == 0:
            return scores
        counts = torch.zeros_like(scores).scatter_add_(
            1, reply, torch.ones_like(reply, dtype=scores.dtype)
        )
        f = self.frequency.to(scores.device, scores.dtype)[:, None]
        p = self.presence.to(scores.device, scores.dtype)[:, None]
        return scores - f * counts - p * (counts > 0).to(scores.dtype)
