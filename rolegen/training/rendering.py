"""Conversations -> token ids with labels, for SFT and preference training.

Each dialogue is rendered with the prompt format it was generated with (the
tokenizer's chat template or a format template), so training and inference see
the same text. Loss falls only on the character's replies, including the
end-of-turn marker that follows each (eos for chat templates, the format's stop
string otherwise); the system prompt, the card's greeting and the user turns are
masked with -100. Too long a dialogue is cut into windows that each fit, every reply
learned once with the history before it that fits (the system prompt and greeting
lead each window; the oldest exchanges go whole, as generation trims them). Eval's fluency score
(guardrails.py) finds the reply tokens the same way.

Needs a fast tokenizer (character offsets) and a format whose turns only append.
Non-goals: reading the dataset files, packing and batching (`data.py`), the
losses (`losses.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rolegen.errors import RolegenError
from rolegen.generation.templates import PromptFormat

IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE where no loss falls
    id: str = ""
    dropped_messages: int = 0

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def target_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


@dataclass
class PairExample:
    """One preference pair: the same prompt, the chosen and the rejected reply."""

    chosen: Example
    rejected: Example
    id: str = ""


def _head_length(messages: list[dict]) -> int:
    """System prompt and the card's greeting: context that truncation keeps and no loss
    falls on (the greeting is the card's text, not a reply the model wrote)."""
    n = 1 if messages and messages[0]["role"] == "system" else 0
    if len(messages) > n and messages[n]["role"] == "assistant":
        n += 1
    return n


class Renderer:
    """Renders conversations with one prompt format and finds each reply's tokens."""

    def __init__(self, fmt: PromptFormat, tokenizer, max_length: int):
        if not getattr(tokenizer, "is_fast", False):
            raise RolegenError("training needs a fast tokenizer (character offsets for the labels)")
        self.format = fmt
        self.tokenizer = tokenizer
        self.max_length = max_length

    def _render(self, messages: list[dict], names: tuple[str, str], gen: bool) -> str:
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
        rest = messages[1:] if messages and messages[0]["role"] == "system" else messages
        return self.format.render(
            system, rest, char=names[0], user=names[1], add_generation_prompt=gen
        )

    def _stops(self, names: tuple[str, str]) -> list[str]:
        stops = [s for s in self.format.stop(char=names[0], user=names[1]) if s.strip()]
        if self.tokenizer.eos_token:
            stops.append(self.tokenizer.eos_token)
        return stops

    def reply_spans(
        self, messages: list[dict], names: tuple[str, str], train_on: set[int]
    ) -> tuple[str, list[tuple[int, int]]]:
        """The full text and the character ranges of the replies at `train_on` (indices
        into `messages`), each ending after its end-of-turn marker."""
        full = self._render(messages, names, gen=False)
        stops = self._stops(names)
        spans = []
        for i in sorted(train_on):
            before = self._render(messages[:i], names, gen=True)
            through = self._render(messages[: i + 1], names, gen=False)
            if not full.startswith(before) or not full.startswith(through):
                raise RolegenError(
                    f"prompt format '{self.format.name}' does not render a conversation as a "
                    "prefix of its continuation, so reply tokens cannot be located; use a "
                    "format whose turns only append"
                )
            start = len(before)
            content = messages[i]["content"]
            at = full.find(content, start) if content else start
            content_end = (at + len(content)) if at >= 0 else len(through)
            end = len(through.rstrip())
            # Teach the model to end its turn: through the first stop after the reply.
            found = [(full.find(s, content_end), s) for s in stops]
            found = [(p, s) for p, s in found if p >= 0 and p <= max(end, content_end) + 64]
            if found:
                p, s = min(found)
                end = p + len(s)
            spans.append((start, max(end, content_end)))
        return full, spans

    def encode_text(self, text: str) -> dict:
        bos = self.tokenizer.bos_token
        add_special = not (bos and text.startswith(bos))
        return self.tokenizer(text, add_special_tokens=add_special, return_offsets_mapping=True)

    def label(self, text: str, spans: list[tuple[int, int]]) -> Example:
        enc = self.encode_text(text)
        ids = list(enc["input_ids"])
        labels = [IGNORE] * len(ids)
        k = 0
        for t, (a, b) in enumerate(enc["offset_mapping"]):
            if a == b:  # special tokens added by the tokenizer
                continue
            while k < len(spans) and spans[k][1] <= a:
                k += 1
            if k < len(spans) and spans[k][0] <= a < spans[k][1]:
                labels[t] = ids[t]
        return Example(ids, labels)

    def sft_example(
        self, messages: list[dict], names: tuple[str, str], id: str = "", train_from: int = 0
    ) -> Example | None:
        """A whole dialogue, oldest exchanges dropped until it fits; None if even the
        system prompt, greeting and last exchange do not fit. Replies before message
        `train_from` are context only."""
        head_n = _head_length(messages)
        head, body = messages[:head_n], messages[head_n:]
        dropped = self._cannot_fit_before(head, body)
        while True:
            kept = head + body[dropped:]
            first = max(head_n, train_from - dropped)
            train_on = {i for i, m in enumerate(kept) if i >= first and m["role"] == "assistant"}
            text, spans = self.reply_spans(kept, names, train_on)
            example = self.label(text, spans)
            if len(example) <= self.max_length:
                example.id, example.dropped_messages = id, dropped
                return example
            if len(body) - dropped <= 2:
                return None
            dropped += 2 if body[dropped]["role"] == "user" else 1

    def _cannot_fit_before(
        self, head: list[dict], body: list[dict], reply: str | None = None
    ) -> int:
        """The first number of oldest body messages to drop, by the loop's own steps,
        below which the example cannot fit: the tokens of the kept messages' text alone
        (and of `reply`, a pair's longer reply, where given; less a margin for merges at
        the template's seams) already pass max_length. The loop renders from there, not
        from 0, so a long chat costs no render per step. The steps are `sft_example`'s
        (a user message goes with the reply after it; two messages stay), or
        `pair_example`'s with a reply (two at a time while more than two are left; one
        stays)."""

        def least(text: str) -> int:
            n = len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            return max(0, n - 2)

        body_tokens = [least(m["content"]) for m in body]
        total = sum(least(m["content"]) for m in head) + sum(body_tokens)
        keep = 2 if reply is None else 1
        if reply is not None:
            total += least(reply)
        dropped = 0
        while total > self.max_length and len(body) - dropped > keep:
            if reply is None:
                step = 2 if body[dropped]["role"] == "user" else 1
            else:
                step = 2 if len(body) - dropped > 2 else 1
            total -= sum(body_tokens[dropped : dropped + step])
            dropped += step
        return dropped

    def sft_windows(
        self, messages: list[dict], names: tuple[str, str], id: str = ""
    ) -> list[Example]:
        """Every reply of a dialogue learned once, in windows of at most max_length.

        A dialogue that fits is one example. A longer one is cut from its end: each
        window holds as much of the history before it as fits (the system prompt and
        greeting lead every window) and learns only the later half of its messages, so
        every reply is learned with at least the earlier half of its window before it,
        as a chat front-end shows a long chat once the oldest turns are trimmed. The earliest window learns all it
        holds. Replies that fit no window (one exchange longer than max_length) are left
        out; the first example's `dropped_messages` counts them.
        """
        head_n = _head_length(messages)
        windows: list[Example] = []
        end = len(messages)
        while end > head_n:
            example = self.sft_example(messages[:end], names, id)
            if example is None:
                break
            start = head_n + example.dropped_messages
            if start == head_n:
                windows.append(example)
                end = head_n
                break
            half = start + (end - start) // 2
            mid = next((i for i in range(half, end) if messages[i]["role"] == "user"), start)
            if mid > start:
                example = self.sft_example(messages[:end], names, id, train_from=mid)
            windows.append(example)
            end = mid
        for e in windows:
            e.dropped_messages = 0
        windows.reverse()
        if windows:
            windows[0].dropped_messages = end - head_n
        return windows

    def pair_example(
        self,
        prompt: list[dict],
        chosen: str,
        rejected: str,
        names: tuple[str, str],
        id: str = "",
    ) -> PairExample | None:
        """Prompt + each reply; loss (the log-probability summed) only on the reply."""
        head_n = _head_length(prompt)
        head, body = prompt[:head_n], prompt[head_n:]
        longer = max(chosen, rejected, key=len)
        dropped = self._cannot_fit_before(head, body, longer)
        while True:
            kept = head + body[dropped:]
            out = []
            for reply in (chosen, rejected):
                convo = [*kept, {"role": "assistant", "content": reply}]
                text, spans = self.reply_spans(convo, names, {len(convo) - 1})
                out.append(self.label(text, spans))
            if max(len(e) for e in out) <= self.max_length:
                for e in out:
                    e.id, e.dropped_messages = id, dropped
                return PairExample(out[0], out[1], id)
            if len(body) - dropped <= 1:
                return None
            dropped += 2 if len(body) - dropped > 2 else 1
