"""Dataset-level checks over many dialogues: distinct-n, shared openings and
near-duplicate dialogues (MinHash over word 3-grams + LSH, confirmed with
`fuzz.ratio`). The per-turn checks are in checks.py.
"""

from __future__ import annotations

import zlib
from collections import Counter

import numpy as np
from rapidfuzz import fuzz, process, utils


def distinct_n(texts: list[str], n: int) -> float:
    total, unique = 0, set()
    for t in texts:
        w = utils.default_process(t).split()
        grams = list(zip(*(w[i:] for i in range(n))))
        total += len(grams)
        unique.update(grams)
    return len(unique) / total if total else 0.0


def shared_openings(first_replies: list[str], words: int = 4) -> dict[str, int]:
    """Openings (first N words of the first reply) shared by more than one dialogue."""
    counts = Counter(
        " ".join(utils.default_process(t).split()[:words]) for t in first_replies if t.strip()
    )
    return {k: v for k, v in counts.most_common() if v > 1}


_MERSENNE = (1 << 61) - 1


def _stable_hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def near_duplicates(
    texts: list[str],
    threshold: float = 85.0,
    num_perm: int = 128,
    bands: int = 32,
    shingle: int = 3,
    seed: int = 0,
) -> list[tuple[int, int, float]]:
    """Pairs (i, j, ratio) of texts that are near-copies (`fuzz.ratio` >= threshold).

    MinHash over word 3-gram shingles with LSH banding finds candidate pairs without
    comparing all n^2 of them; each candidate is then verified with `fuzz.ratio`.
    """
    rng = np.random.default_rng(seed)
    a = rng.integers(1, _MERSENNE, num_perm, dtype=np.uint64)
    b = rng.integers(0, _MERSENNE, num_perm, dtype=np.uint64)
    rows = num_perm // bands
    processed = [utils.default_process(t) for t in texts]
    signatures = np.full((len(texts), num_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
    for i, p in enumerate(processed):
        w = p.split()
        grams = {_stable_hash(" ".join(g)) for g in zip(*(w[k:] for k in range(shingle)))}
        grams = grams or {_stable_hash(p)}
        h = np.fromiter(grams, dtype=np.int64, count=len(grams)).view(np.uint64)
        # (a * h + b) mod 2^64 as a universal hash family; the min over shingles per
        # permutation is the MinHash signature
        signatures[i] = (np.outer(h, a) + b).min(axis=0)
    candidates = set()
    for band in range(bands):
        keys = signatures[:, band * rows : (band + 1) * rows]
        buckets: dict[bytes, list[int]] = {}
        for i, key in enumerate(keys):
            buckets.setdefault(key.tobytes(), []).append(i)
        for members in buckets.values():
            if 1 < len(members) <= 100:  # a giant bucket is shared boilerplate, not a pair
                candidates.update((x, y) for k, x in enumerate(members) for y in members[k + 1 :])
    if not candidates:
        return []
    pairs = sorted(candidates)
    scores = process.cpdist(
        [processed[i] for i, _ in pairs],
        [processed[j] for _, j in pairs],
        scorer=fuzz.ratio,
        workers=-1,
    )
    return [(i, j, float(s)) for (i, j), s in zip(pairs, scores) if s >= threshold]


def dataset_scores(dialogue_texts: list[list[str]], first_replies: list[str]) -> dict:
    """distinct-1/2 over all character turns, and shared openings of the first replies.
    `first_replies`: each dialogue's first reply to the user, not the card's greeting,
    which every dialogue of a persona shares by design."""
    turns = [t for d in dialogue_texts for t in d]
    firsts = [t for t in first_replies if t]
    shared = shared_openings(firsts)
    return {
        "character_turns": len(turns),
        "distinct_1": distinct_n(turns, 1),
        "distinct_2": distinct_n(turns, 2),
        "shared_openings": dict(list(shared.items())[:20]),
        "share_with_shared_opening": sum(shared.values()) / len(firsts) if firsts else 0.0,
    }
