"""Clean a raw completion into one speaker's turn.

Base models rarely stop where a turn ends: they prefix the reply with the
speaker's name, run on into the other speaker's next line, or stop mid-sentence
at the token limit. `clean_reply` undoes each of these and says what it did;
an empty result tells the turn loop to resample.

A card whose example dialogue is a script (`{{user}}: ...` / `{{char}}: ...`) teaches
the model to write both sides: "User: Who is it?\nVex: I'm not sure." Cutting at the
other speaker's label leaves nothing, so when nothing comes before that label the
speaker's own labelled part is kept instead, up to the next line of the other speaker.
Text before the other speaker's first label is the reply and wins when there is any;
a narration line between the other speaker's line and the speaker's label is dropped
(it may narrate either side).

Non-goals: judging content (repetition, echo: that is `checks/turns.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rolegen.checks.phrases import TERMINAL

_SENTENCE_END = re.compile(r"""[.!?…。！？](?:["'”’)\]*_~]+)?(?=\s|$)|\*(?=\s|$)""")
# Turn markers of common prompt formats: a completion that reaches one has ended its turn.
_GENERIC_TURN = r"(?:user|human|you|assistant|bot|model|### ?(?:input|instruction|response))"
# Both sides generate in the format's assistant role, so only an assistant-side role can
# be the speaker's own tag; a leading "User:" is the other speaker's line.
_OWN_ROLE = r"(?:assistant|bot|model|### ?response)"
_SPECIAL = re.compile(
    r"<\|im_(?:start|end)\|>|<\|(?:user|model|system)\|>|</s>|<(?:human|bot)>:|\[INST\]"
)


@dataclass
class CleanReply:
    text: str
    actions: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.text.strip()


def _name_forms(name: str) -> list[str]:
    """The full name and its parts ('Captain Mara Vell' -> also 'Mara', 'Vell')."""
    parts = [p for p in re.split(r"\s+", name.strip()) if len(p) > 2]
    return [name.strip(), *parts]


def _alternation(names: list[str]) -> str:
    return "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True) if n)


def _own_script_part(text: str, speaker: str, other_turn: re.Pattern) -> str | None:
    """In a script-style completion, the text after the speaker's first line label, up to
    the other speaker's next label (None: the speaker has no labelled line)."""
    own_line = re.compile(
        rf"(?:^|\n)[ \t]*(?:{_alternation(_name_forms(speaker))}|{_OWN_ROLE})[ \t]*"
        r"(?:\([^)\n]*\))?[ \t]*:[ \t]*",
        re.IGNORECASE,
    )
    label = own_line.search(text)
    if not label:
        return None
    part = text[label.end() :]
    end = other_turn.search(part)
    return (part[: end.start()] if end else part).strip() or None


def clean_reply(
    text: str, speaker: str, other: str, stop: list[str] = (), finish_reason: str = "stop"
) -> CleanReply:
    """`speaker` wrote `text`; `other` is the one it must not speak for."""
    actions = []

    for s in stop:
        k = text.find(s)
        if k >= 0:
            text = text[:k]
            actions.append("cut_stop_string")

    special = _SPECIAL.search(text)
    if special:
        text = text[: special.start()]
        actions.append("cut_turn_marker")

    own_tag = re.compile(
        rf"^\s*(?:{_alternation(_name_forms(speaker))}|{_OWN_ROLE})\s*(?:\([^)]*\))?\s*:\s*",
        re.IGNORECASE,
    )
    stripped = own_tag.sub("", text, count=1)
    if stripped != text:
        text = stripped
        actions.append("stripped_speaker_tag")

    # The other speaker's line: at the start of any line, "Name:" (or a generic role).
    other_turn = re.compile(
        rf"(?:^|\n)\s*(?:{_alternation(_name_forms(other))}|{_GENERIC_TURN})\s*(?:\([^)]*\))?\s*:",
        re.IGNORECASE,
    )
    m = other_turn.search(text)
    if m:
        own_part = (
            None if text[: m.start()].strip() else _own_script_part(text, speaker, other_turn)
        )
        if own_part:
            text = own_part
            actions.append("kept_own_script_part")
        else:
            text = text[: m.start()]
            actions.append("cut_other_speaker")

    text = re.sub(r"\n{3,}", "\n\n", text).strip()

    if text and (finish_reason == "length" or not text.endswith(TERMINAL)):
        ends = [m.end() for m in _SENTENCE_END.finditer(text)]
        if ends and ends[-1] < len(text):
            text = text[: ends[-1]].rstrip()
            actions.append("trimmed_half_sentence")
        elif not ends and finish_reason == "length":
            actions.append("cut_off")  # no sentence boundary to fall back to; kept, flagged

    if not text:
        actions.append("empty")
    return CleanReply(text=text, actions=actions)
