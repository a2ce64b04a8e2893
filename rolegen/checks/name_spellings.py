"""Other spellings of a character's name that a reply may use (a card's `aliases`, which
the identity checks read as the name): without accents, and a Chinese name in pinyin."""

from __future__ import annotations

import re
import unicodedata


def other_spellings(name: str) -> tuple[str, ...]:
    """Other spellings a reply may use: without accents ("Dona"), and for a Chinese name
    its pinyin, family name and given name ("Shen Qinghe", "Shen", "Qinghe"), when the
    pypinyin package is installed. A name with kana is Japanese: its kanji get no pinyin
    ("杉浦ふみ" is no "Shan Pu"). Not handled: a Japanese name in kanji alone."""
    out = []
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    if plain != name:
        out.append(plain)
    han = "".join(re.findall(r"[\u3400-\u9fff]", name))
    if han and not re.search(r"[\u3040-\u30ff]", name):  # kana: a Japanese name, no pinyin
        try:
            from pypinyin import lazy_pinyin
        except ImportError:
            return tuple(out)
        syllables = [s.capitalize() for s in lazy_pinyin(han)]
        if len(syllables) >= 2:
            given = "".join(syllables[1:]).capitalize()
            out += [f"{syllables[0]} {given}", syllables[0], given]
    return tuple(out)
