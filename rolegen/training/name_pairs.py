"""Name-swap preference pairs: a reply that names its character against the same reply
under another card's name.

The failure readers see most on new cards is the wrong name: asked who it is, the adapter
answers "I'm Akua" for Bram the archivist, "I'm Kari" for Odile the beekeeper
(docs/results/). The in-loop rejections hold such answers, but each differs from the
chosen reply in every word, so DPO learns from them what a good answer reads like more
than which name belongs to the card in the prompt. These pairs isolate the name: at a
character turn of the clean training dialogues whose reply introduces the character under
its own name (and no other), the same context, the reply is chosen, and the same reply
with the name replaced by another training card's name is rejected ("I'm Captain Mara
Vell, and the Kestrel is mine" against "I'm Captain Hana Moriyama, and the Kestrel is
mine"). The two sides differ only in the name's tokens, so the preference falls on them.
The test split draws its other names from its own cards (often one: then no pairs).

The name is replaced part by part (`phrases.name_parts`: "Mara" and "Vell" for "Captain
Mara Vell"; titles stay): the first part by the other name's first part, the last by its
last, any part between dropped. The other cards are a seeded choice among the cards of
the data, a few per turn, one per pair.

The rows have the preference export's fields (`checks/dataset.py`), with reason
`name_swap`; training adds a seeded sample of them to the logged pairs
(`--dpo-name-pairs`, `training/data.py`).

Non-goals: names the data's cards do not have (the pool is the training cards), aliases
(a record carries none).
"""

from __future__ import annotations

import random
import re

from rolegen.checks.phrases import identity, name_parts
from rolegen.training.copy_pairs import pair_row

REASON = "name_swap"


def swap_name(reply: str, name: str, other: str) -> str | None:
    """`reply` with `name`'s parts replaced by `other`'s (first by first, last by last,
    parts between dropped), or None where no part of the name is found or the names share
    a part."""
    own, theirs = name_parts(name), name_parts(other)
    if not own or not theirs or set(own) & set(theirs):
        return None
    mapping = {part: "" for part in own}
    mapping[own[0]] = theirs[0]
    if len(own) > 1:
        mapping[own[-1]] = theirs[-1] if len(theirs) > 1 else ""
    pattern = re.compile(
        "|".join(rf"(?<![\w'’]){re.escape(p)}(?!\w)" for p in sorted(own, key=len, reverse=True))
    )
    swapped, n = pattern.subn(lambda m: mapping[m.group(0)], reply)
    if not n:
        return None
    # a dropped part leaves its space behind: "Hana  Moriyama" -> "Hana Moriyama"
    swapped = re.sub(r"[ \t]{2,}", " ", swapped)
    swapped = re.sub(r" +([,.!?;:])", r"\1", swapped)
    return swapped if swapped.strip() != reply.strip() else None


def name_pairs(rows: list[dict], per_turn: int = 3, seed: int = 0) -> list[dict]:
    """One pair at each character turn whose reply introduces the character under its own
    name and no other ("I'm Hana Moriyama", `phrases.identity`; the card's greeting, with
    no user turn before it, excepted): up to `per_turn` pairs, each rejecting the reply
    under another card's name, a seeded choice among the cards of `rows`."""
    names = sorted({r.get("persona_name") or "" for r in rows} - {""})
    rng = random.Random(seed)
    pairs = []
    for k, row in enumerate(rows):
        name = row.get("persona_name") or ""
        others = [n for n in names if n != name]
        if not name or not others:
            continue
        messages = row["messages"]
        row_id = str(row.get("id") or k)
        for i, m in enumerate(messages):
            if m["role"] != "assistant" or i == 0 or messages[i - 1]["role"] != "user":
                continue
            reply = m["content"]
            said = identity(reply, name)
            if not said.own_intro or said.other_intro:
                continue  # not a self-introduction under its own name alone
            for j, other in enumerate(rng.sample(others, min(per_turn, len(others)))):
                rejected = swap_name(reply, name, other)
                if rejected is not None:
                    pairs.append(pair_row(row, f"{row_id}-m{i}-name{j}", i, rejected, REASON))
    return pairs
