"""Who a card says its character is (`CardFacts`: sex, age, kind, trade, other spellings
of the name), read once from the card's own fields, in the languages the cards ship in
(English, French, Spanish, German, Italian, Chinese). The facts travel in each dialogue record as
`persona_facts`, so the checks need no card; `contradictions` compares a reply's claims
(`self_claims`) with them.

What is read, and from where:
- sex: the name's title ("Lady", "Sir"), else the pronouns of description and
  personality (one "she" is enough in a two-line card; a husband is not; in an Italian
  card "lei", "lui" and "donna", and "il" is an article); "it", "no gender" or
  "they/them" is a being without sex; else a tag that names one sex, in any of a dozen
  languages ("bărbat", "kobieta", "女性");
- ages: every age stated ("an eighty-year-old", "a man of thirty-four", "in her
  seventies", "a hundred and twelve years old", "trentanove anni", "八十岁"), and a made
  thing's years of service ("came off the line nineteen
  years ago"), a sheet's age field, the age at death, and a life of a hundred years or
  more (`ages`); durations ("has kept bees for 40 years") are not ages;
- kind: the first predicate that names a kind of being with the character as its
  subject ("Pip is a 14-year-old boy", "TALLOW is an artificial being"; the subject may
  stand before an aside: "Kuzya, whom the village calls Grandfather, is ..."), the head
  of its own noun phrase only ("a fox spirit" is a spirit; "the captain of the airship
  Kestrel" is no bird; "is interested in the fact that humans eat" names none), else the
  phrase after it when its own head is outside the lexicon ("a domovoi, a house spirit"),
  else an animal for "a talking <word>", else a sheet's species field ('Species("Insect" +
  "firefly")'), else the tags (a noun WordNet knows as a being, "firefly"; a person's in
  other languages too: "umano", "człowiek", "人間"; "non-human" is none), else human for a
  card with a sex;
- species: the animal families the card names, and the word of "a talking <word>" for an
  animal outside the lexicon;
- not_roles: what the card says the character is not ("He is not a chimney sweep", "nor
  a ferryman"), the denied phrase's last one or two words;
- trades: a trade word anywhere in the card, its tags or its name, and workplaces
  ("runs a garage": craft), read loosely on purpose: a trade the card names is the
  character's, or at least no contradiction;
- trade_words: the trade words themselves, of an English card only (another language's
  card may name its trade in a word the reply translates).
Not handled: facts said only in examples or greetings (except trades), ages in words
beyond the thousands, kinds outside `persona_words`, languages other than the six above.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from rolegen.checks.ages import ages
from rolegen.checks.name_spellings import other_spellings
from rolegen.checks.persona_words import (
    FEMALE,
    HUMAN_TAGS,
    KIND_OF,
    KIND_WORD,
    KINDS,
    MALE,
    NEUTER,
    SEX_TAGS,
    TITLE_FACTS,
    TRADE_OF,
    TRADE_WORD,
    TRADES,
    WORKPLACE_OF,
    WORKPLACE_WORD,
    words_of,
)
from rolegen.checks.phrases import detect_language
from rolegen.checks.wordnet import animal_families, noun_kind, wordnet_animals


@dataclass(frozen=True)
class CardFacts:
    """What a card states about its character; None / empty where it states nothing."""

    sex: str | None = None  # "female", "male" or "none" (an "it", no gender)
    ages: tuple[float, ...] = ()  # every age the card states, in years
    kind: str | None = None  # "human", "artificial", "animal" or "supernatural"
    trades: tuple[str, ...] = ()  # trade groups the card names (see TRADES)
    trade_words: tuple[str, ...] = ()  # the trade words themselves, of an English card
    aliases: tuple[str, ...] = ()  # other spellings of the name ("Shen Qinghe", "Dona")
    species: tuple[str, ...] = ()  # animal families the card names ("fox", "octopus")
    not_roles: tuple[str, ...] = ()  # what the card says it is not ("not a chimney sweep")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict | None) -> CardFacts | None:
        """The record's `persona_facts`; None for a record without them or malformed ones."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                sex=data.get("sex") if data.get("sex") in ("female", "male", "none") else None,
                ages=tuple(float(a) for a in data.get("ages") or ()),
                kind=data.get("kind") if data.get("kind") in KINDS else None,
                trades=tuple(t for t in data.get("trades") or () if t in TRADES),
                trade_words=tuple(str(w) for w in data.get("trade_words") or ()),
                aliases=tuple(str(a) for a in data.get("aliases") or ()),
                species=tuple(str(a) for a in data.get("species") or ()),
                not_roles=tuple(str(a) for a in data.get("not_roles") or ()),
            )
        except (TypeError, ValueError):
            return None


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?。！？\n])\s*", text) if s.strip()]


_GERMAN_FEMALE = re.compile(r"\b(?:sie|ihr|ihre|ihren|ihrem|ihrer|\w+erin|androidin)\b", re.I)
_GERMAN_MALE = re.compile(r"\b(?:er|sein|seine|seinen|seinem|seiner)\b", re.I)
# Italian: "lei" and "lui", and the sex words; "il" is the article there, not the French "he"
_ITALIAN_FEMALE = re.compile(r"\b(?:lei|donna|ragazza|signora|bambina|nonna|moglie)\b", re.I)
_ITALIAN_MALE = re.compile(r"\b(?:lui|uomo|ragazzo|signore|bambino|nonno|marito)\b", re.I)
_IL = re.compile(r"\bil\b", re.I)


def _card_sex(name: str, text: str, language: str) -> str | None:
    for word in re.split(r"[\s.]+", name.lower()):
        fact = TITLE_FACTS.get(word)
        if fact and fact[0] == "sex":
            return fact[1]
    female, male = len(FEMALE.findall(text)), len(MALE.findall(text))
    its = len(re.findall(r"\bit\b|\bits\b|\bitself\b", text, re.I))
    if NEUTER.search(text) or (its >= 3 and female + male == 0):
        return "none"
    detected = (
        language if language not in ("en", "") else detect_language(text.lower().split(), text)
    )
    if detected == "de":
        # "sie" is also "they" and the polite "you": counted in German cards only
        female += len(_GERMAN_FEMALE.findall(text))
        male += len(_GERMAN_MALE.findall(text))
    elif detected == "it":
        female += len(_ITALIAN_FEMALE.findall(text))
        male += len(_ITALIAN_MALE.findall(text)) - len(_IL.findall(text))
    if female > 2 * male:  # one "she" in a two-line card is enough; a husband is not
        return "female"
    if male > 2 * female:
        return "male"
    return None


# The character is the subject of "is (a / the ...) <kind>" within one clause: "Pip is a
# 14-year-old boy", "ORIEL is the artificial intelligence", "Lotte ist eine Androidin",
# "胡小满是一只会说话的小狐狸". A kind merely mentioned ("a cat named Mochi asleep on the
# windowsill") is not the character's.
_COPULA = re.compile(
    r"(?:\b(?:is|was|est|était|es|era|ist|war)\s+(?!not\b|no\b|kein|pas\b|nicht\b)"
    r"(?P<pred>[^.;:!?\n()]{0,80}))|(?:是|为)(?P<zh>[^。，！？,.!?\n]{0,12})",
    re.IGNORECASE,
)


_SUBORDINATE = re.compile(
    r"\b(?:that|who|which|whom|whose|than|like|in|into|with|for|about|to|at|on|from|by|"
    r"because|when|where|while|as|among|near|beside|qui|que|dans|avec|pour|comme|en|con|"
    r"para|como|der|die|das|mit|für|wie|als)\b",
    re.IGNORECASE,
)


def _card_kind(name: str, text: str) -> tuple[str | None, str | None]:
    """The kind the card's first predicate about its character names, and the noun that
    named it when WordNet did (for the species); (None, None) where none does."""
    subjects = [p.lower() for p in re.split(r"\s+", name) if len(p) > 1]
    subjects += ["she", "he", "it", "they", "elle", "il", "ella", "él", "sie", "er", "es"]
    for sentence in _sentences(text):
        for m in _COPULA.finditer(sentence):
            before = sentence[: m.start()].strip().lower()
            # "Kuzya, whom the village calls Grandfather, is ...", "Saruul — her father's
            # name first — is ...": the subject before its aside
            before = _ASIDE.sub("", before)
            if not m.group("zh") and not any(before.endswith(s) for s in subjects):
                continue
            if m.group("zh") and not (before.endswith(name.lower()) or before[-1:] in "她他它"):
                continue
            # the predicate's own noun phrase: "is deeply interested in the fact that humans
            # can" says nothing of what it is
            pred = _SUBORDINATE.split(m.group("pred") or "", maxsplit=1)[0]
            pred = re.split(r"\bof\b", pred, maxsplit=1)[0]  # "the captain of the airship Kestrel"
            # the noun phrase's head, its last kind word: "a heron spirit" is a spirit,
            # "a talking fox" a fox; "a golem, an artificial being" the first phrase's
            phrases = re.split(r"[,;:—–]", pred) if pred else [m.group("zh") or ""]
            kind, noun = _phrase_kind(phrases[0])
            # "a domovoi, a house spirit of Russian folk belief": a word outside the lexicon,
            # then a noun phrase that says what it is
            if kind is None and len(phrases) > 1 and _ARTICLE.match(phrases[1]):
                kind, noun = _phrase_kind(phrases[1])
            if kind is None and _TALKING.search(phrases[0]):
                kind = "animal"  # "a talking mole": an animal, whatever the word
            if kind:
                return kind, noun
    return None, None


# A sheet's field for what the character is: W++ 'Species("Insect" + "firefly")', a
# PList's "species: fox", "Race: elf"
_SHEET_KIND = re.compile(
    r"\b(?:species|race|kind)\s*(?:\(|:|=)\s*(?P<value>[^)\n\]]{1,200})", re.IGNORECASE
)


def _sheet_kind(text: str) -> tuple[str | None, str | None]:
    """The kind a sheet's species field names: its first value that names one."""
    for m in _SHEET_KIND.finditer(text):
        for value in re.split(r"\+|,|;|/", m.group("value")):
            kind, noun = _phrase_kind(value.strip(" \"“”'"))
            if kind:
                return kind, noun
    return None, None


_ASIDE = re.compile(r"\s*(?:,\s*(?:who|whom|whose|which|known|called)\b[^,]*,|[—–(][^—–()]*[—–)])$")
_ARTICLE = re.compile(r"\s*(?:an?|the|une?|una?|ein|eine)\s", re.IGNORECASE)
# "a talking mole", "a speaking heron": a card's animal, named or not in the lexicon
_TALKING = re.compile(r"\b(?:talking|speaking)\s+[a-z]+\s*$", re.IGNORECASE)


def _phrase_kind(phrase: str) -> tuple[str | None, str | None]:
    """The kind the noun phrase's head names, its last kind word ("a heron spirit" is a
    spirit, "a talking fox" a fox); things do not count. A head outside the lexicon is
    looked up in WordNet ("a male shoebill", "a tuatara"), and its noun returned too."""
    kinds = [KIND_OF.get((k.group(1) or k.group(2)).lower()) for k in KIND_WORD.finditer(phrase)]
    kinds = [k for k in kinds if k != "object"]
    if kinds:
        return kinds[-1], None
    found = noun_kind(re.findall(r"[a-z][a-z'-]*", phrase.lower()))
    if found and found[0] != "object":
        return found
    return None, None


# A title's word in full, as a reply would say it
_TITLE_WORDS = {"dr": "doctor", "capt": "captain", "prof": "professor"}


def card_facts(
    name: str,
    description: str = "",
    personality: str = "",
    scenario: str = "",
    tags=(),
    language: str = "en",
    more: str = "",
) -> CardFacts:
    """The facts a card states, from its own fields (macros already replaced). `more`:
    the card's other text (greeting, examples, intro), read for trades only: a trade named
    anywhere in the card is the character's, or at least not a contradiction."""
    text = "\n".join(t for t in (description, personality) if t)
    tags_text = _tags_text(tags)
    words = {
        w.lower() for w in words_of(TRADE_WORD, f"{name}\n{text}\n{scenario}\n{more}\n{tags_text}")
    }
    trades = {TRADE_OF[w] for w in words}
    for word in re.split(r"[\s.]+", name.lower()):
        fact = TITLE_FACTS.get(word)
        if fact and fact[0] == "trade":
            trades.add(fact[1])
            words.add(_TITLE_WORDS.get(word, word))  # "Dr Amara" names a doctor
    for word in words_of(WORKPLACE_WORD, f"{text}\n{scenario}"):
        trades.add(WORKPLACE_OF[word.lower()])
    tag_list = [str(t).strip().lower() for t in tags]  # in the card's order
    tag_words = set(tag_list)
    sex = _card_sex(name, text, language) or _tag_sex(tag_words)
    kind, noun = _card_kind(name, text)
    if kind is None:
        kind, noun = _sheet_kind(text)  # W++ 'Species("Insect" + "firefly")', "Species: ..."
    kind = kind or (KIND_OF.get(k.lower()) if (k := _first(tags_text)) else None)
    if kind is None:  # a tag WordNet knows as a being: "firefly", "hoopoe"
        found = next((f for t in tag_list if (f := noun_kind(t.split()))), None)
        if found and found[0] != "object":
            kind, noun = found
    if kind is None and tag_words & HUMAN_TAGS:
        kind = "human"  # a tag "umano", "człowiek", "人間"
    if kind in (None, "human") and tag_words & {"non-human", "nonhuman", "non human"}:
        kind = "nonhuman"  # no person, whatever its pronouns or a "woman" carved in wood
    if kind is None and sex in ("female", "male"):
        kind = "human"  # "she runs a garage": a person, unless the card says otherwise
    return CardFacts(
        sex=sex,
        ages=tuple(sorted(set(ages(text)))),
        kind=kind,
        trades=tuple(sorted(trades)),
        # another language's card may name its trade in words the reply translates
        trade_words=tuple(sorted(words)) if language == "en" else (),
        aliases=other_spellings(name),
        species=tuple(sorted(_species(name, text, tags_text, kind, noun))),
        not_roles=tuple(sorted(_not_roles(text))),
    )


# "He is not a chimney sweep, and is insulted ...", "nor a ferryman": the noun a card
# denies, its phrase's last word
_NOT_A = re.compile(
    r"\b(?:not|nor|never)\s+(?:just\s+|merely\s+|simply\s+)?(?:an?|une?|una?|ein|eine)\s+"
    r"(?P<phrase>[^\W\d_][\w'’ -]{0,40}?)(?=\s*(?:[,.;:!?()—–]|$|\b(?:and|or|but|though|although|"
    r"who|which|that|as|like|whatever|however|nor|for|to|in|on|at|by|with|of)\b))",
    re.IGNORECASE,
)
# nouns a card may deny without saying what the character is ("not a morning person")
_NOT_ROLE_STOP = {
    "person", "people", "one", "thing", "man", "woman", "girl", "boy", "fan", "lover",
    "friend", "fool", "word", "bit", "lot", "day", "time", "way", "chance", "moment",
    "problem", "matter", "secret", "joke", "question", "place", "trace", "single", "sound",
    "either",
}  # fmt: skip


def _not_roles(text: str) -> set[str]:
    """The denied phrases' last one or two words: "carpenter", "chimney sweep", "pearl
    diver" (so a free-diver who is "not a pearl diver" may still call herself a diver)."""
    out = set()
    for m in _NOT_A.finditer(text):
        words = m.group("phrase").lower().split()
        if words and words[-1] not in _NOT_ROLE_STOP and not KIND_WORD.fullmatch(words[-1]):
            out.add(" ".join(words[-2:]))
    return out


def _species(
    name: str, text: str, tags_text: str, kind: str | None, noun: str | None = None
) -> set[str]:
    """The animal families a card names, with their hypernyms where WordNet knows them
    (`animal_families`); the WordNet noun its kind was read from ("a hoopoe"); for a
    talking animal outside both ("a talking quokka"), its own word."""
    out = {
        family
        for w in words_of(KIND_WORD, f"{name}\n{text}\n{tags_text}")
        if KIND_OF.get(w.lower()) == "animal"
        for family in animal_families(w)
    }
    if kind == "animal" and noun:
        out |= animal_families(noun)
    # the animals WordNet knows that the card names anywhere ("a boundary-reeve"): a reply
    # that names one is no contradiction (`contradictions.contradictions`)
    out |= set(wordnet_animals(f"{name}\n{text}\n{tags_text}"))
    if kind == "animal":
        out |= {
            m.group(1).lower()
            for m in re.finditer(
                r"\b(?:an?|the)\s+(?:[a-z-]+\s+)?(?:talking|speaking)\s+([a-z]+)\b", text, re.I
            )
            if m.group(1).lower() not in KIND_OF
        }
    return out


def _tag_sex(tag_words: set[str]) -> str | None:
    """The sex a card's tags name, when they name one only."""
    found = [sex for sex, words in SEX_TAGS.items() if tag_words & words]
    return found[0] if len(found) == 1 else None


def _tags_text(tags) -> str:
    return " ".join(t.replace("-", " ") for t in tags)


def _first(text: str) -> str | None:
    """The first word of `text` that names a kind of being (not a thing: a tag "city" or
    "forest" is where a card is set; not a plural: a tag "bees" on a beekeeper's card is
    what the card is about, not what the character is)."""
    for m in KIND_WORD.finditer(text):
        if m.group(1) and len(m.group(0)) > len(m.group(1)):
            continue
        word = m.group(1) or m.group(2)
        if KIND_OF.get(word.lower()) != "object":
            return word
    return None


def persona_facts(persona) -> CardFacts:
    """`card_facts` of a `personas.Persona` (duck-typed: this module imports no card code)."""
    return card_facts(
        persona.name,
        persona.description,
        persona.personality,
        persona.scenario,
        persona.tags,
        persona.language,
        "\n".join([persona.greeting, persona.intro, *persona.example_dialogues]),
    )
