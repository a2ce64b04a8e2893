"""Self-copy preference pairs: a character reply against an earlier reply given again.

Deep in a chat the failure that remains is the copy: the model answers a new user turn
with one of its own earlier replies, still in the context, nearly word for word (the long
suite, docs/results/2026-12-05-long-eval.md). The in-loop rejections rarely hold such a
copy, because at the training dialogues' depth the sampler seldom makes one. These pairs
are made from the clean training dialogues instead: at a character turn with earlier
replies, the same context, the reply the dialogue kept is chosen, and its latest earlier
reply, given again word for word, is rejected: in the adapter's near-copies at turns
37-48 of the long suite, 9 of 12 copied the reply just before.
It is the cross-turn form of the pseudo-repetition data that "Learning to Break the Loop"
(Xu et al. 2022, DITTO) trains against.

The rows have the preference export's fields (`checks/dataset.py`), with reason
`self_copy`, so they are sampled (`--dpo-max-pairs`) and counted like the rest.

Non-goals: judging the chosen reply (the dialogues are the checked, accepted ones).
"""

from __future__ import annotations

REASON = "self_copy"


def copy_pairs(rows: list[dict], per_turn: int, min_earlier: int = 2) -> list[dict]:
    """Up to `per_turn` pairs at each character turn that has at least `min_earlier`
    earlier character replies (the greeting counts), rejecting its latest `per_turn`
    distinct earlier replies, newest first. An earlier reply with the same text as the
    chosen one is never the rejected side."""
    pairs = []
    for k, row in enumerate(rows):
        messages = row["messages"]
        row_id = str(row.get("id") or k)
        earlier: list[str] = []
        for i, m in enumerate(messages):
            if m["role"] != "assistant":
                continue
            reply = m["content"]
            latest = [e for e in dict.fromkeys(reversed(earlier)) if e.strip() != reply.strip()]
            if len(earlier) >= min_earlier and messages[i - 1]["role"] == "user":
                picked = latest[:per_turn]
                prompt = [{"role": x["role"], "content": x["content"]} for x in messages[:i]]
                for j, copy in enumerate(picked):
                    pairs.append(
                        {
                            "id": f"{row_id}-m{i}-copy{j}",
                            "persona": row.get("persona") or "",
                            "persona_name": row.get("persona_name") or "",
                            "user_name": row.get("user_name") or "",
                            "prompt": prompt,
                            "chosen": [{"role": "assistant", "content": reply}],
                            "rejected": [{"role": "assistant", "content": copy}],
                            "reasons": [REASON],
                        }
                    )
            earlier.append(reply)
    return pairs
