"""Patterns over a batch of texts at once: `search_each` runs one regular expression over
the batch, `holding` finds which texts hold one of a set of substrings. The per-turn
checks (`turns.py`) flag whole batches with them.

Substring needles are found by one Aho-Corasick automaton per set (ahocorasick-rs): one
pass over each text, whatever the number of needles.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
from ahocorasick_rs import AhoCorasick

# Joins texts that are searched as one string; no pattern here matches across it.
_SEPARATOR = "\x00\n"


@lru_cache(maxsize=512)
def _automaton(needles: tuple[str, ...]) -> AhoCorasick:
    return AhoCorasick(list(needles))


def holding(lows: list[str], needles: tuple[str, ...]) -> np.ndarray:
    """Whether each text of `lows` (lowercased) holds one of `needles` (lowercase,
    none empty): `any(n in low for n in needles)` for each."""
    find = _automaton(needles).find_matches_as_indexes
    return np.fromiter((bool(find(low)) for low in lows), dtype=bool, count=len(lows))


def search_each(
    pattern: re.Pattern,
    texts: list[str | None],
    needles: tuple[str, ...] | None = None,
    lows: list[str] | None = None,
) -> np.ndarray:
    """Whether `pattern` occurs in each text. With `needles` (lowercase strings of which
    a match must contain one) the regular expression runs only on texts holding one;
    `lows`: the texts lowercased, where the caller has them."""
    texts = [t or "" for t in texts]
    if needles is not None:
        lows = lows if lows is not None else [t.lower() for t in texts]
        hits = holding(lows, needles)
        for k in np.flatnonzero(hits).tolist():
            hits[k] = pattern.search(texts[k]) is not None
        return hits
    hits = np.zeros(len(texts), dtype=bool)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + len(_SEPARATOR)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if texts else lengths
    ends = [m.end() - 1 for m in pattern.finditer(_SEPARATOR.join(texts))]  # last character
    hits[np.searchsorted(starts, ends, side="right") - 1] = True
    return hits


def search_distinct(pattern: re.Pattern, texts: list[str | None]) -> np.ndarray:
    """`search_each` without needles, each distinct text searched once: the user's
    lines of a suite repeat across its cards, systems and prompts."""
    distinct = list(dict.fromkeys(t or "" for t in texts))
    hit = dict(zip(distinct, search_each(pattern, distinct).tolist()))
    return np.fromiter((hit[t or ""] for t in texts), dtype=bool, count=len(texts))
