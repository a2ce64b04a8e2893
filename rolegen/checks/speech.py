"""What a reply says aloud and what it narrates (`speech_and_narration`), by one rule
shared by the identity, persona and acting-for-the-user checks: quotations are speech;
*starred* spans are narration; without stars, text outside quotations is narration
unless it speaks in the first person (novel style: "I always say, "No, no, no"").
Not handled: narration in (parentheses) beside quotations, other quotation marks
(« », 「 」).
"""

from __future__ import annotations

import re

_FIRST_PERSON = re.compile(r"(?:^|[.!?]\s+|,\s+)(?:I|I'm|I’m|I've|I’ve|I'll|I’ll|I'd|I’d)\b")
# Where an open star most likely ends: before a quotation or a line break, or after its
# sentence's last mark.
_STAR_END = re.compile(r"[\"“\n]|[.!?…](?=\s)")


def _close_open_marks(text: str) -> str:
    """`text` with its last unpaired star closed at the end of its sentence or before a
    quotation mark, and its last unpaired opening quotation closed at its line end."""
    if text.count("*") % 2:
        i = text.rfind("*")
        m = _STAR_END.search(text, i + 1)
        j = (m.end() if m.group(0) in ".!?…" else m.start()) if m else len(text)
        head = text[:j].rstrip()
        text = head + "*" + text[len(head) :]
    straight = text.count('"') % 2
    if straight or text.count("“") > text.count("”"):
        i = text.rfind('"' if straight else "“")
        j = text.find("\n", i + 1)
        j = len(text) if j < 0 else j
        text = text[:j] + ('"' if straight else "”") + text[j:]
    return text


def speech_and_narration(text: str) -> tuple[str, list[str]]:
    """What the character says aloud, and the narration, by one rule. A reply with
    quotations: they are its speech; its narration is its *starred* spans, or without
    stars (novel style) the text outside the quotations. A reply without: its speech is
    the text outside *stars* and (asides), its narration the starred spans. Narration may
    name the character ("*Mara tosses you a rope*") and speech should not; narration
    should not act for the user, and speech may address them ("You look tired").
    A mark left open (the model stopped before closing it) is closed first: a star at the
    end of its sentence, or before a quotation mark (`*He says, "I'm ...`), a quotation at
    its line end."""
    text = _close_open_marks(text)
    starred = re.findall(r"\*([^*]+)\*", text)
    quoted = re.findall(r"[\"“]([^\"“”]*)[\"”]", text)
    if not quoted:
        return re.sub(r"\*[^*]*\*?|\([^)]*\)?", "\n", text), starred
    outside = [t for t in re.split(r"[\"“][^\"“”]*[\"”]", text) if t.strip()]
    # Novel-style narration speaks of the character in the third person; text outside the
    # quotations that says "I" is the character talking, quoting someone ("I always say,
    # "No, no, no"").
    spoken = [t for t in outside if not starred and _FIRST_PERSON.search(t)]
    return "\n".join([*quoted, *spoken]), starred or [t for t in outside if t not in spoken]
