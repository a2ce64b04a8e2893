"""The turn loop, on the tiny random LLaMA (real transformers engine) and on a scripted
engine where a test needs exact completions."""

import os
import signal
import time

import pytest

from rolegen import interrupts
from rolegen.cards.files import load_personas
from rolegen.cards.personas import UserPersona
from rolegen.generation.dialogue import TurnLoop
from rolegen.generation.dialogue_state import Dialogue
from rolegen.generation.engines import Completion, EngineOptions
from rolegen.generation.engines.hf import HFEngine
from rolegen.generation.loop_settings import LoopSettings, request_seed
from rolegen.generation.prompts import PromptBuilder, resolve_persona
from rolegen.generation.templates import ChatTemplateFormat, Templates
from rolegen.models.checkpoints import load_tokenizer


class ScriptedEngine:
    """Answers each call from a list of texts; records the requests it saw."""

    name = "scripted"

    def __init__(self, replies):
        self.replies = list(replies)
        self.calls = []

    def generate(self, requests):
        self.calls.append(requests)
        return [Completion(self.replies.pop(0), 5, "stop") for _ in requests]

    def close(self):
        pass


def _setup(model, context=2048, max_new_tokens=32):
    tok = load_tokenizer(model)
    builder = PromptBuilder(Templates(), ChatTemplateFormat(tok), tok, context, max_new_tokens)
    persona = load_personas("captain-mara-vell")[0]
    user = UserPersona(name="Alex", description="A traveler.")
    return builder, resolve_persona(persona, user.name), user


def _loop(engine, builder, **kw):
    args = dict(
        turns=2,
        seed=3,
        temperature=0.8,
        top_p=0.95,
        repetition_penalty=1.0,
        max_new_tokens=32,
        user_max_new_tokens=16,
        max_resamples=2,
    )
    judge = kw.pop("judge", None)
    args.update(kw)
    return TurnLoop(engine, builder, LoopSettings(**args), judge=judge)


def test_tiny_llama_dialogues_alternate_roles(tiny_model):
    builder, persona, user = _setup(tiny_model)
    engine = HFEngine(tiny_model, EngineOptions(eos_token_ids=[2], batch_size=4))
    loop = _loop(engine, builder, max_resamples=5)
    dialogues = [loop.start(Dialogue(id=f"d{i}", persona=persona, user=user)) for i in range(3)]
    loop.run(dialogues)
    # seeded, so deterministic: no dialogue runs out of resamples on the tiny model
    assert [d.end_reason for d in dialogues] == ["completed"] * 3
    for d in dialogues:
        record = d.to_record({})
        roles = [m["role"] for m in record["messages"]]
        # system prompt, the greeting, then both turns
        assert roles == ["system", "assistant"] + ["user", "assistant"] * 2
        assert "Captain Mara Vell" in record["messages"][0]["content"]
        assert all(m["content"].strip() for m in record["messages"])
        assert len(record["meta"]) == len(record["messages"])
    assert loop.stats.engine_calls >= 4  # one call per side per turn, at least


def test_one_engine_call_per_side_per_turn_for_the_whole_batch(embedded_model):
    builder, persona, user = _setup(embedded_model)
    engine = ScriptedEngine(["Hello there.", "Aye, welcome aboard."] * 2 * 5)
    loop = _loop(engine, builder, turns=2)
    dialogues = [loop.start(Dialogue(id=f"d{i}", persona=persona, user=user)) for i in range(5)]
    loop.run(dialogues)
    assert [len(c) for c in engine.calls] == [5, 5, 5, 5]
    assert all(d.end_reason == "completed" for d in dialogues)
    assert dialogues[0].messages[-1] == {"role": "assistant", "content": "Aye, welcome aboard."}


def test_empty_reply_is_resampled_with_a_new_seed(embedded_model):
    builder, persona, user = _setup(embedded_model)
    # user turn fine; the character first answers with only the user's line (cleans to empty)
    engine = ScriptedEngine(["Hi.", "Alex: I speak for the user.", "A real reply."])
    loop = _loop(engine, builder, turns=1)
    d = loop.start(Dialogue(id="d0", persona=persona, user=user))
    loop.run([d])
    assert d.messages[-1]["content"] == "A real reply."
    assert d.meta[-1]["sample_index"] == 1
    first, second = engine.calls[1][0], engine.calls[2][0]
    assert first.seed != second.seed
    assert second.seed == request_seed(3, "d0", 1, "assistant", 1)
    assert loop.stats.resamples == 1


def test_dialogue_ends_early_when_resamples_run_out(embedded_model):
    builder, persona, user = _setup(embedded_model)
    engine = ScriptedEngine(["Hi."] + ["Alex: nope"] * 3)
    loop = _loop(engine, builder, turns=2, max_resamples=2)
    d = loop.start(Dialogue(id="d0", persona=persona, user=user))
    loop.run([d])
    assert d.end_reason == "empty_assistant_reply"
    assert [m["role"] for m in d.messages] == ["assistant"]  # the unanswered user turn goes
    assert d.unresolved[0]["user"] == "Hi."


class PerSystemEngine(ScriptedEngine):
    """Answers base (lora False) and adapter (lora True) requests from their own lists."""

    def generate(self, requests):
        self.calls.append(requests)
        return [Completion(self.replies[r.lora].pop(0), 5, "stop") for r in requests]


def test_eval_loop_resamples_empty_replies_on_the_same_seeds_for_every_system(embedded_model):
    # the eval's loop: scripted user, no judge; base and adapter share the seed key, so
    # the j-th draw of a turn has the same seed in both, however often each resamples
    builder, persona, user = _setup(embedded_model)
    engine = PerSystemEngine([])
    engine.replies = {
        False: ["Alex: hi", "Fair winds.", "Alex: ?", "Alex: ?", "Alex: ?"],
        True: ["Alex: hi", "Alex: hi", "Welcome aboard.", "Aye aye."],
    }
    loop = _loop(engine, builder, turns=2, max_resamples=2, user_script=["Hi.", "Ready?"])
    dialogues = [
        loop.start(Dialogue(id=f"{s}/k", persona=persona, user=user, seed_key="k", lora=lora))
        for s, lora in (("base", False), ("adapter", True))
    ]
    loop.run(dialogues)
    base, adapter = dialogues

    def seeds(lora):
        return [r.seed for call in engine.calls for r in call if r.lora == lora]

    def draws(*turn_samples):
        return [request_seed(3, "k", t, "assistant", j) for t, j in turn_samples]

    assert seeds(False) == draws((1, 0), (1, 1), (2, 0), (2, 1), (2, 2))
    assert seeds(True) == draws((1, 0), (1, 1), (1, 2), (2, 0))
    assert adapter.end_reason == "completed" and adapter.character_turns == 2
    assert [r["reasons"] for r in adapter.meta[2]["rejected"]] == [["empty"], ["empty"]]
    assert base.end_reason == "empty_assistant_reply" and base.character_turns == 1
    assert base.messages[-1]["content"] == "Fair winds."


def test_scripted_user_turns_and_script_exhaustion(embedded_model):
    builder, persona, user = _setup(embedded_model)
    engine = ScriptedEngine(["Reply one.", "Reply two."])
    loop = _loop(engine, builder, turns=3, user_script=["Hello {{char}}!", "Where to?"])
    d = loop.start(Dialogue(id="d0", persona=persona, user=user))
    loop.run([d])
    assert d.messages[1] == {"role": "user", "content": "Hello Captain Mara Vell!"}
    assert d.end_reason == "script_exhausted"
    assert d.character_turns == 2


def test_context_overflow_drops_old_turns_and_records_it(embedded_model):
    builder, persona, user = _setup(embedded_model, context=900, max_new_tokens=32)
    long_reply = "The storm howls over the deck and the ropes creak. " * 12
    engine = ScriptedEngine([long_reply] * 40)
    loop = _loop(engine, builder, turns=6)
    d = loop.start(Dialogue(id="d0", persona=persona, user=user))
    loop.run([d])
    assert d.end_reason == "completed"
    dropped = [m.get("dropped_messages", 0) for m in d.meta if m.get("source") == "model"]
    assert dropped[0] == 0 and dropped[-1] > 0
    assert all(len(r.prompt_ids) <= 900 - 32 for call in engine.calls for r in call)


def test_prompt_that_cannot_fit_ends_the_dialogue_without_crashing(embedded_model):
    builder, persona, user = _setup(embedded_model, context=200, max_new_tokens=32)
    engine = ScriptedEngine(["Hi."] * 4)
    loop = _loop(engine, builder, turns=2)
    d = loop.start(Dialogue(id="d0", persona=persona, user=user))
    loop.run([d])
    assert d.end_reason == "context_overflow"


@pytest.mark.parametrize("side", ["user", "assistant"])
def test_request_seeds_differ_by_side_turn_and_dialogue(side):
    base = request_seed(0, "a", 1, side, 0)
    assert base != request_seed(0, "b", 1, side, 0)
    assert base != request_seed(0, "a", 2, side, 0)
    assert base != request_seed(1, "a", 1, side, 0)
    assert base == request_seed(0, "a", 1, side, 0)


# ------------------------------------------------------------- checks in the loop


def _judged_loop(engine, builder, **kw):
    from rolegen.checks.turns import CheckConfig
    from rolegen.generation.replicas import make_judge

    return _loop(engine, builder, judge=make_judge(CheckConfig()), **kw)


def test_rejected_reply_is_resampled_and_kept_as_a_negative(embedded_model):
    builder, persona, user = _setup(embedded_model)
    echo = persona.greeting  # a copy of the greeting: a repeat
    engine = ScriptedEngine(["Hi.", echo, "The wind turns east; grab the rail and hold on."])
    loop = _judged_loop(engine, builder, turns=1)
    d = loop.start(Dialogue(id="d0", persona=persona, user=user))
    loop.run([d])
    assert d.messages[-1]["content"] == "The wind turns east; grab the rail and hold on."
    meta = d.meta[-1]
    assert meta["sample_index"] == 1
    assert [r["content"] for r in meta["rejected"]] == [echo]
    assert "repeat" in meta["rejected"][0]["reasons"]
    assert meta["rejected"][0]["checks"]["repeat"] >= 80
    assert loop.stats.rejections["repeat"] == 1 and loop.stats.resamples == 1


def test_all_rejected_ends_dialogue_at_last_good_turn(embedded_model):
    builder, persona, user = _setup(embedded_model)
    loop_text = "noir noir noir noir noir"
    engine = ScriptedEngine(["Hi.", "A fine first answer, friend.", "Next?"] + [loop_text] * 3)
    loop = _judged_loop(engine, builder, turns=2, max_resamples=2)
    d = loop.start(Dialogue(id="d0", persona=persona, user=user))
    loop.run([d])
    assert d.end_reason == "rejected_assistant_reply"
    assert d.messages[-1] == {"role": "assistant", "content": "A fine first answer, friend."}
    assert len(d.meta) == len(d.messages)
    assert d.character_turns == 1
    assert len(d.unresolved[0]["rejected"]) == 3
    record = d.to_record({})
    assert record["unresolved"][0]["turn"] == 2


def test_all_rejected_kept_and_flagged_when_configured(embedded_model):
    builder, persona, user = _setup(embedded_model)
    loop_text = "noir noir noir noir noir"
    engine = ScriptedEngine(["Hi."] + [loop_text] * 2)
    loop = _judged_loop(engine, builder, turns=1, max_resamples=1, on_exhausted="keep")
    d = loop.start(Dialogue(id="d0", persona=persona, user=user))
    loop.run([d])
    assert d.end_reason == "completed"
    assert d.messages[-1]["content"] == loop_text
    assert "loop" in d.meta[-1]["flags"]
    assert len(d.meta[-1]["rejected"]) == 1  # the first candidate; the kept one is not a negative


def test_user_turns_are_not_judged(embedded_model):
    builder, persona, user = _setup(embedded_model)
    engine = ScriptedEngine(["noir noir noir noir noir", "A calm reply about the weather."])
    loop = _judged_loop(engine, builder, turns=1)
    d = loop.start(Dialogue(id="d0", persona=persona, user=user))
    loop.run([d])
    assert d.messages[1]["content"] == "noir noir noir noir noir"
    assert "checks" in d.meta[-1] and "checks" not in d.meta[1]


def test_parallel_candidates_keep_the_first_that_passes(embedded_model):
    builder, persona, user = _setup(embedded_model)
    engine = ScriptedEngine(
        [
            "Hi.",
            "noir noir noir noir noir",
            "A calm reply about the storm.",
            "Another calm reply about the rain.",
        ]
    )
    loop = _judged_loop(engine, builder, turns=1, candidates=3, max_resamples=3)
    d = loop.start(Dialogue(id="d0", persona=persona, user=user))
    loop.run([d])
    assert [len(c) for c in engine.calls] == [1, 3]  # one call, three candidates
    assert len({r.seed for r in engine.calls[1]}) == 3
    assert d.messages[-1]["content"] == "A calm reply about the storm."
    assert d.meta[-1]["sample_index"] == 1
    assert [r["content"] for r in d.meta[-1]["rejected"]] == ["noir noir noir noir noir"]


def test_card_choice_keeps_the_passing_candidate_nearest_its_card(embedded_model):
    from rolegen.checks.embedder import paraphrase_encoder
    from rolegen.generation.card_choice import CardChoice

    builder, persona, user = _setup(embedded_model)
    other = resolve_persona(load_personas("tea-house-hana")[0], user.name)
    replies = [
        "Hi.",
        "Hi.",
        "noir noir noir noir noir",
        "That sounds lovely, I hope your day goes well.",
        "Hold the rail: the airship Kestrel climbs into the storm and the crew trims the sails.",
        "Steep the green tea a little longer; the kettle is singing.",
        "The wind turns east, so we fly the Kestrel low over the clouds.",
        "Welcome, come in and sit wherever you like.",
    ]

    def run(chooser):
        engine = ScriptedEngine(list(replies))
        loop = _judged_loop(engine, builder, turns=1, candidates=3, max_resamples=3)
        loop.chooser = chooser
        ds = [
            loop.start(Dialogue(id="d0", persona=persona, user=user)),
            loop.start(Dialogue(id="d1", persona=other, user=user)),
        ]
        loop.run(ds)
        return ds, loop.stats

    (mara, hana), stats = run(None)
    assert mara.messages[-1]["content"] == "That sounds lovely, I hope your day goes well."
    assert stats.card_choices == 0 and "card_margin" not in mara.meta[-1]
    (mara, hana), stats = run(CardChoice(paraphrase_encoder()))
    # of Mara's two passing replies, the one about her airship; the loop is rejected either way
    assert mara.messages[-1]["content"].startswith("Hold the rail: the airship Kestrel")
    assert mara.meta[-1]["sample_index"] == 2
    assert mara.meta[-1]["card_margin"] > 0
    assert [r["content"] for r in mara.meta[-1]["rejected"]] == ["noir noir noir noir noir"]
    # Hana's three all pass; the tea reply is hers, the airship reply is Mara's card
    assert hana.messages[-1]["content"].startswith("Steep the green tea")
    assert (stats.card_choices, stats.card_changed) == (2, 1)


def test_resample_rounds_raise_the_temperature_up_to_a_cap(embedded_model):
    builder, persona, user = _setup(embedded_model)
    loop_text = "noir noir noir noir noir"
    engine = ScriptedEngine(["Hi."] + [loop_text] * 3 + ["The wind turns; hold the rail."])
    loop = _judged_loop(engine, builder, turns=1, max_resamples=3, resample_temperature_step=0.3)
    d = loop.start(Dialogue(id="d0", persona=persona, user=user))
    loop.run([d])
    temps = [call[0].temperature for call in engine.calls[1:]]
    assert temps == pytest.approx([0.8, 1.1, 1.4, 1.5])  # +0.3 a round, capped at 1.5
    assert engine.calls[0][0].temperature == 0.8  # the user side is never raised
    assert d.meta[-1]["temperature"] == pytest.approx(1.5)
    assert [r["temperature"] for r in d.meta[-1]["rejected"]] == pytest.approx([0.8, 1.1, 1.4])


def _asked_or_not(embedded_model, question):
    """Three looping replies, then one that names the character; max_resamples=1 and
    asked_resamples=3. The dialogue, the engine and the named reply."""
    builder, persona, user = _setup(embedded_model)
    loop_text = "noir noir noir noir noir"
    named = f"{persona.name}, as I said. Grab a line, the squall is close."
    engine = ScriptedEngine([loop_text] * 3 + [named])
    loop = _judged_loop(
        engine, builder, turns=1, max_resamples=1, asked_resamples=3, user_script=[question]
    )
    d = loop.start(Dialogue(id="d0", persona=persona, user=user))
    loop.run([d])
    return d, engine, named


def test_asked_turn_draws_up_to_asked_resamples(embedded_model):
    d, engine, named = _asked_or_not(embedded_model, "What's your name again?")
    assert sum(len(c) for c in engine.calls) == 4  # asked: the wider budget
    assert d.end_reason == "completed"
    assert d.messages[-1]["content"] == named
    assert len(d.meta[-1]["rejected"]) == 3


def test_unasked_turn_draws_up_to_max_resamples(embedded_model):
    d, engine, _ = _asked_or_not(embedded_model, "Where are we headed?")
    assert sum(len(c) for c in engine.calls) == 2  # unasked: max_resamples
    assert d.end_reason == "rejected_assistant_reply"
    rejected = [r["content"] for r in d.unresolved[0]["rejected"]]
    assert rejected == ["noir noir noir noir noir"] * 2  # the named reply is never drawn


def test_asked_budget_is_per_dialogue_in_one_batch(embedded_model):
    builder, persona, user = _setup(embedded_model)
    loop_text = "noir noir noir noir noir"
    engine = ScriptedEngine([loop_text] * 8)
    loop = _judged_loop(engine, builder, turns=1, max_resamples=1, asked_resamples=3)
    asked = loop.start(Dialogue(id="a", persona=persona, user=user, script=["Who are you, again?"]))
    other = loop.start(Dialogue(id="b", persona=persona, user=user, script=["Any news?"]))
    loop.run([asked, other])
    # b stops after its 2 draws; a, left alone, draws its last two at once (fill_rounds)
    assert [len(c) for c in engine.calls] == [2, 2, 2]
    assert len(asked.unresolved[0]["rejected"]) == 4
    assert len(other.unresolved[0]["rejected"]) == 2


def test_distillation_pairs_the_fixed_reply_with_a_plain_one_from_the_same_context(
    embedded_model,
):
    builder, persona, user = _setup(embedded_model)
    loop_text = "noir noir noir noir noir"
    engine = ScriptedEngine(["The wind turns; hold the rail.", loop_text, "Rain again."])
    loop = _judged_loop(engine, builder, turns=1, plain_negatives=2, user_script=["Any news?"])
    d = loop.start(
        Dialogue(id="d0", persona=persona, user=user, sampling={"frequency_penalty": 0.5})
    )
    loop.run([d])
    (call,) = engine.calls  # the candidate and its negatives, drawn together
    fixed, plain = call[:1], call[1:]
    assert fixed[0].frequency_penalty == 0.5
    assert [r.frequency_penalty for r in plain] == [0.0, 0.0]
    assert [r.prompt_ids for r in plain] == [fixed[0].prompt_ids] * 2  # the same context
    assert len({r.seed for r in [*fixed, *plain]}) == 3
    meta = d.meta[-1]
    assert d.messages[-1]["content"] == "The wind turns; hold the rail."
    assert meta["decoding"] == "frequency-penalty=0.5"
    negatives = meta["rejected"]
    assert [r["decoding"] for r in negatives] == ["plain", "plain"]
    assert negatives[0]["reasons"][0] == "plain_decoding"
    assert "loop" in negatives[0]["reasons"]  # the checks still name what is wrong
    assert negatives[1]["reasons"] == [
        "plain_decoding"
    ]  # a clean plain reply: still the rejected side
    assert "plain_decoding" not in loop.stats.rejections

    from rolegen.checks.dataset import preference_pairs

    record = d.to_record({})
    pairs = preference_pairs(record)
    assert [p["rejected"][0]["content"] for p in pairs] == [loop_text, "Rain again."]
    assert {p["chosen"][0]["content"] for p in pairs} == {"The wind turns; hold the rail."}


def test_cross_card_negatives_answer_the_same_context_under_another_card(embedded_model):
    builder, mara, user = _setup(embedded_model)
    hana = resolve_persona(load_personas("tea-house-hana")[0], user.name)
    engine = ScriptedEngine(
        ["The wind turns; hold the rail.", "Tea is ready.", "Welcome to my tea house.", "Rain."]
    )
    loop = _judged_loop(engine, builder, turns=1, cross_card_negatives=1, user_script=["News?"])
    a = loop.start(Dialogue(id="a", persona=mara, user=user))
    b = loop.start(Dialogue(id="b", persona=hana, user=user))
    loop.run([a, b])
    (call,) = engine.calls
    replies, crossed = call[:2], call[2:]
    assert len(crossed) == 2  # one per dialogue
    own_prompts = {tuple(r.prompt_ids) for r in replies}
    assert all(tuple(r.prompt_ids) not in own_prompts for r in crossed)
    negative = a.meta[-1]["rejected"][0]
    assert negative["reasons"][0] == "cross_card"
    assert negative["decoding"] == f"card:{hana.slug}"
    assert b.meta[-1]["rejected"][0]["decoding"] == f"card:{mara.slug}"
    assert "cross_card" not in loop.stats.rejections  # not the checks' own rejections
    mara_prompt = builder.character_prompt(hana, user, a.messages[:-1])
    assert list(crossed[0].prompt_ids) == list(mara_prompt.ids)  # Hana's card, Mara's context


def test_plain_and_cross_card_negatives_share_one_engine_call(embedded_model):
    builder, mara, user = _setup(embedded_model)
    hana = resolve_persona(load_personas("tea-house-hana")[0], user.name)
    engine = ScriptedEngine(["Hold the rail.", "Tea is ready.", "Rain.", "Wind.", "Fog.", "Sun."])
    loop = _judged_loop(
        engine, builder, turns=1, plain_negatives=1, cross_card_negatives=1, user_script=["News?"]
    )
    fixed = {"frequency_penalty": 0.5}
    a = loop.start(Dialogue(id="a", persona=mara, user=user, sampling=fixed))
    b = loop.start(Dialogue(id="b", persona=hana, user=user, sampling=fixed))
    loop.run([a, b])
    assert [len(c) for c in engine.calls] == [6]  # the replies and every negative
    assert [r["reasons"][0] for r in a.meta[-1]["rejected"]] == ["plain_decoding", "cross_card"]


def test_cross_card_negatives_need_a_second_card(embedded_model):
    builder, persona, user = _setup(embedded_model)
    engine = ScriptedEngine(["The wind turns; hold the rail."])
    loop = _judged_loop(engine, builder, turns=1, cross_card_negatives=2, user_script=["News?"])
    d = loop.start(Dialogue(id="d0", persona=persona, user=user))
    loop.run([d])
    assert len(engine.calls) == 1 and "rejected" not in d.meta[-1]


def test_no_distillation_no_plain_draws(embedded_model):
    builder, persona, user = _setup(embedded_model)
    engine = ScriptedEngine(["The wind turns; hold the rail."])
    loop = _judged_loop(engine, builder, turns=1, plain_negatives=2, user_script=["Any news?"])
    d = loop.start(Dialogue(id="d0", persona=persona, user=user))
    loop.run([d])
    assert len(engine.calls) == 1 and "decoding" not in d.meta[-1]


def test_a_stop_that_the_signal_handler_could_not_raise_ends_the_loop_at_the_next_turn(
    embedded_model, monkeypatch
):
    # a signal whose KeyboardInterrupt landed in a weakref callback and was dropped
    monkeypatch.setattr(interrupts, "received", [signal.SIGTERM])
    builder, persona, user = _setup(embedded_model)
    engine = ScriptedEngine(["Hello there.", "Aye, welcome aboard."] * 2)
    loop = _loop(engine, builder, turns=2)
    d = loop.start(Dialogue(id="d0", persona=persona, user=user))
    with pytest.raises(KeyboardInterrupt):
        loop.run([d])
    assert engine.calls == []


def test_the_cli_notes_a_signal_for_the_loops_and_forgets_it_when_the_command_ends():
    from rolegen.cli import _interrupts

    with pytest.raises(KeyboardInterrupt), _interrupts() as got:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler raises at the next bytecode; this is not reached
    assert got == [signal.SIGTERM]
    assert interrupts.received == []


class SeededEngine:
    """A completion that is a function of the request's seed alone (as vLLM's seeded
    sampling is of the seed and the prompt): most empty or looping, some clean."""

    name = "seeded"

    def __init__(self):
        self.calls = []

    def generate(self, requests):
        self.calls.append(requests)
        texts = ["", "noir noir noir noir noir", "noir", "", "Noir? noir.", "", "noir, friend"]
        out = []
        for r in requests:
            k = r.seed % 10  # 7 in 10 fail: empty, or rejected by the judge below
            text = texts[k] if k < len(texts) else f"A clean reply {r.seed % 1000}."
            out.append(Completion(text, 5, "stop"))
        return out

    def close(self):
        pass


def _noir_judge(dialogues, texts):
    return [
        (["loop"], {"loop": 1.0}) if "noir" in t.lower() else ([], {"loop": 0.0}) for t in texts
    ]


@pytest.mark.parametrize("on_exhausted", ["end", "keep"])
def test_rounds_drawn_ahead_write_the_records_of_one_round_at_a_time(embedded_model, on_exhausted):
    """fill_rounds draws later rounds ahead for the dialogues left; what each dialogue
    keeps, rejects, and how it ends are those of drawing one round at a time, and so are
    the loop's counts of resamples, rejections and replies."""
    builder, mara, user = _setup(embedded_model)
    hana = resolve_persona(load_personas("tea-house-hana")[0], user.name)
    script = ("Who are you?", "Any news?", "And then?", "What is your name?")
    runs = {}
    for fill in (False, True):
        engine = SeededEngine()
        loop = _loop(
            engine,
            builder,
            turns=4,
            seed=11,
            max_resamples=3,
            asked_resamples=9,
            candidates=2,
            on_exhausted=on_exhausted,
            resample_temperature_step=0.2,
            plain_negatives=1,
            cross_card_negatives=1,
            user_script=script,
            fill_rounds=fill,
            judge=_noir_judge,
        )
        fixed = {"frequency_penalty": 0.5}
        dialogues = [
            loop.start(Dialogue(id=f"d{k}", persona=(mara, hana)[k % 2], user=user, sampling=fixed))
            for k in range(8)
        ]
        loop.run(dialogues)
        stats = loop.stats
        counts = (stats.resamples, stats.rejections, stats.replies_drawn, stats.replies_passed)
        runs[fill] = [d.to_record({}) for d in dialogues], counts, engine.calls
    (narrow, narrow_counts, narrow_calls), (wide, wide_counts, wide_calls) = runs[False], runs[True]
    assert wide == narrow
    assert wide_counts == narrow_counts
    assert len(wide_calls) < len(narrow_calls)
    # the data holds what the schedule is there for: resamples, negatives, raised rounds
    assert narrow_counts[0] > 0
    rejected = [r for rec in narrow for m in rec["meta"] for r in m.get("rejected", [])]
    rejected += [r for rec in narrow for u in rec.get("unresolved", []) for r in u["rejected"]]
    assert {"empty", "loop", "plain_decoding", "cross_card"} <= {r["reasons"][0] for r in rejected}
    assert any(r["temperature"] > 0.8 for r in rejected)
    if on_exhausted == "end":
        assert {"completed", "rejected_assistant_reply"} <= {r["end_reason"] for r in narrow}
    else:
        assert any(m.get("flags") for rec in narrow for m in rec["meta"])
