"""Card-grounded choice: which of a turn's passing candidates the loop keeps.

Without it, the loop keeps the first candidate of a round that passes the checks. With
it (`--card-choice`), it keeps the round's passing candidate that is nearest its own card
against the run's other cards: the cosine of the reply to its card minus the reply's
highest cosine to another card of the batch, with the sentence embedder
(all-MiniLM-L6-v2) and every card's name masked (`checks/card_likeness.py`, the same
comparison as the eval's persona distinctiveness). The checks still decide what passes;
the choice only picks among replies that all passed, so it draws no extra token.

Why: a small model's replies drift to a generic voice that fits any card. Training on
the passing reply that says most of its own card, rather than the first one drawn, is
meant to teach the adapter to answer from its card.

Not handled: a card with no description, personality or scenario (its candidates tie,
and the first is kept); a batch of one card (the cosine to that card decides).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from rolegen.cards.personas import Persona
from rolegen.checks.card_likeness import card_text, margins, mask_names


class CardChoice:
    """Card margins of candidate replies. `encode`: texts -> unit vectors (the paraphrase
    check's cached encoder, `checks.embedder.paraphrase_encoder`)."""

    def __init__(self, encode: Callable[[list[str]], np.ndarray]):
        self.encode = encode
        self.names: list[str] = []  # the cards with text, in `cards`' order
        self.masked: list[str] = []  # every card's name, masked in the replies
        self.cards = np.zeros((0, 0))

    def prepare(self, personas: Sequence[Persona]) -> None:
        """The cards a batch's candidates are compared against: those of its dialogues
        that have text."""
        found = {p.name: card_text(p) for p in personas}
        self.names = [name for name, text in found.items() if text]
        self.masked = list(found)
        texts = mask_names([found[n] for n in self.names], self.masked)
        self.cards = self.encode(texts) if texts else np.zeros((0, 0))

    def margins(self, personas: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Each reply's card margin (higher: nearer its own card); 0 for a reply whose
        card has no text."""
        out = np.zeros(len(texts))
        rows = [i for i, p in enumerate(personas) if p in self.names]
        if not rows:
            return out
        vectors = self.encode(mask_names([texts[i] for i in rows], self.masked))
        truth = np.array([self.names.index(personas[i]) for i in rows])
        out[rows] = margins(vectors, self.cards, truth)
        return out

    def pick(self, rounds: dict[str, tuple[str, list[tuple[int, dict, str]]]]) -> dict[str, int]:
        """Dialogue -> the sample index it keeps, for `rounds`: dialogue -> (persona name,
        its passing draws as (sample index, meta, text)). The draw of highest margin wins,
        the first drawn on a tie; every draw's meta gets its `card_margin`. One encoder
        call for all dialogues."""
        draws = [
            (did, name, d)
            for did, (name, ds) in rounds.items()
            for d in sorted(ds, key=lambda d: d[0])
        ]
        if not draws:
            return {}
        found = self.margins([name for _, name, _ in draws], [d[2] for _, _, d in draws])
        best: dict[str, tuple[float, int]] = {}  # dialogue -> (margin, sample index)
        for (did, _, (j, meta, _)), margin in zip(draws, found):
            meta["card_margin"] = round(float(margin), 4)
            if did not in best or margin > best[did][0]:
                best[did] = (margin, j)
        return {did: j for did, (_, j) in best.items()}
