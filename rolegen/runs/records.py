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
from rolegen.runs.folders import DIALOGUES
from rolegen.runs.validation import validate_record


@dataclass
class ReadReport:
    lines: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)
    # repeated ids, skipped (the first is kept): (line number, id, line of the first)
    duplicates: list[tuple[int, str, int]] = field(default_factory=list)
    # SillyTavern chats skipped whole (a chat with a hole is no dialogue): (file, line, why)
    skipped_chats: list[tuple[Path, int, str]] = field(default_factory=list)


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
        if not (path / DIALOGUES).is_file():
            raise RolegenError(
                f"{path}: a folder without dialogues.jsonl; give a dialogues.jsonl, a run "
                "folder that holds one, or SillyTavern chats"
            )
        path = path / DIALOGUES
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
                record = load_json(raw.decode("utf-8-sig"), "line")  # a BOM leads line 1
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
            if record.get("id") is None:  # no id, or a null one: its line names it
                record["id"] = f"line-{number}"
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
