"""The turn loop: a batch of dialogues advanced together, one engine call per step.

Each turn has a user step (a scripted line, or the user simulator: one batched call for
all live dialogues) and a character step (one batched call). A reply that cleans to
nothing is resampled with a new seed, all such dialogues together, up to
`max_resamples` times; after that the dialogue ends early and says why. With a judge
(the checks, through `dialogue_state.Judge`), a rejected reply is resampled the same
way, and a reply to "who are you?" may draw up to `asked_resamples` (a reply that
names the character can be rare). The dialogues are `dialogue_state.Dialogue`s.

Every request's seed derives from (run seed, dialogue id, turn, side, sample
index), so a dialogue's text does not depend on which other dialogues share its
batch (with the vLLM engine; the transformers engine seeds per batch).

A dialogue is rendered by the loop's prompt builder, or by the one its `prompt` names
(the eval's prompt axis: each system scored under several prompts in one batch). Under
a front-end's context budget (prompts.py), each model turn's meta says how many of the
dialogue's messages and of the card's example dialogues its prompt held
(`context_messages`, `context_examples`); without one, meta has neither.

Non-goals: judging replies beyond emptiness (that is `checks/turns.py`), writing files.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from rolegen import interrupts
from rolegen.cards.personas import substitute_macros
from rolegen.checks.phrases import asks_identity
from rolegen.config.systems import decoding_name
from rolegen.generation.dialogue_state import Dialogue, Judge
from rolegen.generation.engines import Engine, Request
from rolegen.generation.prompts import Prompt, PromptBuilder
from rolegen.generation.replies import clean_reply


@dataclass
class LoopStats:
    engine_seconds: float = 0.0
    engine_calls: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    resamples: int = 0
    rejections: dict[str, int] = field(default_factory=dict)  # reason -> count
    replies_drawn: int = 0  # character replies sampled, resamples included
    replies_passed: int = 0  # of those, the ones that were neither empty nor rejected


_MAX_RESAMPLE_TEMPERATURE = 1.5
_PLAIN_SAMPLE = 1000  # sample indices of distillation's plain-sampled negatives
_CROSS_SAMPLE = 2000  # sample indices of the cross-card negatives


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
    user_script: tuple[str, ...] | None = None  # user turns for dialogues without their own


class TurnLoop:
    def __init__(
        self,
        engine: Engine,
        builder: PromptBuilder,
        settings: LoopSettings,
        judge: Judge | None = None,
        prompts: dict[str, PromptBuilder] | None = None,
    ):
        self.engine = engine
        self.builder = builder
        self.prompts = prompts or {}
        self.settings = settings
        self.sampling = dict(
            temperature=settings.temperature,
            top_p=settings.top_p,
            repetition_penalty=settings.repetition_penalty,
        )
        self.max_tokens = {
            "assistant": settings.max_new_tokens,
            "user": settings.user_max_new_tokens,
        }
        self.user_script = None if settings.user_script is None else list(settings.user_script)
        self.judge = judge
        self.stats = LoopStats()

    def _builder(self, d: Dialogue) -> PromptBuilder:
        return self.prompts.get(d.prompt, self.builder)

    def start(self, dialogue: Dialogue) -> Dialogue:
        builder = self._builder(dialogue)
        opening = builder.greeting(dialogue.persona)
        if opening:
            dialogue.messages.append(opening)
            dialogue.meta.append({"role": "assistant", "source": "greeting"})
        dialogue.system = builder.character_system(dialogue.persona, dialogue.user, [])
        return dialogue

    def run(self, dialogues: list[Dialogue], on_turn: Callable[[int], None] = lambda n: None):
        """Advance all `dialogues` to `turns` character turns (or their early end)."""
        for turn in range(1, self.settings.turns + 1):
            interrupts.check()  # a stop the signal handler could not raise (interrupts.py)
            live = [d for d in dialogues if not d.done]
            if not live:
                break
            scripted = [d for d in live if (d.script or self.user_script) is not None]
            self._scripted_user_step(scripted, turn)
            simulated = [d for d in live if (d.script or self.user_script) is None]
            if simulated:
                self._model_step(simulated, turn, "user")
            self._model_step([d for d in live if not d.done], turn, "assistant")
            on_turn(len(live))
        for d in dialogues:
            if not d.done:
                d.end_reason = "completed"
            elif d.messages and d.messages[-1]["role"] == "user":
                # ended on an unanswered user turn: the dialogue stops at its last good
                # character turn; the user turn stays with the unresolved candidates
                d.meta.pop()
                question = d.messages.pop()["content"]
                if d.unresolved:
                    d.unresolved[-1]["user"] = question
                else:
                    d.unresolved.append({"role": "user", "content": question})

    def _scripted_user_step(self, dialogues: list[Dialogue], turn: int) -> None:
        for d in dialogues:
            script = d.script or self.user_script
            if turn > len(script):
                d.end_reason = "script_exhausted"
                continue
            text = substitute_macros(script[turn - 1], d.persona.name, d.user.name)
            d.messages.append({"role": "user", "content": text})
            d.meta.append({"role": "user", "source": "script", "turn": turn})

    def _prompt(self, d: Dialogue, turn: int, side: str) -> Prompt:
        builder = self._builder(d)
        if side == "assistant":
            prompt = builder.character_prompt(d.persona, d.user, d.messages)
            d.system = prompt.system
            return prompt
        return builder.user_prompt(d.persona, d.user, d.messages, turn, self.settings.turns)

    def _model_step(self, dialogues: list[Dialogue], turn: int, side: str) -> None:
        pending, sample, round_no = list(dialogues), 0, 0
        budget = {d.id: self._budget(d, side) for d in dialogues}  # samples, all rounds
        rejects: dict[str, list[dict]] = {d.id: [] for d in dialogues}
        fallback: dict[str, tuple[dict, str]] = {}  # latest rejected non-empty candidate
        accepted: dict[str, tuple[Dialogue, Prompt, dict, str]] = {}
        spent = []  # dialogues whose budget ran out
        while pending:
            spent += [d for d in pending if sample >= budget[d.id]]
            pending = [d for d in pending if sample < budget[d.id]]
            if not pending:
                break
            # With the checks on, a round may draw several candidates per dialogue at once
            # (same prompt, so the prefix cache serves them); the first that passes is kept.
            width = 1
            if side == "assistant" and self.judge is not None:
                width = self.settings.candidates
            prompts = {}
            for d in pending:
                prompt = self._prompt(d, turn, side)
                if not self._builder(d).fits(prompt):
                    d.end_reason = "context_overflow"
                    continue
                prompts[d.id] = prompt
            pending = [d for d in pending if d.id in prompts]
            requests, owners = [], []
            for d in pending:
                prompt = prompts[d.id]
                sampling = {**self.sampling, **(d.sampling if side == "assistant" else {})}
                if round_no and side == "assistant" and sampling["temperature"] > 0:
                    # a resample at the same temperature tends to fall into the same loop
                    raised = (
                        sampling["temperature"] + round_no * self.settings.resample_temperature_step
                    )
                    sampling["temperature"] = min(raised, _MAX_RESAMPLE_TEMPERATURE)
                for j in range(sample, min(sample + width, budget[d.id])):
                    seed = request_seed(self.settings.seed, d.seed_key or d.id, turn, side, j)
                    requests.append(self._request(d, prompt, side, seed, sampling))
                    owners.append((d, j))
            if not requests:
                break
            completions = self._generate(requests)
            candidates = []
            for (d, j), req, comp in zip(owners, requests, completions):
                speaker, other = self._speaker_and_other(d, side)
                reply = clean_reply(comp.text, speaker, other, req.stop, comp.finish_reason)
                meta = {
                    "role": side,
                    "source": "model",
                    "turn": turn,
                    "seed": req.seed,
                    "temperature": req.temperature,
                    "sample_index": j,
                    "prompt_tokens": len(req.prompt_ids),
                    "tokens": comp.n_tokens,
                    "finish_reason": comp.finish_reason,
                    "dropped_messages": prompts[d.id].dropped_messages,
                    "cleaning": reply.actions,
                }
                if side == "assistant" and d.sampling:
                    meta["decoding"] = decoding_name(d.sampling)
                prompt = prompts[d.id]
                if prompt.context_examples is not None:  # a front-end's context budget
                    meta["context_messages"] = len(prompt.messages) - 1  # the system prompt
                    meta["context_examples"] = prompt.context_examples
                if reply.empty:
                    rejects[d.id].append(self._reject(meta, comp.text, ["empty"], {}))
                else:
                    candidates.append((d, meta, reply.text))
            verdicts = [([], {})] * len(candidates)
            if self.judge is not None and side == "assistant" and candidates:
                verdicts = self.judge([c[0] for c in candidates], [c[2] for c in candidates])
            if side == "assistant":
                self.stats.replies_drawn += len(requests)
                self.stats.replies_passed += sum(not reasons for reasons, _ in verdicts)
            chosen: dict[str, tuple[dict, str]] = {}
            for (d, meta, text), (reasons, scores) in zip(candidates, verdicts):
                if scores:
                    meta["checks"] = scores
                if reasons:
                    # every failing candidate is a negative for this context
                    rejects[d.id].append(self._reject(meta, text, reasons, scores))
                    fallback[d.id] = (meta, text)
                elif d.id not in chosen:
                    chosen[d.id] = (meta, text)
            for d in pending:
                if d.id in chosen:  # accepted after the rounds: the judge sees the turn open
                    accepted[d.id] = (d, prompts[d.id], *chosen[d.id])
            retry = [d for d in pending if d.id not in chosen]
            sample += width
            round_no += 1
            self.stats.resamples += sum(sample < budget[d.id] for d in retry)
            pending = retry

        if side == "assistant" and accepted:
            # the negatives of every kind, drawn in one engine call
            distilled = [a for a in accepted.values() if a[0].sampling]
            plain = self._plain_negatives(distilled, turn)
            cross = self._cross_card_negatives(list(accepted.values()), dialogues, turn)
            self._draw_negatives(plain[0] + cross[0], plain[1] + cross[1], rejects)
        for d, _, meta, text in accepted.values():
            self._accept(d, side, text, meta, rejects[d.id])
        for d in spent:  # the resample budget is spent
            if d.id in fallback and self.settings.on_exhausted == "keep":
                meta, text = fallback[d.id]
                meta["flags"] = rejects[d.id][-1]["reasons"]
                self._accept(d, side, text, meta, rejects[d.id][:-1])
            else:
                empty_only = d.id not in fallback
                d.end_reason = f"{'empty' if empty_only else 'rejected'}_{side}_reply"
                d.unresolved.append({"turn": turn, "role": side, "rejected": rejects[d.id]})

    def _plain_negatives(self, accepted: list, turn: int) -> tuple[list, list]:
        """Decoding-fix distillation: the requests (and their owners) for, beside each reply
        accepted under a decoding fix (`d.sampling`), replies from the same context with
        plain sampling, to be kept as rejected candidates (reason `plain_decoding`, with
        any the checks find), so that each pair sets what the fix writes against what
        plain sampling writes."""
        requests, owners = [], []
        for d, prompt, _, _ in accepted:
            for k in range(self.settings.plain_negatives):
                seed = request_seed(self.settings.seed, d.seed_key or d.id, turn, "plain", k)
                requests.append(self._request(d, prompt, "assistant", seed, self.sampling))
                # sample indices apart from the checked candidates
                owners.append((d, _PLAIN_SAMPLE + k, "plain", "plain_decoding"))
        return requests, owners

    def _cross_card_negatives(
        self, accepted: list, dialogues: list[Dialogue], turn: int
    ) -> tuple[list, list]:
        """The requests (and their owners) for, beside each accepted reply, replies from the
        same context under another card's prompt (another character of the batch, chosen
        by the seed), to be kept as rejected candidates (reason `cross_card`): a pair
        teaches the model to answer from its own card rather than from the conversation
        alone. A batch of one card draws none."""
        cards = {d.persona.name: d.persona for d in dialogues}
        requests, owners = [], []
        for d, _, _, _ in accepted:
            others = sorted(n for n in cards if n != d.persona.name)
            for k in range(self.settings.cross_card_negatives if others else 0):
                seed = request_seed(self.settings.seed, d.seed_key or d.id, turn, "cross", k)
                other = cards[others[seed % len(others)]]
                prompt = self._builder(d).character_prompt(other, d.user, d.messages)
                if not self._builder(d).fits(prompt):
                    continue
                sampling = {**self.sampling, **d.sampling}
                requests.append(self._request(d, prompt, "assistant", seed, sampling))
                owners.append((d, _CROSS_SAMPLE + k, f"card:{other.slug}", "cross_card"))
        return requests, owners

    def _draw_negatives(
        self, requests: list[Request], owners: list, rejects: dict[str, list]
    ) -> None:
        """Draw `requests` in one engine call and keep each non-empty reply as a rejected
        candidate of its dialogue's turn: `owners` holds (dialogue, sample index, decoding,
        reason) per request; the reason goes first, then any the checks find."""
        if not requests:
            return
        drawn = []
        for (d, j, how, reason), req, comp in zip(owners, requests, self._generate(requests)):
            speaker, other = self._speaker_and_other(d, "assistant")
            reply = clean_reply(comp.text, speaker, other, req.stop, comp.finish_reason)
            if not reply.empty:  # an empty reply teaches nothing here
                meta = {
                    "seed": req.seed,
                    "temperature": req.temperature,
                    "sample_index": j,
                    "tokens": comp.n_tokens,
                    "finish_reason": comp.finish_reason,
                    "decoding": how,
                }
                drawn.append((d, meta, reply.text, reason))
        verdicts = [([], {})] * len(drawn)
        if self.judge is not None and drawn:
            verdicts = self.judge([x[0] for x in drawn], [x[2] for x in drawn])
        for (d, meta, text, reason), (reasons, scores) in zip(drawn, verdicts):
            reasons = [reason, *reasons]  # not counted as the checks' rejections
            rejects[d.id].append(self._reject(meta, text, reasons, scores, count=False))

    def _generate(self, requests: list[Request]) -> list:
        """One engine call, counted in the loop's stats."""
        start = time.perf_counter()
        completions = self.engine.generate(requests)
        self.stats.engine_seconds += time.perf_counter() - start
        self.stats.engine_calls += 1
        self.stats.prompt_tokens += sum(len(r.prompt_ids) for r in requests)
        self.stats.generated_tokens += sum(c.n_tokens for c in completions)
        return completions

    def _request(self, d: Dialogue, prompt: Prompt, side: str, seed: int, sampling: dict):
        _, other = self._speaker_and_other(d, side)
        return Request(
            prompt_ids=prompt.ids,
            max_tokens=self.max_tokens[side],
            stop=[*prompt.stop, f"\n{other}:"],
            seed=seed,
            lora=d.lora,
            messages=prompt.messages,
            group=d.prompt,
            **sampling,
        )

    def _budget(self, d: Dialogue, side: str) -> int:
        """Samples this turn may draw: a judged reply to "who are you?" gets the wider
        budget (a reply that names the character can be rare)."""
        resamples = self.settings.max_resamples
        if side == "assistant" and self.judge is not None and d.messages:
            last = d.messages[-1]
            if last["role"] == "user" and asks_identity(last["content"]):
                resamples = max(resamples, self.settings.asked_resamples)
        return resamples + 1

    def _reject(
        self, meta: dict, text: str, reasons: list[str], scores: dict, count: bool = True
    ) -> dict:
        for r in reasons if count else []:
            self.stats.rejections[r] = self.stats.rejections.get(r, 0) + 1
        keep = ("seed", "temperature", "sample_index", "tokens", "finish_reason", "decoding")
        kept = {k: meta[k] for k in keep if k in meta}
        return {"content": text, "reasons": reasons, "checks": scores, **kept}

    @staticmethod
    def _accept(d: Dialogue, side: str, text: str, meta: dict, rejected: list[dict]) -> None:
        if rejected:
            meta["rejected"] = list(rejected)
        d.messages.append({"role": side, "content": text})
        d.meta.append(meta)

    @staticmethod
    def _speaker_and_other(d: Dialogue, side: str) -> tuple[str, str]:
        if side == "assistant":
            return d.persona.name, d.user.name
        return d.user.name, d.persona.name
