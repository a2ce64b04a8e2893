"""Reading dialogue records: a `dialogues.jsonl` in rolegen's format, line by line, or
SillyTavern chats (a file or a folder of them, `sillytavern.py`).

Every line is checked before it is used: UTF-8, JSON of bounded depth, the fields'
types, roles and their order, `meta` parallel to `messages`, message length. A bad line
is reported by its number and skipped (or stops the read, as asked); repeated ids are
kept once and counted. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rolegen.bounded import MAX_DEPTH, load_json
from rolegen.errors import RolegenError
from rolegen.runs import sillytavern

ROLES = ("system", "user", "assistant")


@dataclass
class ReadReport:
    lines: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)
    # repeated ids, skipped (the first is kept): (line number, id, line of the first)
    duplicates: list[tuple[int, str, int]] = field(default_factory=list)
    # SillyTavern chats skipped whole (a chat with a hole is no dialogue): (file, line, why)
    skipped_chats: list[tuple[Path, int, str]] = field(default_factory=list)


# Optional fields read as text by the checks, the split, the exports and the eval.
_TEXT_FIELDS = (
    "persona",
    "persona_name",
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
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            return f"messages[{i}]: needs 'role' and text 'content'"
        if m.get("role") not in ROLES:
            return f"messages[{i}]: role {m.get('role')!r} is not one of {', '.join(ROLES)}"
        if len(m["content"]) > max_chars:
            return f"messages[{i}]: {len(m['content'])} characters, over the {max_chars} limit"
    # a dialogue the turn loop ended before its first reply (a card without a greeting)
    # is a record too: the eval counts it among the dialogues that ended early
    ended_early = record.get("end_reason") not in (None, "completed")
    if not ended_early and not any(m["role"] == "assistant" for m in messages):
        return "no assistant turn"
    return _role_order(messages) or _validate_meta(record.get("meta"), len(messages))


def _role_order(messages: list[dict]) -> str | None:
    """A system message may only come first, and user and assistant turns alternate (a
    greeting is an assistant turn right after the system message)."""
    for i, m in enumerate(messages):
        if m["role"] == "system" and i > 0:
            return f"messages[{i}]: a system message after the first message"
        if i > 0 and m["role"] == messages[i - 1]["role"]:
            return f"messages[{i}]: {m['role']} after {m['role']}; user and assistant alternate"
    return None


def _validate_meta(meta, n_messages: int) -> str | None:
    """`meta` runs parallel to `messages`: an object per message (fewer is fine); the
    rejected candidates that preference pairs are made of are objects with text."""
    if meta is None:
        return None
    if not isinstance(meta, list) or len(meta) > n_messages:
        return f"field 'meta' is not a list of at most {n_messages} items (one per message)"
    for i, m in enumerate(meta):
        if not isinstance(m, dict):
            return f"meta[{i}]: not an object"
        rejected = m.get("rejected") or []
        if not isinstance(rejected, list):
            return f"meta[{i}].rejected: not a list"
        for k, r in enumerate(rejected):
            if not isinstance(r, dict) or not isinstance(r.get("content", ""), str):
                return f"meta[{i}].rejected[{k}]: not an object with text 'content'"
            if not isinstance(r.get("reasons", []), list):
                return f"meta[{i}].rejected[{k}].reasons: not a list"
    return None


def read_dialogues(
    path: str | Path, on_error: str = "skip", max_chars: int = 20_000, personas=()
) -> tuple[list[dict], ReadReport]:
    """Every good dialogue of a JSONL file; bad lines reported by number. A SillyTavern
    chat file or folder goes to `sillytavern.read_chats` (`personas`: cards for its names)."""
    path = Path(path)
    if sillytavern.is_chat_source(path):
        records, skipped = sillytavern.read_chats(path, personas, on_error, max_chars)
        return records, ReadReport(skipped_chats=skipped)
    if path.is_dir():  # a run folder
        if not (path / "dialogues.jsonl").is_file():
            raise RolegenError(
                f"{path}: a folder without dialogues.jsonl; give a dialogues.jsonl, a run "
                "folder that holds one, or SillyTavern chats"
            )
        path = path / "dialogues.jsonl"
    if not path.is_file():
        raise RolegenError(f"{path}: file not found")
    report, records = ReadReport(), []
    first_line: dict[tuple, int] = {}  # (system, id) -> the line it was first read on
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            report.lines = number
            if not raw.strip():
                continue
            why = None
            try:
                record = load_json(raw.decode("utf-8"), "line")
                why = validate_record(record, max_chars)
            except UnicodeDecodeError as e:
                why = f"not UTF-8 ({e.reason} at byte {e.start})"
            except ValueError as e:
                why = f"malformed JSON ({e})"
            except RolegenError:
                why = f"malformed JSON (nested too deeply: more than {MAX_DEPTH} levels)"
            if why:
                if on_error == "stop":
                    raise RolegenError(f"{path}:{number}: {why}")
                report.bad.append((number, why))
                continue
            record.setdefault("id", f"line-{number}")
            key = (record.get("system"), record["id"])
            if key in first_line:  # the copy would count twice: in pairs, in the eval
                report.duplicates.append((number, record["id"], first_line[key]))
                continue
            first_line[key] = number
            records.append(record)
    if not records:
        detail = (
            f"; first problem: line {report.bad[0][0]}: {report.bad[0][1]}" if report.bad else ""
        )
        raise RolegenError(f"{path}: no usable dialogues{detail}")
    return records, report
