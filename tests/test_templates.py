"""Prompt formats and the sandboxed template set (rolegen.generation.templates)."""

from __future__ import annotations

import copy
import hashlib

import jinja2
import pytest

from rolegen.cards.personas import Persona, UserPersona
from rolegen.errors import RolegenError
from rolegen.generation.templates import CHARACTER_SYSTEM, ChatTemplateFormat, Templates
from rolegen.resources import templates_dir

CHAR, USER = "Mara", "Alex"
SYSTEM = "You are Mara, captain of the Kestrel."
CONVERSATION = [
    {"role": "assistant", "content": "Hold the rope."},
    {"role": "user", "content": "Is this ship safe?"},
    {"role": "assistant", "content": "Safe? No. Fast? Very."},
    {"role": "user", "content": "Where are we bound?"},
]

# What each shipped format leaves for the model to continue.
GENERATION_PROMPTS = {
    "alpaca-roleplay": "### Response:\nMara:",
    "chatml": "<|im_start|>assistant\n",
    "llama2": "[/INST]",
    "metharme": "<|model|>",
    "pygmalion": "Mara:",
    "vicuna": "ASSISTANT:",
    "ziya": "<bot>:",
}


@pytest.fixture(scope="module")
def tokenizer():
    """The embedded model's tokenizer (builds the cached checkpoint once, offline)."""
    import transformers

    from rolegen.models.checkpoints import materialize_embedded

    return transformers.AutoTokenizer.from_pretrained(materialize_embedded())


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- shipped formats


def test_every_shipped_format_has_an_expected_generation_prompt():
    assert Templates().formats() == sorted(GENERATION_PROMPTS)


@pytest.mark.parametrize("name", sorted(GENERATION_PROMPTS))
def test_format_renders_conversation_and_ends_with_generation_prompt(name):
    text = Templates().prompt_format(name).render(SYSTEM, CONVERSATION, char=CHAR, user=USER)
    assert text.endswith(GENERATION_PROMPTS[name])
    assert SYSTEM in text
    positions = [text.find(m["content"]) for m in CONVERSATION]
    assert -1 not in positions
    assert positions == sorted(positions)  # greeting first, then the turns in order


@pytest.mark.parametrize("name", sorted(GENERATION_PROMPTS))
def test_format_stop_strings_are_non_empty(name):
    stop = Templates().prompt_format(name).stop(CHAR, USER)
    assert stop
    assert all(isinstance(s, str) and s for s in stop)


def test_alpaca_stop_strings_include_the_users_name_line():
    stop = Templates().prompt_format("alpaca-roleplay").stop(CHAR, USER)
    assert "\nAlex:" in stop
    assert "### Input:" in stop


def test_alpaca_primes_the_reply_with_the_characters_name():
    text = (
        Templates()
        .prompt_format("alpaca-roleplay")
        .render(SYSTEM, CONVERSATION, char=CHAR, user=USER)
    )
    assert "### Input:\nAlex: Where are we bound?\n\n### Response:\nMara:" in text
    assert "### Response:\nMara: Hold the rope." in text


def test_chatml_renders_each_message_in_its_role():
    text = Templates().prompt_format("chatml").render(SYSTEM, CONVERSATION, char=CHAR, user=USER)
    assert text == (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n"
        "<|im_start|>assistant\nHold the rope.<|im_end|>\n"
        "<|im_start|>user\nIs this ship safe?<|im_end|>\n"
        "<|im_start|>assistant\nSafe? No. Fast? Very.<|im_end|>\n"
        "<|im_start|>user\nWhere are we bound?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


@pytest.mark.parametrize("name", sorted(GENERATION_PROMPTS))
@pytest.mark.parametrize("code", ["{{ 7*7 }}", "{% for x in y %}", "{{ ''.__class__ }}"])
def test_message_content_with_jinja_code_is_printed_literally(name, code):
    messages = [*CONVERSATION[:-1], {"role": "user", "content": f"Try this: {code}"}]
    text = Templates().prompt_format(name).render(SYSTEM, messages, char=CHAR, user=USER)
    assert f"Try this: {code}" in text
    assert "49" not in text


def test_persona_text_with_jinja_code_is_printed_literally():
    persona = Persona(name="Mara", description="Says {{ 7*7 }} and {% if x %}odd{% endif %}.")
    text = Templates().render(
        CHARACTER_SYSTEM, persona=persona, user=UserPersona(name="Alex"), lore=[], examples=[]
    )
    assert "Says {{ 7*7 }} and {% if x %}odd{% endif %}." in text


# ---------------------------------------------------------------- overrides and errors


def test_override_folder_file_wins_over_shipped_one(tmp_path):
    _write(
        tmp_path / "formats" / "chatml.jinja",
        "{% set stop = ['END'] %}CUSTOM {{ system }}|{{ messages | length }}",
    )
    templates = Templates(tmp_path)
    fmt = templates.prompt_format("chatml")
    assert fmt.render(SYSTEM, CONVERSATION, char=CHAR, user=USER) == f"CUSTOM {SYSTEM}|4"
    assert fmt.stop(CHAR, USER) == ["END"]


def test_override_folder_adds_new_formats_and_keeps_shipped_ones(tmp_path):
    _write(tmp_path / "formats" / "plain.jinja", "{{ system }}")
    names = Templates(tmp_path).formats()
    assert "plain" in names
    assert set(GENERATION_PROMPTS) <= set(names)


def test_missing_override_folder_raises(tmp_path):
    with pytest.raises(RolegenError, match="--templates folder not found"):
        Templates(tmp_path / "nope")


def test_template_syntax_error_names_template_and_line(tmp_path):
    _write(tmp_path / "formats" / "broken.jinja", "line one\n{{ system + }}\nline three\n")
    fmt = Templates(tmp_path).prompt_format("broken")
    with pytest.raises(RolegenError, match=r"broken\.jinja' line 2"):
        fmt.render(SYSTEM, CONVERSATION, char=CHAR, user=USER)


def test_undefined_variable_raises_naming_the_template(tmp_path):
    _write(tmp_path / "formats" / "undef.jinja", "{{ system }}\n\n{{ no_such_value }}\n")
    fmt = Templates(tmp_path).prompt_format("undef")
    with pytest.raises(RolegenError, match=r"undef\.jinja.*'no_such_value' is undefined"):
        fmt.render(SYSTEM, CONVERSATION, char=CHAR, user=USER)


def test_unknown_format_lists_available_formats():
    with pytest.raises(RolegenError) as err:
        Templates().prompt_format("no-such-format")
    message = str(err.value)
    assert "no-such-format" in message
    for name in GENERATION_PROMPTS:
        assert name in message


def test_used_records_sha256_of_each_rendered_template(tmp_path):
    override = _write(tmp_path / "formats" / "chatml.jinja", "{{ system }}")
    templates = Templates(tmp_path)
    assert templates.used == {}
    templates.prompt_format("chatml").render(SYSTEM, [], char=CHAR, user=USER)
    templates.prompt_format("vicuna").render(SYSTEM, [], char=CHAR, user=USER)
    shipped = templates_dir() / "formats" / "vicuna.jinja"
    assert templates.used == {
        "formats/chatml.jinja": hashlib.sha256(override.read_bytes()).hexdigest(),
        "formats/vicuna.jinja": hashlib.sha256(shipped.read_bytes()).hexdigest(),
    }


# ---------------------------------------------------------------- the tokenizer's own template


def test_chat_template_format_renders_system_and_turns(tokenizer):
    text = ChatTemplateFormat(tokenizer).render(SYSTEM, CONVERSATION, char=CHAR, user=USER)
    assert text.startswith(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n")
    assert "<|im_start|>assistant\nHold the rope.<|im_end|>\n" in text
    assert text.endswith("<|im_start|>user\nWhere are we bound?<|im_end|>\n<|im_start|>assistant\n")


def test_chat_template_rejecting_assistant_first_folds_greeting_into_system(tokenizer):
    strict = copy.deepcopy(tokenizer)
    strict.chat_template = (
        "{% if messages[1].role == 'assistant' %}{{ raise_exception('x') }}{% endif %}"
        "{% for m in messages %}[{{ m.role }}]{{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}[assistant]{% endif %}"
    )
    text = ChatTemplateFormat(strict).render(SYSTEM, CONVERSATION, char=CHAR, user=USER)
    assert text == (
        f"[system]{SYSTEM}\n\nMara opened the conversation with: Hold the rope.\n"
        "[user]Is this ship safe?\n"
        "[assistant]Safe? No. Fast? Very.\n"
        "[user]Where are we bound?\n"
        "[assistant]"
    )


def test_chat_template_error_without_leading_greeting_propagates(tokenizer):
    strict = copy.deepcopy(tokenizer)
    strict.chat_template = "{{ raise_exception('no') }}"
    with pytest.raises(jinja2.TemplateError, match="no"):
        ChatTemplateFormat(strict).render(SYSTEM, CONVERSATION[1:], char=CHAR, user=USER)


# ---------------------------------------------------------------- prompts (the eval's axis)


def test_shipped_prompts_are_rolegen_the_eval_ones_and_the_training_variants():
    templates = Templates()
    assert templates.prompts() == [
        "alpaca-roleplay",
        "plain",
        "rolegen",
        "sheet-examples",
        "tavern-greeting",
    ]
    rolegen = templates.prompt_style("rolegen")
    assert (rolegen.system, rolegen.greeting, rolegen.format) == (CHARACTER_SYSTEM, True, None)
    plain = templates.prompt_style("plain")
    assert (plain.system, plain.greeting, plain.format) == ("prompts/plain.jinja", False, None)


def test_a_prompt_of_the_templates_folder_declares_its_greeting_and_format(tmp_path):
    _write(
        tmp_path / "prompts" / "mine.jinja", '{% set format = "vicuna" %}\nBe {{ persona.name }}.'
    )
    templates = Templates(tmp_path)
    assert "mine" in templates.prompts()
    style = templates.prompt_style("mine")
    assert (style.greeting, style.format) == (True, "vicuna")  # the greeting kept by default

    _write(tmp_path / "prompts" / "odd.jinja", "{% set greeting = persona.name %}x")
    with pytest.raises(RolegenError, match=r"odd.jinja' line 1: 'greeting' must be a constant"):
        templates.prompt_style("odd")
    _write(tmp_path / "prompts" / "gone.jinja", '{% set format = "nope" %}x')
    with pytest.raises(RolegenError, match="gone.jinja': unknown format 'nope'"):
        templates.prompt_style("gone")


def test_unknown_prompt_names_the_known_ones():
    with pytest.raises(RolegenError) as err:
        Templates().prompt_style("mine")
    assert str(err.value) == (
        "unknown prompt 'mine' (--prompts); known prompts: alpaca-roleplay, plain, rolegen, "
        "sheet-examples, tavern-greeting"
    )
