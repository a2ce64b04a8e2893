"""Work said of oneself without an occupation word, read by `self_claims`: a field of
work ("I've been working in the fashion industry", "I'm in the business of banking":
`fields_said`), and a business of one's own ("I've got a little gift shop", "I started a
small business", "I'm just a little fabric shop": `businesses_said`) with whether the
card contradicts it (`contradicts_card`).

A field is a trade group (`persona_words.FIELDS`). A business goes to its workplace's trade group (`persona_words.WORKPLACES`): "trade" for a
shop or a business, "food" for a bakery or a bar; a modifier that is a workplace word of
its own decides ("a coffee shop" is food). It contradicts a card that names no workplace
or trade of that group, unless the card's character makes things, cooks or performs:
makers sell what they make.

Not handled: the past ("I used to run a shop"), a negation ("I don't own a shop"),
someone else's business ("my friend's shop"), and languages other than English.
"""

from __future__ import annotations

import re

from rolegen.checks.persona_words import FIELD_OF, FIELD_WORD, WORKPLACE_OF

_FIELD_SAYING = re.compile(
    r"\b(?:i(?:'ve|’ve| have)? (?:always |been |always been )*work(?:ed|ing)?|my (?:job|work|career)"
    r"(?: is)?)\s+(?:in|into)\s+(?:the\s+)?(?:(?:industry|business|field|world|trade) of\s+)?"
    r"(?P<field>[\w -]{2,30})"
    r"|\b(?:i am|i'm|i’m|i(?:'ve|’ve| have) been)\s+in\s+the\s+(?:(?:industry|business|field|trade) of\s+"
    r"(?P<of>[\w -]{2,30})|(?P<before>[\w -]{2,30}?)\s+(?:industry|business|field|trade)\b)",
    re.IGNORECASE,
)

_OWN_BUSINESS = re.compile(
    r"(?:\bi(?:'ve|’ve| have)?\s+(?:(?:just|even|recently|also|always|once|now)\s+)*"
    r"(?:own|run|opened|started|set up|got|have|founded)\s+|\bi(?:'m|’m| am)\s+(?:just\s+)?)"
    r"(?:an?|my own|this|the)\s+(?:(?:little|small|tiny|new|nice|lovely|cozy|cosy|local|"
    r"big|own)\s+)*(?:(?P<modifier>[\w-]+)\s+)?(?P<place>shop|business|store|stall|boutique|"
    r"bakery|restaurant|café|cafe|bar|pub|diner|tavern)s?\b"
    r"(?!\s+(?:owner|keeper|of|to)\b)",
    re.IGNORECASE,
)
# places the workplace lexicon does not hold
_GROUP = {"business": "trade", "pub": "food", "diner": "food"}
# one of these is in every _OWN_BUSINESS match: the pattern reads only the texts that hold one
_NEEDLES = (
    "shop", "business", "store", "stall", "boutique", "bakery", "restaurant", "caf", "bar",
    "pub", "diner", "tavern",
)  # fmt: skip
# a card of one of these groups sells what it makes
_SELLING = frozenset({"craft", "food", "arts"})
# the first-person verbs of `_OWN_BUSINESS` that `self_claims.CLAIM_NEEDLES` lacks
CLAIM_NEEDLES = ("i own", "i run", "i opened", "i started", "i set up", "i founded")


def fields_said(speech: str) -> list[str]:
    """The trade group of each field of work the speaker says is theirs, in order."""
    out = []
    for m in _FIELD_SAYING.finditer(speech):
        field_name = FIELD_WORD.match(m.group("field") or m.group("of") or m.group("before"))
        if field_name:
            out.append(FIELD_OF[field_name.group(1).lower()])
    return out


def businesses_said(speech: str) -> list[str]:
    """The trade group of each business the speaker says is theirs, in order."""
    low = speech.lower()
    if not any(n in low for n in _NEEDLES):
        return []
    out = []
    for m in _OWN_BUSINESS.finditer(speech):
        place = m.group("place").lower()
        out.append(
            WORKPLACE_OF.get((m.group("modifier") or "").lower())
            or WORKPLACE_OF.get(place)
            or _GROUP.get(place, "trade")
        )
    return out


def contradicts_card(said: list[str], card_trades: tuple[str, ...]) -> bool:
    """A business of a group the card never names (a shop is none for a maker's card)."""
    selling = bool(_SELLING & set(card_trades))
    return any(b not in card_trades and not (b == "trade" and selling) for b in said)
