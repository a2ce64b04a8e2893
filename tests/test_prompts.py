"""Cards + templates -> prompt text for both sides (rolegen.generation.prompts.PromptBuilder)."""

from __future__ import annotations

import pytest

from rolegen.cards.files import load_personas
from rolegen.cards.personas import UserPersona
from rolegen.generation.prompts import PromptBuilder, resolve_persona
from rolegen.generation.templates import ChatTemplateFormat, Templates

KESTREL_LORE = "forty-meter cargo airship"
SKYGUARD_LORE = "three years of unpaid docking fines"


@pytest.fixture(scope="module")
def model_dir():
    """The embedded model's checkpoint (built once into the cache, offline)."""
    from rolegen.models.checkpoints import materialize_embedded

    return materialize_embedded()


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(model_dir)


@pytest.fixture
def builder(tokenizer):
    return _builder(tokenizer)


@pytest.fixture
def alex():
    return UserPersona(name="Alex", description="A courier with a sealed parcel.")


def _builder(tokenizer, context_length=4096, max_new_tokens=128):
    return PromptBuilder(
        Templates(),
        ChatTemplateFormat(tokenizer),
        tokenizer,
        context_length=context_length,
        max_new_tokens=max_new_tokens,
    )


def _dialogue(greeting, *turns):
    """Greeting as the character's first turn, then alternating user/assistant lines."""
    roles = ["user", "assistant"]
    return [{"role": "assistant", "content": greeting}] + [
        {"role": roles[i % 2], "content": text} for i, text in enumerate(turns)
    ]


# ---------------------------------------------------------------- the character's prompt


def test_character_prompt_holds_card_with_macros_replaced(builder, mara, alex):
    prompt = builder.character_prompt(mara, alex, _dialogue(mara.greeting, "Hello there."))
    assert "Captain Mara Vell" in prompt.system
    assert "Captain Mara Vell is the weathered captain of the airship Kestrel" in prompt.system
    assert "Alex has just bought passage aboard the Kestrel" in prompt.system
    assert "Alex: A courier with a sealed parcel." in prompt.system
    assert "{{char}}" not in prompt.text
    assert "{{user}}" not in prompt.text
    assert prompt.system in prompt.text
    assert prompt.dropped_messages == 0


def test_character_prompt_puts_greeting_first_and_asks_for_assistant_turn(builder, mara, alex):
    prompt = builder.character_prompt(mara, alex, _dialogue(mara.greeting, "Hello there."))
    greeting_turn = f"<|im_start|>assistant\n{mara.greeting}<|im_end|>"
    assert greeting_turn in prompt.text
    assert prompt.text.index(greeting_turn) < prompt.text.index("<|im_start|>user\nHello there.")
    assert prompt.text.endswith("<|im_start|>assistant\n")
    assert prompt.ids == builder.encode(prompt.text)


def test_user_prompt_flips_roles(builder, mara, alex):
    messages = _dialogue(mara.greeting, "I have flown once.", "Then hold on tight.")
    prompt = builder.user_prompt(mara, alex, messages, turn=2, turns=5)
    assert prompt.system.startswith("You are Alex, a person talking with Captain Mara Vell")
    assert f"<|im_start|>user\n{mara.greeting}<|im_end|>" in prompt.text
    assert "<|im_start|>assistant\nI have flown once.<|im_end|>" in prompt.text
    assert "<|im_start|>user\nThen hold on tight.<|im_end|>" in prompt.text
    assert prompt.text.endswith("<|im_start|>assistant\n")


# ---------------------------------------------------------------- context overflow


def test_overflow_drops_oldest_exchanges_keeps_greeting(tokenizer, mara, alex):
    builder = _builder(tokenizer, context_length=600, max_new_tokens=100)
    turns = []
    for i in range(30):
        turns += [
            f"Question {i}: how far to the next port?",
            f"Answer {i}: far, keep your head down.",
        ]
    messages = _dialogue(mara.greeting, *turns, "Last one: do we land before dark?")

    prompt = builder.character_prompt(mara, alex, messages)

    assert len(prompt.ids) <= builder.budget == 500
    assert builder.fits(prompt)
    assert prompt.dropped_messages > 0
    assert prompt.dropped_messages % 2 == 0
    assert prompt.system in prompt.text
    assert mara.greeting in prompt.text
    assert prompt.text.endswith(
        "<|im_start|>user\nLast one: do we land before dark?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert "Question 0:" not in prompt.text  # the oldest exchanges went first
    assert "Answer 29:" in prompt.text
    kept = len(messages) - 1 - prompt.dropped_messages  # history after the greeting
    # One turn each: system, greeting, the kept history, the generation prompt.
    assert prompt.text.count("<|im_start|>") == 1 + 1 + kept + 1


def test_user_prompt_overflow_keeps_greeting_too(tokenizer, mara, alex):
    builder = _builder(tokenizer, context_length=600, max_new_tokens=100)
    turns = []
    for i in range(30):
        turns += [f"Question {i}: how far to the port?", f"Answer {i}: far, keep down."]
    messages = _dialogue(mara.greeting, *turns)

    prompt = builder.user_prompt(mara, alex, messages, turn=31, turns=31)

    assert builder.fits(prompt)
    assert prompt.dropped_messages > 0 and prompt.dropped_messages % 2 == 0
    assert f"<|im_start|>user\n{mara.greeting}<|im_end|>" in prompt.text
    assert "Question 0:" not in prompt.text and "Answer 29:" in prompt.text


def test_prompt_that_fits_drops_nothing(tokenizer, mara, alex):
    builder = _builder(tokenizer, context_length=4096, max_new_tokens=100)
    messages = _dialogue(mara.greeting, "Hi.", "Hello.", "Bye?")
    prompt = builder.character_prompt(mara, alex, messages)
    assert prompt.dropped_messages == 0
    assert "<|im_start|>user\nHi.<|im_end|>" in prompt.text


# ---------------------------------------------------------------- lorebook


def test_lorebook_entries_inserted_when_keys_in_recent_messages(builder, mara, alex):
    messages = _dialogue(mara.greeting, "Is the Kestrel fast enough to outrun the Skyguard?")
    system = builder.character_prompt(mara, alex, messages).system
    assert KESTREL_LORE in system
    assert SKYGUARD_LORE in system


def test_lorebook_entries_absent_without_their_keys(builder, mara, alex):
    messages = _dialogue(mara.greeting, "Never flown, no.")
    system = builder.character_prompt(mara, alex, messages).system
    assert KESTREL_LORE not in system
    assert SKYGUARD_LORE not in system


def test_lorebook_key_older_than_scan_depth_is_ignored(builder, mara, alex):
    assert mara.lorebook.scan_depth == 4
    recent = ["Fine.", "Good.", "Storm's close.", "Then hurry."]
    key_in_window = _dialogue(mara.greeting, "Nice Kestrel.", *recent[1:])
    key_outside = _dialogue(mara.greeting, "Nice Kestrel.", *recent)

    assert KESTREL_LORE in builder.character_prompt(mara, alex, key_in_window).system
    assert KESTREL_LORE not in builder.character_prompt(mara, alex, key_outside).system


# ---------------------------------------------------------------- encoding


def test_encode_does_not_add_a_second_bos(model_dir):
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    tokenizer.add_bos_token = True  # make the tokenizer prepend BOS, as LLaMA tokenizers do
    builder = _builder(tokenizer)
    bos = tokenizer.bos_token_id

    with_bos = builder.encode(f"{tokenizer.bos_token}Hello")
    without_bos = builder.encode("Hello")

    assert with_bos[0] == bos
    assert with_bos[1] != bos
    assert without_bos[0] == bos
    assert with_bos == without_bos


# ---------------------------------------------------------------- cards too large


def test_first_prompt_of_a_card_too_large_names_the_card_and_its_longest_field(tokenizer, alex):
    from dataclasses import replace

    from rolegen.errors import RolegenError

    mara = load_personas("captain-mara-vell")[0]
    huge = resolve_persona(replace(mara, scenario="The deck creaks. " * 400), "Alex")
    with pytest.raises(RolegenError) as info:
        _builder(tokenizer, context_length=1024).first_prompt(huge, alex)
    message = str(info.value)
    assert message.startswith(f"{mara.source}: the card does not fit the context")
    assert "longest field is 'scenario'" in message and "\n" not in message
    # the same card fits a larger context, and a normal card fits the small one
    assert _builder(tokenizer, context_length=4096).first_prompt(huge, alex).ids
    assert (
        _builder(tokenizer, context_length=1024)
        .first_prompt(resolve_persona(mara, "Alex"), alex)
        .ids
    )


# ---------------------------------------------------------------- the eval's other prompts


def _prompt_builder(tokenizer, name: str) -> PromptBuilder:
    templates = Templates()
    style = templates.prompt_style(name)
    fmt = templates.resolve_format(style.format, tokenizer, "model")
    return PromptBuilder(templates, fmt, tokenizer, 4096, 128, style)


def test_plain_prompt_holds_the_card_without_greeting_or_examples(tokenizer, mara, alex):
    builder = _prompt_builder(tokenizer, "plain")
    prompt = builder.first_prompt(mara, alex)
    assert [m["role"] for m in prompt.messages] == ["system", "user"]  # no greeting turn
    assert prompt.system.startswith("You are Captain Mara Vell. Stay in character.\n\n")
    assert mara.description in prompt.system
    assert f"Personality: {mara.personality}" in prompt.system
    assert f"Scenario: {mara.scenario}" in prompt.system
    assert mara.greeting not in prompt.text
    assert not any(example in prompt.text for example in mara.example_dialogues)
    assert "Reply guidelines" not in prompt.text and "Alex: A courier" not in prompt.text
    assert prompt.text.startswith(f"<|im_start|>system\n{prompt.system}<|im_end|>\n")
    assert builder.greeting(mara) is None


def test_alpaca_roleplay_prompt_is_the_plain_text_in_the_alpaca_layout(tokenizer, mara, alex):
    builder = _prompt_builder(tokenizer, "alpaca-roleplay")
    assert (builder.style.greeting, builder.format.name) == (False, "alpaca-roleplay")
    prompt = builder.first_prompt(mara, alex)
    plain = _prompt_builder(tokenizer, "plain").first_prompt(mara, alex)
    assert prompt.system == plain.system
    assert prompt.text.startswith("### Instruction:\n")
    assert prompt.text.endswith("### Input:\nAlex: Hi.\n\n### Response:\nCaptain Mara Vell:")


# ---------------------------------------------------------------- generate's training prompts


def test_tavern_greeting_prompt_opens_with_the_greeting_and_holds_no_examples(
    tokenizer, mara, alex
):
    builder = _prompt_builder(tokenizer, "tavern-greeting")
    assert builder.greeting(mara) == {"role": "assistant", "content": mara.greeting}
    history = [builder.greeting(mara), {"role": "user", "content": "Is the Kestrel safe?"}]
    prompt = builder.character_prompt(mara, alex, history)
    assert prompt.system.startswith(
        "Write Captain Mara Vell's next reply in a fictional chat between Captain Mara Vell "
        "and Alex.\n\n"
    )
    assert f"Captain Mara Vell's personality: {mara.personality}" in prompt.system
    assert alex.description in prompt.system and KESTREL_LORE in prompt.system
    assert not any(example in prompt.text for example in mara.example_dialogues)
    assert [m["role"] for m in prompt.messages] == ["system", "assistant", "user"]


def test_sheet_examples_prompt_holds_the_examples_and_no_greeting(tokenizer, mara, alex):
    builder = _prompt_builder(tokenizer, "sheet-examples")
    prompt = builder.first_prompt(mara, alex)
    assert [m["role"] for m in prompt.messages] == ["system", "user"]
    assert prompt.system.startswith(
        "Roleplay as the character below and reply only as Captain Mara Vell.\n\n"
        "Name: Captain Mara Vell\nDescription: "
    )
    examples = "\n\n".join(mara.example_dialogues)
    assert prompt.system.endswith(f"Example dialogue:\n{examples}")
    assert mara.greeting not in prompt.text


def test_the_training_prompts_leave_the_plain_prompts_wording_out(tokenizer, mara, alex):
    """plain is the eval's held-out prompt: no training prompt shares its instruction."""
    plain = _prompt_builder(tokenizer, "plain").first_prompt(mara, alex).system
    instruction = plain.split("\n")[0]
    assert instruction == "You are Captain Mara Vell. Stay in character."
    for name in ("rolegen", "tavern-greeting", "sheet-examples"):
        system = _prompt_builder(tokenizer, name).first_prompt(mara, alex).system
        assert "Stay in character." not in system.split("\n")[0], name
        assert instruction not in system, name
