"""WordNet's nouns of being, beyond the hand lexicon of `persona_words`: 18,531 nouns whose
every sense is an animal, a spirit or mythical being, or a made thing, exported once from
WordNet 3.0 by bench/wordnet_kinds.py into `wordnet_kinds.tsv` (rolegen never needs WordNet
itself). `noun_kind` reads a noun phrase's head ("Fenn is a hoopoe", "I'm a snowman"),
`wordnet_animals` the animals a card names, and `animal_families` / `animal_family` tell "I'm
a bird" from a shoebill (agrees) from "I'm a cat" from a capybara (does not).

Not handled: nouns WordNet knows in senses of two kinds ("bat": an animal and a club;
"spirit"), nouns that are also adjectives ("grey" is a horse), phrases of three words or
more, and languages other than English.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from rolegen.checks.persona_words import ANIMAL_FAMILY, KIND_OF


@cache
def _wordnet() -> dict[str, tuple[str, tuple[str, ...]]]:
    """WordNet's unambiguous nouns of being (`wordnet_kinds.tsv`, written by
    bench/wordnet_kinds.py): noun -> (kind, its first sense's hypernyms, nearest first)."""
    out = {}
    path = Path(__file__).with_name("wordnet_kinds.tsv")
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            noun, kind, hypernyms = line.split("\t")
            out[noun.replace("_", " ")] = (
                kind,
                tuple(h.replace("_", " ") for h in hypernyms.split()),
            )
    return out


# WordNet's kinds as the checks name them; a made thing ("a snowman") is a thing
_WORDNET_KIND = {"animal": "animal", "supernatural": "supernatural", "artifact": "object"}


def noun_kind(words: list[str]) -> tuple[str, str] | None:
    """(kind, noun) for a noun phrase's head outside the lexicon, from WordNet: its last two
    words ("guinea fowl") or its last word ("shoebill", "capybara"), plural or not; None for
    a head WordNet does not know, knows in senses of two kinds ("bat") or as no being."""
    for n in (2, 1):
        if len(words) < n:
            continue
        head = " ".join(words[-n:])
        for noun in (head, head[:-1] if head.endswith("s") else None):
            if noun and noun not in KIND_OF and (found := _wordnet().get(noun)):
                return _WORDNET_KIND[found[0]], noun
    return None


def wordnet_animals(text: str) -> list[str]:
    """The nouns of `text`, one or two words, that WordNet knows only as animals and the
    lexicon does not know ("hoopoe", "boundary-reeve", "guinea fowl"), plural or not,
    written in lower case (a capitalized "Lotte" is a name, not a monkfish) and of four
    letters or more (the German "das" is no hyrax)."""
    words = [w if len(w) > 3 else "" for w in re.findall(r"\b[a-z][a-z']*\b", text)]
    out = []
    for i, word in enumerate(words):
        if not word:
            continue
        for noun in (f"{word} {words[i + 1]}" if i + 1 < len(words) and words[i + 1] else "", word):
            for form in (noun, noun[:-1] if noun.endswith("s") else ""):
                if len(form) <= 3 or form in KIND_OF:
                    continue  # "dass" is no plural of "das"
                found = _wordnet().get(form)
                if found and found[0] == "animal":
                    out.append(form)
    return out


def animal_families(word: str) -> set[str]:
    """The animal families a word of a card names: its own (`ANIMAL_FAMILY`, or the
    word), and for a noun WordNet knows, the families of its hypernyms too ("shoebill" is
    a wading bird and a bird), so that a reply naming the animal more broadly agrees."""
    word = word.lower()
    out = {ANIMAL_FAMILY.get(word, word)}
    found = _wordnet().get(word)
    if found and found[0] == "animal":
        out |= {ANIMAL_FAMILY.get(h, h) for h in found[1]}
    return out


def animal_family(word: str) -> str:
    """The family a reply's animal word names: the lexicon's, else that of its nearest
    hypernym in the lexicon ("egret": a heron, a bird), else the word itself."""
    word = word.lower()
    if word in ANIMAL_FAMILY:
        return ANIMAL_FAMILY[word]
    found = _wordnet().get(word)
    for hypernym in found[1] if found and found[0] == "animal" else ():
        if hypernym in ANIMAL_FAMILY:
            return ANIMAL_FAMILY[hypernym]
    return word
