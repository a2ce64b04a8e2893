"""Which of a card's facts (`persona_facts.py`) a reply's claims (`self_claims.py`)
contradict: "age", "sex", "kind", "trade" or "role".

What counts as a contradiction, and why it is narrow:
- age: a stated age far from every age the card states (any whole year for a child, a
  twentieth for an adult, five years from a decade); a card may state several (a ghost
  who died at 38, two centuries ago). "Around 30" is 25 to 35 (a tenth either side, five
  years at least), "over 40" any age above 40. "A young man" or "I'm still young" from
  a card whose every age is 60 or more, "an old lady" from one whose every age is under
  40; "I've lived here for 2,000 years" from one whose oldest age is shorter (by a tenth,
  or half for an age of a hundred or more: great ages are round figures; "I've been
  gone/dead for ..." is no span of life);
- sex: "I'm a woman / man / girl / boy / guy / female ..." against the card's pronouns, or from a
  card that gives its character no sex; narration with only the other sex's subject
  pronouns;
- kind: "I am human" from a ship's AI, "I'm a cat" from an octopus (animals by family),
  "I'm a robot" from a baker, "I'm an old man" from an octopus, "I'm not a machine" from
  an android, "I'm a creature" from a person, "I'm a book" or "I'm a small village" from
  anyone (a thing or a place, as the claim's last word: not "a book lover"), "we humans"
  from anything but a person; a noun WordNet knows ("I'm a snowman"; `wordnet`). Gendered
  human nouns count against artificial and animal cards only (a ghost was a woman), "guy"
  against artificial ones (a ferret is "a little guy"); hedged ("a bit of a man") they
  claim a sex, no kind. A kind word inside a name is none ("Professor Hollis Wren");
  "I'm not the best person to ask" and "I'm not your typical octopus" deny nothing;
- role: the visitor's part, which the scenario gives the user ("I'm just a customer",
  "I'm a guest here");
- trade: an occupation whose trade group the card never names ("I'm a scientist" from a
  baker, "I'm a journalist" from a river spirit whose card names no trade at all), a
  business of one's own whose workplace the card never names (`work_said`), or the
  card's own trade denied ("I'm not a firefighter"), or what the card says the character
  is not ("I'm a chimney sweep" from the stove-setter who "is not a chimney sweep");
  "I'm no doctor" and "a bit of a poet" are no claims.
"""

from __future__ import annotations

from rolegen.checks.ages import far
from rolegen.checks.persona_facts import CardFacts
from rolegen.checks.persona_words import GENDERED_HUMAN, HUMAN_ONLY, KIND_OF, VISITORS
from rolegen.checks.self_claims import Claims
from rolegen.checks.trades import unnamed_trade
from rolegen.checks.wordnet import animal_family
from rolegen.checks.work_said import contradicts_card


def contradictions(facts: CardFacts | None, said: Claims) -> list[str]:
    """Which of the card's facts the reply contradicts: "age", "sex", "kind", "trade", "role"."""
    if facts is None:
        return []
    out = []
    young = bool(facts.ages) and max(facts.ages) < 40  # "an old lady" from a girl
    outside = any(all(not lo <= a <= hi for a in facts.ages) for lo, hi in said.age_ranges)
    elderly = bool(facts.ages) and min(facts.ages) >= 60 and facts.kind in ("human", None)
    oldest = max(facts.ages, default=0.0)
    # a card's great age is a round figure ("over two thousand winters"): half again past it
    slack = oldest / 2 if oldest >= 100 else max(1.0, oldest / 10)
    longer = any(d > oldest + slack for d in said.durations)
    if facts.ages and (
        any(far(a, facts.ages) for a in said.ages)
        or (said.old and young)
        or (said.young and elderly)
        or outside
        or longer
    ):
        out.append("age")
    other = {"female": "male", "male": "female"}.get(facts.sex or "")
    narrated = said.narrated_sex
    if other and (
        other in said.sexes or (narrated.get(other, 0) >= 1 and narrated.get(facts.sex, 0) == 0)
    ):
        out.append("sex")
    elif facts.sex == "none" and said.sexes:
        out.append("sex")  # "I'm just a guy" from a being the card gives no sex
    if facts.kind:
        for kind, negated, word in said.kinds:
            if word not in KIND_OF and word in facts.species:
                wrong = False  # a WordNet animal the card names: a boundary-"reeve"
            elif kind == "nonhuman":  # "a creature of the sea": wrong for a person only
                wrong = facts.kind == "human" and not negated
            elif negated:  # "I'm not a machine" from an android, "I'm not human" from a person
                wrong = kind == facts.kind and (kind != "human" or word in HUMAN_ONLY)
            elif word in GENDERED_HUMAN:
                # "I'm just a little guy" from a ferret is said of anyone; "a man" is not
                wrong = facts.kind == "artificial" or (facts.kind == "animal" and word != "guy")
            elif kind == "animal" == facts.kind and facts.species:
                # a cat, not an octopus; a bird, and a heron, from a shoebill
                wrong = animal_family(word) not in facts.species and word not in facts.species
            else:
                wrong = kind != facts.kind
            if wrong:
                out.append("kind")
                break
    if any(t not in facts.trades for t in said.trades) or contradicts_card(
        said.businesses, facts.trades
    ):
        out.append("trade")
    elif unnamed_trade(said.trade_words, facts.trade_words):
        out.append("trade")  # "I'm a blacksmith" from a stove-setter: both crafts
    elif set(said.heads) & set(facts.not_roles):
        out.append(
            "trade"
        )  # "I'm a chimney sweep" from the stove-setter who is "not a chimney sweep"
    elif facts.trades and any(t in facts.trades for t in said.denied_trades):
        out.append("trade")  # "I'm not a firefighter" from the fire brigade's captain
    if any(kind == "object" and not negated for kind, negated, _ in said.kinds):
        out.append("kind")  # "I'm a book", "I'm a game": no card is a thing
    if set(said.heads) & VISITORS:
        out.append("role")  # "I'm just a customer" from the shopkeeper: the user's part
    return list(dict.fromkeys(out))
