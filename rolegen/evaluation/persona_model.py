"""The learned persona check in `rolegen eval --persona-model`: the flags of the persona
encoder (`persona_encoder.py`) added to the pattern check's.

A label ships when, on the frozen test split, the patterns or the learned check beat the
patterns alone at precision 0.80 or more, and on the blind set the check was chosen on
(bench/results/learned_choice_holdout25.json): today wrong identity only. A turn's learned field
(`FIELDS`) is that combination: the pattern check's flag, or the encoder's.

It reads the reply beside its card with the packaged all-MiniLM-L6-v2, never a hub model,
one pass per reply; it runs in `rolegen eval` when asked (`--persona-model`), not inside
generate's loop. A turn's verdict depends on it alone, not on the replies batched beside it.
"""

from __future__ import annotations

# label -> (the turn-row field of its pattern check, the field of patterns or encoder)
FIELDS = {"wrong_identity": ("wrong_identity", "wrong_identity_learned")}


def verdicts(items: list[dict], cards: dict, encoder=None) -> list[dict[str, bool]]:
    """Per item (`reply`, `persona_name`): label -> the encoder flags it, for every label
    in `FIELDS`. `cards`: card name -> resolved card (`generation.prompts.resolve_persona`)."""
    from rolegen.checks.persona_facts import persona_facts
    from rolegen.evaluation.persona_encoder import PersonaEncoder, card_side, reply_side

    if not items:
        return []
    encoder = encoder or PersonaEncoder()
    facts = {name: persona_facts(cards[name]) for name in {i["persona_name"] for i in items}}
    pairs = [
        (card_side(cards[i["persona_name"]], facts[i["persona_name"]]), reply_side(i["reply"]))
        for i in items
    ]
    flags = {label: encoder.scores(pairs, label) > encoder.spec["cut"][label] for label in FIELDS}
    return [{label: bool(flags[label][k]) for label in FIELDS} for k in range(len(items))]


def add_learned(rows: list[dict], records: list[dict], personas=()) -> dict:
    """Fill each metric row's learned fields (`FIELDS`; rows from `metrics.turn_rows`):
    its pattern flag, or the encoder's. Returns what results.json records: the replies
    scored, those it could not score, and per label the flags the encoder adds to the
    patterns'."""
    from rolegen.cards.files import card_for_record
    from rolegen.evaluation.persona_features import card_sentences
    from rolegen.generation.prompts import resolve_persona

    by_key = {(r.get("system", "data"), r.get("seed_key") or r["id"]): r for r in records}
    cards, items, scored = {}, [], []
    for row in rows:
        record = by_key[(row["system"], row["dialogue"])]
        name = record.get("persona_name") or record.get("persona") or "the character"
        if name not in cards:
            cards[name] = resolve_persona(card_for_record(record, name, personas), "User")
        # the encoder reads a reply beside its card's text: without either, the
        # pattern flag stands alone
        if row["text"].strip() and card_sentences(cards[name]):
            user = record.get("user_persona") or "User"
            items.append({"reply": row["text"], "user": row["user"] or "", "persona_name": name,
                          "user_persona": user})  # fmt: skip
            scored.append(row)
    added = dict.fromkeys(FIELDS, 0)
    for row in rows:
        for pattern, field in FIELDS.values():
            row[field] = float(bool(row[pattern]))
    for row, verdict in zip(scored, verdicts(items, cards)):
        for label, flagged in verdict.items():
            pattern, field = FIELDS[label]
            row[field] = float(bool(row[pattern]) or flagged)
            added[label] += int(flagged and not row[pattern])
    return {
        "replies": len(scored),
        "unscored": len(rows) - len(scored),  # an empty reply, or a card without text
        "labels": list(FIELDS),
        "added_to_patterns": added,
    }
