"""What a reply says, found by pattern: identity questions, self-introductions, the
character's name, assistant boilerplate, the language of a reply; and `search_each`,
one regular expression over many texts with a substring pre-filter.

Written for English, French, Spanish and German (the shipped personas' languages),
with a few Chinese identity questions. Not handled: paraphrased boilerplate, names
in scripts without word boundaries in the self-introduction pattern.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

ASKED_IDENTITY = re.compile(
    r"\b(who are you|who you are|what(?:'s| is) your name|your name|introduce yourself|"
    r"tell me about yourself|remind me who|qui êtes[- ]vous|qui es[- ]tu|comment vous appelez|"
    r"comment tu t'appelles|votre nom|ton nom|quién eres|quién es usted|cómo te llamas|"
    r"cómo se llama|tu nombre|su nombre|wer bist du|wie heißt du|你是谁|你叫什么)",
    re.IGNORECASE,
)
OOC = re.compile(
    r"\b(as an ai\b|an ai language model|as a language model|i'?m an ai\b|i am an ai\b|"
    r"i'?m just an ai|openai|as a helpful assistant|i cannot fulfill|i can'?t assist with|"
    r"i'?m sorry, but i can'?t|\(ooc|\[ooc|out of character)",
    re.IGNORECASE,
)
_STOPWORDS = {
    "en": "the and you to of is that it in my your with for this have are be was what not i".split(),
    "fr": "le la les et vous de des un une est que je pas pour dans ce qui sur au mais".split(),
    "es": "el la los las y de que en un una es no por con para lo se su mi pero".split(),
    "de": "der die das und ich sie nicht ist zu den mit ein eine es auf für du".split(),
    "it": "il la e di che non un una per con sono mi si lo ma ho".split(),
    "pt": "o a os as e de que não um uma para com se eu por mas".split(),
}
_STOP_LOOKUP = {w: lang for lang, words in _STOPWORDS.items() for w in words}
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def self_intro_pattern(name: str) -> re.Pattern | None:
    parts = [re.escape(p) for p in re.split(r"\s+", name.strip()) if len(p) > 2]
    if not parts:
        return None
    names = "|".join(parts)
    return re.compile(
        rf"\b(?:i am|i'm|i’m|my name is|my name's|they call me|call me|je suis|je m'appelle|"
        rf"soy|me llamo|ich bin)\s+(?:\w+\s+){{0,2}}(?:{names})\b",
        re.IGNORECASE,
    )


def detect_language(words: list[str], text: str) -> str | None:
    if len(_CJK.findall(text)) > max(3, len(text) // 5):
        return "zh"
    counts = Counter(_STOP_LOOKUP[w] for w in words if w in _STOP_LOOKUP)
    if sum(counts.values()) < 3:
        return None  # too short to tell
    return counts.most_common(1)[0][0]


def asks_identity(user_turn: str | None) -> bool:
    """The user asked who the character is (an echo then is an answer, not a tic)."""
    return bool(user_turn) and ASKED_IDENTITY.search(user_turn) is not None


_TITLES = {
    "captain", "sir", "lady", "lord", "doctor", "dr", "professor", "chef", "detective",
    "tutor", "master", "mister", "mrs", "miss", "madame", "monsieur", "don", "doña", "señor",
    "the", "of", "von", "van", "de", "la", "le", "el", "old", "keeper", "ai",
}  # fmt: skip


def names_character(reply: str, name: str) -> bool:
    """The reply says the character's name: any part of it that is not a title ("Mara" or
    "Vell" for "Captain Mara Vell"); identity recall when the user asked for it."""
    parts = [p for p in re.split(r"[\s,.]+", name.strip()) if len(p) > 1]
    own = [p for p in parts if p.lower() not in _TITLES] or parts
    if not own:
        return False
    pattern = r"\b(?:" + "|".join(re.escape(p) for p in own) + r")\b"
    return re.search(pattern, reply, re.IGNORECASE) is not None


# Lowercase strings of which every match of a pattern contains one: plain substring
# tests (fast) pick the few texts that the regular expression (slow) then looks at.
OOC_NEEDLES = (
    "an ai",
    "language model",
    "openai",
    "helpful assistant",
    "cannot fulfill",
    "t assist with",
    "sorry, but i can",
    "(ooc",
    "[ooc",
    "out of character",
)
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
