"""A front-end's context budget (`--context-budget`, prompts.py's `_front_end_fit`): what
the prompt keeps, what each turn records, and that without one nothing changes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from rolegen.cards.personas import UserPersona
from rolegen.errors import RolegenError
from rolegen.generation.dialogue import TurnLoop
from rolegen.generation.dialogue_state import Dialogue
from rolegen.generation.engines import Completion
from rolegen.generation.loop_settings import LoopSettings
from rolegen.generation.prompts import PromptBuilder
from rolegen.generation.templates import ChatTemplateFormat, Templates

# Made by the code before the budget existed: a 10-turn dialogue under a 700-token
# context, both sides trimmed rolegen's way (the greeting kept, oldest exchanges gone).
GOLDEN = Path(__file__).parent / "data" / "no_budget_dialogue.json"
EXAMPLE_MARK = "Pick which one matters more"  # a line of Mara's first example dialogue
LORE_MARK = "forty-meter cargo airship"  # her lorebook entry on the Kestrel


class CountingEngine:
    """Answers every request with a numbered reply; keeps a hash of each prompt."""

    name = "scripted"

    def __init__(self):
        self.n = 0
        self.prompts = []

    def generate(self, requests):
        out = []
        for r in requests:
            self.n += 1
            self.prompts.append(hashlib.sha256(json.dumps(r.prompt_ids).encode()).hexdigest())
            text = (
                f"Line {self.n}: the Kestrel rides the storm over Port Halcyon, and the crew "
                f"hauls rope number {self.n} tight."
            )
            out.append(Completion(text, 20, "stop"))
        return out

    def close(self):
        pass


@pytest.fixture
def alex():
    return UserPersona(name="Alex", description="A traveler.")


def _builder(tokenizer, context=700, max_new_tokens=32, **kw):
    fmt = ChatTemplateFormat(tokenizer)
    return PromptBuilder(Templates(), fmt, tokenizer, context, max_new_tokens, **kw)


def _run(builder, persona, user, turns=10):
    engine = CountingEngine()
    settings = LoopSettings(
        turns=turns,
        seed=1,
        temperature=0.8,
        top_p=0.95,
        repetition_penalty=1.0,
        max_new_tokens=32,
        user_max_new_tokens=16,
        max_resamples=1,
    )
    loop = TurnLoop(engine, builder, settings)
    d = loop.start(Dialogue(id="d0", persona=persona, user=user))
    loop.run([d])
    return d.to_record({}), engine.prompts


def _history(n):
    """The greeting, then n user/character messages, each numbered."""
    roles = ("user", "assistant")
    return [{"role": "assistant", "content": "Greeting: grab the rope."}] + [
        {
            "role": roles[i % 2],
            "content": f"Message {i + 1} about the Kestrel's hold and the weather.",
        }
        for i in range(n)
    ]


def test_without_a_budget_prompts_and_records_are_byte_for_byte_as_before(tokenizer, mara, alex):
    record, prompts = _run(_builder(tokenizer), mara, alex)
    golden = json.loads(GOLDEN.read_text())
    assert prompts == golden["prompt_sha256"]
    # what the turn loop wrote (fields other features add to a record are not its concern)
    for key in ("messages", "meta", "end_reason", "unresolved"):
        assert json.dumps(record[key], ensure_ascii=False) == json.dumps(
            golden["record"][key], ensure_ascii=False
        ), key
    assert not any("context_messages" in m for m in record["meta"])


def test_a_budget_that_holds_everything_renders_the_prompt_as_without_one(tokenizer, mara, alex):
    messages = _history(3)
    plain = _builder(tokenizer, context=4096).character_prompt(mara, alex, messages)
    budgeted = _builder(tokenizer, context=4096, context_budget=4096)
    prompt = budgeted.character_prompt(mara, alex, messages)
    assert prompt.text == plain.text
    assert (prompt.dropped_messages, prompt.context_examples) == (0, 2)


def test_examples_go_before_any_turn_and_then_the_oldest_whole_messages(tokenizer, mara, alex):
    messages = _history(11)
    full = _builder(tokenizer, context=4096).character_prompt(mara, alex, messages)
    bare_system = _builder(tokenizer).character_system(mara, alex, messages, examples=[])
    bare = len(_builder(tokenizer).encode(ChatTemplateFormat(tokenizer).render(
        bare_system, messages, char=mara.name, user=alex.name
    )))  # fmt: skip
    # room for every message without the examples, not with them: the examples go
    squeezed = _builder(tokenizer, context=4096, context_budget=bare + 32 + 5)
    prompt = squeezed.character_prompt(mara, alex, messages)
    assert len(full.ids) > bare + 5
    assert prompt.dropped_messages == 0
    assert prompt.context_examples < 2
    assert EXAMPLE_MARK not in prompt.text
    # less room: the oldest messages go, whole, the greeting first; the card stays
    tight = _builder(tokenizer, context=4096, context_budget=bare - 40 + 32)
    prompt = tight.character_prompt(mara, alex, messages)
    kept = prompt.messages[1:]
    assert 0 < prompt.dropped_messages < len(messages)
    assert kept == messages[prompt.dropped_messages :]  # the newest, each whole
    assert "Greeting: grab the rope." not in prompt.text
    assert prompt.context_examples == 0
    assert "weathered captain of the airship Kestrel" in prompt.system
    assert LORE_MARK in prompt.system
    assert len(prompt.ids) <= tight.budget


def test_each_character_turn_records_what_its_prompt_held(tokenizer, mara, alex):
    record, _ = _run(_builder(tokenizer, context_budget=700), mara, alex)
    turns = [m for m in record["meta"] if m.get("source") == "model" and m["role"] == "assistant"]
    held = [m["context_messages"] for m in turns]
    examples = [m["context_examples"] for m in turns]
    # the first reply sees the greeting and one user turn, with both examples
    assert (held[0], examples[0]) == (2, 2)
    # replies of even length: the history only grows, so the examples only go (a front-end
    # brings them back where a long message leaves the context)
    assert examples == sorted(examples, reverse=True)
    assert examples[-1] == 0
    assert max(held) > held[-1]  # the history stopped growing: the oldest went
    assert [m["context_messages"] + m["dropped_messages"] for m in turns] == [
        2 * t for t in range(1, 11)
    ]  # every message of the dialogue so far is either held or dropped


def test_a_card_too_large_for_the_budget_is_refused_naming_the_flag(tokenizer, mara, alex):
    builder = _builder(tokenizer, context=4096, context_budget=200)
    with pytest.raises(RolegenError, match="--context-budget"):
        builder.first_prompt(mara, alex)


@pytest.mark.parametrize(
    ("budget", "message"),
    [("100", "leaves no room for the prompt"), ("99999", "more than the engine's context")],
)
def test_eval_refuses_a_budget_it_cannot_keep(embedded_model, tmp_path, budget, message):
    from click.testing import CliRunner

    from rolegen.cli import main

    args = ["eval", "--model", str(embedded_model), "--engine", "hf", "--context-budget", budget]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "eval")])
    assert result.exit_code != 0
    assert message in result.output
    assert not (tmp_path / "eval" / "dialogues.jsonl").exists()
