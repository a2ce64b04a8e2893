"""The long eval suite (`evals/long/`): what its scripts hold, at which depths."""

from __future__ import annotations

import re
from pathlib import Path

from rolegen.cards.files import load_personas
from rolegen.cards.personas import load_user_script
from rolegen.checks.phrases import asks_identity

# "what did you say this place was called?", "what did I say my dog was called?"
CALLBACK = re.compile(r"\bdid (i|you) (say|tell)|\bdo you remember\b", re.IGNORECASE)
LONG = Path(__file__).resolve().parents[1] / "evals" / "long"


def _scripts() -> dict[str, list[str]]:
    return {f.stem: load_user_script(f) for f in sorted((LONG / "scripts").glob("*.txt"))}


def test_long_suite_has_two_scripts_of_48_turns_and_six_cards_with_examples():
    scripts = _scripts()
    assert len(scripts) >= 2
    assert all(len(turns) == 48 for turns in scripts.values())
    cards = load_personas(str(LONG / "personas"))
    assert len(cards) == 6
    assert all(len(card.example_dialogues) == 2 for card in cards)


def test_long_scripts_ask_who_the_character_is_at_every_depth_and_nowhere_else():
    scripts = _scripts()
    assert len(scripts) >= 2
    for name, turns in scripts.items():
        asked = [t for t, text in enumerate(turns, start=1) if asks_identity(text)]
        assert asked == [1, 12, 24, 36, 47], name


def test_long_scripts_hold_long_turns_topic_changes_and_callbacks():
    scripts = _scripts()
    assert len(scripts) >= 2
    for name, turns in scripts.items():
        long_turns = [t for t, text in enumerate(turns, start=1) if len(text.split()) > 60]
        assert len(long_turns) >= 3, name
        assert any(t > 36 for t in long_turns), name  # one deep in the dialogue
        callbacks = [t for t, text in enumerate(turns, start=1) if CALLBACK.search(text)]
        assert len(callbacks) >= 3 and max(callbacks) > 36, name
        changes = [text for text in turns if "topic" in text.lower() or "subject" in text.lower()]
        assert len(changes) >= 3, name
