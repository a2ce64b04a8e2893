"""Persona distinctiveness: does a reply sound like its own card, among every card of the run?

Offline, no judge model. Each reply and each persona card of the eval run are embedded
with the eval's sentence embedder (`checks/embedder.py`, all-MiniLM-L6-v2), and the
reply's own card is ranked among the run's K cards by cosine. Per reply: the rank,
top1 (rank 1) and the reciprocal rank; `metrics.py` reports top-1 accuracy and MRR per
system. Chance, a ranking that knows nothing of the reply: top-1 1/K, MRR the mean of
1/k for k = 1..K. A reply in a generic assistant voice fits every card about equally
badly, so its card ranks near chance: the figures fall when the character dissolves.

What is compared (`checks/card_likeness.py`): the card's description, personality and
scenario against the reply, every card's name masked in both. Ties count against the
reply: a reply as close to another card as to its own does not tell them apart.

Not handled: dialogues whose card is not found (not ranked); fewer than two cards
(nothing to rank).
"""

from __future__ import annotations

import numpy as np

from rolegen.cards.files import card_for_record
from rolegen.cards.personas import Persona
from rolegen.checks.card_likeness import card_text, mask_names, ranks

__all__ = ["add_persona_ranks", "card_text", "chance", "mask_names", "ranks", "run_cards"]


def chance(k: int) -> dict:
    """Top-1 accuracy and MRR of a ranking of `k` cards that ignores the reply."""
    return {
        "cards": k,
        "top1": round(1 / k, 4),
        "mrr": round(sum(1 / i for i in range(1, k + 1)) / k, 4),
    }


def _persona_name(record: dict) -> str:
    return record.get("persona_name") or record.get("persona") or ""


def run_cards(records: list[dict], personas=()) -> dict[str, Persona | None]:
    """Persona name -> the card of each persona the records name (`personas`, the
    `--persona` cards, first; see `cards.card_for_record`); None where no card with text
    is found."""
    out: dict[str, Persona | None] = {}
    for record in records:
        name = _persona_name(record)
        if name and name not in out:
            card = card_for_record(record, name, personas)
            out[name] = card if card_text(card) else None
    return out


def add_persona_ranks(rows: list[dict], records: list[dict], cards: dict, embedder) -> None:
    """Fill `persona_rank`, `persona_top1` and `persona_rr` of each row (rows from
    `metrics.turn_rows`) whose dialogue's persona has a card in `cards` (from `run_cards`;
    at least two cards), ranked against every card there."""
    names = [name for name, card in cards.items() if card is not None]
    persona_of = {(r.get("system", "data"), r.get("seed_key") or r["id"]): r for r in records}
    own = [(r, _persona_name(persona_of[(r["system"], r["dialogue"])])) for r in rows]
    scored = [(r, names.index(name)) for r, name in own if name in names]
    texts = [card_text(cards[n]) for n in names] + [r["text"] for r, _ in scored]
    vectors = embedder.encode(mask_names(texts, names), progress="persona ranks")
    truth = np.array([i for _, i in scored], dtype=int)
    for (row, _), rank in zip(scored, ranks(vectors[len(names) :], vectors[: len(names)], truth)):
        row["persona_rank"] = int(rank)
        row["persona_top1"] = float(rank == 1)
        row["persona_rr"] = round(1 / int(rank), 4)
