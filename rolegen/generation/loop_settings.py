"""The turn loop's settings (what generate and eval each set once per run), the counts it
keeps, and the seed of each request it makes.

Non-goals: running the loop (`dialogue.py`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field


@dataclass
class LoopStats:
    engine_seconds: float = 0.0
    engine_calls: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0  # of those, read from the engine's prefix cache (vLLM)
    generated_tokens: int = 0
    resamples: int = 0
    rejections: dict[str, int] = field(default_factory=dict)  # reason -> count
    replies_drawn: int = 0  # character replies sampled, resamples included
    replies_passed: int = 0  # of those, the ones that were neither empty nor rejected
    card_choices: int = 0  # turns whose kept round had several passing replies to choose from
    card_changed: int = 0  # of those, the turns whose card choice was not the first passing

    def count_call(self, requests: list, completions: list, seconds: float) -> None:
        """Count one engine call: its time, and its prompt, cached and generated tokens."""
        self.engine_seconds += seconds
        self.engine_calls += 1
        self.prompt_tokens += sum(len(r.prompt_ids) for r in requests)
        self.cached_prompt_tokens += sum(c.cached_tokens for c in completions)
        self.generated_tokens += sum(c.n_tokens for c in completions)


def request_seed(run_seed: int, dialogue_id: str, turn: int, side: str, sample: int) -> int:
    key = f"{run_seed}/{dialogue_id}/{turn}/{side}/{sample}".encode()
    return zlib.crc32(key) & 0x7FFFFFFF


@dataclass(frozen=True)
class LoopSettings:
    """How the turn loop samples: what generate and eval each set once per run."""

    turns: int
    seed: int
    temperature: float
    top_p: float
    repetition_penalty: float
    max_new_tokens: int  # the character's reply
    user_max_new_tokens: int  # a simulated user turn
    max_resamples: int
    # in place of max_resamples on a judged turn where the user asked who the character is
    asked_resamples: int = 0
    on_exhausted: str = "end"  # the resamples ran out: end the dialogue, or keep and flag
    candidates: int = 1  # character replies drawn at once per turn when judged
    resample_temperature_step: float = 0.0
    plain_negatives: int = 0  # plain-sampled negatives beside a reply drawn under a decoding fix
    cross_card_negatives: int = 0  # replies from the same context under another card's prompt
    card_choice: bool = False  # keep the passing candidate nearest its card (card_choice.py)
    # later rounds draw ahead to keep the first round's batch (the records are the same)
    fill_rounds: bool = True
    user_script: tuple[str, ...] | None = None  # user turns for dialogues without their own
