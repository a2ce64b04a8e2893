"""Benchmark the repetition checks (`rolegen/checks/turns.py`) on a synthetic corpus.

- Per-turn checks: 100,000 character turns of about 400 characters in 5,000
  dialogues (20 turns each), with injected near-copies, loops and intro echoes.
  Reported as turns/s, best of --repeats runs:
  - the target subset, `repetition_scores`: echo (intro partial_ratio), cross-turn
    (max word-level ratio, crep-4) and loops (seq-rep-4, back-to-back runs), openers;
  - all of `check_dialogues` (adds the regular-expression checks and the per-turn
    result objects), with the pre-filters and without (exact scores, as metrics use);
  - for comparison, the former character-level cross-turn scoring: `process.cpdist`
    with `fuzz.ratio` over the same pairs, behind the same length pre-filter;
  - import and first call in a fresh interpreter, with an empty numba cache (the
    kernels compile) and then with that cache filled (NUMBA_CACHE_DIR of its own).
- All checks on real replies: the persona calibration's labelled turns (the embedded
  model's own output, with their cards' facts), repeated to --real-turns scored turns.
  The synthetic turns above are pseudo-words that seldom reach the persona checks.
- Near-duplicate dialogues over 100,000 dialogue texts: time and peak memory.

The machine's load average is recorded: another process on the same cores makes the
figures noisy. Writes bench/results/checks.json and prints a table.
Usage: python bench/checks_bench.py [--dialogues 5000] [--turns 20] [--dup-dialogues 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process, utils

from rolegen.checks.dataset_stats import near_duplicates
from rolegen.checks.repetition import repetition_scores
from rolegen.checks.turns import CheckConfig, DialogueTurns, check_dialogues

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


def dialogue_texts(n: int) -> list[str]:
    """`n` dialogue texts of up to 1,500 characters for the near-duplicate benchmark: 95%
    distinct, 5% copies of earlier ones with 1 to 12 words changed."""
    rng = random.Random(1)
    n_copies = n // 20
    base = [" ".join(d.character[:4])[:1500] for d in corpus(n - n_copies, 4, seed=7)]
    texts = list(base)
    for _ in range(n_copies):
        w = rng.choice(base).split()
        for _ in range(rng.randint(1, 12)):
            w[rng.randrange(len(w))] = "x" * rng.randint(2, 7)
        texts.append(" ".join(w))
    return texts


def _best(fn, repeats: int) -> tuple[float, list[float], object]:
    """Best wall time of `repeats` calls (the least disturbed by other processes)."""
    runs, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - start)
    return min(runs), [round(r, 3) for r in runs], result


def _char_level_cross_turn(data: list[DialogueTurns], cutoff: float = 80.0) -> float:
    """Seconds of the former cross-turn scoring: character-level `fuzz.ratio` over every
    (t, s < t) pair, length pre-filter, one `cpdist` with `score_cutoff`."""
    start = time.perf_counter()
    processed = [utils.default_process(t) for d in data for t in d.character]
    lengths = np.array([len(p) for p in processed])
    q, c, offset = [], [], 0
    for d in data:
        t, s = np.tril_indices(len(d.character), -1)
        q.append(t + offset)
        c.append(s + offset)
        offset += len(d.character)
    q, c = np.concatenate(q), np.concatenate(c)
    lq, lc = lengths[q], lengths[c]
    keep = 200 * np.minimum(lq, lc) / np.maximum(lq + lc, 1) >= cutoff
    process.cpdist(
        [processed[i] for i in q[keep]],
        [processed[i] for i in c[keep]],
        scorer=fuzz.ratio,
        workers=-1,
        score_cutoff=cutoff,
    )
    return time.perf_counter() - start


_FIRST_CALL = (
    "import time; start = time.perf_counter()\n"
    "from rolegen.checks.turns import DialogueTurns, check_dialogues\n"
    "d = DialogueTurns(character=['Hello there.', 'Hello there!'], users=[None, 'Hi?'], "
    "intro='I am Mara.', name='Mara', user_name='Alex')\n"
    "check_dialogues([d]); check_dialogues([d], prefilter=False)\n"
    "print(time.perf_counter() - start)\n"
)


def _first_call_seconds() -> tuple[float, float]:
    """(cold, warm): import + first check_dialogues call with an empty numba cache (all
    kernels compile), then again in a new interpreter with that cache filled."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        runs = [
            float(
                subprocess.run(
                    [sys.executable, "-c", _FIRST_CALL],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
            for _ in range(2)
        ]
    return runs[0], runs[1]


def real_turns(n: int) -> list[DialogueTurns]:
    """The labelled replies of the persona calibration (real model output, their cards'
    facts read), repeated to `n` scored turns: each scores its last turn only."""
    from persona_calibration import DATA

    from rolegen.evaluation.labels import card_facts_of, labelled_card_folders, read_labelled

    _, items = read_labelled(DATA, card_facts_of(labelled_card_folders()))
    return [items[k % len(items)] for k in range(n)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dialogues", type=int, default=5000)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--dup-dialogues", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--real-turns", type=int, default=20_000, help="Scored turns of real replies."
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "checks.json"))
    args = parser.parse_args()
    load_before = os.getloadavg()

    cold_seconds, warm_seconds = _first_call_seconds()
    data = corpus(args.dialogues, args.turns)
    n_turns = sum(len(d.character) for d in data)
    mean_chars = sum(len(t) for d in data for t in d.character) / n_turns
    check_dialogues(data[:50])  # warm-up
    subset_seconds, subset_runs, _ = _best(lambda: repetition_scores(data), args.repeats)
    seconds, runs, results = _best(lambda: check_dialogues(data), args.repeats)
    flagged = {}
    for turns in results:
        for c in turns:
            for r in c.reasons:
                flagged[r] = flagged.get(r, 0) + 1
    exact_seconds, exact_runs, exact = _best(
        lambda: check_dialogues(data, prefilter=False), args.repeats
    )
    assert [[c.reasons for c in t] for t in exact] == [[c.reasons for c in t] for t in results]
    char_seconds = min(_char_level_cross_turn(data) for _ in range(args.repeats))
    real = real_turns(args.real_turns)
    check_dialogues(real[:50])
    real_seconds, real_runs, _ = _best(lambda: check_dialogues(real), args.repeats)
    texts = dialogue_texts(args.dup_dialogues)
    tracemalloc.start()
    start = time.perf_counter()
    pairs = near_duplicates(texts, threshold=90)
    dup_seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "numba": {
            "first_call_cold_cache_seconds": round(cold_seconds, 2),
            "first_call_warm_cache_seconds": round(warm_seconds, 2),
        },
        "turn_checks": {
            "dialogues": len(data),
            "turns": n_turns,
            "mean_chars": round(mean_chars, 1),
            "repeat_ratio": CheckConfig().repeat_ratio,
            "target_subset_seconds": round(subset_seconds, 3),
            "target_subset_turns_per_second": round(n_turns / subset_seconds),
            "target_subset_runs": subset_runs,
            "seconds": round(seconds, 3),
            "turns_per_second": round(n_turns / seconds),
            "runs": runs,
            "exact_seconds": round(exact_seconds, 3),
            "exact_turns_per_second": round(n_turns / exact_seconds),
            "exact_runs": exact_runs,
            "char_level_cross_turn_seconds": round(char_seconds, 3),
            "flagged_by_reason": flagged,
        },
        "real_turn_checks": {
            "source": "tests/data/labelled_persona_turns.jsonl, repeated",
            "scored_turns": len(real),
            "mean_chars": round(sum(len(d.character[-1]) for d in real) / len(real), 1),
            "seconds": round(real_seconds, 3),
            "turns_per_second": round(len(real) / real_seconds),
            "runs": real_runs,
        },
        "near_duplicates": {
            "dialogues": len(texts),
            "edited_copies": args.dup_dialogues // 20,
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
        f"{t['turns']} turns (~{t['mean_chars']:.0f} chars) in {t['dialogues']} dialogues, "
        f"best of {args.repeats}, load average {result['load_average_before_after']}:"
    )
    print(
        f"  echo + cross-turn + loops: {t['target_subset_seconds']:.2f} s = "
        f"{t['target_subset_turns_per_second']:,} turns/s {t['target_subset_runs']}"
    )
    print(
        f"  all checks: {t['seconds']:.2f} s = {t['turns_per_second']:,} turns/s {t['runs']}; "
        f"exact scores: {t['exact_turns_per_second']:,} turns/s"
    )
    print(
        f"  former char-level cross-turn cpdist alone: {t['char_level_cross_turn_seconds']:.2f} s"
    )
    print(
        f"  import + first call: {result['numba']['first_call_cold_cache_seconds']} s with an "
        f"empty numba cache (compiling), {result['numba']['first_call_warm_cache_seconds']} s "
        "with it filled"
    )
    print(f"flagged: {t['flagged_by_reason']}")
    rt = result["real_turn_checks"]
    print(
        f"  all checks on real replies (the labelled persona turns, ~{rt['mean_chars']:.0f} "
        f"chars): {rt['seconds']:.2f} s for {rt['scored_turns']:,} = "
        f"{rt['turns_per_second']:,} turns/s {rt['runs']}"
    )
    print(
        f"near-duplicates: {d['dialogues']} dialogues (~{d['mean_chars']:.0f} chars): "
        f"{d['seconds']:.1f} s, {d['pairs_found']} pairs, peak {d['peak_python_memory_mb']} MB"
    )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
