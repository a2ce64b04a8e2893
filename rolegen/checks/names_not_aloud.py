"""Where a reply writes the character's own name without saying it aloud of anyone
(`not_aloud`): the identity confusion check (`phrases.identity`) leaves these spans out
before it looks for the name in what the character says.

- its own speaker label: "Raju Shinde: …";
- a place or a business named after it: "Welcome to Varga's.", "Nerezza's Cove", "the
  Scute Lock & Key Shop", "the Wolańczyk family business";
- the speaker naming itself in ways that are no introduction: "I'm your beautiful
  Adwoa", "It's me, Dr Amara Quist", "I refer to myself as …", "I've been called …", "a
  lady named …".

Not handled: the character narrated without stars ("Lady Elspeth looks at you"), which
a word pattern cannot tell from the character speaking of itself, and others quoted
saying the name.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Words that name a place or a business after its owner.
_PLACE_NOUNS = (
    "manor|cove|church|chapel|shop|store|inn|tavern|place|hall|house|street|lane|road|"
    "market|stage|bakery|cafe|café|farm|mill|station|office|company|forge|academy|"
    "school|library|bridge|bay|harbou?r|island|village|town|castle|tower|museum|gallery|"
    "studio|theatre|theater|workshop|clinic|hotel|restaurant|pub|bar|gardens?|park|"
    "square|hill|valley|creek|point|business|estate|lodge|cottage|emporium|stall"
)
# Words between "I'm" and the name when the speaker names itself: "I'm an Adwoa", "I'm
# your beautiful Adwoa", "I'm a wonderful, wonderful Agnes Pryce".
_SELF_NAMING_WORDS = (
    "a|an|the|your|my|quite|just|only|so|such|little|old|young|wonderful|beautiful|dear|"
    "own|very|same|one|real|true|good|humble|lovely|sweet|friendly|favou?rite"
)


@lru_cache(maxsize=1024)
def not_aloud(parts: tuple[str, ...], titles: tuple[str, ...]) -> re.Pattern:
    """The spans of a reply where the name (any of `parts`, after any of `titles`,
    lowercase) is written but said aloud of no one (see the module docstring)."""
    name = "|".join(re.escape(p) for p in parts)
    full = rf"(?:{name})(?:\s+(?:{name}))*"
    either = "|".join([*(re.escape(t.capitalize()) for t in titles), name])
    titled = rf"(?:(?:{either})\.?\s+)*{full}"
    return re.compile(
        rf"(?m:^)[ \t]*[\[(]?{titled}[\])]?[ \t]*:"
        rf"|{full}['’]s(?=\s*(?:[.!?,;:\n]|$))"
        rf"|{full}(?:['’]s)?(?:\s+(?:[A-Z][\w'’-]*|&))*\s+(?i:family\s+)?(?i:{_PLACE_NOUNS})\b"
        rf"|(?i:\b(?:i'm|i’m|i am)\s+(?:(?:{_SELF_NAMING_WORDS}),?\s+)+){titled}"
        rf"|(?i:\bit(?:'s|’s| is)\s+(?:just\s+|only\s+)?me,?\s+){titled}"
        rf"|(?i:\b(?:myself|me)\s+as\s+|\bi(?:'ve|’ve| have)\s+been\s+called\s+|\bi am:\s*)"
        rf"[\"“]?{titled}"
        rf"|(?i:\b(?:i'm|i’m|i am)\b[^.!?\n]{{0,40}}\bnamed\s+){titled}"
    )
