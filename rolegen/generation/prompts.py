"""Cards + templates -> prompt text, for both sides of a dialogue.

The character sees: its system prompt (card, user persona, active lorebook
entries, examples), the greeting as its own first turn, then the history, with the notes
placed inside it near the reply (`with_notes`: the card's Character's Note, the run's
Author's Note, the post-history instructions). The
user simulator sees the same history with the roles flipped, under its own system
prompt. When a prompt would not fit the context, the oldest exchanges are dropped
first; the system prompt and the greeting always stay. With a context budget (a chat
front-end's context size) the prompt is trimmed as SillyTavern trims it instead
(`_front_end_fit`). A builder renders one prompt
(`PromptStyle`): rolegen's own by default; the eval's prompt axis makes one per prompt,
and a prompt may leave the greeting out (then the character's first turn is its reply).

Non-goals: tokenization details beyond counting (the engines own that).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rolegen.cards.depth_prompts import DepthPrompt
from rolegen.cards.personas import (
    Persona,
    UserPersona,
    substitute_macros,
    substitute_note_macros,
)
from rolegen.errors import RolegenError
from rolegen.generation.templates import (
    ROLEGEN_STYLE,
    USER_SIMULATOR,
    PromptFormat,
    PromptStyle,
    Templates,
)


@dataclass
class Prompt:
    text: str
    ids: list[int]
    dropped_messages: int  # history messages left out to fit the context
    stop: list[str]
    system: str  # the system prompt inside `text`
    messages: list[dict] = field(default_factory=list)  # the same prompt as chat messages
    # under a context budget: the card's example dialogues kept (None: no budget set)
    context_examples: int | None = None
    notes: int = 0  # depth prompts among `messages` (not the dialogue's own)

    @property
    def history(self) -> int:
        """The dialogue's own messages in the prompt (not the system prompt or notes)."""
        return len(self.messages) - 1 - self.notes


def resolve_persona(persona: Persona, user_name: str) -> Persona:
    """The card with `{{char}}`/`{{user}}` macros replaced in every text field."""

    def sub(text: str) -> str:
        return substitute_macros(text, persona.name, user_name)

    return replace(
        persona,
        description=sub(persona.description),
        personality=sub(persona.personality),
        scenario=sub(persona.scenario),
        greeting=sub(persona.greeting),
        example_dialogues=[sub(e) for e in persona.example_dialogues],
        intro=sub(persona.intro),
        style=sub(persona.style),
        system_prompt=sub(persona.system_prompt),
        post_history_instructions=sub(persona.post_history_instructions),
        depth_prompt=persona.depth_prompt
        and replace(persona.depth_prompt, text=sub(persona.depth_prompt.text)),
    )


class PromptBuilder:
    """Renders the character's and the user simulator's prompts for one run."""

    def __init__(
        self,
        templates: Templates,
        fmt: PromptFormat,
        tokenizer,
        context_length: int,
        max_new_tokens: int,
        style: PromptStyle = ROLEGEN_STYLE,
        context_budget: int | None = None,
        authors_note: DepthPrompt | None = None,
    ):
        """`fmt`: the format `style` renders in (the caller resolves `style.format`).
        `context_budget`: a front-end's context size in tokens (prompt + reply); None:
        the whole engine context, trimmed the way rolegen trims it. `authors_note`: a
        depth prompt for every character prompt (macros replaced per dialogue), beside the
        card's own Character's Note."""
        self.templates = templates
        self.format = fmt
        self.style = style
        self.tokenizer = tokenizer
        self.context_budget = context_budget
        self.authors_note = authors_note
        self.budget = min(context_length, context_budget or context_length) - max_new_tokens

    def encode(self, text: str) -> list[int]:
        # A rendered chat template usually carries its own BOS; add one only if it does not.
        bos = self.tokenizer.bos_token
        add_special = not (bos and text.startswith(bos))
        return self.tokenizer(text, add_special_tokens=add_special).input_ids

    def character_system(
        self,
        persona: Persona,
        user: UserPersona,
        history: list[dict],
        examples: list[str] | None = None,
    ) -> str:
        """The system prompt; `examples`: the example dialogues in it (default: all)."""
        lore = []
        if persona.lorebook:
            card = persona.source or persona.name
            lore = persona.lorebook.active([m["content"] for m in history], card=card)
        lore = [
            replace(e, content=substitute_macros(e.content, persona.name, user.name)) for e in lore
        ]
        return self.templates.render(
            self.style.system,
            persona=persona,
            user=user,
            lore=lore,
            examples=persona.example_dialogues if examples is None else examples,
        ).strip()

    def user_system(self, persona: Persona, user: UserPersona, turn: int, turns: int) -> str:
        return self.templates.render(
            USER_SIMULATOR, persona=persona, user=user, turn=turn, turns=turns
        ).strip()

    def character_prompt(self, persona: Persona, user: UserPersona, messages: list[dict]) -> Prompt:
        """`messages`: the dialogue so far (greeting first, no system message). The depth
        prompts (`notes`) go into the history that is kept."""
        notes = self.notes(persona, user)
        if self.context_budget is not None:

            def system_with(examples: list[str]) -> str:
                return self.character_system(persona, user, messages, examples)

            examples = persona.example_dialogues
            return self._front_end_fit(
                system_with, examples, messages, persona.name, user.name, notes
            )
        system = self.character_system(persona, user, messages)
        greeting = bool(messages) and messages[0]["role"] == "assistant"
        return self._fit(
            system, messages, char=persona.name, user=user.name, keep_first=greeting, notes=notes
        )

    def notes(self, persona: Persona, user: UserPersona) -> tuple[DepthPrompt, ...]:
        """What goes inside the history, in this order, those that are set: the Author's
        Note (this builder's, its macros replaced: `substitute_note_macros`), the card's
        Character's Note, and its post-history instructions after the last message
        (SillyTavern's placement)."""
        authors = self.authors_note
        if authors is not None:
            authors = replace(authors, text=substitute_note_macros(authors.text, persona, user))
        after = persona.post_history_instructions.strip()
        post = DepthPrompt(after, 0) if after else None
        return tuple(n for n in (authors, persona.depth_prompt, post) if n is not None)

    def user_prompt(
        self, persona: Persona, user: UserPersona, messages: list[dict], turn: int, turns: int
    ) -> Prompt:
        flipped = [
            {"role": "user" if m["role"] == "assistant" else "assistant", "content": m["content"]}
            for m in messages
        ]
        system = self.user_system(persona, user, turn, turns)
        if self.context_budget is not None:
            return self._front_end_fit(lambda _: system, [], flipped, user.name, persona.name)
        greeting = bool(messages) and messages[0]["role"] == "assistant"
        return self._fit(system, flipped, char=user.name, user=persona.name, keep_first=greeting)

    def _fit(
        self,
        system: str,
        messages: list[dict],
        char: str,
        user: str,
        keep_first: bool,
        notes: tuple[DepthPrompt, ...] = (),
    ) -> Prompt:
        # Keep the greeting (a leading assistant turn of the card) and drop the oldest
        # exchanges after it until the prompt leaves room for the reply.
        head = messages[:1] if keep_first else []
        body = messages[len(head) :]
        dropped = 0
        while True:
            shown = head + body[dropped:]
            kept = with_notes(shown, notes)
            text = self.format.render(system, kept, char=char, user=user)
            ids = self.encode(text)
            if len(ids) <= self.budget or len(body) - dropped <= 1:
                break
            dropped += 2 if len(body) - dropped > 2 else 1
        stop = self.format.stop(char=char, user=user)
        chat = [{"role": "system", "content": system}, *kept]
        return Prompt(text, ids, dropped, stop, system, messages=chat, notes=len(kept) - len(shown))

    def _front_end_fit(
        self,
        system_with,
        examples: list[str],
        messages: list[dict],
        char: str,
        user: str,
        notes: tuple[DepthPrompt, ...] = (),
    ) -> Prompt:
        """The prompt as SillyTavern assembles it under a context size (public/script.js,
        `Generate`; public/scripts/openai.js, `populateChatCompletion`, examples not
        pinned): the system prompt, card and lorebook always stay; the history is filled
        newest message first, whole messages only, while it fits beside them (the card's
        greeting is the history's first message and goes with it); then the example
        dialogues, in card order, while they fit in what is left. So examples go before
        the last turns do. `system_with(examples)`: the system prompt holding those
        examples. The last message stays even when it does not fit (then `fits` says no)."""

        def render(system: str, kept: list[dict]) -> tuple[str, list[int]]:
            text = self.format.render(system, with_notes(kept, notes), char=char, user=user)
            return text, self.encode(text)

        system = system_with(examples)
        kept, n_examples = messages, len(examples)
        text, ids = render(system, kept)
        if len(ids) > self.budget:  # the history first, against the bare system prompt
            bare = system_with([])
            # the most newest messages that fit (the length only grows with their number)
            lo, hi = min(1, len(messages)), len(messages)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if len(render(bare, messages[-mid:])[1]) <= self.budget:
                    lo = mid
                else:
                    hi = mid - 1
            kept = messages[len(messages) - lo :]
            system, n_examples = bare, 0
            text, ids = render(bare, kept)
            for k in range(1, len(examples) + 1):  # then the examples, in order, while they fit
                with_k = system_with(examples[:k])
                text_k, ids_k = render(with_k, kept)
                if len(ids_k) > self.budget:
                    break
                system, n_examples, text, ids = with_k, k, text_k, ids_k
        stop = self.format.stop(char=char, user=user)
        history = with_notes(kept, notes)
        chat = [{"role": "system", "content": system}, *history]
        dropped = len(messages) - len(kept)
        return Prompt(
            text,
            ids,
            dropped,
            stop,
            system,
            chat,
            context_examples=n_examples,
            notes=len(history) - len(kept),
        )

    def greeting(self, persona: Persona) -> dict | None:
        """The message that opens a dialogue before the user speaks: the card's greeting
        as the character's turn, unless the card has none or the prompt leaves it out."""
        if not (persona.greeting and self.style.greeting):
            return None
        return {"role": "assistant", "content": persona.greeting}

    def fits(self, prompt: Prompt) -> bool:
        return len(prompt.ids) <= self.budget

    def first_prompt(self, persona: Persona, user: UserPersona) -> Prompt:
        """The character's prompt for its first reply (system prompt, greeting, a short
        user turn), refused by `require_fit` when even that leaves no room for the reply."""
        opening = self.greeting(persona)
        messages = [opening] if opening else []
        prompt = self.character_prompt(persona, user, [*messages, _FIRST_USER_TURN])
        self.require_fit(prompt, persona, user)
        return prompt

    def require_fit(self, prompt: Prompt, persona: Persona, user: UserPersona) -> None:
        """Raise, naming the card and its longest field (or the Author's Note, when the
        prompt holds notes and that is longest), when `prompt` (already cut to its system
        prompt and greeting) does not fit: the dialogue would end before its first reply,
        after the engine had loaded."""
        if self.fits(prompt):
            return
        notes = {}
        if prompt.notes:  # the character's prompt: its notes are in it
            if self.authors_note is not None:
                notes["--authors-note"] = self.notes(persona, user)[0].text
            if persona.depth_prompt is not None:
                notes["depth_prompt (the Character's Note)"] = persona.depth_prompt.text
        field_name, tokens = _longest_field(persona, self.encode, notes)
        limit = "--context-budget" if self.context_budget is not None else "--max-context"
        raise RolegenError(
            f"{persona.source or persona.name}: the card does not fit the context: its first "
            f"prompt takes {len(prompt.ids)} tokens, and {self.budget} are left for it "
            f"({limit} minus --max-new-tokens); the longest field is '{field_name}' "
            f"({tokens} tokens): shorten it, or raise {limit}"
        )


def with_notes(messages: list[dict], notes: tuple[DepthPrompt, ...]) -> list[dict]:
    """`messages` with each depth prompt as a message of its role, `depth` messages before
    the end (at the start when there are fewer), as SillyTavern's `doChatInject` places
    them: notes of one depth and role join into one message (in `notes` order, one per
    line), and at one depth an assistant note comes first, then a user one, then a system
    one, nearest the reply. Depths count the dialogue's own messages."""
    if not notes:
        return messages
    slots: dict[tuple[int, str], list[str]] = {}
    for note in notes:
        slots.setdefault((note.depth, note.role), []).append(note.text)
    order = {"assistant": 0, "user": 1, "system": 2}
    placed = sorted(  # (position in `messages`, order at that position, message)
        (
            max(0, len(messages) - depth),
            order[role],
            {"role": role, "content": "\n".join(texts)},
        )
        for (depth, role), texts in slots.items()
    )
    out = list(messages)
    for position, _, note in reversed(placed):
        out.insert(position, note)
    return out


_FIRST_USER_TURN = {"role": "user", "content": "Hi."}
# Persona fields under their names in a Character Card, where those differ.
_CARD_NAMES = {
    "greeting": "greeting (first_mes)",
    "example_dialogues": "example_dialogues (mes_example)",
}


def _longest_field(persona: Persona, encode, notes: dict[str, str]) -> tuple[str, int]:
    """The card's longest text field, or of `notes` (name -> text) the longest (in
    characters; lorebook entries each count alone), and its length in tokens."""
    texts = {
        name: getattr(persona, name)
        for name in (
            "description",
            "personality",
            "scenario",
            "greeting",
            "style",
            "system_prompt",
            "post_history_instructions",
        )
    }
    texts["example_dialogues"] = "\n".join(persona.example_dialogues)
    texts.update(notes)
    for i, entry in enumerate(persona.lorebook.entries if persona.lorebook else []):
        texts[f"lorebook entry {i} content"] = entry.content
    name, text = max(texts.items(), key=lambda kv: len(kv[1]))
    return _CARD_NAMES.get(name, name), len(encode(text))
