"""Filler tics: a short phrase a reply keeps coming back to ("…, you know? … you know?
… you know?"), which neither seq-rep-4 (4-grams inside a reply) nor the loop check
(sentences repeated back to back) counts. An eval metric (`evaluation/metrics.py`,
`filler_tic`), not a generate check: it has no calibration against labels.
"""

from __future__ import annotations

import re
from collections import Counter

# A clause of a reply, for the filler tics: the text between punctuation or stage marks.
_CLAUSE_BREAK = re.compile(r"[,.;:!?…—–()*\"“”\n。，！？]+")
_TIC_WORD = re.compile(r"\w+(?:['’]\w+)?")


def filler_tics(text: str, max_words: int = 3, times: int = 3) -> list[str]:
    """Short phrases a reply keeps coming back to: a clause of at most `max_words` words,
    set off by punctuation, that recurs `times` times or more apart from itself ("I'm just
    a little guy, you know? It's just me, you know? ... you know?", a vocative "Captain"
    after every sentence). A clause said again right after itself counts once: "No, no,
    no" is emphasis, and back-to-back repeats are the loop check's."""
    counts: Counter[str] = Counter()
    previous = None
    for clause in _CLAUSE_BREAK.split(text.lower()):
        words = _TIC_WORD.findall(clause)
        if not words:
            continue
        phrase = " ".join(words)
        if phrase != previous and len(words) <= max_words:
            counts[phrase] += 1
        previous = phrase
    return [phrase for phrase, n in counts.items() if n >= times]
