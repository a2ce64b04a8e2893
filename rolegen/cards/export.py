"""A persona written as a SillyTavern Character Card V2: JSON, and a PNG that carries the
card in a `chara` tEXt chunk (`write_card_v2`), so SillyTavern opens a shipped persona
beside its exported chats. Reading cards is `files.py`'s.

Non-goals: V3 cards and the `ccv3` chunk, an avatar image (the PNG is a plain colour
tile).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import zlib
from dataclasses import asdict
from pathlib import Path

from rolegen.cards.files import PNG_SIGNATURE
from rolegen.cards.personas import Persona

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')


def safe_file_name(text: str) -> str:
    """`text` as a file name on any system (a character's name: spaces kept)."""
    name = _UNSAFE.sub("_", text).strip(" .")[:120]
    return name or "character"


def _card_v2(persona: Persona) -> dict:
    """A Character Card V2 with every field SillyTavern's validator requires. rolegen's
    own `intro`, `style` and `language` go under `extensions.rolegen`."""
    data = {
        "name": persona.name,
        "description": persona.description,
        "personality": persona.personality,
        "scenario": persona.scenario,
        "first_mes": persona.greeting,
        "mes_example": "\n".join(f"<START>\n{block}" for block in persona.example_dialogues),
        "creator_notes": f"Exported by rolegen from {persona.source or 'a dialogue record'}.",
        "system_prompt": persona.system_prompt,
        "post_history_instructions": persona.post_history_instructions,
        "alternate_greetings": [],
        "tags": list(persona.tags),
        "creator": "rolegen",
        "character_version": "",
        "extensions": {"rolegen": {k: getattr(persona, k) for k in ("intro", "style", "language")}},
    }
    if persona.depth_prompt is not None:
        note = persona.depth_prompt
        data["extensions"]["depth_prompt"] = {
            "prompt": note.text,
            "depth": note.depth,
            "role": note.role,
        }
    if persona.lorebook is not None:
        data["character_book"] = {
            "scan_depth": persona.lorebook.scan_depth,
            "token_budget": persona.lorebook.token_budget,
            "recursive_scanning": False,
            "extensions": {},
            "entries": [  # V2 has no use_regex (V3 does): kept under extensions
                {
                    **{k: v for k, v in asdict(e).items() if k != "use_regex"},
                    "id": i,
                    "comment": e.name,
                    "extensions": {"rolegen": {"use_regex": True}} if e.use_regex else {},
                }
                for i, e in enumerate(persona.lorebook.entries)
            ],
        }
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": data}


def write_card_v2(persona: Persona, folder: str | Path, file_name: str | None = None) -> Path:
    """`folder/<name>.json` and `folder/<name>.png` (the card base64 in a `chara` tEXt
    chunk, as SillyTavern writes it); returns the PNG's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = file_name or safe_file_name(persona.name)
    card = _card_v2(persona)
    (folder / f"{base}.json").write_text(
        json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    png = folder / f"{base}.png"
    png.write_bytes(_png(json.dumps(card, ensure_ascii=False).encode("utf-8"), persona.name))
    return png


def _png(card: bytes, name: str, width: int = 64, height: int = 96) -> bytes:
    """A valid PNG: one colour (from the name) in 8-bit RGB, and the card in `chara`."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    colour = hashlib.sha256(name.encode()).digest()[:3]
    rows = (b"\x00" + colour * width) * height  # filter type 0 (none) on every row
    return b"".join(
        [
            PNG_SIGNATURE,
            chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)),
            chunk(b"IDAT", zlib.compress(rows, 9)),
            chunk(b"tEXt", b"chara\0" + base64.b64encode(card)),
            chunk(b"IEND", b""),
        ]
    )
