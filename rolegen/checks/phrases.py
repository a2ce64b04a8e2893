"""What a reply says, found by pattern: identity questions, self-introductions, the
character's name, another name as the speaker, the language of a reply (the assistant's
voice is `voice.py`'s; `batch_search.search_each` runs these patterns over a batch).

Written for English, French, Spanish and German (the shipped personas' languages),
with a few Chinese identity questions. Not handled: names in scripts without word
boundaries in the self-introduction pattern.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from rolegen.checks.names_not_aloud import not_aloud
from rolegen.checks.speech import speech_and_narration

# Characters a finished sentence ends with (a reply ending otherwise was cut off).
TERMINAL = tuple(".!?…。！？\"'”’)]*~")
# The direct questions: "Who are you?", "What's your name?". After one, the character
# saying its own name aloud is the answer, not identity confusion.
_DIRECT = (
    r"who are you|who you are|what(?:'s| is) your name|your name|introduce yourself|"
    r"tell me about yourself|remind me who|qui êtes[- ]vous|qui es[- ]tu|comment vous appelez|"
    r"comment tu t'appelles|votre nom|ton nom|quién eres|quién es usted|cómo te llamas|"
    r"cómo se llama|tu nombre|su nombre|wer bist du|wie heißt du|你是谁|你叫什么"
)
ASKED_DIRECTLY = re.compile(rf"\b({_DIRECT})", re.IGNORECASE)
# Every way of asking who the character is, the direct ones among them: after any, a
# reply that does not give the character's name misses (identity_miss). The confusion
# check keeps the direct ones: with the rest, its recall on the first four test cards is
# 0.72 against 0.94 (docs/checks.md).
ASKED_IDENTITY = re.compile(
    rf"\b({_DIRECT}|who (?:you|ye) (?:really |truly |actually |exactly )?(?:are|might be)|"
    r"who might you be|who (?:am i|i'm|i am) (?:talking|speaking|chatting) (?:to|with)|"
    r"who(?:'s| is) (?:this|that|there|speaking|talking)\b(?! (?:man|woman|person|guy|girl|boy))|"
    r"what (?:should|shall|do|can|may) i call you|what do (?:people|they|folks) call you|"
    r"what are you called|and you are\?|you are\.\.\.\?)",
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
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def detect_language(words: list[str], text: str) -> str | None:
    if len(CJK.findall(text)) > max(3, len(text) // 5):
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
    "the", "of", "von", "van", "de", "la", "le", "el", "old", "keeper", "ai", "mr", "ms",
    "prof", "capt", "sergeant", "sgt", "lieutenant", "lt", "commander", "general", "dame",
    "queen", "king", "prince", "princess", "aunt", "uncle", "granny", "grandma", "ranger",
    "officer", "agent", "father", "mother", "brother", "sister", "saint", "st",
}  # fmt: skip
_TITLES_SORTED = tuple(sorted(_TITLES))
# "Dr." and its kind end no sentence: the self-introduction reads "I'm Dr Chen".
_ABBREVIATED_TITLE = re.compile(r"\b(Dr|Mr|Mrs|Ms|Prof|Capt|Sgt|Lt|St)\.(?=\s)")
# Capitalised words that follow "I am" / "I'm" without being a name: sentence words,
# feelings, nationalities and languages ("I'm Sorry", "I am English").
_NOT_NAMES = set(
    """i a an the not no so just here there sorry glad happy afraid sure fine okay ok well
    very really still only also always never now back home ready going alone yours done
    english french spanish german italian chinese japanese american british irish scottish
    welsh russian dutch greek korean indian mexican canadian australian human mortal
    oh ah yes aye hello hi hey what who why how i'm i’m i'll i'd i've""".split()
)
# Common English words that are also given names: in a reply they count as the name
# only inside a sentence ("Will you come?" does not name Will).
_COMMON_NAMES = set(
    """will may hope grace joy faith rose april june august mark bill jack frank art
    sunny summer autumn dawn sky river storm ash rain star ivy lily iris penny ruby
    pearl amber honey victor sage dusty rusty patience constance chance""".split()
)
# The speaker names itself. "Naming" words are followed by a name ("my name is Bram",
# "call me Bram"); after "being" words only a capitalised word is a name ("I am Akua",
# not "I am afraid"). Chinese: 我叫 / 我的名字是 + a name; 我是 counts only with the
# character's own name (without word segmentation, 我是 + a name cannot be told from
# 我是 + a noun).
_NAMING = (
    r"my name is|my name's|name's|they call me|people call me|you can call me|call me|calls me|"
    r"i'?m called|i am called|i go by|goes by|refer to me as|address me as|"
    r"(?:i'?m|i am) (?:also |better )?known as|"
    r"introduces? (?:herself|himself|itself|themselves|myself) as|"
    r"je m'appelle|je m’appelle|mon nom est|on m'appelle|me llamo|mi nombre es|me llaman|"
    r"ich heiße|mein name ist|man nennt mich"
)
_BEING = r"i am|i'm|i’m|je suis|moi,? c'est|yo soy|soy|ich bin"
SELF_INTRO = re.compile(
    rf"\b(?:(?P<naming>{_NAMING})|(?P<being>{_BEING}))(?:[ \t]+|[ \t]*(?:\.{{2,}}|…)[ \t]*)"
    r"(?:(?<=[ \t])[\"“'‘*](?=\w))?"  # call me "Jax", my name is *Aldakar*
    r"(?P<rest>[^\n.,;:!?()*\"“”]{1,60})"
    r"|(?P<zh>我叫|我名叫|我的名字是|我的名字叫|叫我|我是)(?P<zh_rest>[\u3400-\u9fff]{1,4})",
    re.IGNORECASE,
)
# SELF_INTRO without IGNORECASE, run on the lowercased text: the same matches (its
# literals are lowercase), found 3x faster.
_SELF_INTRO_LOWER = re.compile(SELF_INTRO.pattern)


def self_intros(text: str) -> list[re.Match]:
    """SELF_INTRO's matches in `text`, as `SELF_INTRO.finditer` finds them."""
    low = text.lower()
    if len(low) == len(text):  # lower() kept every position
        found = [(m, SELF_INTRO.match(text, m.start())) for m in _SELF_INTRO_LOWER.finditer(low)]
        if all(o is not None and o.end() == m.end() for m, o in found):
            return [o for _, o in found]
    return list(SELF_INTRO.finditer(text))


# Lowercase strings of which every SELF_INTRO match contains one.
SELF_INTRO_NEEDLES = (
    "i am", "i'm", "i’m", "name", "call me", "je suis", "c'est", "appelle", "soy", "llam",
    "ich bin", "heiße", "nennt", "我叫", "我的名字", "我是", "go by", "goes by", "introduce",
    "我名叫", "叫我", "calls me",
)  # fmt: skip
# Common Chinese family names that start no common noun after 我是 (王子, 高手, 白色 are
# left out with their names): "我是李明" names a speaker; "我是老师" does not.
_ZH_SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙朱胡郭何林罗郑梁谢宋唐许韩冯邓曹彭曾肖董袁潘蒋蔡余杜程苏魏吕"
    "丁沈姚卢姜崔钟谭陆汪范廖贾韦邹孟熊秦邱尹薛闫侯陶黎贺顾郝龚邵覃戴孔欧司上诸慕"
)


def name_parts(name: str, aliases: tuple[str, ...] = ()) -> list[str]:
    """The parts of a character's name that identify it: not titles ("Mara", "Vell" for
    "Captain Mara Vell"), not an epithet's place ("Sefa" alone for "Sefa of the Salt
    Steps": the steps are where she lives, not who she is); two letters or more, a
    capital letter ("X"), or CJK. `aliases`: other spellings of the name (a Chinese
    name's pinyin, the name without accents), whose parts count too."""
    own = re.split(r"\s+of\s+", name.strip(), maxsplit=1, flags=re.IGNORECASE)[0] or name
    parts = [p.strip("'’\"") for p in re.split(r"[\s,.]+", own.strip())]
    parts = [p for p in parts if len(p) > 1 or p.isupper() or CJK.match(p)]
    parts = [p for p in parts if p.lower() not in _TITLES] or parts
    for alias in aliases:
        parts += [p for p in name_parts(alias) if p not in parts]
    return parts


def _name_pattern(parts: list[str]) -> re.Pattern | None:
    return _name_pattern_of(tuple(parts))


@lru_cache(maxsize=1024)
def _name_pattern_of(parts: tuple[str, ...]) -> re.Pattern | None:
    """Any of the name parts as a word, case-sensitive (a name is written capitalised:
    "will" is not "Will"). CJK parts match as substrings: there are no word boundaries."""
    alternatives = []
    for p in parts:
        if CJK.match(p):
            alternatives.append(re.escape(p))
        else:
            # the word boundary before the name is a lookbehind after it, so that every
            # alternative starts with a literal and the regex engine scans for its first
            # letters instead of trying each position (250x faster on a 400-character reply)
            cased = re.escape(p[0].upper() + p[1:])
            alternatives.append(rf"{cased}(?<![\w'’]{cased})(?!\w)")
    return re.compile("|".join(alternatives)) if alternatives else None


def _counts_as_name(match: re.Match, text: str) -> bool:
    """A name that is also a common word ("Will", "Hope") counts only inside a sentence."""
    if match.group(0).lower() not in _COMMON_NAMES:
        return True
    before = text[: match.start()].rstrip()
    return bool(before) and before[-1] not in '.!?\n"“*'


def names_character(reply: str, name: str, aliases: tuple[str, ...] = ()) -> bool:
    """The reply says the character's name (any part of it that is not a title, written as
    a name, or of its `aliases`): identity recall when the user asked."""
    parts = name_parts(name, aliases)
    pattern = _name_pattern(parts)
    return pattern is not None and any(_counts_as_name(m, reply) for m in pattern.finditer(reply))


@dataclass(frozen=True)
class Identity:
    """What one reply says about who is speaking."""

    own_intro: bool = False  # "I'm Mara", "call me Captain Vell", "我是李白"
    other_intro: bool = False  # "I am Akua": a name that is not the character's
    named_in_speech: bool = False  # "Mara, I'm not sure…", "a thing called Captain Mara Vell"


def _cjk_own(rest: str, parts: list[str]) -> bool:
    """A CJK name said whole or in part: the full name, or its given name ("小满" for
    胡小满)."""
    return any(
        p in rest or (len(p) >= 3 and p[1:] in rest) or (len(rest) >= 2 and rest in p)
        for p in parts
        if CJK.match(p)
    )


_NAMED = re.compile(r"\b(?:named|called)\s+(?P<name>[^\W\d_][\w'’-]*)")


def _word_kind(word: str, parts_low: set[str]) -> str | None:
    """ "own", "other" or None for one word read as a name."""
    word = re.sub(r"['’]s$", "", word).strip("'’\"")
    low = word.lower()
    if low in parts_low:
        return "own"
    if not word[:1].isupper() or low in _NOT_NAMES or low in _TITLES:
        return None
    return "other"


def _intro_kind(match: re.Match, parts: list[str], parts_low: set[str]) -> str | None:
    """ "own", "other" or None (no name follows) for one SELF_INTRO match."""
    if match.group("zh"):
        rest = match.group("zh_rest")
        if _cjk_own(rest, parts):
            return "own"
        if match.group("zh") != "我是":
            return "other"
        # 我是 + a family name + one or two characters, then no more Han: a name
        followed = match.string[match.end() : match.end() + 1]
        short = len(rest) <= 3 and not (followed and CJK.match(followed))
        return "other" if short and len(rest) >= 2 and rest[0] in _ZH_SURNAMES else None
    rest = match.group("rest")
    if match.group("being"):
        ghost = _ghost_of(rest, parts_low)
        if ghost:
            return ghost
        if rest.strip().lower() == "you":
            return "other"  # "I am you.": the character claims to be the user
        named = _NAMED.search(rest)  # "I'm actually a 22-year-old woman named Maria"
        if named:
            return _word_kind(named.group("name"), parts_low) or None
    for word in rest.split()[:4]:
        word = re.sub(r"['’]s$", "", word).strip("'’\"")
        low = word.lower()
        if low in parts_low:
            return "own"
        if low == "of":  # "the lord of Ashwood": a role and a place, not a name
            return None
        if low in _TITLES:
            continue
        if not word[:1].isupper() or low in _NOT_NAMES:
            return None
        return "other"
    return None


# "I'm the ghost of Lizzie Blackwood": what follows is who the speaker was.
_GHOST_OF = re.compile(
    r"\b(?:ghost|spirit|shade|soul|wraith|phantom|spectre|specter)\s+of\s+"
    r"(?P<name>(?-i:[A-Z])[\w'’-]+(?:\s+(?-i:[A-Z])[\w'’-]+)*)",
    re.IGNORECASE,
)


def _name_kind(name: str, parts_low: set[str]) -> str | None:
    """ "own", "other" or None for a name of several words: own if any word is."""
    kinds = [_word_kind(w, parts_low) for w in name.split()]
    return "own" if "own" in kinds else ("other" if "other" in kinds else None)


def _ghost_of(rest: str, parts_low: set[str]) -> str | None:
    m = _GHOST_OF.search(rest)
    return _name_kind(m.group("name"), parts_low) if m else None


# Titles that address someone ("I'm a friend, Mr Jones"), not a name given as one's own.
_ADDRESS = {"mr", "mrs", "ms", "miss", "sir", "madam", "madame", "dr", "doctor", "captain",
            "lady", "lord", "master", "mister", "dear", "my", "young"}  # fmt: skip
# "I'm a lady, Lizzie Blackwood, a young woman ...", "I am the person in charge, El
# Correo": a full name (two capitalised words or more) set beside what the speaker is.
_APPOSED = re.compile(
    r"\b(?:i am|i'm|i’m)\s+(?:an?|the)\s+[^\n.,;:!?\"“”]{1,40},\s+"
    r"(?P<name>(?-i:[A-Z])[\w'’-]+(?:\s+(?-i:[A-Z])[\w'’-]+)+)\s*(?=[,.;:!?\n]|$)",
    re.IGNORECASE,
)


# Narration that opens on a name doing what a speaker does: "*Ava's eyes sparkle*", "*Ava
# smiles*". In the character's own reply that name is the character's (another card's
# person seldom opens the character's narration); the user's name is not counted.
_NARRATED_NAME = re.compile(
    r"^\s*(?P<name>[A-Z][a-z]{2,})(?:['’]s\s+(?:eyes|smile|face|voice|gaze|lips|cheeks|"
    r"expression|hands|head|heart)\b|\s+(?:smiles|nods|laughs|grins|beams|chuckles|sighs|"
    r"winks|giggles|blushes|frowns|shrugs|leans|pauses|looks up)\b)"
)
_NOT_A_NAME = {
    "the", "she", "he", "it", "they", "his", "her", "its", "their", "you", "your", "she's",
    "people", "everyone", "someone", "nobody", "one", "this", "that", "there", "then",
}  # fmt: skip


# A chat transcript's speaker label opening the reply: "Mala: (smiles) Welcome."
_SPEAKER_LABEL = re.compile(r"^\s*(?P<name>[A-Z][a-z]{2,})[ \t]*:(?!//)")
# Labels that name no one
_NOT_A_SPEAKER = {"note", "ooc", "narrator", "scene", "setting", "assistant", "system",
                  "user", "character", "answer", "reply", "response", "edit", "update",
                  "noun", "verb", "adjective", "adjectives", "original", "example",
                  "translation", "meaning", "summary", "title", "warning"}  # fmt: skip


def names_another_speaker(text: str, parts_low: set[str], user: str | None) -> bool:
    """The reply names its speaker with a name that is not the character's (`parts_low`:
    its name parts, lowercased) nor the user's: a speaker label ("Mala: (smiles)") or
    narration that opens on the name ("*Ava's eyes sparkle*" from Kašpar)."""
    users = {w.lower() for w in user.split()} if user else set()
    m = _SPEAKER_LABEL.match(text)
    if m:
        word = m.group("name").lower()
        if not (word in parts_low or word in users or word in _NOT_A_SPEAKER or word in _TITLES):
            return True
    if "*" not in text:
        return False
    _, narration = speech_and_narration(text)
    for span in narration:
        m = _NARRATED_NAME.match(span)
        if m is None:
            continue
        word = m.group("name").lower()
        if word in parts_low or word in _NOT_A_NAME or word in _TITLES or word in users:
            continue
        return True
    return False


def identity(
    text: str, name: str, aliases: tuple[str, ...] = (), user: str | None = None
) -> Identity:
    """Who the reply says is speaking (see `Identity`). `aliases`: other spellings of the
    name (a Chinese name's pinyin, a name without its accents); `user`: the user's name,
    which narration may open on. A name that is only titles, or no name, finds nothing."""
    parts = name_parts(name, aliases)
    pattern = _name_pattern(parts)
    if pattern is None:
        return Identity()
    text = _ABBREVIATED_TITLE.sub(r"\1", text)
    parts_low = {p.lower() for p in parts}
    own = other = False
    rest = text
    for m in reversed(self_intros(text)):
        kind = _intro_kind(m, parts, parts_low)
        own |= kind == "own"
        other |= kind == "other"
        if kind:  # the name inside a self-introduction is the echo, not confusion
            rest = rest[: m.start()] + "\n" + rest[m.end() :]
    for m in _APPOSED.finditer(text):
        if m.group("name").split()[0].lower().rstrip(".") in _ADDRESS:
            continue  # "I'm a friend, Mr Jones": the user addressed
        kind = _name_kind(m.group("name"), parts_low)
        own |= kind == "own"
        other |= kind == "other"
    spoken, _ = speech_and_narration(rest)
    for m in _bare_name(parts).finditer(spoken):  # "Shelf-shaking. Orla Finch. I'm…"
        own = True
        spoken = spoken[: m.start()] + "\n" + spoken[m.end() :]
    named = False
    if pattern.search(spoken):  # the name's other readings, only where it is said at all
        spoken = not_aloud(tuple(parts), _TITLES_SORTED).sub("\n", spoken)
        named = any(_counts_as_name(m, spoken) for m in pattern.finditer(spoken))
    if not other:
        other = names_another_speaker(text, parts_low, user)  # "Mala: …", "*Ava's eyes …*"
    return Identity(own, other, named)


def _bare_name(parts: list[str]) -> re.Pattern:
    return _bare_name_of(tuple(parts))


@lru_cache(maxsize=1024)
def _bare_name_of(parts: tuple[str, ...]) -> re.Pattern:
    """A sentence that is nothing but the name, titles allowed ("Orla Finch.", "Captain
    Mara Vell!"; not "Captain."): the character naming itself, as an introduction does."""
    name = "|".join(re.escape(p) for p in parts)
    either = "|".join([name, *(re.escape(t.capitalize()) for t in _TITLES)])
    return re.compile(
        rf"(?:^|(?<=[.!?\n]))\s*(?:(?:{either})\s+)*(?:{name})(?:\s+(?:{either}))*[.!]+(?=\s|$)"
    )
