"""How near a reply is to its own card, against other cards: the text each side is
embedded from, and the ranking the eval's persona distinctiveness reports
(`evaluation/distinctiveness.py`) and generate's card-grounded choice uses
(`generation/card_choice.py`).

- a card is its description, personality and scenario, macros replaced; not the
  greeting, whose words a reply can copy without holding the persona;
- the names of every card are masked in the cards and the replies alike: a reply that
  says its own name would find its card by the name alone, which measures the identity
  tic (counted by the checks), not voice and content. Each part of a name that is not
  lowercase is masked, titles included ("Captain" of "Captain Mara Vell"), as a whole
  word and case-sensitively, so a lowercase "hope" or "will" stays for a card named Hope
  or Will.

Not handled: one-letter names and name parts (not masked: masking "I" or "A" would
wreck the text).
"""

from __future__ import annotations

import re

import numpy as np

from rolegen.cards.personas import Persona, substitute_macros
from rolegen.checks.phrases import CJK

_MASK = "someone"


def card_text(card: Persona) -> str:
    """What the card says the character is (see the module docstring); empty when the card
    has none of those fields."""
    parts = (card.description, card.personality, card.scenario)
    return "\n".join(substitute_macros(p, card.name, "User") for p in parts if p.strip())


def mask_names(texts: list[str], names: list[str]) -> list[str]:
    """`texts` with every name, and every part of a name of two letters or more that is
    not lowercase ("of" in "Sefa of the Salt Steps" stays), replaced by one placeholder
    word. CJK names are matched anywhere (no word boundaries there)."""
    parts = {p for n in names for p in (n.strip(), *n.split()) if len(p) > 1 and not p[0].islower()}
    if not parts:
        return list(texts)
    alternatives = [
        re.escape(p) if CJK.search(p) else rf"(?<!\w){re.escape(p)}(?!\w)"
        for p in sorted(parts, key=len, reverse=True)  # "Mara Vell" before "Mara"
    ]
    pattern = re.compile("|".join(alternatives))
    return [pattern.sub(_MASK, t) for t in texts]


def similarities(replies: np.ndarray, cards: np.ndarray) -> np.ndarray:
    """Cosine of each reply vector to each card vector: [replies, cards]."""
    replies = replies / np.linalg.norm(replies, axis=1, keepdims=True).clip(min=1e-12)
    cards = cards / np.linalg.norm(cards, axis=1, keepdims=True).clip(min=1e-12)
    return replies @ cards.T


def ranks(replies: np.ndarray, cards: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The rank (1 = closest) of each reply's own card `cards[truth[i]]` among all `cards`,
    by cosine of the vectors; a tie counts against the own card."""
    sims = similarities(replies, cards)
    own = sims[np.arange(len(truth)), truth]
    return (sims >= own[:, None]).sum(axis=1)


def margins(replies: np.ndarray, cards: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Each reply's cosine to its own card `cards[truth[i]]` minus its highest cosine to
    another card: above 0 where the own card ranks first. With one card, the cosine."""
    sims = similarities(replies, cards)
    rows = np.arange(len(truth))
    own = sims[rows, truth]
    if sims.shape[1] < 2:
        return own
    others = sims.copy()
    others[rows, truth] = -np.inf
    return own - others.max(axis=1)
