"""Depth prompts: a card's Character's Note (`extensions.depth_prompt`) and the run's
Author's Note (`--authors-note`), placed inside the chat history as SillyTavern places
them: read from cards, written back, rendered by every format, kept under a budget."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from rolegen.cards.depth_prompts import DepthPrompt
from rolegen.cards.export import write_card_v2
from rolegen.cards.files import load_card, load_personas
from rolegen.cards.personas import UserPersona
from rolegen.cli import main
from rolegen.errors import RolegenError
from rolegen.generation.prompts import PromptBuilder, resolve_persona, with_notes
from rolegen.generation.templates import ChatTemplateFormat, TemplateFormat, Templates

NOTE = "[{{char}} is the captain of the Kestrel and speaks as herself to {{user}}.]"


def _history(n: int) -> list[dict]:
    """The greeting, then n user/character messages, numbered, ending on a user turn when
    n is odd."""
    roles = ("user", "assistant")
    return [{"role": "assistant", "content": "m0"}] + [
        {"role": roles[i % 2], "content": f"m{i + 1}"} for i in range(n)
    ]


def _contents(messages: list[dict]) -> list[str]:
    return [m["content"] for m in messages]


# -- placement (SillyTavern's doChatInject) -------------------------------------------------


def test_a_note_goes_depth_messages_before_the_end_of_the_history():
    history = _history(5)  # m0..m5, m5 the user's last turn
    assert _contents(with_notes(history, (DepthPrompt("N", 4),))) == [
        "m0", "m1", "N", "m2", "m3", "m4", "m5",
    ]  # fmt: skip
    assert _contents(with_notes(history, (DepthPrompt("N", 0),)))[-1] == "N"
    assert _contents(with_notes(history, (DepthPrompt("N", 1),)))[-2:] == ["N", "m5"]
    # deeper than the history: first
    assert _contents(with_notes(history, (DepthPrompt("N", 40),)))[0] == "N"
    assert with_notes(history, ()) is history


def test_notes_of_one_depth_and_role_join_and_roles_order_as_sillytavern_orders_them():
    notes = (
        DepthPrompt("author", 2),
        DepthPrompt("card", 2),
        DepthPrompt("as user", 2, "user"),
        DepthPrompt("as char", 2, "assistant"),
    )
    out = with_notes(_history(3), notes)
    assert [(m["role"], m["content"]) for m in out[2:5]] == [
        ("assistant", "as char"),
        ("user", "as user"),
        ("system", "author\ncard"),  # the system note nearest the reply
    ]
    assert _contents(out) == ["m0", "m1", "as char", "as user", "author\ncard", "m2", "m3"]


# -- cards ----------------------------------------------------------------------------------


def _v2_card(tmp_path, extensions) -> str:
    path = tmp_path / "card.json"
    data = {"name": "Ada", "description": "A lighthouse keeper.", "extensions": extensions}
    path.write_text(json.dumps({"spec": "chara_card_v2", "spec_version": "2.0", "data": data}))
    return str(path)


def test_a_v2_cards_depth_prompt_is_read_with_sillytaverns_defaults(tmp_path):
    note = {"prompt": "[{{char}} keeps the light.]", "depth": 2, "role": "user"}
    (card,) = load_personas(_v2_card(tmp_path, {"depth_prompt": note}))
    assert card.depth_prompt == DepthPrompt("[{{char}} keeps the light.]", 2, "user")
    (card,) = load_personas(_v2_card(tmp_path, {"depth_prompt": {"prompt": "x"}}))
    assert card.depth_prompt == DepthPrompt("x", 4, "system")
    for empty in ({}, {"depth_prompt": {"prompt": "  "}}, {"talkativeness": "0.5"}):
        (card,) = load_personas(_v2_card(tmp_path, empty))
        assert card.depth_prompt is None
    # macros stay until the dialogue's names are known
    resolved = resolve_persona(load_personas(_v2_card(tmp_path, {"depth_prompt": note}))[0], "Bo")
    assert resolved.depth_prompt.text == "[Ada keeps the light.]"


@pytest.mark.parametrize(
    ("note", "field"),
    [
        ({"prompt": "x", "depth": -1}, "data.extensions.depth_prompt.depth"),
        ({"prompt": "x", "depth": "4"}, "data.extensions.depth_prompt.depth"),
        ({"prompt": "x", "depth": True}, "data.extensions.depth_prompt.depth"),
        ({"prompt": "x", "role": "narrator"}, "data.extensions.depth_prompt.role"),
        ({"prompt": 7}, "data.extensions.depth_prompt.prompt"),
        (["x"], "data.extensions.depth_prompt"),
    ],
)
def test_a_malformed_depth_prompt_is_refused_naming_the_file_and_field(tmp_path, note, field):
    path = _v2_card(tmp_path, {"depth_prompt": note})
    with pytest.raises(RolegenError, match=f"card.json: field '{field}'"):
        load_personas(path)


def test_a_huge_bad_value_is_quoted_short(tmp_path):
    path = _v2_card(tmp_path, {"depth_prompt": {"prompt": "x", "role": "x" * 100_000}})
    with pytest.raises(RolegenError, match="depth_prompt.role") as caught:
        load_personas(path)
    assert len(str(caught.value)) < 500


def test_a_yaml_card_takes_a_depth_prompt_as_a_mapping_or_as_text(tmp_path):
    card = tmp_path / "ada.yaml"
    card.write_text("name: Ada\ndepth_prompt:\n  prompt: '[Ada keeps the light.]'\n  depth: 1\n")
    assert load_personas(str(card))[0].depth_prompt == DepthPrompt("[Ada keeps the light.]", 1)
    card.write_text("name: Ada\ndepth_prompt: '[Ada keeps the light.]'\n")
    assert load_personas(str(card))[0].depth_prompt == DepthPrompt("[Ada keeps the light.]", 4)
    card.write_text("name: Ada\ndepth_prompt:\n  prompt: x\n  depth: 2.5\n")
    with pytest.raises(RolegenError, match="ada.yaml: field 'depth_prompt.depth'"):
        load_personas(str(card))


def test_an_exported_card_carries_its_depth_prompt_back_to_sillytavern(tmp_path):
    (mara,) = load_personas("captain-mara-vell")
    mara = replace(mara, depth_prompt=DepthPrompt(NOTE, 3, "system"))
    png = write_card_v2(mara, tmp_path)
    data = json.loads(png.with_suffix(".json").read_text())
    assert data["data"]["extensions"]["depth_prompt"] == {
        "prompt": NOTE,
        "depth": 3,
        "role": "system",
    }
    assert load_card(png).depth_prompt == mara.depth_prompt
    plain = write_card_v2(replace(mara, depth_prompt=None), tmp_path / "plain")
    assert (
        "depth_prompt"
        not in json.loads(plain.with_suffix(".json").read_text())["data"]["extensions"]
    )


# -- prompts --------------------------------------------------------------------------------


ALEX = UserPersona(name="Alex", description="A traveler.")
AUTHORS = DepthPrompt("[Write {{char}}'s reply to {{user}}.]", 2)


def _builder(tokenizer, context=4096, **kw):
    fmt = ChatTemplateFormat(tokenizer)
    return PromptBuilder(Templates(), fmt, tokenizer, context, 32, **kw)


def test_the_authors_note_and_the_cards_note_reach_the_character_not_the_user(tokenizer, mara):
    card_note = DepthPrompt("[Mara never gives another name.]", 2)
    mara = replace(mara, depth_prompt=card_note)
    history = _history(5)
    builder = _builder(tokenizer, authors_note=AUTHORS)
    prompt = builder.character_prompt(mara, ALEX, history)
    joined = "[Write Captain Mara Vell's reply to Alex.]\n[Mara never gives another name.]"
    assert prompt.messages[1:] == [
        *history[:4],
        {"role": "system", "content": joined},
        *history[4:],
    ]
    assert joined in prompt.text
    assert prompt.notes == 1 and prompt.history == len(history)
    # the note sits after m3 and before m4 in the rendered text too
    assert prompt.text.index("m3") < prompt.text.index(joined) < prompt.text.index("m4")
    user_side = builder.user_prompt(mara, ALEX, history, turn=3, turns=6)
    assert "Mara never gives another name" not in user_side.text
    assert "reply to Alex" not in user_side.text
    # without notes the prompt is what it was
    bare = _builder(tokenizer).character_prompt(replace(mara, depth_prompt=None), ALEX, history)
    assert bare.notes == 0 and "[Write" not in bare.text


def test_the_authors_note_takes_the_cards_fields_as_sillytavern_macros(tokenizer, mara):
    mara = replace(mara, personality="Dry humor.", scenario="", description="{{char}} flies.")
    mara = resolve_persona(mara, ALEX.name)
    note = DepthPrompt("[{{char}}: {{Description}} {{ personality }}{{scenario}} ({{persona}})]", 1)
    prompt = _builder(tokenizer, authors_note=note).character_prompt(mara, ALEX, _history(3))
    expected = "[Captain Mara Vell: Captain Mara Vell flies. Dry humor. (A traveler.)]"
    assert {"role": "system", "content": expected} in prompt.messages
    # the card's own fields are text: a macro-like string inside them is not read again
    odd = replace(mara, description="{{personality}}")
    prompt = _builder(tokenizer, authors_note=note).character_prompt(odd, ALEX, _history(3))
    assert "[Captain Mara Vell: {{personality}} Dry humor. (A traveler.)]" in prompt.text


def test_an_authors_note_too_large_for_the_context_is_named_in_the_error(tokenizer, mara):
    mara = resolve_persona(replace(mara, description="A captain. " * 60), ALEX.name)
    note = DepthPrompt("[{{description}} " * 6 + "]", 4)  # the description, six times
    with pytest.raises(RolegenError) as info:
        _builder(tokenizer, context=1024, authors_note=note).first_prompt(mara, ALEX)
    assert "longest field is '--authors-note'" in str(info.value)
    # without the note the same card fits; a card's own note is named by its field
    assert _builder(tokenizer, context=1024).first_prompt(mara, ALEX).ids
    noted = replace(mara, depth_prompt=DepthPrompt("Stay. " * 900, 4))
    with pytest.raises(RolegenError) as info:
        _builder(tokenizer, context=1024).first_prompt(noted, ALEX)
    assert "longest field is 'depth_prompt (the Character's Note)'" in str(info.value)


def test_post_history_instructions_follow_the_history_as_in_sillytavern(tokenizer, mara):
    mara = replace(mara, post_history_instructions="Stay in character as Mara.")
    history = _history(5)
    prompt = _builder(tokenizer, authors_note=DepthPrompt("[A]", 0)).character_prompt(
        mara, ALEX, history
    )
    assert "Stay in character as Mara." not in prompt.system
    assert prompt.messages[-1] == {"role": "system", "content": "[A]\nStay in character as Mara."}
    assert prompt.text.index("m5") < prompt.text.index("Stay in character as Mara.")


def test_under_a_budget_the_note_stays_and_counts_while_old_messages_go(tokenizer, mara):
    long = " and the Kestrel rides the storm over Port Halcyon" * 3
    history = [{**m, "content": m["content"] + long} for m in _history(41)]
    note = DepthPrompt("[Mara is the captain.]", 4)
    builder = _builder(tokenizer, context=4096, context_budget=700, authors_note=note)
    prompt = builder.character_prompt(mara, ALEX, history)
    assert prompt.dropped_messages > 0 and prompt.notes == 1
    assert prompt.history == len(history) - prompt.dropped_messages
    assert prompt.messages[-5] == {"role": "system", "content": "[Mara is the captain.]"}
    assert len(prompt.ids) <= builder.budget
    without = _builder(tokenizer, context=4096, context_budget=700)
    assert without.character_prompt(mara, ALEX, history).dropped_messages <= prompt.dropped_messages
    # rolegen's own trimming (no budget) keeps the note as well
    tight = _builder(tokenizer, context=700, authors_note=note)
    prompt = tight.character_prompt(mara, ALEX, history)
    assert prompt.dropped_messages > 0 and prompt.messages[-5]["content"] == note.text


# -- formats --------------------------------------------------------------------------------

FORMATS = ["alpaca-roleplay", "chatml", "llama2", "metharme", "pygmalion", "vicuna", "ziya"]


@pytest.mark.parametrize("name", FORMATS)
def test_every_shipped_format_renders_a_note_once_in_its_place(name):
    fmt = TemplateFormat(Templates(), name)
    history = with_notes(_history(5), (DepthPrompt("NOTE-TEXT", 2),))
    text = fmt.render("SYSTEM-TEXT", history, char="Ada", user="Bo")
    assert text.count("NOTE-TEXT") == 1
    positions = [text.index(m) for m in ("SYSTEM-TEXT", "m3", "NOTE-TEXT", "m4", "m5")]
    assert positions == sorted(positions)
    # the note is not given to either speaker
    assert "Ada: NOTE-TEXT" not in text and "Bo: NOTE-TEXT" not in text


def test_llama2_folds_a_note_into_the_user_turn_beside_it():
    fmt = TemplateFormat(Templates(), "llama2")
    history = _history(5)
    text = fmt.render("S", with_notes(history, (DepthPrompt("NOTE", 2),)), char="A", user="B")
    assert "m3\nNOTE [/INST] m4 </s>" in text
    text = fmt.render("S", with_notes(history, (DepthPrompt("NOTE", 0),)), char="A", user="B")
    assert text.endswith("m5\nNOTE [/INST]")
    # alternation is kept: as many [INST] blocks as without the note
    assert text.count("[INST]") == fmt.render("S", history, char="A", user="B").count("[INST]")


class _AlternatingTokenizer:
    """A chat template that, like LLaMA-2's, refuses a system message after the first."""

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        if any(m["role"] == "system" for m in messages[1:]):
            raise ValueError("roles must alternate user/assistant")
        return "".join(f"<{m['role']}>{m['content']}" for m in messages)


def test_a_chat_template_that_refuses_a_system_turn_gets_the_note_folded_in():
    fmt = ChatTemplateFormat(_AlternatingTokenizer())
    history = with_notes(_history(5), (DepthPrompt("NOTE", 2),))
    text = fmt.render("S", history, char="A", user="B")
    assert "<user>m3\nNOTE<assistant>m4" in text


# -- the command line -----------------------------------------------------------------------


def test_eval_refuses_an_authors_note_depth_out_of_range(embedded_model, tmp_path):
    args = ["eval", "--model", str(embedded_model), "--engine", "hf", "--authors-note", "x"]
    args += ["--authors-note-depth", "-1", "--out", str(tmp_path / "eval")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert "--authors-note-depth must be from 0 to 1000" in result.output


def test_the_authors_note_reaches_both_ways_a_run_builds_its_prompts(embedded_model):
    from rolegen.config import EngineConfig, ModelConfig
    from rolegen.generation.loop_settings import LoopSettings
    from rolegen.generation.replicas import build_loop, replica_spec, setup_model

    args = ModelConfig(model=str(embedded_model), authors_note=" [Be {{char}}.] ")
    args.authors_note_depth = 2
    setup = setup_model(args, 32)
    assert setup.prompt_builder(32).authors_note == DepthPrompt("[Be {{char}}.]", 2)
    settings = LoopSettings(
        turns=2, seed=0, temperature=0.7, top_p=0.95, repetition_penalty=1.0,
        max_new_tokens=32, user_max_new_tokens=16, max_resamples=0,
    )  # fmt: skip
    spec = replica_spec(setup, EngineConfig(), "hf", settings, batch_size=1)
    loop = build_loop(spec, engine=None)  # a Ray worker's loop: the spec travels as data
    assert loop.builder.authors_note == DepthPrompt("[Be {{char}}.]", 2)
    unset = setup_model(ModelConfig(model=str(embedded_model), authors_note="  "), 32)
    assert unset.prompt_builder(32).authors_note is None


def test_folding_keeps_the_notes_in_order_wherever_they_land():
    from rolegen.generation.templates import fold_notes

    note = lambda text: {"role": "system", "content": text}  # noqa: E731
    greeting, asks = {"role": "assistant", "content": "g"}, {"role": "user", "content": "u"}
    # before the greeting: nothing to join but the system prompt
    assert fold_notes("S", [note("a"), note("b"), greeting, asks]) == (
        "S\n\na\n\nb",
        [greeting, asks],
    )
    # before a user turn: into it; after the last one: onto it
    assert fold_notes("S", [greeting, note("a"), asks]) == (
        "S", [greeting, {"role": "user", "content": "a\nu"}]
    )  # fmt: skip
    assert fold_notes("S", [greeting, asks, note("a")]) == (
        "S", [greeting, {"role": "user", "content": "u\na"}]
    )  # fmt: skip
    assert fold_notes("S", [greeting, asks]) == ("S", [greeting, asks])


def test_a_user_persona_refuses_a_card_only_field(tmp_path):
    from rolegen.cards.personas import load_user_persona_yaml

    user = tmp_path / "sam.yaml"
    user.write_text("name: Sam\ndepth_prompt: '[Sam is shy.]'\n")
    with pytest.raises(RolegenError, match="sam.yaml: unknown field 'depth_prompt'"):
        load_user_persona_yaml(user)


def test_a_card_with_keys_of_mixed_types_names_the_odd_one(tmp_path):
    from rolegen.cards.personas import load_user_persona_yaml

    user = tmp_path / "sam.yaml"
    user.write_text("name: Sam\n1: x\nzz: y\n")  # a number beside text: not sortable
    with pytest.raises(RolegenError, match="sam.yaml: unknown field '1'"):
        load_user_persona_yaml(user)
