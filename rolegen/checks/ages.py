"""Numbers and ages as cards and replies state them, in English, French, Spanish, German
Italian and Chinese: `number` ("thirty-four", "a hundred and twelve", "quatre-vingts"),
`it_number` ("trentanove"), `zh_number` ("四十三"), and
`ages`, every age a text states ("80-year-old", "a man of thirty-four", "in her
seventies", "three hundred winters old", "trentanove anni", "八十岁", a made thing's years
since it was made, a sheet's field: "Age: 81", 'Age("17 at death")', the age at death: "died
at twenty-nine", a birth in seasons: "foaled sixteen springs ago", a life of a hundred years
or more: "has lingered for eleven hundred years"; not a relative's: "a twelve-year-old
son"); what a reply says of its own age (`ages_said`: "I'm around 30") and of
the span of its life (`spans_said`: "I've been here for 2,000 years"); and `far`, an age
far from every age a card states (a great age, a hundred or more, is a round figure: a
quarter either side). Shared by the card side (`persona_facts`) and the reply side
(`self_claims`). Not handled: numbers past the thousands in words, durations under a
hundred years read as ages ("has lived here for 30 years" is not one).
"""

from __future__ import annotations

import re

NUMBER_WORDS = {
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
    "thousand": 1000, "cent": 100, "cents": 100, "cien": 100, "ciento": 100, "mille": 1000,
    "mil": 1000,
}  # fmt: skip
# Italian writes a number in one word, a ten's last vowel dropped before "uno" and "otto":
# "trentanove", "ventotto", "cinquantuno".
_IT_TENS = {"vent": 20, "trent": 30, "quarant": 40, "cinquant": 50, "sessant": 60,
            "settant": 70, "ottant": 80, "novant": 90}  # fmt: skip
_IT_UNITS = {"": 0, "uno": 1, "due": 2, "tre": 3, "tré": 3, "quattro": 4, "cinque": 5,
             "sei": 6, "sette": 7, "otto": 8, "nove": 9}  # fmt: skip
IT_NUMBER = (
    r"(?:vent|trent|quarant|cinquant|sessant|settant|ottant|novant)[aei]?"
    r"(?:uno|due|tré|tre|quattro|cinque|sei|sette|otto|nove)?|dieci|undici|dodici|tredici|"
    r"quattordici|quindici|sedici|diciassette|diciotto|diciannove|cento"
)
_IT_SMALL = {"dieci": 10, "undici": 11, "dodici": 12, "tredici": 13, "quattordici": 14,
             "quindici": 15, "sedici": 16, "diciassette": 17, "diciotto": 18,
             "diciannove": 19, "cento": 100}  # fmt: skip
DECADES = {
    "twenties": 25, "thirties": 35, "forties": 45, "fifties": 55, "sixties": 65,
    "seventies": 75, "eighties": 85, "nineties": 95,
}  # fmt: skip
WORD_NUMBER = "|".join(sorted(map(re.escape, NUMBER_WORDS), key=len, reverse=True))
NUMBER = rf"(?:\d{{1,3}}(?:,\d{{3}})+|\d{{1,5}}|(?:{WORD_NUMBER})(?:(?:[- ]|\s+(?:y|et|and)\s+)(?:{WORD_NUMBER})){{0,3}})"
ZH_DIGITS = {
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


def number(text: str) -> float | None:
    text = text.lower().strip()
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", text):  # "1,300"
        text = text.replace(",", "")
    if text.isdigit():
        return float(text)
    if text in NUMBER_WORDS:
        return float(NUMBER_WORDS[text])
    total, current = 0, 0  # "two thousand", "a hundred and twelve", "one hundred twenty"
    for part in re.split(r"[- ]", text):
        if part in ("y", "et", "and", ""):
            continue
        if part not in NUMBER_WORDS:
            return None
        if NUMBER_WORDS[part] == 100:  # "hundred", "cent(s)", "cien(to)"
            current = (current or 1) * 100
        elif NUMBER_WORDS[part] == 1000:  # "thousand", "mille", "mil"
            total, current = total + (current or 1) * 1000, 0
        else:
            current += NUMBER_WORDS[part]
    return float(total + current) if total + current else None


def it_number(text: str) -> float | None:
    """ "trentanove" -> 39, "ventotto" -> 28, "diciotto" -> 18."""
    text = text.lower()
    if text in _IT_SMALL:
        return float(_IT_SMALL[text])
    for stem, tens in _IT_TENS.items():
        if text.startswith(stem):
            rest = text[len(stem) :]
            rest = rest[1:] if rest[:1] in ("a", "e", "i") and rest[1:] in _IT_UNITS else rest
            if rest in _IT_UNITS:
                return float(tens + _IT_UNITS[rest])
    return None


def zh_number(text: str) -> float | None:
    """ "四十三" -> 43, "十二" -> 12, "八十" -> 80, "300" -> 300."""
    if text.isdigit():
        return float(text)
    total, current = 0, 0
    for ch in text:
        if ch in ZH_DIGITS:
            current = ZH_DIGITS[ch]
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
# y tantos años", "80 Jahre alt", "八十岁", "三十八歳", "52 de ani", "41 lat", "78 tahun", "38 anos",
# "12살". Durations ("for 30 years", "depuis 30 ans") are
# not ages.
DECADE = "|".join(DECADES)
AGE = re.compile(
    rf"\b(?P<n>{NUMBER})(?P<odd>[- ]odd|\s+y\s+tantos|\s+et quelques|\s+und etwas)?"
    r"(?P<half>\s+and\s+a\s+half)?"
    r"(?:[- ](?:years?|winters?|summers?)[- ]old\b|\s+ans\b|\s+años\b|\s+anni\b|"
    r"\s+jahre\s+alt\b|-jährig|\s+de\s+ani\b|\s+lat\b|\s+tahun\b|\s+yaşında\b|\s+anos\b|"
    r"\s*(?:살|세)(?![가-힣]))"
    rf"|\b(?P<it>{IT_NUMBER})\s+anni\b"
    rf"|\b(?:aged?|age of|âgée? de|edad de|alter von|(?:man|woman|girl|boy|lady|gentleman|person|"
    rf"fellow|widow|widower) of)\s+(?P<aged>{NUMBER})\b(?!\s+(?:years?|days?|weeks?|months?|"
    r"words|letters|children|sons|daughters)\b)"
    # "two years and eight months old"
    rf"|\b(?P<ym>{NUMBER})\s+years?\s+and\s+(?P<months>{NUMBER})\s+months?\s+old\b"
    # "a female of four and a half years", "a man of eighty years"
    rf"|\b(?:man|woman|girl|boy|lady|gentleman|person|fellow|female|male|creature)\s+of\s+"
    rf"(?P<of>{NUMBER})(?P<ofhalf>\s+and\s+a\s+half)?\s+(?:years|summers|winters|springs)\b(?!['’])"
    rf"|\b(?:in|into)\s+(?:his|her|their|its|my)\s+(?:early\s+|late\s+|mid-)?(?P<decade>{DECADE})\b"
    rf"|(?:^|[.!?]\s+)(?P<decade2>{DECADE}),"
    r"|(?P<zh>[0-9零一二两三四五六七八九十百]{1,4})(?:岁|歲|歳)"
    # a made thing's age: "activated 31 years ago", "seit sechs Jahren im Betrieb"
    rf"|\b(?:activated|built|switched on|turned on|assembled|constructed|wound|made|forged|"
    rf"created|awakened|born|hatched|foaled|whelped|calved|fledged|spawned|sprouted|carved|"
    rf"summoned|(?:came|rolled) off the (?:\w+ )?line)\s+"
    rf"(?:first\s+)?(?:some\s+|about\s+|nearly\s+|over\s+)?(?:a\s+)?"
    rf"(?P<ago>{NUMBER})\s+(?:years?|winters?|springs?|summers?)"
    rf"(?:\s+and\s+(?P<agomonths>{NUMBER})\s+months?)?\s+ago"
    rf"|\b(?:in (?:operation|service)|active|operational)\s+for\s+(?P<op>{NUMBER})\s+years"
    # a sheet's age field: "Age: 81", "Alter: 81 Jahre", W++ 'Age("17 at death" + ...)'
    rf"|\b(?:age|alter|âge|edad|età|idade)\s*(?::|=|\(\s*[\"“']?)\s*[\"“']?\s*"
    rf"(?:about|around|roughly|approximately|circa|some|nearly|almost|over)?\s*"
    rf"(?P<field>{NUMBER})\b(?!\s*(?:%|cm|kg|months?|weeks?|days?)\b)"
    # the age at death: "died at twenty-nine", "17 at death", "34 when she died in 1887"
    rf"|\bdied\s+(?:in\s+\d{{3,4}}\s+)?at\s+(?P<died>{NUMBER})\b(?!\s*(?:[ap]\.?m\b|o'clock))"
    rf"|\b(?P<death>{NUMBER})\s+(?:at\s+(?:(?:her|his|their|its)\s+)?death|when\s+(?:she|he|they|it)\s+died)"
    # a great life span, a hundred years or more: "has lingered for roughly eleven hundred
    # years", "has lived behind the stoves for more than four hundred winters"
    rf"|\b(?:has|have|had)\s+(?:lived|lingered|existed|dwelt|haunted|walked|roamed|wandered|"
    rf"slept|stood|watched|guarded|been alive)\b[^.!?\n]{{0,80}}?\bfor\s+(?:some\s+|roughly\s+|"
    rf"about\s+|over\s+|more than\s+|nearly\s+|almost\s+|around\s+|well over\s+)?"
    rf"(?P<life>{NUMBER})\s+(?P<lunit>years|winters|summers|springs|centuries)\b"
    # "has served the court for forty-four years, ever since a horologist wound them"
    rf"|\bfor\s+(?P<ever>{NUMBER})\s+years,?\s+(?:ever\s+)?since\b[^.!?\n]{{0,80}}?"
    r"\b(?:wound|built|made|activated|switched on|forged|created|assembled|born|hatched)\b"
    rf"|\b(?P<since>{NUMBER})\s+years\s+since\s+(?:(?:it|he|she|they)\s+was\s+|(?:its|his|her|their)\s+)?"
    r"(?:first\s+)?(?:wound|built|made|activated|switched on|forged|created|assembled|awakening|"
    r"construction|activation|creation)"
    rf"|\bseit\s+(?P<seit>{NUMBER})\s+jahren\s+im\s+(?:betrieb|einsatz|dienst)",
    re.IGNORECASE,
)
# "her husband died at 60", "whose mother, who died at 40": another's death
_OTHERS = re.compile(r"\b(?:his|her|their|its|my|whose)\s+\w+,?\s*(?:who\s+)?$", re.IGNORECASE)
# "raising a twelve-year-old son": a relative's age, not the character's
_RELATIVE = re.compile(
    r"\s+(?:(?:step|grand|great-grand)?(?:son|daughter|child|children|kids?|brother|sister|"
    r"nephew|niece|cousin|husband|wife|twins?)s?|apprentice|grandchild(?:ren)?)\b",
    re.IGNORECASE,
)
DURATION = re.compile(
    r"(?:depuis|pendant|il y a|hace|desde hace|durante|seit|vor|od|przez|selama|sejak|há|"
    r"timp de)\s+$",
    re.I,
)


def ages(text: str) -> list[float]:
    out = []
    for m in AGE.finditer(text):
        if not m.group("seit") and DURATION.search(text[max(0, m.start() - 14) : m.start()]):
            continue
        if m.group("n") and _RELATIVE.match(text, m.end()):
            continue
        if m.group("died") and _OTHERS.search(text[max(0, m.start() - 40) : m.start()]):
            continue
        if m.group("zh"):
            value = zh_number(m.group("zh"))
        elif m.group("it"):
            value = it_number(m.group("it"))
        elif m.group("decade") or m.group("decade2"):
            value = float(DECADES[(m.group("decade") or m.group("decade2")).lower()])
        else:
            value = number(
                m.group("n")
                or m.group("aged")
                or m.group("ago")
                or m.group("op")
                or m.group("seit")
                or m.group("since")
                or m.group("ever")
                or m.group("of")
                or m.group("ym")
                or m.group("field")
                or m.group("died")
                or m.group("death")
                or m.group("life")
            )
            if value is not None and m.group("life"):
                value *= 100 if m.group("lunit").lower() == "centuries" else 1
                if value < 100:  # "has lived in Ashby for fifty years": no age
                    continue
            if value is not None and m.group("odd"):
                value += 5
            if value is not None and (m.group("half") or m.group("ofhalf")):
                value += 0.5
            months = m.group("months") or m.group("agomonths")
            if value is not None and months:  # "two years and eight months old"
                value += round((number(months) or 0) / 12, 2)
        if value is not None and 0 < value < 100000:
            out.append(value)
    return out


# What a reply says of its own age, in the first person: "I'm 22", "I'm around 30", "I'm
# over 40", "j'ai trente ans", "我今年二十二岁". "Around 30" is 25 to 35 (a tenth either
# side, five years at least), "over 40" any age above 40, "under 30" any below.
_APPROX, _OVER, _UNDER = (
    "around|about|almost|nearly|roughly|close to|pushing",
    "over|past|more than|older than",
    "under|less than|younger than",
)
APPROXIMATE = re.compile(rf"(?:{_APPROX}|{_OVER}|{_UNDER})\b", re.IGNORECASE)
_AGE_SAYING = re.compile(
    rf"\b(?:i am|i'm|i’m|i turned|i'll be|my age is)\s+(?:only\s+|just\s+|now\s+|actually\s+)?"
    rf"(?:(?P<approx>{_APPROX})\s+|(?P<over>{_OVER})\s+|(?P<under>{_UNDER})\s+)?"
    rf"(?P<n>{NUMBER})(?:[- ]years?(?:[- ]old)?\b|\s*(?=[.,!?;]|$))"
    r"|\bj'ai\s+(?P<fr>\S+(?:-\S+)*)\s+ans\b|\btengo\s+(?P<es>\S+)\s+años\b"
    r"|\bich bin\s+(?P<de>\S+)\s+jahre\b|我(?:今年|已经)?(?P<zh>[0-9零一二两三四五六七八九十百]{1,4})(?:岁|歲)",
    re.IGNORECASE,
)


def ages_said(speech: str) -> tuple[list[float], list[tuple[float, float]]]:
    """The ages the speaker states of itself, and the ranges ("over 40": (40, inf))."""
    said, ranges = [], []
    for m in _AGE_SAYING.finditer(speech):
        raw = next(m.group(k) for k in ("n", "fr", "es", "de", "zh") if m.group(k))
        value = zh_number(raw) if m.group("zh") else number(raw)
        if value is None:
            continue
        if m.group("over"):
            ranges.append((value, float("inf")))
        elif m.group("under"):
            ranges.append((0.0, value))
        elif m.group("approx"):
            spread = max(5.0, value / 10)
            ranges.append((value - spread, value + spread))
        else:
            said.append(value)
    return said, ranges


# "I've been here for over 2,000 years", "I've worked this forge for sixty years": a span
# of the speaker's own life, which no age can be shorter than ("I've been gone for two
# hundred years" is none)
_SPAN = re.compile(
    r"\bi(?:'ve|’ve| have)\s+(?:been|lived|worked|existed|walked|stood|kept|run|served|"
    r"watched|guarded)\b(?!\s+(?:gone|dead|away|asleep|sleeping|trapped|waiting|missing|lost|"
    r"buried|locked)\b)[^.!?\n]{0,50}?\bfor\s+(?:well\s+)?(?:over\s+|more than\s+|nearly\s+|"
    rf"almost\s+|about\s+|around\s+|close to\s+)?(?P<n>\d{{1,3}}(?:,\d{{3}})+|{NUMBER})\s+"
    r"(?P<unit>years|decades|centuries)\b",
    re.IGNORECASE,
)
_UNIT_YEARS = {"years": 1.0, "decades": 10.0, "centuries": 100.0}


def spans_said(speech: str) -> list[float]:
    """The spans of its own life the speaker states, in years."""
    out = []
    for m in _SPAN.finditer(speech):
        value = number(m.group("n").replace(",", ""))
        if value is not None:
            out.append(value * _UNIT_YEARS[m.group("unit").lower()])
    return out


def far(age: float, card_ages: tuple[float, ...]) -> bool:
    """Off by any whole year under 20 ("I'm 12" from a card of 11), by more than a
    twentieth above ("I'm 40" from one of 38 is a contradiction, "I'm 50" from one of 52
    is not), or by more than five years from a decade's middle ("in her seventies", read
    as 75, allows 70 to 80)."""
    return all(abs(age - a) > _tolerance(a) for a in card_ages)


def _tolerance(card_age: float) -> float:
    if card_age < 20:
        return 0.5
    if card_age >= 100:  # a great age is a round figure: "some two hundred years"
        return card_age / 4
    if card_age % 10 == 5:  # a decade ("in his forties") or an age that may be one
        return max(5.0, card_age / 20)
    return card_age / 20
