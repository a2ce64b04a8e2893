"""The persona checks on every blind set at once: the sets of eight new cards, each
labelled once by readers who never saw the patterns and scored with the checks of the day
(main before the revision the set judged), pooled.

Each set's figures are in bench/results/persona_calibration_holdoutN_blind.json, written
by bench/persona_calibration.py. Where those files keep main's figures changed over the
sessions: the third to the thirteenth set under `checks` (a candidate, if any, under
`baseline`), the fourteenth on under `baseline` (the candidate under `checks`); `DAY_KEY`
says which. The first two sets were scored with older files and other rules and are left
out. Writes bench/results/blind_sets.json and prints a table.
Usage: python bench/blind_sets.py
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
LABELS = ("wrong_identity", "acts_for_user", "drift", "confusion", "miss")
DAY_KEY = {n: "checks" for n in range(3, 14)} | {n: "baseline" for n in range(14, 26)}


def day_figures(n: int) -> tuple[dict, int, int]:
    """(the checks of the day's figures per label, turns, cards) of set `n`."""
    data = json.loads((RESULTS / f"persona_calibration_holdout{n}_blind.json").read_text())
    block = data[DAY_KEY[n]]
    figures = (block["checks"] if DAY_KEY[n] == "baseline" else block)["all"]
    return figures, data["set"]["turns"], data["set"]["cards"]


def main() -> None:
    pooled = {k: {"true_positives": 0, "flagged": 0, "labelled": 0} for k in LABELS}
    recalls: dict[str, list[float]] = {k: [] for k in LABELS}
    turns = cards = 0
    for n in DAY_KEY:
        figures, t, c = day_figures(n)
        turns, cards = turns + t, cards + c
        for k in LABELS:
            for field in pooled[k]:
                pooled[k][field] += figures[k][field]
            if figures[k]["labelled"]:
                recalls[k].append(figures[k]["true_positives"] / figures[k]["labelled"])
    out = {"sets": sorted(DAY_KEY), "turns": turns, "cards": cards, "labels": {}}
    print(f"{len(DAY_KEY)} blind sets, {turns:,} turns, {cards} cards; the checks of the day")
    print(f"{'label':16} {'precision':>9} {'recall':>7} {'positives':>9}  recall per set")
    for k in LABELS:
        p = pooled[k]
        precision = round(p["true_positives"] / p["flagged"], 4)
        recall = round(p["true_positives"] / p["labelled"], 4)
        spread = [round(min(recalls[k]), 2), round(max(recalls[k]), 2)]
        out["labels"][k] = {**p, "precision": precision, "recall": recall, "recall_range": spread}
        print(f"{k:16} {precision:9.2f} {recall:7.2f} {p['labelled']:9d}  {spread[0]}-{spread[1]}")
    (RESULTS / "blind_sets.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
