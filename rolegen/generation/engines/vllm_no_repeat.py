"""vLLM (v1) logits processor for no-repeat n-gram decoding inside a reply.

Registered on the `LLM` when asked for; a request turns it on with
`SamplingParams(extra_args={"no_repeat_ngram": n})`. Kept in its own module
because it imports vLLM at the top (the engine process imports it by name).
"""

from __future__ import annotations

import torch
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

from rolegen.generation.engines.no_repeat import banned_next


class NoRepeatNGram(AdapterLogitsProcessor):
    def is_argmax_invariant(self) -> bool:
        return False

    def new_req_logits_processor(self, params):
        n = (params.extra_args or {}).get("no_repeat_ngram")
        if not n:
            return None

        def apply(output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
            banned = banned_next(output_ids, n)
            if banned:
                logits[list(banned)] = -float("inf")
            return logits

        return apply
