"""Self-copy preference pairs: a character reply against an earlier reply given again.

Deep in a chat the failure that remains is the copy: the model answers a new user turn
with one of its own earlier replies, still in the context, nearly word for word (the long
suite, docs/results/2026-12-05-long-eval.md). The in-loop rejections rarely hold such a
copy, because at the training dialogues' depth the sampler seldom makes one. These pairs
are made from the clean training dialogues instead: at a character turn with earlier
replies, the same context, the reply the dialogue kept is chosen, and its latest earlier
reply, given again word for word, is rejected: in the adapter's near-copies at turns
37-48 of the long suite, 9 of 12 copied the reply just before. Two kinds of turn make no
pair, so that a pair teaches "do not say that again" and not "do not say who you are":
a turn where the user asks who the character is (the answer should name it, as an
earlier answer did), and an earlier reply that names the character.
It is the cross-turn form of the pseudo-repetition data that "Learning to Break the Loop"
(Xu et al. 2022, DITTO) trains against.

The rows have the preference export's fields (`checks/dataset.py`), with reason
`self_copy`; training adds a seeded sample of them to the logged pairs
(`--dpo-copy-pairs`, `training/data.py`).

Non-goals: judging the chosen reply (the dialogues are the checked, accepted ones).
"""

from __future__ import annotations

from rolegen.checks.phrases import asks_identity, names_character

REASON = "self_copy"


def copy_pairs(rows: list[dict], per_turn: int = 1, min_earlier: int = 2) -> list[dict]:
    """Up to `per_turn` pairs at each character turn that has at least `min_earlier`
    earlier character replies (the greeting counts) and answers no identity question,
    rejecting its latest `per_turn` distinct earlier replies that do not name the
    character, newest first. An earlier reply with the same text as the chosen one is
    never the rejected side."""
    pairs = []
    for k, row in enumerate(rows):
        messages = row["messages"]
        row_id = str(row.get("id") or k)
        name = row.get("persona_name") or ""
        earlier: list[str] = []
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            reply = m["content"]
            user = messages[i - 1]
            if len(earlier) >= min_earlier and user["role"] == "user":
                picked = [] if asks_identity(user["content"]) else _latest(earlier, reply, name)
                picked = picked[:per_turn]
                for j, copy in enumerate(picked):
                    pairs.append(pair_row(row, f"{row_id}-m{i}-copy{j}", i, copy, REASON))
            earlier.append(reply)
    return pairs


def pair_row(row: dict, pair_id: str, i: int, rejected: str, reason: str) -> dict:
    """A preference row in the export's shape (`checks/dataset.py`) made from message `i`
    of a training dialogue: its context, that reply chosen, `rejected` the other side."""
    messages = row["messages"]
    return {
        "id": pair_id,
        "persona": row.get("persona") or "",
        "persona_name": row.get("persona_name") or "",
        "user_name": row.get("user_name") or "",
        "prompt": [{"role": m["role"], "content": m["content"]} for m in messages[:i]],
        "chosen": [{"role": "assistant", "content": messages[i]["content"]}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "reasons": [reason],
    }


def _latest(earlier: list[str], reply: str, name: str) -> list[str]:
    """The distinct earlier replies, newest first, less the chosen text and those that
    name the character."""
    latest = dict.fromkeys(reversed(earlier))
    return [
        e for e in latest if e.strip() != reply.strip() and not (name and names_character(e, name))
    ]
