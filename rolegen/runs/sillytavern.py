"""SillyTavern chats read as dialogue records, and told apart from other JSONL files.

A SillyTavern chat (its `src/endpoints/chats.js`, the client's `saveChat()`) is JSONL:
a header `{user_name, character_name, create_date, chat_metadata}`, then a message a
line `{name, is_user, is_system, send_date, mes, extra, swipes, swipe_id, swipe_info}`;
`mes` is the text shown, `swipes[swipe_id]` the same reply among those paged through.

Reading (`read_chats`: a chat file, or a folder searched for `*.jsonl`):
- a character message before the first user message is the greeting (turn 0);
- `is_system` messages are left out: SillyTavern sets the flag on messages hidden from
  the prompt (`/hide`, its own notices), so the model never saw them. Narrator messages
  (`extra.type` "narrator") are left out too: they are neither side of the dialogue;
- unchosen swipes become the turn's `meta.rejected` candidates (reason `not_chosen`),
  so `filter` makes preference pairs of them; they are never scored as turns. Swipes of
  the greeting are the card's alternate greetings, not refused replies: left out;
- names come from the header; `--persona` cards add the intro (for the echo check) and
  the language, matched by name (a single card serves every chat);
- a chat rolegen wrote reads back as the record it came from: the header's
  `chat_metadata.rolegen` and each message's `extra.rolegen` carry what the format has
  no field for (SillyTavern keeps both when it saves the chat again);
- a chat with a bad line (malformed JSON, `mes` or `is_user` missing, bad swipes, over
  `max_chars`), no messages, no character message, or no header (a group chat) is
  skipped whole, named by line: with a hole, the turns around it would score as
  adjacent. In a folder, files that are not chats are skipped and named.

Writing records out as chats, with their characters' cards, is `sillytavern_export.py`'s.

Not supported: group chats, the other chat formats SillyTavern imports (Chub, CAI,
Ooba, Agnai), `extra.display_text`, chat branches.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from rolegen.bounded import MAX_DEPTH, excerpt, load_json
from rolegen.cards.personas import Persona, slugify, substitute_macros
from rolegen.errors import RolegenError
from rolegen.runs.folders import DIALOGUES
from rolegen.runs.validation import validate_record

_HEADER_KEYS = ("user_name", "character_name")
_NOT_CHOSEN = "not_chosen"
_RECORD_TEXT = ("persona", "persona_name", "persona_intro", "persona_language", "user_persona")
_FIRST_LINE_LIMIT = 1 << 22  # most headers are small; another JSONL's first line need not be
# A first line over the limit is told by its first key: SillyTavern writes the header's
# names first and its `chat_metadata` (where extensions keep notes, so large) last.
_LEADING_KEY = re.compile(rb'\s*\{\s*"(' + b"|".join(k.encode() for k in _HEADER_KEYS) + rb')"\s*:')


class _BadChat(Exception):
    def __init__(self, line: int, why: str, not_a_chat: bool = False):
        super().__init__(why)
        self.line, self.why, self.not_a_chat = line, why, not_a_chat


# ---------------------------------------------------------------- detecting


def _first_object(path: Path):
    try:
        with path.open("rb") as fh:
            while raw := fh.readline(_FIRST_LINE_LIMIT):
                if raw.strip():
                    if len(raw) == _FIRST_LINE_LIMIT and not raw.endswith(b"\n"):
                        key = _LEADING_KEY.match(raw.removeprefix(b"\xef\xbb\xbf"))
                        return {key.group(1).decode(): None} if key else None
                    return json.loads(raw.decode("utf-8-sig"))  # a BOM: still a chat
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return None


def _is_header(obj) -> bool:
    keys = set(obj) if isinstance(obj, dict) else set()
    return bool(keys & set(_HEADER_KEYS)) and not keys & {"mes", "messages"}


def _is_message(obj) -> bool:
    return isinstance(obj, dict) and "mes" in obj and "is_user" in obj


def is_chat_file(path: str | Path) -> bool:
    """A SillyTavern chat, told by its first line: a chat header, or a message (a group
    chat, which has no header; `read_chats` refuses it by name)."""
    path = Path(path).expanduser()
    if not path.is_file():
        return False
    first = _first_object(path)
    return _is_header(first) or _is_message(first)


def _jsonl_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.jsonl") if p.is_file())


def is_chat_source(path: str | Path) -> bool:
    """A chat file, or a folder holding one. A run folder (with its `dialogues.jsonl`)
    is not one."""
    path = Path(path).expanduser()
    if path.is_dir():
        if (path / DIALOGUES).is_file():
            return False
        return any(is_chat_file(f) for f in _jsonl_files(path))
    return is_chat_file(path)


# ---------------------------------------------------------------- reading


def read_chats(
    source: str | Path,
    personas: list[Persona] | tuple = (),
    on_error: str = "skip",
    max_chars: int = 20_000,
) -> tuple[list[dict], list[tuple[Path, int, str]]]:
    """The chats of a chat file or folder as rolegen dialogue records, and the chats
    skipped, as (file, line, why). `on_error="stop"` raises at the first bad chat."""
    source = Path(source).expanduser()
    files = _jsonl_files(source) if source.is_dir() else [source]
    records, skipped = [], []
    for path in files:
        chat_id = (
            path.relative_to(source).with_suffix("").as_posix() if source.is_dir() else path.stem
        )
        try:
            records.append(_read_chat(path, chat_id, personas, max_chars))
        except _BadChat as bad:
            if on_error == "stop" and not bad.not_a_chat:
                raise RolegenError(f"{path}:{bad.line}: {bad.why}") from None
            skipped.append((path, bad.line, bad.why))
    if not records:
        first = (
            f"; first problem: {skipped[0][0]}:{skipped[0][1]}: {skipped[0][2]}" if skipped else ""
        )
        raise RolegenError(f"{source}: no usable SillyTavern chats{first}")
    return records, skipped


def _read_chat(path: Path, chat_id: str, personas, max_chars: int) -> dict:
    header, entries = None, []
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = load_json(raw.decode("utf-8-sig"), "line")  # a BOM leads line 1
            except UnicodeDecodeError as e:
                raise _BadChat(number, f"not UTF-8 ({e.reason} at byte {e.start})") from None
            except RolegenError:
                raise _BadChat(number, f"nested more than {MAX_DEPTH} levels deep") from None
            except ValueError as e:
                raise _BadChat(number, f"malformed JSON ({e})", header is None) from None
            if header is None and _is_message(obj):
                raise _BadChat(number, "no header line: a group chat (one-on-one chats only)")
            if header is None and not _is_header(obj):
                raise _BadChat(number, "not a SillyTavern chat (no header with user_name)", True)
            if header is None:
                header = _header(obj, number)
            else:
                entries.append((number, _message(obj, number, max_chars)))
    if header is None:
        raise _BadChat(1, "empty file", True)
    if not entries:
        raise _BadChat(header["line"], "header only: no messages")
    messages, meta, lines = _turns(entries)
    if not any(m["role"] == "assistant" for m in messages):
        raise _BadChat(header["line"], "no character message (hidden ones are left out)")
    record = _record(path, chat_id, header, messages, meta, personas)
    # one rule for a dialogue however it is read: the checks of a dialogues.jsonl record
    # (roles and their order, meta's types), the fault named by the chat's line

    why = validate_record(record, max_chars)
    if why:
        index = re.match(r"(?:messages|meta)\[(\d+)\]", why)
        line = lines[int(index.group(1))] if index else header["line"]
        raise _BadChat(line, why)
    return record


def _record(path: Path, chat_id: str, header: dict, messages, meta, personas) -> dict:
    """The chat's dialogue record: the one rolegen wrote into its header, else one built
    from the header and its character's card."""

    own = header["chat_metadata"].get("rolegen")
    if isinstance(own, dict) and isinstance(own.get("record"), dict):  # a chat rolegen wrote
        record = {**own["record"], "messages": messages}
        for key in ("id", *_RECORD_TEXT):  # read as text downstream (split, checks, eval)
            if not isinstance(record.get(key, ""), str):
                raise _BadChat(
                    header["line"], f"field 'chat_metadata.rolegen.record.{key}' must be text"
                )
        if own.get("with_meta", True):
            record["meta"] = meta
        return record
    user = header["user_name"]
    card = _card_for(header["character_name"], personas)
    name = header["character_name"] or (card.name if card else "")
    if not name:
        raise _BadChat(header["line"], "header has no character_name: pass --persona CARD")
    record = {
        "id": chat_id,
        "persona": slugify(name),
        "persona_name": name,
        "persona_intro": substitute_macros(card.intro, name, user) if card else "",
        "persona_language": card.language if card else "en",
        "user_persona": user,
        "sillytavern": {"file": str(path), "create_date": header["create_date"]},
        "messages": messages,
        "meta": meta,
    }
    if card:
        record["persona_source"] = card.source
    return record


def _header(obj: dict, line: int) -> dict:
    out = {"line": line, "create_date": obj.get("create_date")}
    for key in _HEADER_KEYS:
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise _BadChat(line, f"field '{key}' must be text")
        out[key] = (value or "").strip()
    chat_metadata = obj.get("chat_metadata")
    if chat_metadata is not None and not isinstance(chat_metadata, dict):
        raise _BadChat(line, "field 'chat_metadata' must be an object")
    out["chat_metadata"] = chat_metadata or {}
    return out


def _message(obj, line: int, max_chars: int) -> dict:
    def bad(why: str) -> _BadChat:
        return _BadChat(line, why)

    if not isinstance(obj, dict):
        raise bad("not a JSON object")
    if not isinstance(obj.get("mes"), str):
        raise bad("field 'mes' missing or not text")
    if not isinstance(obj.get("is_user"), bool):
        raise bad("field 'is_user' missing or not true/false")
    for key, kind, name in (
        ("is_system", bool, "true or false"),
        ("extra", dict, "an object"),
        ("swipe_info", list, "a list"),
    ):
        if obj.get(key) is not None and not isinstance(obj[key], kind):
            raise bad(f"field '{key}' must be {name}")
    swipes, swipe_id = obj.get("swipes") or [], obj.get("swipe_id")
    if not isinstance(swipes, list) or not all(isinstance(t, str) for t in swipes):
        raise bad("field 'swipes' must be a list of text")
    if swipe_id is not None and (type(swipe_id) is not int or not 0 <= swipe_id < len(swipes)):
        raise bad(f"field 'swipe_id' ({excerpt(swipe_id)}) is not an index of 'swipes'")
    longest = max(len(t) for t in [obj["mes"], *swipes])
    if longest > max_chars:
        raise bad(f"{longest} characters in a message, over the {max_chars} limit")
    return obj


def _turns(entries: list[tuple[int, dict]]) -> tuple[list[dict], list[dict], list[int]]:
    """Messages, their meta and their lines; hidden and narrator messages left out, except
    the system prompts rolegen wrote as hidden messages."""
    messages, meta, lines, asked = [], [], [], False
    for line, m in entries:
        extra = m.get("extra") or {}
        own = extra.get("rolegen")
        own = own if isinstance(own, dict) and isinstance(own.get("meta"), dict) else None
        if m.get("is_system"):
            if own and own.get("role") == "system":
                messages.append({"role": "system", "content": m["mes"]})
                meta.append(own["meta"])
                lines.append(line)
            continue
        if extra.get("type") == "narrator":
            continue
        role = "user" if m["is_user"] else "assistant"
        asked = asked or role == "user"
        item = dict(own["meta"]) if own else {"role": role, "source": "sillytavern", "line": line}
        rejected = _unchosen(m) if asked else []
        if rejected:
            item["rejected"] = rejected
        messages.append({"role": role, "content": m["mes"]})
        meta.append(item)
        lines.append(line)
    return messages, meta, lines


def _unchosen(m: dict) -> list[dict]:
    """The swipes not shown, as rejected candidates. Without `swipe_id`, the swipes that
    equal `mes` count as shown."""
    chosen, info = m.get("swipe_id"), m.get("swipe_info") or []
    out = []
    for k, text in enumerate(m.get("swipes") or []):
        if k == chosen or (chosen is None and text == m["mes"]):
            continue
        entry = info[k] if k < len(info) and isinstance(info[k], dict) else {}
        extra = entry.get("extra") if isinstance(entry.get("extra"), dict) else {}
        own = extra.get("rolegen")
        if isinstance(own, dict) and isinstance(own.get("reasons"), list):
            out.append({"content": text, **own})
        else:
            out.append({"content": text, "reasons": [_NOT_CHOSEN], "swipe": k})
    return out


def _card_for(name: str, personas) -> Persona | None:
    if len(personas) == 1:
        return personas[0]
    return next((p for p in personas if name and p.slug == slugify(name)), None)
