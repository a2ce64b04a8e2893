"""The character acting for the user, in narration and in speech, and the role swap."""

import pytest

from rolegen.checks.turns import DialogueTurns, check_dialogues
from rolegen.checks.user_acts import role_swap, user_actions


@pytest.mark.parametrize(
    "reply, acts",
    [
        ("*You nod and step aboard, and you tell her your name.*", True),
        ("*you start to explain the map*", True),
        ("You take a closer look and see the hull is cracked.", True),
        ("Your eyes widen as the ship rises.", True),
        ('"Welcome," she says. You step inside and feel the warmth.', True),
        ("*Alex nods and follows.*", True),
        ("*She watches as you walk away.*", True),
        ("*She hands you a cup.* Drink, it's cold out.", False),
        ("*She waits for you to answer.*", False),
        ("You look tired. You should rest by the fire.", False),
        ("You see, the tide waits for no one.", False),
        ("Your eyes are beautiful, deckhand.", False),
        ("Take the left path, then you'll see the mill.", False),
        ("Do you see the light over there?", False),
        ("*Your ship is ready at the dock.*", False),
        ("*You can rest here if you like.*", False),
        ("You take a moment to look at your reflection.", True),
        ("I just need to know, you're thinking of me.", False),  # a guess, said aloud
        ("*The user smiles, and the woman looks at her.*", True),  # a template's word for them
        ("*The user's eyes narrow, and she leans in.*", True),
        ("*Alex's eyes light up.* Welcome back.", True),
        ("I'm glad you came. Sit by the fire.", False),
        ("If you're happy, I'm happy.", False),  # a condition, not a statement
        # the user's lines written under a speaker label
        ('The user: "Thank you, I\'m so glad of you."', True),
        ("*She smiles.*\nAlex: I'll take the left path, then.", True),
        ("The users here come from far away: sailors, mostly.", False),
        # a glad or grateful mind stated for the user, said aloud
        ("You're so grateful to have a place to hang out and relax.", True),
        ("Ah, you're enjoying the taste of the olive.", True),
        ("You are happy to share your job with me.", True),
        ("You're just so happy to have me, I guess.", False),  # a guess
        ("You're welcome, and you're lucky the rain stopped.", False),
        ("Are you happy here?", False),
        # "you both", and "User's" without its article
        ("*She smiles, and you both laugh together.*", True),
        ("*User's expression turns grave, and he nods.*", True),
        # a feeling stated for the user, and a perception or feeling given in narration
        ("You're really sorry, I know it.", True),
        ("You're afraid. I can hear it.", True),
        ("Don't worry if you're afraid.", False),  # a condition
        ("*She smiles, and you can see that she is proud of you.*", True),
        ("*The warmth in his eyes makes you feel at home.*", True),
        ("*You can sit by the stove if you like.*", False),
        ("This tea will make you feel better.", False),  # said aloud: a promise
        ("You're on a cliff. You're falling.", True),
    ],
)
def test_acting_for_the_user_in_narration_and_speech(reply, acts):
    assert (user_actions(reply, "Alex") > 0) is acts


def test_the_user_asking_for_help_and_the_character_asking_it_back_is_a_role_swap():
    asked = "Can you help me find a safe place to sleep tonight?"
    assert role_swap("Oh dear. Can you help me find a safe place to sleep?", asked)
    assert not role_swap("Of course I can help you find a place to sleep. Follow me.", asked)
    assert not role_swap("Can you help me find my cat?", "Nice weather today.")
    assert not role_swap("Can you help me find a safe place to sleep?", None)


def test_one_sentence_acting_for_the_user_flags_the_turn_and_a_role_swap_does_too():
    def reasons(reply, user="Hello there."):
        d = DialogueTurns(
            character=["*The lamp flickers.* Welcome.", reply],
            users=[None, user],
            name="Mara",
            user_name="Alex",
        )
        return check_dialogues([d])[0][0].reasons

    assert "user" in reasons("*You nod and take the rope.* Good. Hold it tight.")
    assert "user" not in reasons("*Mara tosses you a rope.* Hold it tight.")
    assert "user" in reasons(
        "Hmm. Can you help me find a safe place to sleep?",
        user="Can you help me find a safe place to sleep?",
    )
