"""What `generate --card-choice` changes in the training data: two generate runs of the
same settings and seed, one without the choice and one with it, compared turn by turn.

Per run: the kept character replies' card margin (MiniLM cosine to the own card minus
the best other card of the run, names masked: `rolegen/checks/card_likeness.py`), the
share whose own card ranks first, mean words, the manifest's drawn / passed / chosen /
changed counts. Then, per dialogue, the first turn where the two runs kept different
replies (later turns follow different histories), printed for reading.

Usage: python bench/card_choice_data.py RUN_WITHOUT RUN_WITH [--out bench/results/card_choice_data.json]
(each RUN a generate run folder, or a pipeline's data/ folder).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rolegen.cards.files import card_for_record
from rolegen.checks.embedder import paraphrase_encoder
from rolegen.generation.card_choice import CardChoice


def kept_turns(run: Path) -> dict[tuple[str, int], tuple[str, str, str]]:
    """(dialogue, turn) -> (persona name, kept reply, the user's line before it)."""
    out = {}
    for line in (run / "dialogues.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        for k, (msg, meta) in enumerate(zip(r["messages"], r["meta"])):
            if msg["role"] == "assistant" and meta.get("source") == "model":
                out[(r["id"], meta["turn"])] = (
                    r["persona_name"],
                    msg["content"],
                    r["messages"][k - 1]["content"],
                )
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("without", type=Path)
    parser.add_argument("with_choice", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench/results/card_choice_data.json"))
    args = parser.parse_args()
    records = [
        json.loads(line)
        for line in (args.without / "dialogues.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    cards = {r["persona_name"]: card_for_record(r, r["persona_name"], ()) for r in records}
    chooser = CardChoice(paraphrase_encoder())
    chooser.prepare(list(cards.values()))
    result, runs = {"cards": sorted(cards)}, {}
    for name, run in (("without", args.without), ("with", args.with_choice)):
        turns = kept_turns(run)
        keys = sorted(turns)
        margins = chooser.margins([turns[k][0] for k in keys], [turns[k][1] for k in keys])
        tokens = json.loads((run / "manifest.json").read_text())["tokens"]
        result[name] = {
            "run": str(run),
            "turns": len(keys),
            "mean_card_margin": round(float(margins.mean()), 4),
            "own_card_first_share": round(float((margins > 0).mean()), 3),
            "mean_words": round(float(np.mean([len(turns[k][1].split()) for k in keys])), 1),
            "replies_drawn": tokens["character_replies_drawn"],
            "replies_passed": tokens["character_replies_passed"],
            "turns_with_a_choice": tokens.get("card_choices"),
            "turns_changed_by_it": tokens.get("card_choice_changed"),
        }
        runs[name] = {k: (float(m), turns[k]) for k, m in zip(keys, margins)}
    first_differences = []
    for dialogue in sorted({k[0] for k in runs["without"]}):
        for turn in range(1, 1 + max(t for d, t in runs["without"] if d == dialogue)):
            a, b = runs["without"].get((dialogue, turn)), runs["with"].get((dialogue, turn))
            if a is None or b is None:
                break
            if a[1][1] != b[1][1]:
                first_differences.append(
                    {
                        "dialogue": dialogue,
                        "turn": turn,
                        "user": a[1][2],
                        "without": {"margin": round(a[0], 3), "reply": a[1][1]},
                        "with": {"margin": round(b[0], 3), "reply": b[1][1]},
                    }
                )
                break
    result["first_differences"] = first_differences
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    for name in ("without", "with"):
        r = result[name]
        print(
            f"{name:8} turns {r['turns']}, margin {r['mean_card_margin']:+.3f}, own card first "
            f"{r['own_card_first_share']:.2f}, words {r['mean_words']}, passed "
            f"{r['replies_passed']} of {r['replies_drawn']}, chosen {r['turns_with_a_choice']}, "
            f"changed {r['turns_changed_by_it']}"
        )
    for d in first_differences:
        print(f"\n{d['dialogue']} turn {d['turn']}: {d['user'][:120]}")
        print(f"  without [{d['without']['margin']:+.3f}] {d['without']['reply'][:300]}")
        print(f"  with    [{d['with']['margin']:+.3f}] {d['with']['reply'][:300]}")


if __name__ == "__main__":
    main()
