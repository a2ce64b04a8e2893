"""Export WordNet's unambiguous nouns of being to `rolegen/checks/wordnet_kinds.tsv`, once.

The persona checks read kinds of being from a hand-made lexicon (`persona_words.KINDS`); a
card's or a reply's noun outside it ("a shoebill", "a capybara", "I'm a snowman") said
nothing. This script reads Princeton WordNet 3.0's noun database (Debian's `wordnet-base`
package: `apt-get install wordnet-base`, files in /usr/share/wordnet) and keeps each noun
of one or two words whose every sense lies under one of these roots:

- animal.n.01 -> `animal`;
- imaginary_being.n.01 or spiritual_being.n.01 -> `supernatural`;
- artifact.n.01 -> `artifact`.

A noun with senses under two roots, or under none ("bat", "wolf", "spirit", "mess"), is
left out: the checks cannot tell which is meant; so is a noun that is also an adjective
("grey" is a horse, "entire" a stallion). An animal's row also names the hypernyms of
its first sense, nearest first, so that a shoebill's "I'm a bird" agrees with its card.
Rows: `noun<TAB>kind<TAB>hypernym hypernym ...` (spaces inside a noun written as `_`).

rolegen reads the file on the checks' first look-up and never needs WordNet itself. WordNet's licence
(a permissive one, from Princeton University) is in the file's header.

    python bench/wordnet_kinds.py [--wordnet /usr/share/wordnet] [--out PATH]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOTS = {
    "00015388": "animal",  # animal.n.01
    "09483738": "supernatural",  # imaginary_being.n.01
    "09504135": "supernatural",  # spiritual_being.n.01
    "00021939": "artifact",  # artifact.n.01
}
_TOO_BROAD = {"chordate", "vertebrate", "invertebrate", "craniate"}
HEADER = """\
# Nouns of being from WordNet 3.0 (bench/wordnet_kinds.py): noun, kind, first sense's hypernyms.
# WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved. THIS SOFTWARE AND
# DATABASE IS PROVIDED "AS IS" AND PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES,
# EXPRESS OR IMPLIED. Permission to use, copy, modify and distribute this software and database
# and its documentation for any purpose and without fee or royalty is hereby granted, provided
# that you agree to comply with the copyright notice and statements, including the disclaimer,
# and that the same appear on ALL copies. The name of Princeton University or WordNet may not be
# used in advertising or publicity pertaining to distribution of the software and/or database.
"""


def read_synsets(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Each noun synset's offset -> (its lemmas, its hypernyms' offsets)."""
    out = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):
            continue  # the licence
        fields = line.split(" | ")[0].split()
        count = int(fields[3], 16)
        lemmas = [fields[4 + 2 * i].lower() for i in range(count)]
        i = 4 + 2 * count
        pointers, i = int(fields[i]), i + 1
        hypernyms = []
        for _ in range(pointers):
            symbol, offset, pos = fields[i], fields[i + 1], fields[i + 2]
            if symbol in ("@", "@i") and pos == "n":
                hypernyms.append(offset)
            i += 4
        out[fields[0]] = (lemmas, hypernyms)
    return out


def read_index(path: Path) -> dict[str, list[str]]:
    """Each noun -> its synsets' offsets, commonest sense first."""
    out = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):
            continue
        fields = line.split()
        out[fields[0]] = fields[-int(fields[2]) :]
    return out


def export(wordnet: Path) -> list[str]:
    synsets = read_synsets(wordnet / "data.noun")
    roots: dict[str, set[str]] = {}

    def kinds_of(offset: str) -> set[str]:
        if offset not in roots:
            roots[offset] = set()  # a cycle guard; WordNet's noun hierarchy has none
            found = {ROOTS[offset]} if offset in ROOTS else set()
            for hypernym in synsets[offset][1]:
                found |= kinds_of(hypernym)
            roots[offset] = found
        return roots[offset]

    def hypernyms(offset: str) -> list[str]:
        out, queue, seen = [], [offset], set()
        while queue:
            for h in synsets[queue.pop(0)][1]:
                if h not in seen and h not in ROOTS:
                    seen.add(h)
                    out.append(synsets[h][0][0])
                    queue.append(h)
        return out

    adjectives = set(read_index(wordnet / "index.adj"))
    rows = []
    for noun, offsets in sorted(read_index(wordnet / "index.noun").items()):
        if noun.count("_") > 1 or not re.fullmatch(r"[a-z][a-z'_-]*[a-z]", noun):
            continue  # one or two words, letters only
        if noun in adjectives:
            continue  # "grey" (a horse), "entire" (a stallion): read as the adjective
        found = [kinds_of(o) for o in offsets]
        union = set().union(*found)
        if len(union) != 1 or not all(found):
            continue  # senses under two roots, or one under none: ambiguous
        kind = union.pop()
        # an animal's hypernyms up to its phylum, for "I'm a bird" from a shoebill; a thing's
        # or a spirit's are not read
        chain = (
            [h for h in hypernyms(offsets[0]) if h not in _TOO_BROAD] if kind == "animal" else []
        )
        rows.append(f"{noun}\t{kind}\t{' '.join(chain)}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "rolegen/checks/wordnet_kinds.tsv",
    )
    args = parser.parse_args()
    for name in ("data.noun", "index.noun", "index.adj"):
        if not (args.wordnet / name).is_file():
            parser.error(
                f"{args.wordnet / name}: not found; install WordNet 3.0's database "
                "(apt-get install wordnet-base) or name its folder with --wordnet"
            )
    rows = export(args.wordnet)
    args.out.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    print(f"{len(rows)} nouns -> {args.out}")


if __name__ == "__main__":
    main()
