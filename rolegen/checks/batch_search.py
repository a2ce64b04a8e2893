"""`search_each`: one regular expression over a batch of texts, searched as one string
(with substring needles first, when the pattern has them). The per-turn checks
(`turns.py`) flag whole batches with it."""

from __future__ import annotations

import re

import numpy as np

# Joins texts that are searched as one string; no pattern here matches across it.
_SEPARATOR = "\x00\n"


def search_each(
    pattern: re.Pattern, texts: list[str | None], needles: tuple[str, ...] | None = None
) -> np.ndarray:
    """Whether `pattern` occurs in each text. With `needles` (lowercase strings of which
    a match must contain one) the regular expression runs only on texts holding one."""
    hits = np.zeros(len(texts), dtype=bool)
    texts = [t or "" for t in texts]
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + len(_SEPARATOR)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if texts else lengths
    joined = _SEPARATOR.join(texts)
    if needles is None:
        ends = [m.end() - 1 for m in pattern.finditer(joined)]  # the match's last character
        hits[np.searchsorted(starts, ends, side="right") - 1] = True
        return hits
    low = joined.lower()
    if len(low) == len(joined):  # lower() kept every position
        candidates: set[int] = set()
        for needle in needles:
            i = low.find(needle)
            while i != -1:
                k = int(np.searchsorted(starts, i, side="right")) - 1
                candidates.add(k)
                i = low.find(needle, starts[k] + lengths[k]) if k + 1 < len(texts) else -1
    else:
        candidates = {k for k, t in enumerate(texts) if any(n in t.lower() for n in needles)}
    for k in candidates:
        hits[k] = pattern.search(texts[k]) is not None
    return hits
