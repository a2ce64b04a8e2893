"""Cleaning a raw completion into one speaker's turn (rolegen.generation.replies.clean_reply)."""

from __future__ import annotations

import pytest

from rolegen.generation.replies import clean_reply

CHAR = "Captain Mara Vell"
USER = "Alex"


# ---------------------------------------------------------------- speaker tags


@pytest.mark.parametrize(
    "raw",
    [
        "Captain Mara Vell: Hold the rope.",
        "Mara: Hold the rope.",
        "Vell: Hold the rope.",
        "Assistant: Hold the rope.",
        "  mara : Hold the rope.",
        "Mara (grinning): Hold the rope.",
    ],
)
def test_leading_own_speaker_tag_is_stripped(raw):
    reply = clean_reply(raw, CHAR, USER)
    assert reply.text == "Hold the rope."
    assert reply.actions == ["stripped_speaker_tag"]


def test_only_the_first_own_tag_is_stripped():
    reply = clean_reply("Mara: Mara: ready?", CHAR, USER)
    assert reply.text == "Mara: ready?"


# ---------------------------------------------------------------- the other speaker


@pytest.mark.parametrize(
    "raw",
    [
        "Hold the rope.\nAlex: hi",
        "Hold the rope.\nUser: hi",
        "Hold the rope.\n  alex : hi",
        "Hold the rope.\nYou: hi",
        "Hold the rope.\n### Input: hi",
    ],
)
def test_cuts_where_the_other_speaker_starts_a_line(raw):
    reply = clean_reply(raw, CHAR, USER)
    assert reply.text == "Hold the rope."
    assert reply.actions == ["cut_other_speaker"]


def test_mid_line_mention_of_other_speaker_is_not_a_turn():
    reply = clean_reply("Go and tell Alex: no deal.", CHAR, USER)
    assert reply.text == "Go and tell Alex: no deal."
    assert reply.actions == []


@pytest.mark.parametrize("raw", ["Alex: I will hold it.", "User: I will hold it."])
def test_reply_that_is_only_the_other_speakers_line_is_empty(raw):
    reply = clean_reply(raw, CHAR, USER)
    assert reply.text == ""
    assert reply.empty
    assert reply.actions == ["cut_other_speaker", "empty"]


def test_user_simulator_reply_speaking_for_the_character_is_cut():
    reply = clean_reply("Alex: Is it safe?\nCaptain Mara Vell: No.", USER, CHAR)
    assert reply.text == "Is it safe?"
    assert reply.actions == ["stripped_speaker_tag", "cut_other_speaker"]


# ---------------------------------------------------------------- script-style replies


@pytest.mark.parametrize(
    "raw",
    [
        "Alex: Who is it?\nCaptain Mara Vell: I'm not sure. What's your name?",  # {{user}}
        "User: Who is it?\nCaptain Mara Vell: I'm not sure. What's your name?",
        "User: Who is it?\nMara: I'm not sure. What's your name?",  # first name
        "You: Who is it?\n  mara (warily) : I'm not sure. What's your name?",
        "User: Who is it?\nAssistant: I'm not sure. What's your name?",
        "User: Who is it?\n*A knock.*\nMara: I'm not sure. What's your name?",
        "User: Who is it?\nMara: I'm not sure. What's your name?\nUser: Alex.\nMara: Hi.",
    ],
)
def test_script_style_reply_keeps_the_characters_part(raw):
    reply = clean_reply(raw, CHAR, USER)
    assert reply.text == "I'm not sure. What's your name?"
    assert reply.actions == ["kept_own_script_part"]


def test_the_reply_that_dropped_a_persona_from_the_eval_keeps_its_answer():
    # issue 17: cut at "User:" to nothing, this ended the dialogue at turn 1 in every system
    reply = clean_reply("User: Who is it?\nVex: I'm not sure. What's your name?", "Vex", "User")
    assert reply.text == "I'm not sure. What's your name?"


def test_script_style_characters_part_keeps_its_narration_and_lines():
    raw = "User: Who is it?\nMara: *squints at the door* I'm not sure.\nMaybe the wind.\nAlex: Hm."
    reply = clean_reply(raw, CHAR, USER)
    assert reply.text == "*squints at the door* I'm not sure.\nMaybe the wind."


def test_text_before_the_other_speakers_label_is_the_reply_even_in_a_script():
    # the lines after it answer a user turn the model made up
    raw = "*Mara glances at the door.*\nUser: Who is it?\nMara: I'm not sure."
    reply = clean_reply(raw, CHAR, USER)
    assert reply.text == "*Mara glances at the door.*"
    assert reply.actions == ["cut_other_speaker"]


def test_script_style_reply_with_an_empty_character_line_is_empty():
    reply = clean_reply("User: Who is it?\nMara:\nUser: Hello?", CHAR, USER)
    assert reply.empty
    assert reply.actions == ["cut_other_speaker", "empty"]


def test_script_style_user_simulator_reply_keeps_the_users_part():
    reply = clean_reply("Mara: Who goes there?\nAlex: A friend.", USER, CHAR)
    assert reply.text == "A friend."
    assert reply.actions == ["kept_own_script_part"]


def test_script_style_part_is_trimmed_when_cut_off_by_the_length_limit():
    raw = "User: Who is it?\nMara: I'm not sure. Maybe the"
    reply = clean_reply(raw, CHAR, USER, finish_reason="length")
    assert reply.text == "I'm not sure."
    assert reply.actions == ["kept_own_script_part", "trimmed_half_sentence"]


# ---------------------------------------------------------------- stop strings and markers


def test_cuts_at_the_earliest_stop_string():
    reply = clean_reply(
        "Hold the rope. ### Input: more ### Response: again",
        CHAR,
        USER,
        stop=["### Response:", "### Input:"],
    )
    assert reply.text == "Hold the rope."
    assert "cut_stop_string" in reply.actions


@pytest.mark.parametrize(
    "raw",
    [
        "Hold the rope.<|im_end|>\n<|im_start|>user\nhi",
        "Hold the rope.<|im_start|>user",
        "Hold the rope. [INST] next question",
        "Hold the rope.</s><s>",
        "Hold the rope.<|user|>hi",
        "Hold the rope.\n<human>: hi",
    ],
)
def test_cuts_at_chat_turn_markers(raw):
    reply = clean_reply(raw, CHAR, USER)
    assert reply.text == "Hold the rope."
    assert reply.actions == ["cut_turn_marker"]


# ---------------------------------------------------------------- sentence endings


def test_length_cut_trims_the_dangling_half_sentence():
    reply = clean_reply(
        "Hold the rope. We cast off at dawn! Then we fly and the",
        CHAR,
        USER,
        finish_reason="length",
    )
    assert reply.text == "Hold the rope. We cast off at dawn!"
    assert reply.actions == ["trimmed_half_sentence"]


def test_length_cut_keeps_a_closing_quote_or_action():
    reply = clean_reply('She said "Hold it." *grins* Then', CHAR, USER, finish_reason="length")
    assert reply.text == 'She said "Hold it." *grins*'


def test_length_cut_ending_on_a_full_sentence_is_untouched():
    text = "Hold the rope. Then we fly."
    reply = clean_reply(text, CHAR, USER, finish_reason="length")
    assert reply.text == text
    assert reply.actions == []


def test_length_cut_without_sentence_boundary_is_kept_and_flagged():
    text = "Hold the rope and then we fly and the"
    reply = clean_reply(text, CHAR, USER, finish_reason="length")
    assert reply.text == text
    assert reply.actions == ["cut_off"]


def test_complete_reply_is_returned_untouched():
    text = "Hold that and don't let go till I say. Ever flown through a storm?"
    reply = clean_reply(text, CHAR, USER)
    assert reply.text == text
    assert reply.actions == []
    assert not reply.empty


def test_blank_lines_are_collapsed_and_ends_stripped():
    reply = clean_reply("  Hold on.\n\n\n\nWe fly.  ", CHAR, USER)
    assert reply.text == "Hold on.\n\nWe fly."


def test_empty_completion_is_flagged_empty():
    reply = clean_reply("   ", CHAR, USER)
    assert reply.text == ""
    assert reply.actions == ["empty"]
