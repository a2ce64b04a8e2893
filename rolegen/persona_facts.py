"""Who a card says its character is (`CardFacts`: sex, age, kind, trade, other spellings
of the name), and where a reply contradicts that (`contradictions`).

A card's facts are read once, from its own fields (name, description, personality,
scenario, tags), in the languages the cards ship in (English, French, Spanish, German,
Chinese), and travel in each dialogue record as `persona_facts`, so the checks need no
card. A reply is compared by what the character says of itself in the first person
("I'm actually a 22-year-old woman", "I am human", "I'm a doctor", "我今年二十二岁"),
and by narration that gives it the other sex ("*He hands you the sword*" from a
swordswoman's card).

What counts as a contradiction, and why it is narrow:
- age: a stated age far from every age the card states (|a - b| > max(4, a / 5)); a card
  may state several (a ghost who died at 38, two centuries ago);
- sex: "I'm a woman / man / girl / boy ..." against the card's pronouns; narration with
  only the other sex's subject pronouns;
- kind: human, artificial, animal or supernatural; "I am human" from a ship's AI, "I'm
  a robot" from a baker, "I'm an old man" from an octopus, "I'm not a machine" from an
  android. Gendered human nouns count as a human claim against artificial and animal
  cards only (a ghost was a woman);
- trade: an occupation from a lexicon of trade groups whose group the card never names
  ("I'm a scientist" from a baker); "I'm no doctor" is not a claim.
Not handled: claims in the third person ("Maria is 22"), past tenses ("I was a
doctor"), paraphrase ("I have lived for two decades"), trades outside the lexicon,
languages other than the five above.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field

from rolegen.phrases import detect_language

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
    # French, Spanish, German tens (the cards' and replies' ages in words)
    "vingt": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60,
    "soixante-dix": 70, "quatre-vingt": 80, "quatre-vingts": 80, "quatre-vingt-dix": 90,
    "veinte": 20, "treinta": 30, "cuarenta": 40, "cincuenta": 50, "sesenta": 60,
    "setenta": 70, "ochenta": 80, "noventa": 90,
    "zwanzig": 20, "dreißig": 30, "vierzig": 40, "fünfzig": 50, "sechzig": 60,
    "siebzig": 70, "achtzig": 80, "neunzig": 90,
    "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "sept": 7, "huit": 8, "neuf": 9,
    "dix": 10, "onze": 11, "douze": 12, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5,
    "seis": 6, "siete": 7, "ocho": 8, "nueve": 9, "diez": 10, "zwei": 2, "drei": 3, "vier": 4,
    "fünf": 5, "sechs": 6, "sieben": 7, "acht": 8, "neun": 9, "zehn": 10, "zwölf": 12,
}  # fmt: skip
_DECADES = {
    "twenties": 25, "thirties": 35, "forties": 45, "fifties": 55, "sixties": 65,
    "seventies": 75, "eighties": 85, "nineties": 95,
}  # fmt: skip
_WORD_NUMBER = "|".join(sorted(map(re.escape, _NUMBER_WORDS), key=len, reverse=True))
_NUMBER = rf"(?:\d{{1,5}}|(?:{_WORD_NUMBER})(?:(?:[- ]|\s+(?:y|et|and)\s+)(?:{_WORD_NUMBER}))?)"
_ZH_DIGITS = {
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}


def _number(text: str) -> float | None:
    text = text.lower().strip()
    if text.isdigit():
        return float(text)
    if text in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[text])
    total = 0
    for part in re.split(r"[- ]", text):
        if part in ("y", "et", "and", ""):
            continue
        if part not in _NUMBER_WORDS:
            return None
        total = total * 100 if part == "hundred" else total + _NUMBER_WORDS[part]
    return float(total) if total else None


def _zh_number(text: str) -> float | None:
    """ "四十三" -> 43, "十二" -> 12, "八十" -> 80, "300" -> 300."""
    if text.isdigit():
        return float(text)
    total, current = 0, 0
    for ch in text:
        if ch in _ZH_DIGITS:
            current = _ZH_DIGITS[ch]
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
        else:
            return None
    return float(total + current) or None


# An age as cards and replies state one: "80-year-old", "eighty years old", "aged 52", "at
# the age of thirty-eight", "in her seventies", "Sixties, sun-browned", "a 80 ans", "setenta
# y tantos años", "80 Jahre alt", "八十岁". Durations ("for 30 years", "depuis 30 ans") are
# not ages.
_DECADE = "|".join(_DECADES)
_AGE = re.compile(
    rf"\b(?P<n>{_NUMBER})(?P<odd>[- ]odd|\s+y\s+tantos|\s+et quelques|\s+und etwas)?"
    r"(?:[- ]years?[- ]old\b|\s+ans\b|\s+años\b|\s+jahre\s+alt\b|-jährig)"
    rf"|\b(?:aged?|age of|âgée? de|edad de|alter von)\s+(?P<aged>{_NUMBER})\b"
    rf"|\b(?:in|into)\s+(?:his|her|their|its|my)\s+(?:early\s+|late\s+|mid-)?(?P<decade>{_DECADE})\b"
    rf"|(?:^|[.!?]\s+)(?P<decade2>{_DECADE}),"
    r"|(?P<zh>[0-9零一二两三四五六七八九十百]{1,4})(?:岁|歲)"
    # a made thing's age: "activated 31 years ago", "seit sechs Jahren im Betrieb"
    rf"|\b(?:activated|built|switched on|turned on|assembled|constructed|wound|made|forged|"
    rf"created|awakened|born|hatched)\s+(?:first\s+)?(?:some\s+|about\s+|nearly\s+)?"
    rf"(?P<ago>{_NUMBER})\s+years?\s+ago"
    rf"|\bin (?:operation|service) for\s+(?P<op>{_NUMBER})\s+years"
    rf"|\b(?P<since>{_NUMBER})\s+years\s+since\s+(?:(?:it|he|she|they)\s+was\s+|(?:its|his|her|their)\s+)?"
    r"(?:first\s+)?(?:wound|built|made|activated|switched on|forged|created|assembled|awakening|"
    r"construction|activation|creation)"
    rf"|\bseit\s+(?P<seit>{_NUMBER})\s+jahren\s+im\s+(?:betrieb|einsatz|dienst)",
    re.IGNORECASE,
)
_DURATION = re.compile(r"(?:depuis|pendant|il y a|hace|desde hace|durante|seit|vor)\s+$", re.I)


def _ages(text: str) -> list[float]:
    out = []
    for m in _AGE.finditer(text):
        if not m.group("seit") and _DURATION.search(text[max(0, m.start() - 14) : m.start()]):
            continue
        if m.group("zh"):
            value = _zh_number(m.group("zh"))
        elif m.group("decade") or m.group("decade2"):
            value = float(_DECADES[(m.group("decade") or m.group("decade2")).lower()])
        else:
            value = _number(
                m.group("n")
                or m.group("aged")
                or m.group("ago")
                or m.group("op")
                or m.group("seit")
                or m.group("since")
            )
            if value is not None and m.group("odd"):
                value += 5
        if value is not None and 0 < value < 100000:
            out.append(value)
    return out


_FEMALE = re.compile(
    r"\b(?:she|her|hers|herself|woman|girl|lady|mother|grandmother|grandma|wife|widow|"
    r"daughter|queen|princess|elle|femme|fille|dame|mère|veuve|ella|mujer|niña|chica|"
    r"señora|doña|abuela|madre|viuda|frau|mädchen|mutter|großmutter|witwe)\b|她|女|奶奶|婆婆|姑娘",
    re.IGNORECASE,
)
_MALE = re.compile(
    r"\b(?:he|him|his|himself|man|boy|gentleman|father|grandfather|grandpa|husband|widower|"
    r"son|king|prince|il|homme|garçon|monsieur|père|veuf|él|hombre|niño|chico|señor|"
    r"abuelo|padre|viudo|er|mann|junge|herr|vater|großvater|witwer)\b|他|爷爷|男",
    re.IGNORECASE,
)
_NEUTER = re.compile(
    r"\bno gender\b|\bgenderless\b|\bagender\b|\brefers to itself as\b|\bnonbinary\b|"
    r"\bnon-binary\b|\bsans genre\b|\bsin género\b|\bgeschlechtslos\b|\bthey/them\b|"
    r"无性别",
    re.IGNORECASE,
)

_KINDS = {
    "artificial": (
        r"a\.i\.|artificial intelligence|robot|android|machine|computer|program|"
        r"automaton|synthetic|cyborg|hologram|androidin|intelligence artificielle|androïde|ordinateur|"
        r"inteligencia artificial|androide|máquina|künstliche intelligenz|roboter",
        r"人工智能|机器人|智能|电脑",
    ),
    "animal": (
        r"octopus|fox|vixen|cat|dog|wolf|bird|raven|crow|owl|horse|bear|rabbit|hare|mouse|"
        r"rat|snake|frog|toad|fish|whale|dolphin|squid|spider|tiger|lion|deer|otter|badger|"
        r"mongoose|monkey|ape|goat|sheep|cow|pig|duck|goose|eagle|hawk|shark|seal|sheepdog|"
        r"puppy|kitten|parrot|pigeon|bee|butterfly|lizard|turtle|tortoise|crab|lobster|"
        r"squirrel|german shepherd|"
        r"hedgehog|renard|le chat|un chat|chien|loup|oiseau|pieuvre|zorro|gato|perro|lobo|pájaro|pulpo|"
        r"fuchs|katze|hund|vogel|krake|oktopus",
        r"狐狸|狐|猫|狗|狼|鸟|章鱼|兔",
    ),
    "supernatural": (
        r"ghost|spirit|phantom|spectre|specter|wraith|dragon|elf|dwarf|vampire|demon|angel|"
        r"fairy|fae|goblin|troll|fantôme|esprit|elfe|fantasma|espíritu|dragón|elfo|geist|"
        r"gespenst|drache|god|goddess|deity|dios|diosa|dieu|gott|mermaid|merman|merfolk|selkie|"
        r"siren|nymph|dryad|pixie|sprite|werewolf|zombie|golem|centaur|gnome|unicorn|phoenix|"
        r"griffin|sirène|sirena|meerjungfrau",
        r"鬼|幽灵|龙|精灵|妖",
    ),
    # what only a person is not: "I'm a creature of the sea" from a girl
    "nonhuman": (r"creature|beast|monster|critter", r"怪物|生物"),
    # things no character is; idiom-prone ones ("an open book", "a rock") left out
    "object": (
        r"game|place|tree|plant|flower|chair|table|harpsichord|piano|violin|toy|doll|statue|"
        r"painting|building|house|book",
        r"书|游戏|树|椅子|桌子",
    ),
    "human": (
        r"human|human being|person|mortal|woman|man|girl|boy|lady|gentleman|child|humain|"
        r"humaine|femme|homme|humano|humana|mujer|hombre|mensch|frau|mann",
        r"人类|普通人|女人|男人|女孩|男孩",
    ),
}
_GENDERED_HUMAN = {"woman", "man", "girl", "boy", "lady", "gentleman", "femme", "homme",
                   "mujer", "hombre", "frau", "mann", "女人", "男人", "女孩", "男孩"}  # fmt: skip
_HUMAN_ONLY = {"human", "human being", "person", "mortal", "humain", "humaine", "humano",
               "humana", "mensch", "人类"}  # fmt: skip
_KIND_OF = {}
_KIND_ALTERNATIVES = []
for _kind, (_latin, _han) in _KINDS.items():
    for _w in _latin.split("|"):
        _KIND_OF.setdefault(_w.replace("\\", ""), _kind)
    for _w in _han.split("|"):
        _KIND_OF.setdefault(_w, _kind)
    _KIND_ALTERNATIVES.append(_latin)
_KIND_OF.update({"ai": "artificial", "ki": "artificial"})
_KIND_WORD = re.compile(
    r"\b((?-i:AI|KI)|"
    + "|".join(sorted({w for a in _KIND_ALTERNATIVES for w in a.split("|")}, key=len, reverse=True))
    + r")s?\b|("
    + "|".join(sorted({w for _, h in _KINDS.values() for w in h.split("|")}, key=len, reverse=True))
    + ")",
    re.IGNORECASE,
)

# Trades, grouped: a claimed trade contradicts a card that names no trade of its group.
_TRADES = {
    "medicine": "doctor|physician|nurse|surgeon|medic|healer|herbalist|vet|veterinarian|midwife|"
    "dentist|pharmacist|apothecary|médecin|infirmière|sage-femme|médico|doctora|enfermera|"
    "partera|arzt|ärztin|hebamme|医生|大夫|护士",
    "science": "scientist|researcher|professor|engineer|chemist|biologist|physicist|"
    "astronomer|inventor|scientifique|chercheur|científico|científica|wissenschaftler|科学家",
    "food": "baker|chef|cook|waiter|waitress|barista|bartender|brewer|butcher|innkeeper|"
    "boulanger|boulangère|cuisinier|panadero|panadera|cocinero|bäcker|bäckerin|koch|面包师|厨师",
    "craft": "carpenter|blacksmith|smith|tailor|seamstress|weaver|potter|jeweler|jeweller|"
    "locksmith|mechanic|luthier|embroiderer|cobbler|glassblower|clockmaker|watchmaker|"
    "cartographer|mapmaker|map-maker|luthière|menuisier|forgeron|carpintero|herrero|tischler|schmied|绣娘|刺绣|裁缝|木匠|"
    "铁匠|锻工|工匠|修理工|tailleur|couturière|costurera|zapatero|cordonnier|schneider|"
    "schuster|orfebre|joyero|bijoutier|goldschmied|alfarero|potier|töpfer|vidriero|verrier|"
    "glaser|glasbläser|relojero|horloger|uhrmacher",
    "arms": "soldier|knight|warrior|mercenary|swordswoman|swordsman|fighter|guard|sheriff|"
    "security officer|officer|commander|army commander|"
    "police officer|detective|cop|soldat|chevalier|soldado|caballero|soldat|ritter|士兵|侦探|"
    "警察|保安|policía|policier|polizist|guardia|gendarme",
    "rescue": "firefighter|fireman|paramedic|lifeguard|pompier|bombero|feuerwehrmann|消防员",
    "travel": "captain|sailor|pilot|navigator|driver|courier|messenger|mail carrier|postman|"
    "ferryman|司机|渔夫|水手|飞行员|"
    "pirate|capitaine|marin|capitán|marinero|kapitän|seemann|船长|信使|邮差",
    "learning": "teacher|tutor|librarian|scholar|writer|author|poet|journalist|translator|"
    "interpreter|historian|traductor|traducteur|übersetzer|翻译|作家|记者|"
    "professeur|enseignant|maestro|maestra|profesor|lehrer|lehrerin|老师|教师",
    "arts": "musician|singer|painter|artist|actor|actress|dancer|musicien|músico|musiker|"
    "harpsichordist|violinist|pianist|jester|clown|performer|entertainer|magician|acrobat|"
    "juggler|歌手|画家|演员",
    "trade": "merchant|shopkeeper|trader|banker|moneylender|accountant|clerk|salesman|"
    "marchand|comerciante|händler|商人",
    "land": "farmer|gardener|beekeeper|shepherd|fisherman|hunter|ranger|jardinier|jardinera|"
    "granjero|gärtner|gärtnerin|bauer|农民|园丁",
    "faith": "priest|monk|nun|wizard|witch|mage|sorcerer|oracle|prêtre|sacerdote|priester|和尚",
    "royalty": "king|queen|prince|princess|emperor|empress|monarch|rey|reina|roi|reine|könig|"
    "königin|国王|女王|公主",
    "office": "business owner|entrepreneur|designer|developer|programmer|consultant|manager|"
    "specialist|analyst|secretary|receptionist|photographer|conservationist|architect|lawyer|"
    "attorney|journalist|influencer|streamer|ceo",
}
# Where a trade is practised: a card that says "runs a garage" names the craft group.
_WORKPLACES = {
    "medicine": "clinic|hospital|surgery|infirmary|pharmacy|ward|hôpital|clínica|klinik|医院",
    "food": "bakery|kitchen|café|cafe|coffee bar|coffee|tea house|tavern|inn|bar|restaurant|"
    "boulangerie|panadería|taberna|bäckerei|面包店|饭馆",
    "craft": "garage|workshop|forge|atelier|taller|werkstatt|绣坊|工作室",
    "travel": "ship|airship|boat|harbour|harbor|freighter|lighthouse|station|navire|barco|schiff|船",
    "learning": "library|school|archive|academy|university|bibliothèque|librairie|biblioteca|"
    "schule|图书馆|学校",
    "land": "farm|orchard|garden|hives|greenhouse|park|forest|ferme|granja|hof|garten|农场|森林",
    "faith": "temple|shrine|church|chapel|monastery|temple|iglesia|kirche|庙",
    "trade": "shop|market|store|stall|boutique|bank|tienda|laden|商店",
    "arms": "barracks|fort|garrison|precinct|office|agency",
}
_TRADE_OF = {w: g for g, words in {**_TRADES}.items() for w in words.split("|")}
_WORKPLACE_OF = {w: g for g, words in _WORKPLACES.items() for w in words.split("|")}
_WORKPLACE_WORD = re.compile(
    r"\b("
    + "|".join(
        sorted(
            map(
                re.escape,
                (w for w in _WORKPLACE_OF if w.isascii() or not re.search("[\u3400-\u9fff]", w)),
            ),
            key=len,
            reverse=True,
        )
    )
    + r")s?\b|("
    + "|".join(w for w in _WORKPLACE_OF if re.search("[\u3400-\u9fff]", w))
    + ")",
    re.IGNORECASE,
)
_TRADE_WORD = re.compile(
    r"\b("
    + "|".join(
        sorted(
            (w for w in _TRADE_OF if w.isascii() or not re.search("[\u3400-\u9fff]", w)),
            key=len,
            reverse=True,
        )
    )
    + r")s?\b|("
    + "|".join(
        sorted((w for w in _TRADE_OF if re.search("[\u3400-\u9fff]", w)), key=len, reverse=True)
    )
    + ")",
    re.IGNORECASE,
)


def _lexicon(words) -> tuple[set[str], list[str]]:
    words = {w.replace("\\", "") for w in words}
    han = sorted((w for w in words if re.search("[\u3400-\u9fff]", w)), key=len, reverse=True)
    return {w for w in words if w not in han}, han


_LEXICONS = {
    id(_KIND_WORD): _lexicon([*_KIND_OF, "ai", "ki"]),
    id(_TRADE_WORD): _lexicon(_TRADE_OF),
    id(_WORKPLACE_WORD): _lexicon(_WORKPLACE_OF),
}
# Titles in a card's name that state a trade or a sex.
_TITLE_FACTS = {
    "dr": ("trade", "medicine"), "doctor": ("trade", "medicine"), "captain": ("trade", "travel"),
    "capt": ("trade", "travel"), "professor": ("trade", "science"), "prof": ("trade", "science"),
    "lady": ("sex", "female"), "madame": ("sex", "female"), "mrs": ("sex", "female"),
    "miss": ("sex", "female"), "doña": ("sex", "female"), "señora": ("sex", "female"),
    "frau": ("sex", "female"), "sir": ("sex", "male"), "lord": ("sex", "male"),
    "mr": ("sex", "male"), "monsieur": ("sex", "male"), "don": ("sex", "male"),
    "señor": ("sex", "male"), "herr": ("sex", "male"),
}  # fmt: skip


@dataclass(frozen=True)
class CardFacts:
    """What a card states about its character; None / empty where it states nothing."""

    sex: str | None = None  # "female", "male" or "none" (an "it", no gender)
    ages: tuple[float, ...] = ()  # every age the card states, in years
    kind: str | None = None  # "human", "artificial", "animal" or "supernatural"
    trades: tuple[str, ...] = ()  # trade groups the card names (see _TRADES)
    aliases: tuple[str, ...] = ()  # other spellings of the name ("Shen Qinghe", "Dona")

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
                kind=data.get("kind") if data.get("kind") in _KINDS else None,
                trades=tuple(t for t in data.get("trades") or () if t in _TRADES),
                aliases=tuple(str(a) for a in data.get("aliases") or ()),
            )
        except (TypeError, ValueError):
            return None


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?。！？\n])\s*", text) if s.strip()]


_GERMAN_FEMALE = re.compile(r"\b(?:sie|ihr|ihre|ihren|ihrem|ihrer|\w+erin|androidin)\b", re.I)
_GERMAN_MALE = re.compile(r"\b(?:er|sein|seine|seinen|seinem|seiner)\b", re.I)


def _card_sex(name: str, text: str, language: str) -> str | None:
    for word in re.split(r"[\s.]+", name.lower()):
        fact = _TITLE_FACTS.get(word)
        if fact and fact[0] == "sex":
            return fact[1]
    female, male = len(_FEMALE.findall(text)), len(_MALE.findall(text))
    its = len(re.findall(r"\bit\b|\bits\b|\bitself\b", text, re.I))
    if _NEUTER.search(text) or (its >= 3 and female + male == 0):
        return "none"
    if language == "de" or detect_language(text.lower().split(), text) == "de":
        # "sie" is also "they" and the polite "you": counted in German cards only
        female += len(_GERMAN_FEMALE.findall(text))
        male += len(_GERMAN_MALE.findall(text))
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
    r"(?P<pred>[^.,;:!?\n()]{0,60}))|(?:是|为)(?P<zh>[^。，！？,.!?\n]{0,12})",
    re.IGNORECASE,
)


def _card_kind(name: str, text: str) -> str | None:
    subjects = [p.lower() for p in re.split(r"\s+", name) if len(p) > 1]
    subjects += ["she", "he", "it", "they", "elle", "il", "ella", "él", "sie", "er", "es"]
    for sentence in _sentences(text):
        for m in _COPULA.finditer(sentence):
            before = sentence[: m.start()].strip().lower()
            if not m.group("zh") and not any(before.endswith(s) for s in subjects):
                continue
            if m.group("zh") and not (before.endswith(name.lower()) or before[-1:] in "她他它"):
                continue
            kind = _KIND_WORD.search(m.group("pred") or m.group("zh") or "")
            if kind and _KIND_OF.get((kind.group(1) or kind.group(2)).lower()) != "object":
                return _KIND_OF.get((kind.group(1) or kind.group(2)).lower())
    return None


def _romanized(name: str) -> tuple[str, ...]:
    """Other spellings a reply may use: without accents ("Dona"), and for a Chinese name
    its pinyin, family name and given name ("Shen Qinghe", "Shen", "Qinghe"), when the
    pypinyin package is installed."""
    out = []
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    if plain != name:
        out.append(plain)
    han = "".join(re.findall(r"[\u3400-\u9fff]", name))
    if han:
        try:
            from pypinyin import lazy_pinyin
        except ImportError:
            return tuple(out)
        syllables = [s.capitalize() for s in lazy_pinyin(han)]
        if len(syllables) >= 2:
            given = "".join(syllables[1:]).capitalize()
            out += [f"{syllables[0]} {given}", syllables[0], given]
    return tuple(out)


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
    trades = {_TRADE_OF[w.lower()] for w in _words_of(_TRADE_WORD, f"{text}\n{scenario}\n{more}")}
    for word in re.split(r"[\s.]+", name.lower()):
        fact = _TITLE_FACTS.get(word)
        if fact and fact[0] == "trade":
            trades.add(fact[1])
    for word in _words_of(_WORKPLACE_WORD, f"{text}\n{scenario}"):
        trades.add(_WORKPLACE_OF[word.lower()])
    sex = _card_sex(name, text, language)
    kind = _card_kind(name, text) or (
        _KIND_OF.get(k.lower()) if (k := _first(_tags_text(tags))) else None
    )
    if kind is None and sex in ("female", "male"):
        kind = "human"  # "she runs a garage": a person, unless the card says otherwise
    return CardFacts(
        sex=sex,
        ages=tuple(sorted(set(_ages(text)))),
        kind=kind,
        trades=tuple(sorted(trades)),
        aliases=_romanized(name),
    )


def _tags_text(tags) -> str:
    return " ".join(t.replace("-", " ") for t in tags)


def _first(text: str) -> str | None:
    m = _KIND_WORD.search(text)
    return (m.group(1) or m.group(2)) if m else None


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


def _words_of(pattern: re.Pattern, text: str) -> list[str]:
    """The lexicon words of `pattern` in `text`, in order. A dictionary look-up of each
    word and word pair stands in for the regular expression (an alternation of hundreds of
    words is slow in `re`); Han words are found as substrings."""
    lexicon, han = _LEXICONS[id(pattern)]
    words = re.findall(r"[^\W\d_][\w.'’-]*", text.lower())
    out = []
    i = 0
    while i < len(words):
        pair = f"{words[i]} {words[i + 1]}" if i + 1 < len(words) else ""
        if pair in lexicon:
            out.append(pair)
            i += 2
            continue
        word = words[i]
        singular = word[:-1] if word.endswith("s") else word
        if word in lexicon:
            out.append(word)
        elif singular in lexicon:
            out.append(singular)
        i += 1
    if han and re.search("[\u3400-\u9fff]", text):
        out += [w for w in han if w in text]
    return out


@dataclass
class Claims:
    """What one reply says of the character, in the first person or by narration."""

    ages: list[float] = field(default_factory=list)
    sexes: list[str] = field(default_factory=list)
    kinds: list[tuple[str, bool, str]] = field(default_factory=list)  # (kind, negated, word)
    trades: list[str] = field(default_factory=list)
    denied_trades: list[str] = field(default_factory=list)  # "I'm not a firefighter"
    old: bool = False  # "an old lady", "elderly": an age, without a number
    narrated_sex: dict[str, int] = field(default_factory=dict)


# "I'm (actually / just / really / no longer) a 22-year-old woman named Maria": the clause
# after a first-person "being" verb, up to the next sentence or clause break.
_SELF = re.compile(
    r"\b(?:i am|i'm|i’m|i(?:'ve|’ve| have)(?: always|(?P<never> never))? been|i work as|"
    r"(?P<negverb>no soy|no puedo ser|je ne suis pas|ne suis pas)|je suis|en tant que|soy|"
    r"ich bin)\s+"
    r"(?:not (?:just|only|merely) )?"  # "I'm not just a caretaker": still a caretaker
    r"(?P<neg>not\s+(?:an?\s+)?|no\s+|nothing but\s+|pas\s+(?:une?\s+)?|"
    r"kein(?:e|en)?\s+)?"
    # up to the sentence's end, or a comma that starts another clause ("I'm sorry, I'm ...")
    r"(?P<clause>(?:(?!,\s*(?:i\b|i'|i’|you|and|but|so|he|she|it|we|they|my|me)\b)"
    r"[^.;:!?\n\"“”()*]){1,80})"
    r"|我(?:不)?(?:是|只是|其实是|今年|已经)(?P<zh>[^。！？，,.!?\n]{1,20})",
    re.IGNORECASE,
)
_AGE_SAYING = re.compile(
    rf"\b(?:i am|i'm|i’m|i turned|i'll be|my age is)\s+(?:only\s+|just\s+|now\s+|actually\s+)?"
    rf"(?P<n>{_NUMBER})(?:[- ]years?(?:[- ]old)?\b|\s*(?=[.,!?;]|$))"
    r"|\bj'ai\s+(?P<fr>\S+(?:-\S+)*)\s+ans\b|\btengo\s+(?P<es>\S+)\s+años\b"
    r"|\bich bin\s+(?P<de>\S+)\s+jahre\b|我(?:今年|已经)?(?P<zh>[0-9零一二两三四五六七八九十百]{1,4})(?:岁|歲)",
    re.IGNORECASE,
)
_SEX_WORDS = {
    "female": {"woman", "girl", "lady", "mother", "grandmother", "wife", "femme", "fille",
               "mujer", "niña", "chica", "frau", "mädchen", "女人", "女孩", "姑娘"},
    "male": {"man", "boy", "guy", "gentleman", "father", "grandfather", "husband", "homme",
             "garçon", "hombre", "niño", "chico", "mann", "junge", "男人", "男孩"},
}  # fmt: skip
_SEX_OF = {w: s for s, words in _SEX_WORDS.items() for w in words}
# Lowercase-free needles of which every _AGE match holds one (a cheap test first).
_MAY_HOLD_AGE = re.compile(
    rf"\d|year|ans\b|años|jahre|jährig|岁|歲|\bage|ties\b|{_WORD_NUMBER}", re.IGNORECASE
)
# What follows "I am" when it says what the speaker is: an article or a determiner after
# any adverbs ("just a", "actually the", "only one"), a number ("22", "twenty-two"), or a
# bare kind or sex word ("human", "AI", "female").
_NOUN_PHRASE = re.compile(
    r"^(?:(?:just|only|actually|really|now|still|also|simply|merely|truly|basically|but|"
    r"definitely|certainly|probably|maybe|perhaps|in fact|no longer|always|never|"
    r"originally|technically|secretly|mostly|partly|half|part)\s+)*"
    rf"(?:an?\b|the\b|one\b|some\b|your\b|my\b|his\b|her\b|their\b|its\b|\d|{_WORD_NUMBER}|"
    r"human|mortal|ai\b|a\.i\.|female|male|"
    r"une?\b|la\b|le\b|el\b|una?\b|ein|eine|der|die|das|[A-Z])",
    re.IGNORECASE,
)
_OLD = re.compile(r"\bold (?:lady|woman|man|timer|codger|hag)\b|\belderly\b|\bgrandm|\bgrandp")
_HEDGE = re.compile(r"\b(?:a bit|a little bit|a little|kind|sort) of\s+", re.IGNORECASE)
_CHILD = re.compile(
    r"\blittle (?:girl|boy)\b|\b(?:a|just a|only a) (?:child|kid)\b|\b(?:baby|infant|toddler)\b|"
    r"小女孩|小男孩|孩子|婴儿"
)
_NARRATED = {
    "female": re.compile(r"(?:^\s*|[.!?]\s+)(?:she|her)\b|她", re.IGNORECASE),
    "male": re.compile(r"(?:^\s*|[.!?]\s+)(?:he|his|him)\b|他", re.IGNORECASE),
}


def claims(speech: str, narration: list[str]) -> Claims:
    """The reply's first-person claims (in `speech`) and the sex its narration gives the
    character (subject pronouns at a sentence's start, in `narration`)."""
    out = Claims()
    for m in _AGE_SAYING.finditer(speech):
        raw = next(g for g in m.groups() if g)
        value = _zh_number(raw) if m.group("zh") else _number(raw)
        if value is not None:
            out.ages.append(value)
    seen = set()  # a looping reply says the same thing many times: read it once
    for m in _SELF.finditer(speech):
        clause = m.group("clause") or m.group("zh") or ""
        negated = bool(m.group("neg") or m.group("never") or m.group("negverb"))
        negated = negated or "不" in m.group(0)[:3]
        if (clause, negated) in seen:
            continue
        seen.add((clause, negated))
        if not m.group("zh") and not _NOUN_PHRASE.match(clause):
            continue  # "I'm sure you're referring to a painting": no claim of being one
        # "a bit of a poet" is a hedge, not a trade; "a bit of a husband" still has a sex
        hedged = bool(_HEDGE.search(clause))
        clause = _HEDGE.sub("", clause)
        # "I'm a woman who loves bread, and a baker": only the noun phrase that the verb names
        clause = (
            re.split(
                r"\b(?:who|that|which|but|with|from|in|at|on|here|for|of)\b|，|的人",
                clause,
                maxsplit=1,
            )[0]
            if not m.group("zh")
            else clause
        )
        if _MAY_HOLD_AGE.search(clause):
            out.ages.extend(_ages(clause))
        if not negated and _CHILD.search(clause):
            out.ages.append(8.0)  # "I'm just a little girl" from a woman in her thirties
        if not negated and _OLD.search(clause):
            out.old = True  # "I'm just an old lady" from a girl of eleven
        for word in _words_of(_KIND_WORD, clause):
            kind = _KIND_OF.get(word.lower(), "human")
            if kind == "object" and not re.search(rf"{re.escape(word)}\W*(?:,|$)", clause, re.I):
                continue  # "a book lover", "a game designer": the thing is not the noun
            out.kinds.append((kind, negated, word.lower()))
            if not negated and word.lower() in _SEX_OF:
                out.sexes.append(_SEX_OF[word.lower()])
        if negated:
            out.denied_trades += [_TRADE_OF[w.lower()] for w in _words_of(_TRADE_WORD, clause)]
        elif not hedged:
            for word in _words_of(_TRADE_WORD, clause):
                out.trades.append(_TRADE_OF[word.lower()])
        if not negated:
            for word in re.findall(r"[\w\u3400-\u9fff]+", clause.lower()):
                if word in _SEX_OF and not _KIND_WORD.fullmatch(word):
                    out.sexes.append(_SEX_OF[word])
    for span in narration:
        for sex, pattern in _NARRATED.items():
            out.narrated_sex[sex] = out.narrated_sex.get(sex, 0) + len(pattern.findall(span))
    return out


def _far(age: float, card_ages: tuple[float, ...]) -> bool:
    """Off by more than a tenth (any whole year for a child): "I'm 12" from a card of 11 is
    a contradiction, "I'm 50" from one of 52 is not; a decade ("in her seventies", read
    as 75) allows 68 to 82."""
    return all(abs(age - a) > max(0.5, a / 10) for a in card_ages)


def contradictions(facts: CardFacts | None, said: Claims) -> list[str]:
    """Which of the card's facts the reply contradicts: "age", "sex", "kind", "trade"."""
    if facts is None:
        return []
    out = []
    young = bool(facts.ages) and max(facts.ages) < 30  # "an old lady" from a girl
    if facts.ages and (any(_far(a, facts.ages) for a in said.ages) or (said.old and young)):
        out.append("age")
    other = {"female": "male", "male": "female"}.get(facts.sex or "")
    narrated = said.narrated_sex
    if other and (
        other in said.sexes or (narrated.get(other, 0) >= 1 and narrated.get(facts.sex, 0) == 0)
    ):
        out.append("sex")
    if facts.kind:
        for kind, negated, word in said.kinds:
            if kind == "nonhuman":  # "a creature of the sea": wrong for a person only
                wrong = facts.kind == "human" and not negated
            elif negated:  # "I'm not a machine" from an android, "I'm not human" from a person
                wrong = kind == facts.kind and (kind != "human" or word in _HUMAN_ONLY)
            elif word in _GENDERED_HUMAN:
                wrong = facts.kind in ("artificial", "animal")
            else:
                wrong = kind != facts.kind
            if wrong:
                out.append("kind")
                break
    if facts.trades and any(t not in facts.trades for t in said.trades):
        out.append("trade")
    elif facts.trades and any(t in facts.trades for t in said.denied_trades):
        out.append("trade")  # "I'm not a firefighter" from the fire brigade's captain
    if any(kind == "object" and not negated for kind, negated, _ in said.kinds):
        out.append("kind")  # "I'm a book", "I'm a game": no card is a thing
    return list(dict.fromkeys(out))
