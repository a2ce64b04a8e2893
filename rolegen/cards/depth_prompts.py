"""Depth prompts: text a chat front-end places inside the chat history, a number of
messages before its end, so that it stays near the reply however long the chat runs.
SillyTavern has two: a card's Character's Note (`extensions.depth_prompt`) and the
chat's Author's Note. Read from a card here (`depth_prompt_from`); placed in a prompt by
`generation/prompts.py`'s `with_notes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rolegen.bounded import excerpt
from rolegen.errors import RolegenError

DEPTH_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class DepthPrompt:
    """Text placed inside the chat history, `depth` messages before its end, as a message
    of `role` (SillyTavern's Character's Note, a card's `extensions.depth_prompt`, and its
    Author's Note): 0 puts it after the last message; a history shorter than `depth` gets
    it first. It moves with the chat, so it stays near the reply however long the chat."""

    text: str
    depth: int = 4
    role: str = "system"


def depth_prompt_from(raw, where: str, path) -> DepthPrompt | None:
    """A depth prompt from a card: a mapping of `prompt`, `depth` (default 4) and `role`
    (system, user or assistant; default system), or plain text. None when its text is
    empty. Errors name the field, e.g. 'data.extensions.depth_prompt.depth'."""
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"prompt": raw}
    if not isinstance(raw, dict):
        raise RolegenError(f"{path}: field '{where}' must be a mapping of prompt, depth and role")
    text = raw.get("prompt")
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if not isinstance(text, str):
        raise RolegenError(f"{path}: field '{where}.prompt' must be text")
    depth = raw.get("depth", 4)
    if isinstance(depth, float) and depth.is_integer():
        depth = int(depth)
    if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= 1000:
        raise RolegenError(f"{path}: field '{where}.depth' must be a whole number from 0 to 1000")
    role = raw.get("role", "system")
    if role not in DEPTH_ROLES:
        raise RolegenError(
            f"{path}: field '{where}.role' must be one of {', '.join(DEPTH_ROLES)}, got {excerpt(role)}"
        )
    return DepthPrompt(text.strip(), depth, role)
