"""One dialogue as the turn loop advances it, and the judge that sees it: the card (its
macros resolved for the dialogue's user) and the user, the messages and their meta, how
the dialogue ended, the rejected candidates that found no accepted turn, its per-dialogue
overrides (script, seed key, sampling, adapter, prompt), and the record it is written as
(`to_record`). `Judge` is the seam through which the checks accept or reject a reply.

Non-goals: advancing the dialogue (`dialogue.py`), writing files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rolegen.cards.personas import Persona, UserPersona
from rolegen.checks.persona_facts import CardFacts, persona_facts


@dataclass
class Dialogue:
    id: str
    persona: Persona  # macros resolved for this dialogue's user
    user: UserPersona
    messages: list[dict] = field(default_factory=list)  # greeting first; no system message
    meta: list[dict] = field(default_factory=list)  # one entry per message
    system: str = ""  # the character's system prompt at its latest turn
    end_reason: str | None = None
    unresolved: list[dict] = field(default_factory=list)  # rejects with no accepted turn
    script: list[str] | None = None  # this dialogue's scripted user turns (else the loop's)
    seed_key: str = ""  # request seeds derive from it (default: id); eval shares it across systems
    sampling: dict = field(default_factory=dict)  # Request fields overriding the loop's sampling
    lora: bool = True  # character replies from the engine's adapter, if it has one
    prompt: str = ""  # a prompt of the loop's `prompts`; any other: the loop's builder
    _facts: CardFacts | None = field(default=None, repr=False, compare=False)

    @property
    def facts(self) -> CardFacts:
        """The card's facts, read once per dialogue (the checks compare replies to them)."""
        if self._facts is None:
            self._facts = persona_facts(self.persona)
        return self._facts

    @property
    def done(self) -> bool:
        return self.end_reason is not None

    @property
    def character_turns(self) -> int:
        return sum(1 for m in self.meta if m.get("source") == "model" and m["role"] == "assistant")

    def to_record(self, extra: dict) -> dict:
        return {
            "id": self.id,
            "persona": self.persona.slug,
            "persona_name": self.persona.name,
            "persona_source": self.persona.source,
            "persona_intro": self.persona.intro,
            "persona_language": self.persona.language,
            "persona_facts": self.facts.to_dict(),
            "user_persona": self.user.name,
            "messages": [{"role": "system", "content": self.system}, *self.messages],
            "meta": [{"role": "system", "source": "template"}, *self.meta],
            "end_reason": self.end_reason or "completed",
            "unresolved": self.unresolved,
            **extra,
        }


# Given the dialogues and their candidate character replies, the reasons (empty: accept)
# and scores for each candidate. The checks provide one; the loop knows nothing of them.
Judge = Callable[[list["Dialogue"], list[str]], list[tuple[list[str], dict]]]
