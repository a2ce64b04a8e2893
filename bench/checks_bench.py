"""Benchmark the repetition checks (`rolegen/checks.py`) on a synthetic corpus.

- Per-turn checks: 100,000 character turns of about 400 characters in 5,000
  dialogues (20 turns each), with injected near-copies, loops and intro echoes;
  all checks of `check_dialogues` (echo, cross-turn ratio and crep-4, loops,
  openers, user lines, boilerplate), reported as turns/s.
- Near-duplicate dialogues over 100,000 dialogue texts: time and peak memory.

Writes bench/results/checks.json and prints a table.
Usage: python bench/checks_bench.py [--dialogues 5000] [--turns 20] [--dup-dialogues 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
import tracemalloc
from pathlib import Path

from rolegen.checks import DialogueTurns, check_dialogues, near_duplicates

INTRO = "I'm Captain Mara Vell, master of the airship Kestrel."


def _vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    letters = "etaoinshrdlucmfwypvbgkqjxz"
    words = set()
    while len(words) < size:
        n = rng.choice([2, 3, 3, 4, 4, 5, 5, 6, 7, 8, 9])
        words.add("".join(rng.choice(letters[: 8 + n]) for _ in range(n)))
    return sorted(words)


_WEIGHTS: dict[int, list[float]] = {}


def _sentence(rng: random.Random, vocab: list[str]) -> str:
    """Words drawn by Zipf's law (weight 1/rank), like natural text."""
    if len(vocab) not in _WEIGHTS:
        total, cum = 0.0, []
        for rank in range(1, len(vocab) + 1):
            total += 1 / rank
            cum.append(total)
        _WEIGHTS[len(vocab)] = cum
    words = rng.choices(vocab, cum_weights=_WEIGHTS[len(vocab)], k=rng.randint(7, 14))
    return " ".join(words).capitalize() + rng.choice([".", ".", "!", "?"])


def _turn(rng: random.Random, vocab, earlier: list[str]) -> str:
    roll = rng.random()
    if earlier and roll < 0.25:  # a near-copy of an earlier turn
        words = rng.choice(earlier).split()
        for _ in range(rng.randint(1, 4)):
            words[rng.randrange(len(words))] = rng.choice(vocab)
        return " ".join(words)
    if roll < 0.35:  # a loop inside the reply
        s = _sentence(rng, vocab)
        return " ".join([s] * 4) + " " + _sentence(rng, vocab)
    text = []
    if roll < 0.45:
        text.append(INTRO)
    while sum(len(t) + 1 for t in text) < 380:
        text.append(_sentence(rng, vocab))
    return " ".join(text)


def corpus(dialogues: int, turns: int, seed: int = 0) -> list[DialogueTurns]:
    rng = random.Random(seed)
    vocab = _vocabulary(rng)
    out = []
    for _ in range(dialogues):
        character: list[str] = []
        for _ in range(turns):
            character.append(_turn(rng, vocab, character))
        out.append(
            DialogueTurns(
                character=character,
                users=["What now?"] * turns,
                name="Captain Mara Vell",
                intro=INTRO,
                user_name="Alex",
                has_greeting=False,
            )
        )
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dialogues", type=int, default=5000)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--dup-dialogues", type=int, default=100_000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "checks.json"))
    args = parser.parse_args()

    data = corpus(args.dialogues, args.turns)
    n_turns = sum(len(d.character) for d in data)
    mean_chars = sum(len(t) for d in data for t in d.character) / n_turns
    check_dialogues(data[:50])  # warm-up
    start = time.perf_counter()
    results = check_dialogues(data)
    seconds = time.perf_counter() - start
    flagged = {}
    for turns in results:
        for c in turns:
            for r in c.reasons:
                flagged[r] = flagged.get(r, 0) + 1

    start = time.perf_counter()
    exact = check_dialogues(data, prefilter=False)
    exact_seconds = time.perf_counter() - start
    assert [[c.reasons for c in t] for t in exact] == [[c.reasons for c in t] for t in results]

    # 100k dialogue texts: 95% distinct, 5% edited copies of earlier ones
    rng = random.Random(1)
    n_copies = args.dup_dialogues // 20
    base = [
        " ".join(d.character[:4])[:1500] for d in corpus(args.dup_dialogues - n_copies, 4, seed=7)
    ]
    texts = list(base)
    for _ in range(n_copies):
        w = rng.choice(base).split()
        for _ in range(rng.randint(1, 12)):
            w[rng.randrange(len(w))] = "x" * rng.randint(2, 7)
        texts.append(" ".join(w))
    tracemalloc.start()
    start = time.perf_counter()
    pairs = near_duplicates(texts, threshold=90)
    dup_seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "turn_checks": {
            "dialogues": len(data),
            "turns": n_turns,
            "mean_chars": round(mean_chars, 1),
            "seconds": round(seconds, 3),
            "turns_per_second": round(n_turns / seconds),
            "exact_seconds": round(exact_seconds, 3),
            "exact_turns_per_second": round(n_turns / exact_seconds),
            "flagged_by_reason": flagged,
        },
        "near_duplicates": {
            "dialogues": len(texts),
            "edited_copies": n_copies,
            "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
            "seconds": round(dup_seconds, 2),
            "pairs_found": len(pairs),
            "peak_python_memory_mb": round(peak / 1e6, 1),
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    t, d = result["turn_checks"], result["near_duplicates"]
    print(
        f"per-turn checks: {t['turns']} turns (~{t['mean_chars']:.0f} chars) in "
        f"{t['dialogues']} dialogues: {t['seconds']:.2f} s = {t['turns_per_second']:,} turns/s "
        f"(exact ratios, no pre-filter: {t['exact_turns_per_second']:,} turns/s)"
    )
    print(f"flagged: {t['flagged_by_reason']}")
    print(
        f"near-duplicates: {d['dialogues']} dialogues (~{d['mean_chars']:.0f} chars): "
        f"{d['seconds']:.1f} s, {d['pairs_found']} pairs, peak {d['peak_python_memory_mb']} MB"
    )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
