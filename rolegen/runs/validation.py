"""One dialogue record checked before it is used: the fields' types, roles and their
order, `meta` parallel to `messages`, message length. `records.py` reads `dialogues.jsonl`
files through it and `sillytavern.py` the records it builds from chats."""

from __future__ import annotations

from rolegen.bounded import excerpt

ROLES = ("system", "user", "assistant")


# Optional fields read as text by the checks, the split, the exports and the eval.
_TEXT_FIELDS = (
    "persona",
    "persona_name",
    "persona_source",
    "persona_intro",
    "persona_language",
    "user_persona",
    "system",
    "seed_key",
    "end_reason",
)


def validate_record(record, max_chars: int) -> str | None:
    """Why `record` is no usable dialogue (None: it is one): its fields' types, roles and
    their order, `meta` parallel to `messages`, message length."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if isinstance(record.get("id"), int) and not isinstance(record["id"], bool):
        record["id"] = str(record["id"])
    for name in ("id", *_TEXT_FIELDS):
        if record.get(name) is not None and not isinstance(record[name], str):
            return f"field '{name}' is {type(record[name]).__name__}, not text"
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        return "field 'messages' missing or empty"
    why = messages_problem(messages)
    if why:
        return why
    for i, m in enumerate(messages):
        if len(m["content"]) > max_chars:
            return f"messages[{i}]: {len(m['content'])} characters, over the {max_chars} limit"
    # a dialogue the turn loop ended before its first reply (a card without a greeting)
    # is a record too: the eval counts it among the dialogues that ended early
    ended_early = record.get("end_reason") not in (None, "completed")
    if not ended_early and not any(m["role"] == "assistant" for m in messages):
        return "no assistant turn"
    return _role_order(messages) or _validate_meta(record.get("meta"), messages)


def messages_problem(messages: list, field: str = "messages") -> str | None:
    """Why a list of chat messages is unusable, or None: each must be an object with text
    'content' and a role of `ROLES` (a null or a number would reach a template as text)."""
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            return f"{field}[{i}]: needs 'role' and text 'content'"
        if m.get("role") not in ROLES:
            return f"{field}[{i}]: role {excerpt(m.get('role'))} is not one of {', '.join(ROLES)}"
    return None


def _role_order(messages: list[dict]) -> str | None:
    """A system message may only come first, and user and assistant turns alternate (a
    greeting is an assistant turn right after the system message)."""
    for i, m in enumerate(messages):
        if m["role"] == "system" and i > 0:
            return f"messages[{i}]: a system message after the first message"
        if i > 0 and m["role"] == messages[i - 1]["role"]:
            return f"messages[{i}]: {m['role']} after {m['role']}; user and assistant alternate"
    return None


def _validate_meta(meta, messages: list[dict]) -> str | None:
    """`meta` runs parallel to `messages`: an object per message (fewer is fine), of the
    same role where it names one (a shifted `meta` would pair a user turn's rejected
    candidates with a character's context); the rejected candidates that preference
    pairs are made of are objects with text."""
    if meta is None:
        return None
    if not isinstance(meta, list) or len(meta) > len(messages):
        return f"field 'meta' is not a list of at most {len(messages)} items (one per message)"
    for i, m in enumerate(meta):
        if not isinstance(m, dict):
            return f"meta[{i}]: not an object"
        if "role" in m and m["role"] != messages[i]["role"]:
            return (
                f"meta[{i}].role is {excerpt(m['role'])} but messages[{i}] is "
                f"{messages[i]['role']}'s; meta runs parallel to messages"
            )
        rejected = m.get("rejected") or []
        if not isinstance(rejected, list):
            return f"meta[{i}].rejected: not a list"
        for k, r in enumerate(rejected):
            if not isinstance(r, dict) or not isinstance(r.get("content", ""), str):
                return f"meta[{i}].rejected[{k}]: not an object with text 'content'"
            reasons = r.get("reasons", [])
            if not isinstance(reasons, list) or not all(isinstance(x, str) for x in reasons):
                return f"meta[{i}].rejected[{k}].reasons: not a list of text"
    return None
