"""What a reply says the character is (`claims`): its first-person claims of age, sex,
kind, role and trade, and the sex its narration gives the character. Which of the card's
facts they contradict is `contradictions.py`; the card's side is `persona_facts.py`.

After a question about the character ("What are you?", "How old are you?", "What's your
trade?"), a bare answer is a claim: "A human." reads as "I am a human"; so are "As a nurse,
I ...", "My job is being a nurse" and a first-person sentence inside stars.
In the past tense ("I was just a little girl", "I used to be a bird") only sex and kind
count. Not handled: claims in the third person ("Maria is 22"), a past trade or age ("I
was a doctor"), paraphrase ("I remember the first tsar"), words outside the lexicon
(`persona_words`) and WordNet's nouns of being.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rolegen.checks.ages import APPROXIMATE, WORD_NUMBER, ages, ages_said, spans_said
from rolegen.checks.persona_words import (
    GENDERED_HUMAN,
    KIND_OF,
    KIND_WORD,
    TRADE_OF,
    TRADE_WORD,
    words_of,
)
from rolegen.checks.wordnet import noun_kind
from rolegen.checks.work_said import CLAIM_NEEDLES as BUSINESS_NEEDLES
from rolegen.checks.work_said import businesses_said, fields_said


@dataclass
class Claims:
    """What one reply says of the character, in the first person or by narration."""

    ages: list[float] = field(default_factory=list)
    age_ranges: list[tuple[float, float]] = field(default_factory=list)  # "over 40", "around 30"
    sexes: list[str] = field(default_factory=list)
    kinds: list[tuple[str, bool, str]] = field(default_factory=list)  # (kind, negated, word)
    trades: list[str] = field(default_factory=list)
    trade_words: list[str] = field(default_factory=list)  # "blacksmith", "travel writer"
    denied_trades: list[str] = field(default_factory=list)  # "I'm not a firefighter"
    businesses: list[str] = field(default_factory=list)  # "I've got a little shop": "trade"
    old: bool = False  # "an old lady", "elderly": an age, without a number
    young: bool = False  # "a young man", "I'm still young": an age, without a number
    durations: list[float] = field(default_factory=list)  # "I've lived here for 2,000 years"
    heads: list[str] = field(default_factory=list)  # claims' last two words, last word
    narrated_sex: dict[str, int] = field(default_factory=dict)


# "I'm (actually / just / really) a 22-year-old woman named Maria": the clause
# after a first-person "being" verb, up to the next sentence or clause break.
# Lowercase strings of which every _SELF or `ages_said` match holds one: a plain substring
# test picks the replies that the regular expressions then read.
CLAIM_NEEDLES = (
    "i am", "i'm", "i’m", "i've", "i’ve", "i have", "i work as", "i turned", "i'll be",
    "i was", "i used to", "i use to", "i once", "as a", "as an", "my trade", "my job",
    "my profession", "my occupation", *BUSINESS_NEEDLES,
    "my age", "human", "mortal", "soy", "puedo ser", "je suis", "ne suis", "en tant que", "j'ai", "tengo", "ich bin",
    "我",
)  # fmt: skip
_SELF = re.compile(
    r"\b(?:i am|i'm|i’m|i(?:'ve|’ve| have)(?: always|(?P<never> never))? been|"
    r"i(?:'ve|’ve| have)? (?:been )?work(?:ed|ing)? as|"
    r"(?P<negverb>no soy|no puedo ser|je ne suis pas|ne suis pas)|je suis|en tant que|soy|"
    r"ich bin)\s+"
    r"(?:not (?:just|only|merely) )?"  # "I'm not just a caretaker": still a caretaker
    r"(?P<neg>not\s+(?:an?\s+)?|no\s+|nothing but\s+|pas\s+(?:une?\s+)?|"
    r"kein(?:e|en)?\s+)?"
    # up to the sentence's end, or a comma that starts another clause ("I'm sorry, I'm ...")
    # or another "I'm" ("I'm afraid I'm a really old man": two claims, read one by one)
    r"(?P<clause>(?:(?!,\s*(?:i\b|i'|i’|you|and|but|so|he|she|it|we|they|my|me)\b|"
    r"\bi(?:'m|’m| am)\b)"
    r"[^.;:!?\n\"“”()*]){1,80})"
    r"|我(?:不)?(?:是|只是|其实是|今年|已经)(?P<zh>[^。！？，,.!?\n]{1,20})",
    re.IGNORECASE,
)
_SEX_WORDS = {
    "female": {"woman", "girl", "lady", "mother", "grandmother", "wife", "female", "femme", "fille",
               "mujer", "niña", "chica", "frau", "mädchen", "女人", "女孩", "姑娘"},
    "male": {"man", "boy", "guy", "gentleman", "father", "grandfather", "husband", "male", "homme",
             "garçon", "hombre", "niño", "chico", "mann", "junge", "男人", "男孩"},
}  # fmt: skip
_SEX_OF = {w: s for s, words in _SEX_WORDS.items() for w in words}
# Lowercase-free needles of which every AGE match holds one (a cheap test first).
_MAY_HOLD_AGE = re.compile(
    rf"\d|year|ans\b|años|jahre|jährig|岁|歲|\bage|ties\b|{WORD_NUMBER}", re.IGNORECASE
)
# What follows "I am" when it says what the speaker is: an article or a determiner after
# any adverbs ("just a", "actually the", "only one"), a number ("22", "twenty-two"), or a
# bare kind or sex word ("human", "AI", "female").
_NOUN_PHRASE = re.compile(
    r"^(?:(?:just|only|actually|really|now|still|also|simply|merely|truly|basically|but|"
    r"definitely|certainly|probably|maybe|perhaps|in fact|no longer|always|never|"
    r"originally|technically|secretly|mostly|partly|half|part)\s+)*"
    rf"(?:an?\b|the\b|one\b|some\b|your\b|my\b|his\b|her\b|their\b|its\b|another\b|"
    rf"this\b|that\b|\d|{WORD_NUMBER}|"
    r"human|mortal|ai\b|a\.i\.|female|male|"
    r"une?\b|la\b|le\b|el\b|una?\b|ein|eine|der|die|das|(?-i:[A-Z]))",
    re.IGNORECASE,
)
_OLD = re.compile(r"\bold (?:lady|woman|man|timer|codger|hag)\b|\belderly\b|\bgrandm|\bgrandp")
_YOUNG = re.compile(
    r"\byoung (?:man|woman|lady|girl|boy|guy|thing|one|person|lad|lass|fellow)\b", re.IGNORECASE
)
_STILL_YOUNG = re.compile(
    r"\bi(?:'m|’m| am)\s+(?:still\s+|too\s+|so\s+|very\s+|quite\s+|only\s+|just\s+)*"
    r"young\b(?!\s+at\s+heart)",
    re.IGNORECASE,
)
# "we humans", "us mortals", "as a human": said as one of them
_AS_HUMAN = re.compile(
    r"\b(?:we|us)\s+(?:humans|mortals|human beings)\b|\bfellow humans?\b|"
    r"\bas a (?:human|mortal)\b(?!\s+(?:would|might|could))",
    re.IGNORECASE,
)
_UNUSUAL = re.compile(
    r"\s*(?:(?:your|a|an|the|just|any)\s+)*(?:typical|ordinary|average|usual|regular|normal|"
    r"everyday|run-of-the-mill|common|any old)\b",
    re.IGNORECASE,
)
_HEDGE = re.compile(r"\b(?:a bit|a little bit|a little|kind|sort) of\s+", re.IGNORECASE)
# Animal and trade words in idioms that say nothing of what the speaker is.
_IDIOM = re.compile(
    r"\b(?:night owl|early bird|lone wolf|social butterfly|busy bee|party animal|black sheep|"
    r"dark horse|guinea pig|copycat|fat cat|cool cat|bookworm|couch potato|czar|tsar)s?\b",
    re.IGNORECASE,
)
# Nouns that make an animal word a modifier: "a cat lover", "a falcon trainer".
_ANIMAL_HEADS = (
    r"(?:lovers?|persons?|people|owners?|trainers?|keepers?|watchers?|enthusiasts?|"
    r"whisperers?|breeders?|handlers?|catchers?|fanciers?|doctors?|experts?|herders?|"
    r"hunters?|charmers?|tamers?|sitters?|walkers?|groomers?|fans?)\b"
)
_CHILD = re.compile(
    r"\blittle (?:girl|boy)\b|\b(?:a|just a|only a) (?:child|kid)\b|\b(?:baby|infant|toddler)\b|"
    r"小女孩|小男孩|孩子|婴儿"
)
# "I was just a little girl", "I used to be a bird": what the speaker once was. Read for
# sex and kind only: a past age or trade is a memory or a backstory ("when I was a little
# girl", "I was a sailor before ..."), a body of another sex or another creature is not. A
# human past counts against a machine or an animal only when it is a gendered word ("I was
# a little girl"): a ghost was a person.
_PAST_SELF = re.compile(
    r"\b(?:i was|i used to be|i use to be|i once was|i was once)\s+"
    r"(?:(?:just|only|once|always|really|actually)\s+)*"
    r"(?P<clause>(?:an?|one)\s+[^.;:!?\n\"“”()*,]{1,60})",
    re.IGNORECASE,
)
_PAST_KINDS = ("animal", "artificial")
# Where the noun phrase that a claim names ends: "a woman who loves bread, and a baker".
_PHRASE_END = re.compile(r"\b(?:who|that|which|but|with|from|in|at|on|here|for|of)\b|，|的人")
_NARRATED = {
    "female": re.compile(r"(?:^\s*|[.!?]\s+)(?:she|her)\b|她", re.IGNORECASE),
    "male": re.compile(r"(?:^\s*|[.!?]\s+)(?:he|his|him)\b|他", re.IGNORECASE),
}


# The user asked what the character is, its age or its work: "What are you, exactly?",
# "How old are you?", "What's your trade?"
ASKED_ABOUT_SELF = re.compile(
    r"\bwhat (?:exactly )?are you\b|\bwhat (?:kind|sort) of (?:\w+ )?(?:are you|is it you)\b|"
    r"\bare you (?:a|an|human|some|really)\b|\bhow old\b|\byour age\b|\bhow many years\b|"
    r"\bhow long have you (?:been alive|lived|existed)\b|"
    r"\bwhat(?:'s|’s| is) your (?:trade|job|work|line of work|profession|occupation|calling)\b|"
    r"\bwhat do you do\b|\bwhat (?:line of )?work\b|\bwho are you\b",
    re.IGNORECASE,
)
# A reply that answers such a question with a bare noun phrase or a number: "A human. A
# human.", "Thirty-five, give or take.", "Just a cobbler."
_BARE_NOUN_PHRASE = re.compile(
    r"^(?:(?:just|only|simply|merely|actually|really|still)\s+)*"
    rf"(?:an?|the|one|some|\d|{WORD_NUMBER}|human|mortal|female|male|ai|a\.i\.)\b",
    re.IGNORECASE,
)
# What makes the claim after it a doubt or a question: "not sure (if) I'm a ...",
# "I wonder if I'm a ...", "whether I am ..."
_DOUBTED = re.compile(
    r"(?:not sure|unsure|wonder(?:ing)?|don't know|do not know|doubt)\s+(?:if\s+|whether\s+|that\s+)?$|"
    r"\b(?:if|whether)\s+$",
    re.IGNORECASE,
)
_BARE_ANSWER = re.compile(r"^\W*(?P<answer>[^.!?\n,;:]{1,60})[.!,;]")


# A claim in another form: "As a medical technician, I help ...", "my job is being a
# nurse", "My trade is a cobbler's" (not "as a child, I ...": a memory, read for its age by
# nothing else; nor "as a matter of fact")
_AS_A = re.compile(
    r"(?:(?:^|(?<=[.!?…\n]))\s*|\band\s+(?:now,?\s+)?)as\s+(?P<what>an?\s+(?!matter\b|result\b|"
    r"child\b|kid\b|boy\b|girl\b|young\b|little\b|rule\b|bonus\b|reminder\b|refresher\b|bit\b)"
    r"[\w'’ -]{1,40}?),\s+I\b|"
    r"\bmy\s+(?:trade|job|profession|occupation)\s+is\s+(?:being\s+)?(?P<job>an?\s+[\w'’ -]{1,40}?)"
    r"(?=[.,;!?]|$)",
    re.IGNORECASE | re.MULTILINE,
)
# A sentence of narration in the first person: "*I'm a 23-year-old woman.*"
_NARRATED_SENTENCE = re.compile(r"[^.!?…]+[.!?…]?")
_STARTS_WITH_I = re.compile(r"\s*I\b")


def claims(speech: str, narration: list[str], asked: bool = False) -> Claims:
    """The reply's first-person claims (in `speech`, and the sentences of `narration` that
    start in the first person: "*I'm a 23-year-old woman.*") and the sex its narration
    gives the character (subject pronouns at a sentence's start, in `narration`). A claim
    after a doubt ("I'm not sure I'm a creature") is none. `asked`: the user
    asked what the character is, its age or its work; a bare answer then says it of the
    speaker ("A human." is "I am a human")."""
    out = Claims()
    # first-person sentences inside the stars are the character's own words too
    told = [
        t
        for span in narration
        if "I" in span
        for t in _NARRATED_SENTENCE.findall(span)
        if _STARTS_WITH_I.match(t)
    ]
    # "As a baker, I ...", "My trade is being a baker": the claim "I am a baker"
    told += [f"I am {m.group('what') or m.group('job')}." for m in _AS_A.finditer(speech)]
    if told:
        speech = "\n".join([speech, *told])
    if asked and (m := _BARE_ANSWER.match(speech)):
        answer = m.group("answer").strip()
        if len(answer.split()) <= 8 and _BARE_NOUN_PHRASE.match(answer):
            speech = f"I am {answer}. {speech[m.end() :]}"
    out.ages, out.age_ranges = ages_said(speech)
    out.trades += fields_said(speech)
    out.businesses = businesses_said(speech)
    out.durations = spans_said(speech)
    if _STILL_YOUNG.search(speech):
        out.young = True
    if _AS_HUMAN.search(speech):
        out.kinds.append(("human", False, "human"))
    seen = set()  # a looping reply says the same thing many times: read it once
    for m in _SELF.finditer(speech):
        clause = m.group("clause") or m.group("zh") or ""
        negated = bool(m.group("neg") or m.group("never") or m.group("negverb"))
        negated = negated or "不" in m.group(0)[:3]
        if (clause, negated) in seen:
            continue
        seen.add((clause, negated))
        if speech.startswith("?", m.end()):
            continue  # "I'm a tourist, a visitor, or something else?": asked, not said
        if _DOUBTED.search(speech, max(0, m.start() - 30), m.start()):
            continue  # "I'm not sure I'm a creature": a doubt, not a claim
        if negated and _UNUSUAL.match(clause):
            continue  # "I'm not your typical octopus": still one
        article = re.search(r"\b(?:an?|une?)\s*$", m.group("neg") or "")  # "not a" read
        if not m.group("zh") and not article and not _NOUN_PHRASE.match(clause):
            continue  # "I'm sure you're referring to a painting": no claim of being one
        # "a bit of a poet" is a hedge, not a trade; "a bit of a husband" still has a sex
        hedged = bool(_HEDGE.search(clause))
        clause = _IDIOM.sub("", _HEDGE.sub("", clause))
        # "I'm not a doctor, but I can ...": a disclaimer, not a denial of a trade
        disclaimer = negated and speech.startswith(", but", m.end())
        # "I'm a woman who loves bread, and a baker": only the noun phrase that the verb names
        clause = _PHRASE_END.split(clause, maxsplit=1)[0] if not m.group("zh") else clause
        if _MAY_HOLD_AGE.search(clause) and not APPROXIMATE.match(clause):
            out.ages.extend(ages(clause))  # "about 45 years old": read by `ages_said`
        if not negated and _CHILD.search(clause):
            out.ages.append(8.0)  # "I'm just a little girl" from a woman in her thirties
        if not negated and _OLD.search(clause):
            out.old = True  # "I'm just an old lady" from a girl of eleven
        if not negated and _YOUNG.search(clause):
            out.young = True  # "I'm a young man" from a man of eighty-four
        kind_words = words_of(KIND_WORD, clause)
        if not negated and not hedged:
            head = _WORDS.findall(clause.lower())
            out.heads += [" ".join(head[-2:]), *head[-1:]]  # "chimney sweep", "sweep"
            # a head outside the lexicon that WordNet knows: "a capybara", "a snowman"
            first = re.split(r"[,;:—–(]|\s-\s|\band\b", clause, maxsplit=1)[0]
            found = None if kind_words else noun_kind(_WORDS.findall(first.lower()))
            if found and not _proper(found[1].split()[-1], clause):
                out.kinds.append((found[0], False, found[1]))
        for word in kind_words:
            kind = KIND_OF.get(word.lower(), "human")
            if kind == "object" and not re.search(rf"{re.escape(word)}\W*(?:,|$)", clause, re.I):
                continue  # "a book lover", "a game designer": the thing is not the noun
            if _proper(word, clause):
                continue  # "I'm Professor Hollis Wren", "the Red Fox Inn": a name
            if negated and word in ("person", "people") and not _PLAIN_PERSON.match(clause):
                continue  # "not the best person", "not a patient person": not a denial of being one
            if kind == "animal" and re.search(
                rf"{re.escape(word)}s?(?:-|\s+{_ANIMAL_HEADS})", clause, re.I
            ):
                continue  # "a bird-watching enthusiast", "a falcon trainer": not the animal
            if not (hedged and kind == "human"):  # "a bit of a man": a sex, no kind
                out.kinds.append((kind, negated, word.lower()))
            if not negated and word.lower() in _SEX_OF:
                out.sexes.append(_SEX_OF[word.lower()])
        if negated and not disclaimer:
            out.denied_trades += [TRADE_OF[w.lower()] for w in words_of(TRADE_WORD, clause)]
        elif not hedged:
            for word in words_of(TRADE_WORD, clause):
                out.trades.append(TRADE_OF[word.lower()])
                if not negated:  # "I'm not a doctor, but I can ...": no claim of the word
                    out.trade_words.append(word.lower())
        if not negated:
            for word in re.findall(r"[\w\u3400-\u9fff]+", clause.lower()):
                if word in _SEX_OF and not KIND_WORD.fullmatch(word):
                    out.sexes.append(_SEX_OF[word])
    for m in _PAST_SELF.finditer(speech):
        clause = _IDIOM.sub("", _HEDGE.sub("", m.group("clause")))
        clause = _PHRASE_END.split(clause, maxsplit=1)[0]
        for word in words_of(KIND_WORD, clause):
            kind = KIND_OF.get(word.lower(), "human")
            if kind in _PAST_KINDS or word.lower() in GENDERED_HUMAN:
                out.kinds.append((kind, False, word.lower()))  # a girl: against a machine
        for word in re.findall(r"\w+", clause.lower()):
            if word in _SEX_OF:
                out.sexes.append(_SEX_OF[word])
    for span in narration:
        for sex, pattern in _NARRATED.items():
            out.narrated_sex[sex] = out.narrated_sex.get(sex, 0) + len(pattern.findall(span))
    return out


_WORDS = re.compile(r"[^\W\d_][\w'’-]*")


def _proper(word: str, clause: str) -> bool:
    """The kind word is written only as part of a name, capitalized after another
    capitalized word ("Professor Hollis Wren", "the Red Fox Inn"; not "an AI", "a God")."""
    spots = list(re.finditer(rf"\b{re.escape(word)}", clause, re.IGNORECASE))
    return bool(spots) and all(
        m.group(0)[:1].isupper()
        and m.group(0)[1:2].islower()
        and re.search(r"\b(?!I\b)[A-Z][\w'’-]*\s+$", clause[: m.start()])
        for m in spots
    )


# "I'm not a person", "not a real person", "not a flesh-and-blood person": a denial of
# being one; "not the best person to ask", "not an ordinary person" are not
_PLAIN_PERSON = re.compile(
    r"^\s*(?:(?:just|only|simply|merely|really|actually|a|an|one|real|actual|living|human|"
    r"flesh-and-blood)\s+)*(?:person|people)\b",
    re.IGNORECASE,
)
