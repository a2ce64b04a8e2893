"""A server's answers read as untrusted input: the body of `GET /models`, `POST
/completions` and `POST /chat/completions`, checked field by field.

Proxies and half-compatible servers answer in many shapes: an empty or null `choices`,
a `text` of null, a JSON list, HTML from a gateway, a 20 MB reply to `max_tokens: 96`.
Each wrong shape is a `RolegenError` that names the server and what was wrong; optional
fields of the wrong type (`usage`, `finish_reason`, `model`) are read as absent. A reply
longer than the request can have asked for is cut to `max_chars` and counted as cut off.
"""

from __future__ import annotations

from dataclasses import dataclass

from rolegen.bounded import excerpt, load_json
from rolegen.errors import RolegenError

MAX_BODY_BYTES = 8 << 20  # a reply of a few thousand tokens is well under 1 MB
CHARS_PER_TOKEN = 32  # a reply longer than max_tokens * this ignored max_tokens
MAX_MODELS = 50  # of GET /models, what the manifest keeps


@dataclass
class Answer:
    text: str
    finish_reason: str
    completion_tokens: int | None  # None: the server sent no usable count
    model: str | None  # the model the server says answered
    cached_tokens: int = 0  # usage.prompt_tokens_details.cached_tokens, where sent


def _body(raw: bytes, server: str, what: str):
    where = f"server {server}: {what}"
    try:
        return load_json(raw, where)
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        start = raw[:60].decode("utf-8", "replace")
        raise RolegenError(f"{where} answered a body that is not JSON: {start!r}") from None


def _object(value, where: str) -> dict:
    if not isinstance(value, dict):
        kind = "null" if value is None else type(value).__name__
        raise RolegenError(f"{where} is {kind} ({excerpt(value)}), not a JSON object")
    return value


def parse_models(raw: bytes, server: str) -> list[dict]:
    """The models a server lists: entries with a text `id`, their scalar fields only."""
    what = "GET /models"
    body = _object(_body(raw, server, what), f"server {server}: {what}: the answer")
    data = body.get("data")
    if not isinstance(data, list):
        raise RolegenError(f"server {server}: {what} has no list 'data' ({excerpt(data)})")
    models = []
    for entry in data:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"]:
            scalar = (str, int, float, bool)
            fields = {k: v for k, v in entry.items() if isinstance(v, scalar)}
            models.append({k: v[:200] if isinstance(v, str) else v for k, v in fields.items()})
    if not models:
        raise RolegenError(
            f"server {server}: {what} lists no model with an 'id' ({len(data)} entries)"
        )
    return models[:MAX_MODELS]


def parse_answer(raw: bytes, server: str, mode: str, max_chars: int) -> Answer:
    """One completion (`mode` completions) or chat completion (`mode` chat)."""
    what = "POST /chat/completions" if mode == "chat" else "POST /completions"
    where = f"server {server}: {what}"
    body = _object(_body(raw, server, what), f"{where}: the answer")
    if "error" in body and "choices" not in body:
        error = body["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise RolegenError(f"{where} answered an error: {excerpt(message)}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise RolegenError(f"{where}: 'choices' is {excerpt(choices)}, not a list of choices")
    choice = _object(choices[0], f"{where}: choices[0]")
    if mode == "chat":
        message = _object(choice.get("message"), f"{where}: choices[0].message")
        text = message.get("content")
        text = "" if text is None else text  # the API allows content null: no text
        field = "choices[0].message.content"
    else:
        text = choice.get("text")
        field = "choices[0].text"
    if not isinstance(text, str):
        raise RolegenError(f"{where}: {field} is {excerpt(text)}, not text")
    finish = choice.get("finish_reason")
    finish = finish if isinstance(finish, str) and finish else "stop"
    if len(text) > max_chars:
        text, finish = text[:max_chars], "length"
    usage = body.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        tokens = None
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else None
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if isinstance(cached, bool) or not isinstance(cached, int) or cached < 0:
        cached = 0
    model = body.get("model")
    return Answer(text, finish, tokens, model if isinstance(model, str) else None, cached)
