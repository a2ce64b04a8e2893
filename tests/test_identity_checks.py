"""Persona fidelity checks (issue 13): identity statements under any name, wrong identity,
identity confusion, identity miss and assistant drift, on hand-written replies in the
shipped languages; and cards whose names are hard (none, one letter, a common word, CJK)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rolegen.checks.phrases import asks_identity, identity, names_character
from rolegen.checks.turns import DialogueTurns, check_dialogues

MARA = "Captain Mara Vell"


def _turns(name, *replies, users=None, language="en", greeting="*A lamp flickers.* Welcome."):
    users = users or ["Tell me more about this place."] * len(replies)
    return DialogueTurns(
        character=[greeting, *replies],
        users=[None, *users],
        name=name,
        intro="",
        user_name="Alex",
        language=language,
    )


def _reasons(name, *replies, **kw):
    return [set(c.reasons) for c in check_dialogues([_turns(name, *replies, **kw)])[0]]


@pytest.mark.parametrize(
    "reply, own, other",
    [
        ("I'm Captain Mara Vell, master of the Kestrel.", True, False),
        ("Call me Mara. Everyone does.", True, False),
        ("I am Akua. I am the Drowned Library.", False, True),
        ("My name is Elena, and this is my ship.", False, True),
        ("I'm Captain Vex, and you're late.", False, True),
        ("I am a man of the sea, nothing more.", False, False),
        ("I am not sure the wind will hold.", False, False),
        ("I'm afraid the storm is close.", False, False),
        ("I'm English, born in Dover.", False, False),
        ("I am the lord of Ashwood, and this is my hall.", False, False),  # a role, a place
        ("Aye. Captain Mara Vell. Hold on tight.", True, False),  # the name as a sentence
        ("Captain! Hold the rope.", False, False),  # a title alone is not the name
        ("It is me. I am you.", False, True),  # claims to be the user
        ("Je suis Akua, gardienne des livres.", False, True),
        ("Je m'appelle Mara, capitaine du Kestrel.", True, False),
        ("Je suis fatiguée, le vent tourne.", False, False),
        ("Me llamo Pedro y vendo pescado.", False, True),
        ("Soy Mara, la capitana.", True, False),
        ("Soy una mujer del mar.", False, False),
        ("My name is...Elena, by the way.", False, True),  # a hesitation is still a name
        ("I'm… Mara. Who else?", True, False),
        ("I'm called Olga, and I keep bees.", False, True),
        ("I'm called to the sea every morning.", False, False),
        ("I'm...I'm a stranger here myself.", False, False),  # a stutter, not a name "I'm"
        ("Everyone calls me Jack around here.", False, True),
        ("My mother calls me Mara, when she is cross.", True, False),
        ("Everyone calls me crazy for sailing alone.", False, False),
    ],
)
def test_self_introductions_in_english_french_spanish(reply, own, other):
    who = identity(reply, MARA)
    assert (who.own_intro, who.other_intro) == (own, other)


def test_self_introductions_in_chinese():
    assert identity("我是李白，一个诗人。", "李白").own_intro
    assert identity("我叫王五。", "李白").other_intro
    assert identity("我是一个诗人。", "李白") == identity("", "李白")  # a noun, not a name
    assert names_character("我的名字是李白。", "李白")


@pytest.mark.parametrize(
    "reply, named",
    [
        ("Mara, I'm not sure exactly what you mean.", True),
        ("That's a fair question, Captain Mara Vell.", True),
        ("There's a little thing called Captain Mara Vell. He's my dad.", True),
        ("*Mara tosses you a rope.* Hold that and don't let go.", False),  # narration
        ('Mara grins. "The wind is ours today."', False),  # novel style: speech is quoted
        ('Mara grins. "Mara always wins, you know."', True),
        ("I'm Mara Vell, and this is my ship.", False),  # a self-introduction: the echo
        ("The mara grass grows on the cliffs.", False),  # not written as a name
        # its own speaker label, a place named after it, the speaker naming itself
        ("Mara Vell: Hold on tight.\nMara Vell: Now!", False),
        ("Captain Mara Vell: (grinning) Aye.", False),
        ("Welcome to Vell's. Mind the step.", False),
        ("We dock at Mara's Cove by dusk.", False),
        ("It's the Vell family business, always was.", False),
        ("I'm your own dear Mara, love.", False),
        ("Hey there! It's me, Captain Mara Vell.", False),
        ("I'd never refer to myself as Mara Vell.", False),
        ("I'm an old sailor named Mara Vell.", False),
        # and still: the user addressed by its name, itself spoken of aloud
        ("I'm not sure, Mara.", True),
        ("I'm telling you, Mara, the wind is turning.", True),
        ("Vell's ship is the fastest, and Vell knows it.", True),
        ("Mara works the rigging alone these days.", True),
    ],
)
def test_the_characters_name_in_its_own_speech(reply, named):
    assert identity(reply, MARA).named_in_speech is named


def test_identity_reasons_in_a_dialogue():
    reasons = _reasons(
        MARA,
        "I'm Captain Mara Vell. Grab the rail.",  # t1: may introduce herself
        "I am Akua. I am the Drowned Library.",  # t2: another name
        "Mara, I'm not sure what you mean.",  # t3: her name for the user
        "The storm is close; tie the crates down.",  # t4: fine
        "The wind turns east.",  # t5: asked, not named
        "I'm Mara Vell, of the Kestrel.",  # t6: asked, named
        users=["Hi."] * 4 + ["What's your name again?", "Who are you?"],
    )
    assert "echo" not in reasons[0] and not reasons[0] & {"wrong_identity", "identity_confusion"}
    assert {"echo", "wrong_identity"} <= reasons[1]
    assert "identity_confusion" in reasons[2] and "echo" not in reasons[2]
    assert not reasons[3]
    assert "identity_miss" in reasons[4]
    assert "identity_miss" not in reasons[5] and "echo" not in reasons[5]


def test_wrong_identity_counts_on_the_first_reply_too():
    assert "wrong_identity" in _reasons(MARA, "Hello there, I'm Elena.")[0]


@pytest.mark.parametrize(
    "reply, drift",
    [
        ("I'm here to help you with anything you're looking for.", True),
        ("How can I assist you today?", True),
        ("Feel free to ask me anything about the ship.", True),
        ("Is there anything else I can do for you?", True),
        ("Let me know if you have any other questions!", True),
        ("Can I help you with something?", True),
        ("I'll be happy to help you settle in.", True),
        ("We're always happy to have visitors, and I'm happy to help them.", False),
        ("She's always happy to help new ones.", False),
        ("Mending a net that a shark thought was lunch.", False),
        ("Help me with this rope, or we both go over.", False),
        ("I'm sure I can help with anything you need.", True),
        ("I'm happy to be of service, as always.", True),
        ("I can help with the sail if you hold the line.", False),
        ("Don't ask me for help; ask the wind.", False),
        ("I'm so glad I could help.", True),
        ("I'm here, I'll try to help.", True),
        ("I'm sorry for any misunderstanding, but I can tell you this.", True),
        ("If you wish, I can always stay in character and keep going.", True),
        ("What's the nature of your inquiry?", True),
        ("I'm sorry for any noise, the crew is loading.", False),
    ],
)
def test_assistant_drift(reply, drift):
    assert ("assistant_drift" in _reasons(MARA, reply)[0]) is drift


@pytest.mark.parametrize("name", ["", "X", "Hope", "Will", "李白", "Captain"])
def test_hard_names_neither_crash_nor_flag_every_turn(name):
    replies = [
        "I hope the tide turns soon; we will sail at dawn.",
        "Will you hold the rope? I will tie the knot.",
        "Hope is a fine thing to have at sea.",
        "The wind is fair and the lamps are lit.",
    ]
    reasons = _reasons(name, *replies)
    assert len(reasons) == len(replies)
    for r in reasons:
        assert not r & {"echo", "wrong_identity", "identity_confusion", "identity_miss"}, (
            name,
            r,
        )


def test_common_word_names_are_still_found_where_they_are_names():
    assert names_character("They call me Hope.", "Hope")
    assert not names_character("I hope so.", "Hope")
    assert not names_character("Will you come?", "Will")  # a sentence's first word
    assert identity("I'll go, Will, but not tonight.", "Will").named_in_speech
    assert identity("I am X, the courier.", "X").own_intro
    assert identity("I am Akua.", "").other_intro is False  # no name: nothing to compare


def test_identity_miss_needs_a_question_and_a_name():
    asked = ["Who are you?"]
    assert "identity_miss" in _reasons("Bram", "The shelves are dusty.", users=asked)[0]
    assert "identity_miss" not in _reasons("Bram", "I'm Bram, the archivist.", users=asked)[0]
    assert "identity_miss" not in _reasons("", "The shelves are dusty.", users=asked)[0]
    assert "identity_miss" not in _reasons("Bram", "The shelves are dusty.")[0]


def test_an_epithets_place_is_not_the_characters_name():
    """ "Sefa of the Salt Steps": she is Sefa; the Salt Steps are where she lives."""
    sefa = "Sefa of the Salt Steps"
    assert not names_character("Welcome to the Salt Steps, stranger.", sefa)
    assert names_character("Sefa. Everyone on the steps knows me.", sefa)
    reasons = _reasons(sefa, "And now I'm here, in the Salt Steps. Mind the spray.")
    assert "identity_confusion" not in reasons[0]


# The scanning forms of the two regular expressions against their plain definitions.
_FRAGMENTS = st.sampled_from(
    [
        "I'm", "i am", "I AM", "My name is", "name's", "call me", "calls me", "Je suis", "soy", "Ich bin",
        "我是", "我叫", "李明", "Mara", "Vell", "mara", "O'Mara", "Maras", "xMara", "’", "'",
        " ", "  ", "\n", ".", "...", ",", "*", '"', "“", "”", "the", "Captain", "Dr.", "İ",
        "ß", "Ä", "é", "a", "1",
    ]
)  # fmt: skip


@given(st.lists(_FRAGMENTS, max_size=30).map("".join))
def test_self_intros_finds_what_the_case_blind_regex_finds(text):
    from rolegen.checks.phrases import SELF_INTRO, self_intros

    got = [(m.span(), m.groupdict()) for m in self_intros(text)]
    assert got == [(m.span(), m.groupdict()) for m in SELF_INTRO.finditer(text)]


@given(st.lists(_FRAGMENTS, max_size=30).map("".join))
def test_the_name_pattern_finds_each_part_as_a_whole_word(text):
    import re

    from rolegen.checks.phrases import _name_pattern

    parts = ["Mara", "O'Mara", "李明"]
    rule = "|".join(
        [rf"(?<![\w'’]){re.escape(p)}(?!\w)" for p in parts[:2]] + [re.escape(parts[2])]
    )
    got = [m.span() for m in _name_pattern(parts).finditer(text)]
    assert got == [m.span() for m in re.finditer(rule, text)]


@pytest.mark.parametrize(
    "user, asked",
    [
        ("Who are you?", True),
        ("Hi. I don't think we've met. Who am I talking to?", True),
        ("Tell me again, in your own words, who you really are.", True),
        ("What should I call you?", True),
        ("Who might you be?", True),
        ("Who's there?", True),
        ("Who are they?", False),
        ("Who is this man over there?", False),
        ("What is this place?", False),
    ],
)
def test_identity_questions_however_they_are_asked(user, asked):
    assert asks_identity(user) is asked


def test_only_a_direct_question_excuses_the_name_said_aloud():
    reply = "It's a man named Mara Vell who keeps this ship. She's the one."
    direct = DialogueTurns(character=["Welcome.", reply], users=[None, "Who are you?"], name=MARA)
    other = DialogueTurns(
        character=["Welcome.", reply], users=[None, "Who am I talking to?"], name=MARA
    )
    direct_reasons = check_dialogues([direct])[0][-1].reasons
    other_reasons = check_dialogues([other])[0][-1].reasons
    assert "identity_confusion" not in direct_reasons
    assert "identity_confusion" in other_reasons
    assert "identity_miss" not in other_reasons  # the name is given


@pytest.mark.parametrize(
    "reply, other",
    [
        ("*Ava's eyes sparkle with pride.* The village has been here for centuries.", True),
        ("*Ava smiles and sets down the cup.* Sit, please.", True),
        ("*Kašpar's eyes sparkle.* Sit, please.", False),  # its own name
        ("*Alex smiles back.* Good, you found it.", False),  # the user's
        ("*The kettle whistles.* Sit, please.", False),
        ("*She smiles.* Sit, please.", False),
        ("Mala: (smiles) Welcome to my shop.", True),  # a speaker label, another name
        ("Kašpar: (smiles) Welcome to my pond.", False),
        ("Note: the pond is cold. Welcome.", False),
    ],
)
def test_a_speaker_label_or_narration_that_opens_on_another_name(reply, other):
    assert identity(reply, "Kašpar", ("Kaspar",), "Alex").other_intro is other
