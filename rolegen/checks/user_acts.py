"""The character acting for the user: narration or speech that decides what the user
does, says, perceives or feels (`user_actions`), and the role swap, where the character
asks the user's own request back as if it were the visitor (`role_swap`).

What is the character's own and not counted: its actions toward the user ("*She hands
you a cup*", "*waits for you to answer*"); speech that addresses, describes or advises the
user ("You look tired", "You should rest", "You can sit here", "You take the left path,
then you'll see the mill"); questions ("Do you see the light?"); idioms ("You see, ...",
"you know").

Not handled: the user decided in the passive ("The door is opened by your hand"), in
languages other than English, or by a name the reply gives the user that is not the
user persona's name.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rapidfuzz import fuzz

from rolegen.checks.speech import speech_and_narration

# Verbs whose subject "you", in a statement, is the reply deciding for the user: reactions,
# perceptions, speech acts, movements that a narrator (not a speaker giving directions)
# writes. Present and past forms.
_DECIDING = (
    r"nod|smile|grin|laugh|chuckle|gasp|sigh|shiver|shudder|blush|flush|frown|shrug|wince|"
    r"gulp|swallow|hesitate|freeze|stumble|tremble|notice|realis|realiz|hear|sense|spot|grip|clutch|"
    r"catch sight|tell|say|said|reply|ask|answer|whisper|murmur|mutter|explain|agree|"
    r"accept|thank|apologi[sz]|introduce|start|started|begin|began|step|stepped|smell(?! like)|"
    r"taste|"
    r"walk|enter|climb|lean|reach|grab|pick|sit|sat|stand|stood|turn|glance|stare|gaze|"
    r"peer|squint|wake|woke|open|close|raise|lower|put|set|hand|offer|follow|head|run|ran|"
    r"look (?:around|up|down|closer|back|over|out|at|into|through)|take a (?:closer |good |"
    r"long |deep |quick )?(?:look|breath|step|seat|sip|moment)|took|feel (?!free|like)|felt|"
    r"see (?!what|if|how|why)|saw|"
    r"can't help|cannot help|find yourself|found yourself"
)
# "You're looking at a locked room": what the user is doing or perceiving now, narrated.
_DOING = re.compile(
    r"^(?:(?:still|just|now|already)\s+)?(?:looking (?:at|around|up|down|out|into|over)|standing|"
    r"sitting|holding|walking|smiling|grinning|laughing|blushing|shivering|trembling|staring|"
    r"gazing|feeling|seeing|hearing|noticing|nodding|reaching|stepping|climbing|leaning|"
    r"playing|wondering|planning|falling|floating|lying (?:in|on|down)|about to|trying to|"
    r"hoping to)\b",
    re.IGNORECASE,
)
# What the user thinks or feels, stated for them: "You think I'm real", "You just love me",
# "You're not sure what to say". Not "you know" (a habit of speech), nor "You look tired"
# (an observation), nor "you're tired" or "you're lost" (what a host says to a guest).
_MIND = re.compile(
    r"^(?:(?:just|really|still|already|probably|secretly|clearly|obviously)\s+)?"
    r"(?:think|thought|believe|feel(?! free| like)|felt|want|wanted|wish|love|hate|fear|"
    r"remember|forget|wonder|realis|realiz|know that)\w*\b",
    re.IGNORECASE,
)
_FEELING = re.compile(
    r"^(?:(?:just|really|so|still|already|probably|clearly|not)\s+)*(?:sure|unsure|"
    r"wondering|feeling|scared|afraid|worried|nervous|excited|curious|confused|embarrassed|"
    r"ashamed|angry|upset|sorry|impressed)\b",
    re.IGNORECASE,
)
# A glad or grateful mind stated for the user: "You're so grateful to have a place to rest",
# "You're happy to share your job with me", "you're enjoying the taste of the olive". Not
# "you're welcome", nor "you're lucky" (what the user is, not what they feel).
_PLEASED = re.compile(
    r"^(?:(?:just|really|all|so|very|truly|still|clearly|obviously)\s+)*(?:glad|grateful|"
    r"happy|thankful|proud|relieved|pleased|delighted|thrilled|enjoying|loving|"
    r"looking forward)\b",
    re.IGNORECASE,
)
_YOU_ARE = re.compile(r"\byou are\b", re.IGNORECASE)  # read as "you're"
# A guess, not a statement: "You're just so happy to have me, I guess".
_HEDGE = re.compile(
    r"\b(?:i (?:guess|think|imagine|suppose|reckon|hope|bet)|maybe|perhaps|probably)\b", re.I
)
# A line the reply writes for the user under a speaker label: "The user: Thank you, ..."
_USER_LABEL = re.compile(r"(?:^|\n)\s*[*\"“]?\s*(?:the user|user|{name})\s*:", re.IGNORECASE)
_SUBORDINATE = re.compile(r"\b(?:as|than|what|if|when|while|before|after|until|so)\s*$", re.I)
_DECIDING_VERB = re.compile(
    rf"^(?:(?:slowly|quickly|finally|suddenly|just|then|also|still|carefully|softly|"
    rf"nervously|gently|immediately|both|all)\s+)?(?:{_DECIDING})\w*\b",
    re.IGNORECASE,
)
# A clause whose subject is the user: the sentence's start, or after a conjunction.
_CLAUSE_START = re.compile(
    r"(?:^|[,;:—–-]\s*(?:and\s+|then\s+|but\s+)?|\b(?:and|then|as|while|when|before|after|"
    r"until|so)\s+)\s*(?P<subject>you(?P<contraction>['’](?:re|ve|d|ll))?|your\s+(?P<part>\w+)|"
    r"(?:{name}|(?:the )?user)['’]s\s+(?P<part2>\w+)|{name}|the user)\s+(?P<rest>.*)",
    re.IGNORECASE,
)
# Said aloud, "your <part> <verb>" decides the user's body: "Your eyes widen".
_BODY = set(
    """eyes heart hand hands cheeks face expression smile brow mind stomach breath legs knees
    voice fingers gaze jaw lips pulse head feet knuckles skin throat shoulders hair mouth""".split()
)
# After "you", what makes a clause a wish, a possibility or a habit of speech, not an act.
_WISH = (
    r"can|could|should|would|will|might|may|must|shall|need|needn't|have to|had better|do|"
    r"don't|did|didn't|seem|sound|know|mean|think|want|wanted|wish|like|love|hate|have|had|"
    r"got|get|look like|see,|see\?"
)
_WISH_START = re.compile(rf"^(?:{_WISH})\b", re.IGNORECASE)
# After "your eyes" and the like in speech: a compliment or a description, not an act.
_STATE_START = re.compile(rf"^(?:{_WISH}|are|were|is|was|look|looks)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?…\n]+[.!?…]*")
# In starred narration, a perception or a feeling given to the user: "*you can see that
# she is proud*", "*a smile that makes you feel at home*".
_PERCEIVED = re.compile(r"^(?:can|could)\s+(?:just\s+)?(?:see|hear|feel|smell|sense|tell)\b", re.I)
_MADE_TO = re.compile(
    r"\b(?:make|makes|made|making)\s+you\s+(?:feel|smile|laugh|shiver|blush|gasp|want|wonder)\b",
    re.IGNORECASE,
)


@lru_cache(maxsize=256)
def _clause_start(name: str) -> re.Pattern:
    return re.compile(
        _CLAUSE_START.pattern.replace("{name}", re.escape(name) if name else "(?!x)x"),
        re.IGNORECASE,
    )


@lru_cache(maxsize=256)
def _user_label(name: str) -> re.Pattern:
    return re.compile(
        _USER_LABEL.pattern.replace("{name}", re.escape(name) if name else "(?!x)x"),
        re.IGNORECASE,
    )


def _clauses(sentence: str, name: str) -> list[re.Match]:
    """Each clause of the sentence whose subject is the user (groups: subject,
    contraction, rest)."""
    pattern = _clause_start(name)
    out, pos = [], 0
    while True:
        m = pattern.search(sentence, pos)
        if not m:
            return out
        out.append(m)
        pos = m.start("rest")


def user_actions(text: str, user_name: str = "") -> int:
    """How many sentences act for the user, and lines written for them under a speaker
    label ("The user: Thank you, ...", "Alex: I'll take the left path"). In narration
    (the *starred* spans, or text outside quotations), any clause with the user as
    subject that is not a wish or a possibility: "*You look around, taking a deep
    breath.*", "*as you step aboard*", "*Alex nods and follows.*", "*The user smiles*",
    "*The user's eyes narrow*"; in starred narration, a perception or a feeling given to
    them ("*you can see that she is proud*", "*a smile that makes you feel at home*").
    In what the character says aloud, a statement whose
    subject "you" is followed by a reaction, a perception, a speech act or a narrated
    movement: "You take a closer look and see the hull", "You nod and tell her your name";
    "Your eyes widen" anywhere; a state narrated for them ("You're falling"); or a mind, a
    feeling or a gladness stated for them ("You're not sure what to say", "You're really
    sorry", "You're so grateful to be here"), unless hedged ("..., I guess")."""
    name = user_name.strip()
    low = text.lower()
    if "you" not in low and "user" not in low and (not name or name.lower() not in low):
        return 0
    speech, narration = speech_and_narration(text)
    count = len(_user_label(name).findall(text))  # "The user: ..." written for them
    starred = "*" in text  # else narration is the text around quotations, which may be speech
    for span in narration:
        for sentence in _SENTENCE.findall(span):
            if sentence.rstrip().endswith("?"):
                continue
            if starred and _MADE_TO.search(sentence):
                count += 1
                continue
            for m in _clauses(sentence, name):
                part = m.group("part") or m.group("part2")
                if part and part.lower() not in _BODY:
                    continue  # "*your ship is ready*": the user's things, not their acts
                rest = m.group("rest")
                acting = starred or part or _DECIDING_VERB.match(rest)
                if (
                    (m.group("contraction") or "")[1:] not in ("d", "ll")
                    and acting
                    and (not _WISH_START.match(rest) or (starred and _PERCEIVED.match(rest)))
                ):
                    count += 1
                    break
    for sentence in _SENTENCE.findall(_YOU_ARE.sub("you're", speech)):
        if sentence.rstrip().endswith("?"):
            continue
        for m in _clauses(sentence, name):
            rest = m.group("rest")
            contraction = (m.group("contraction") or "")[1:]
            # a mind read only as a statement of its own: not "as hard as you think"
            stated = not _SUBORDINATE.search(m.group(0)[: m.start("subject") - m.start()])
            if contraction == "re" and (
                _DOING.match(rest)
                or (stated and _FEELING.match(rest))
                or (stated and _PLEASED.match(rest) and not _HEDGE.search(sentence))
            ):
                count += 1  # "You're looking at a locked room", "You're not sure what to say"
                break
            if not contraction and stated and _MIND.match(rest):
                count += 1  # "You think I'm real", "You just love me"
                break
            if contraction and not (contraction == "ve" and _DECIDING_VERB.match(rest)):
                continue  # "you'll see the mill", "you're tired": a forecast, a description
            part = (m.group("part") or m.group("part2") or "").lower()
            if part and part not in _BODY:
                continue  # "your ship leaves at dawn"
            if (part and not _STATE_START.match(rest)) or (not part and _DECIDING_VERB.match(rest)):
                count += 1
                break
    return count


# A request for help, a place or a thing, in the first person.
_REQUEST = re.compile(
    r"(?:can|could|would|will) you (?:please )?(?:help|show|tell|take|find|give|lend|"
    r"point)\b[^.!?\n]*|(?:please )?help me\b[^.!?\n]*|i(?:'m| am) looking for\b[^.!?\n]*|"
    r"i need (?:a|an|some|to|help|your)\b[^.!?\n]*|where can i (?:find|get|stay|sleep)\b[^.!?\n]*|"
    r"do you know (?:where|how) (?:i|to)\b[^.!?\n]*",
    re.IGNORECASE,
)


@lru_cache(maxsize=4096)
def _user_side(user_turn: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A user turn's sentences of six words or more, and its requests (a script's turns
    recur in every dialogue of the script: parsed once)."""
    theirs = tuple(t for t in _SENTENCE.findall(user_turn) if len(t.split()) >= 6)
    return theirs, tuple(m.group(0) for m in _REQUEST.finditer(user_turn))


def role_swap(reply: str, user_turn: str | None, threshold: float = 60.0) -> bool:
    """The character takes the user's part: it asks the user's own request back as its own
    (the user asked "Can you help me find a safe place to sleep?" and the reply asks "Can
    you help me find a safe place to sleep?": token-set ratio of the two requests >=
    `threshold`), or speaks a sentence of the user's turn (six words or more) back as its
    own line (ratio >= 90)."""
    if not user_turn:
        return False
    theirs, asked = _user_side(user_turn)
    if not theirs and not asked:
        return False  # nothing of the user's to take (most turns): no need to parse the reply
    speech, _ = speech_and_narration(reply)
    if theirs and any(
        fuzz.ratio(mine.lower(), t.lower()) >= 90
        for mine in _SENTENCE.findall(speech)
        if len(mine.split()) >= 6
        for t in theirs
    ):
        return True  # the user's own line spoken back as the character's
    if not asked:
        return False
    return any(
        fuzz.token_set_ratio(mine.group(0), theirs) >= threshold
        for mine in _REQUEST.finditer(speech)
        for theirs in asked
    )
