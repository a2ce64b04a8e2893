"""Dialogue records written out as SillyTavern chats, with their characters' cards.

The chat format is described in `sillytavern.py`, which reads it back. Writing
(`write_chats`) uses SillyTavern's own layout, `chats/<Character>/<id>.jsonl` and the
character's card beside them, `characters/<Character>.png` and `.json` (SillyTavern
keeps a character's chats in the folder named after its avatar file). A turn's rejected
candidates are its swipes, earliest first, the accepted reply last (`swipe_id`); the
system prompt is a hidden (`is_system`) message: shown, never sent to a model.
`send_date` is the export time (records carry none); `gen_started` and `gen_finished`
are left out, as SillyTavern leaves them out when it has none. What rolegen keeps that
the format has no field for goes into the header's `chat_metadata.rolegen` and each
message's `extra.rolegen`, so the chat reads back as the record it came from.

Not supported: V3 cards and the `ccv3` chunk, an avatar image (the PNG is a plain
colour tile that carries the card).
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

from rolegen.cards.export import safe_file_name, write_card_v2
from rolegen.cards.files import card_for_record
from rolegen.cards.personas import Persona
from rolegen.errors import RolegenError

_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
)  # fmt: skip


def check_export_dir(folder: str | Path) -> None:
    """Refuse, before any work, a chats folder that is a file or a link to one: the
    export would fail only after the dialogues were made."""
    folder = Path(folder)
    if (folder.exists() or folder.is_symlink()) and not folder.is_dir():
        raise RolegenError(
            f"{folder}: is a file, not a folder; --sillytavern writes its chats there "
            "(move the file away or drop --sillytavern)"
        )


def write_chats(
    records: list[dict], folder: str | Path, personas=(), now: float | None = None
) -> dict:
    """Every record as a chat under `folder/chats/`, and each character's card under
    `folder/characters/`. The folder is filled beside its place and then moved there:
    an error leaves the previous export whole."""
    folder = Path(folder)
    stamp = time.localtime(time.time() if now is None else now)
    tmp = folder.with_name(f".tmp-{folder.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        cards: dict[str, Persona] = {}
        seen: Counter = Counter()  # ids that differ only in characters a file name can't hold
        for record in records:
            name = record.get("persona_name") or record.get("persona") or "Character"
            base, stem = safe_file_name(name), safe_file_name(str(record["id"]))
            seen[base, stem] += 1
            suffix = f"-{seen[base, stem]}" if seen[base, stem] > 1 else ""
            chat = tmp / "chats" / base / f"{stem}{suffix}.jsonl"
            chat.parent.mkdir(parents=True, exist_ok=True)
            lines = _chat_lines(record, name, stamp)
            chat.write_text(
                "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8"
            )
            if base not in cards:
                cards[base] = card_for_record(record, name, personas)
        for base, persona in cards.items():
            write_card_v2(persona, tmp / "characters", file_name=base)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"folder": str(folder), "chats": len(records), "characters": sorted(cards)}


def _chat_lines(record: dict, name: str, stamp: time.struct_time) -> list[dict]:
    user = record.get("user_persona") or "User"
    meta = record.get("meta")
    date = _send_date(stamp)
    fields = {k: v for k, v in record.items() if k not in ("messages", "meta")}
    lines = [
        {
            "user_name": user,
            "character_name": name,
            "create_date": time.strftime("%Y-%m-%d@%Hh%Mm%Ss", stamp),
            "chat_metadata": {"rolegen": {"record": fields, "with_meta": meta is not None}},
        }
    ]
    for i, m in enumerate(record["messages"]):
        item = dict(meta[i]) if meta and i < len(meta) and isinstance(meta[i], dict) else {}
        rejected = item.pop("rejected", None) or []
        extra = {"rolegen": {"role": m["role"], "meta": item}}
        line = {
            "name": {"user": user, "assistant": name}.get(m["role"], "System"),
            "is_user": m["role"] == "user",
            "is_system": m["role"] == "system",
            "send_date": date,
            "mes": m["content"],
            "extra": extra,
        }
        if rejected:
            line["swipes"] = [c.get("content", "") for c in rejected] + [m["content"]]
            line["swipe_id"] = len(rejected)
            line["swipe_info"] = [
                {
                    "send_date": date,
                    "extra": {"rolegen": {k: v for k, v in c.items() if k != "content"}},
                }
                for c in rejected
            ] + [{"send_date": date, "extra": extra}]
        lines.append(line)
    return lines


def _send_date(stamp: time.struct_time) -> str:
    """SillyTavern's `getMessageTimeStamp()`: "June 19, 2023 2:20pm"."""
    hour = stamp.tm_hour % 12 or 12
    meridiem = "pm" if stamp.tm_hour >= 12 else "am"
    month = _MONTHS[stamp.tm_mon - 1]
    return f"{month} {stamp.tm_mday}, {stamp.tm_year} {hour}:{stamp.tm_min:02d}{meridiem}"
