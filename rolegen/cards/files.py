"""Character cards from files: a `--persona` value resolved to its loader (`load_personas`),
and SillyTavern-style Character Cards (V1, V2, V3) imported as `Persona` objects.

Scope: read a card from a `.json` file, or from a `.png` whose `tEXt`/`iTXt`/`zTXt` chunk
`ccv3` (preferred) or `chara` holds the card as base64-encoded JSON, and map its fields,
including the `character_book` lorebook and the Character's Note
(`extensions.depth_prompt`), onto `Persona`. Macros such as `{{char}}` or
`<USER>` are kept verbatim; `personas.substitute_macros` replaces them later.
The card a dialogue record was made from: `card_for_record`.

Writing a Character Card V2 (JSON and PNG) is `export.py`'s.

Non-goals: editing cards, decoding the image, PNG CRC checks, V3 assets, alternate and
group-only greetings, and every extension but `depth_prompt` (ignored on import).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
import zlib
from pathlib import Path

from rolegen.bounded import excerpt, load_json
from rolegen.cards.depth_prompts import DepthPrompt, depth_prompt_from
from rolegen.cards.lorebook import Lorebook, LoreEntry
from rolegen.cards.personas import Persona, available_personas, load_persona_yaml, slugify
from rolegen.errors import RolegenError
from rolegen.resources import personas_dir

CARD_SUFFIXES = (".yaml", ".yml", ".json", ".png")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CARD_KEYWORDS = ("ccv3", "chara")  # in order of preference
_SPECS = {"chara_card_v2": 2, "chara_card_v3": 3}
_START = re.compile(r"<START>", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"'*)\u201d\u2019]*)?")
_SELF_INTRO = re.compile(r"\b(?:I am|I'm|I\u2019m|my name)\b", re.IGNORECASE)
_JSON_TYPES = {"dict": "object", "list": "array", "str": "string", "NoneType": "null"}
# The most a compressed text chunk may inflate to. A card with its lorebook is a few MB
# at most; without a cap, a 1.2 MB zTXt chunk inflated to 1.2 GB (a decompression bomb).
MAX_CHUNK_BYTES = 16 * 1024**2


def _load_card_file(path: Path) -> Persona:
    if path.suffix.lower() in (".yaml", ".yml"):
        return load_persona_yaml(path)
    return load_card(path)


def card_files(folder: Path) -> list[Path]:
    """The cards of a `--persona` folder, sorted: its files with a card suffix."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in CARD_SUFFIXES)


def persona_folders(sources) -> dict[str, list[Path]]:
    """The `--persona` values that are folders, each with its cards (`card_files`)."""
    return {s: card_files(Path(s).expanduser()) for s in sources if Path(s).expanduser().is_dir()}


def load_cards(sources) -> list[Persona]:
    """Every card of the `--persona` values, in order (`load_personas` of each)."""
    return [p for source in sources for p in load_personas(source)]


def card_paths(personas) -> list[str]:
    """The card files the personas were read from (a shipped name's YAML included): what
    a resume hashes to find an edited card."""
    return [p.source for p in personas if p.source and Path(p.source).is_file()]


def load_personas(source: str) -> list[Persona]:
    """Resolve a `--persona` value: a shipped name, a card file, or a folder of cards."""
    path = Path(source).expanduser()
    if path.is_dir():
        files = card_files(path)
        if not files:
            raise RolegenError(f"{path}: folder holds no persona cards (*.yaml, *.json, *.png)")
        return [_load_card_file(p) for p in files]
    if path.is_file():
        if path.suffix.lower() not in CARD_SUFFIXES:
            raise RolegenError(f"{path}: not a persona card (expected .yaml, .json or .png)")
        return [_load_card_file(path)]
    shipped = personas_dir() / f"{source}.yaml"
    if shipped.is_file():
        return [load_persona_yaml(shipped)]
    raise RolegenError(
        f"unknown persona '{source}': not a file, and not one of the shipped personas: "
        + ", ".join(available_personas())
    )


def load_card(path: Path) -> Persona:
    """Read a Character Card from a `.json` or `.png` file; raise `RolegenError` if it is bad."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise _error(path, f"cannot read card ({e.strerror})") from None
    where = ""
    if path.suffix.lower() == ".png":
        raw, where = _card_from_png(raw, path)
    return _to_persona(_parse_json(raw, path, where), path)


def card_for_record(record: dict, name: str, personas) -> Persona:
    """The character's card: a `--persona` card of that name, else the card the dialogue
    was made from, else the shipped persona of its slug, else one built from the record."""
    for p in personas:
        if p.slug == slugify(name):
            return p
    source = record.get("persona_source") or ""
    shipped = personas_dir() / f"{record.get('persona') or slugify(name)}.yaml"
    for path in (Path(source) if source else None, shipped):
        if path is not None and _is_file(path):
            try:
                return load_personas(str(path))[0]
            except RolegenError:
                continue  # the card changed since the run; the record still names it
    messages = record["messages"]
    first_user = next((i for i, m in enumerate(messages) if m["role"] == "user"), len(messages))
    greeting = next((m["content"] for m in messages[:first_user] if m["role"] == "assistant"), "")
    return Persona(name=name, greeting=greeting, intro=record.get("persona_intro") or "")


def _is_file(path: Path) -> bool:
    """Whether a path a record names is a file; a name the file system refuses (too long,
    a null byte) is none."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _error(path: Path, message: str) -> RolegenError:
    return RolegenError(f"{path}: {message}")


def _parse_json(raw: bytes, path: Path, where: str):
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _error(path, f"{where}not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        return load_json(text, f"{path}: {where}".rstrip(": "))
    except json.JSONDecodeError as e:
        raise _error(
            path, f"{where}not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})"
        ) from None


# ---------------------------------------------------------------- PNG


def _card_from_png(data: bytes, path: Path) -> tuple[bytes, str]:
    """The decoded card JSON and a prefix naming its chunk, for error messages."""
    chunks = _png_card_chunks(data, path)
    for keyword in _CARD_KEYWORDS:
        if keyword in chunks:
            where = f"chunk '{keyword}': "
            try:
                return base64.b64decode("".join(chunks[keyword].split()), validate=True), where
            except (binascii.Error, ValueError):
                raise _error(path, f"{where}bad base64") from None
    raise _error(path, "PNG holds no character card (no 'ccv3' or 'chara' text chunk)")


def _png_card_chunks(data: bytes, path: Path) -> dict[str, str]:
    if not data.startswith(PNG_SIGNATURE):
        raise _error(path, "not a PNG file (bad signature)")
    found: dict[str, str] = {}
    pos = len(PNG_SIGNATURE)
    while pos < len(data):
        if pos + 8 > len(data):
            raise _error(path, f"broken PNG: truncated chunk header at byte {pos}")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        name = ctype.decode("latin-1")
        if pos + 12 + length > len(data):
            raise _error(path, f"broken PNG: chunk '{name}' at byte {pos} is truncated")
        pos += 12 + length  # length, type, data, CRC
        if ctype == b"IEND":
            break
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            keyword, _, rest = body.partition(b"\0")
            keyword = keyword.decode("latin-1").lower()
            if keyword in _CARD_KEYWORDS and keyword not in found:
                found[keyword] = _chunk_text(name, rest, keyword, path)
    return found


def _chunk_text(ctype: str, rest: bytes, keyword: str, path: Path) -> str:
    try:
        if ctype == "tEXt":
            return rest.decode("latin-1")
        if ctype == "zTXt":  # compression method byte, then zlib data
            return _inflate(rest[1:], ctype, keyword, path).decode("latin-1")
        # iTXt: compression flag, method, language tag\0, translated keyword\0, UTF-8 text
        _, _, rest2 = rest[2:].partition(b"\0")
        _, _, text = rest2.partition(b"\0")
        if rest[:1] == b"\x01":
            text = _inflate(text, ctype, keyword, path)
        return text.decode("utf-8")
    except (zlib.error, UnicodeDecodeError) as e:
        raise _error(path, f"broken PNG: cannot read {ctype} chunk '{keyword}' ({e})") from None


def _inflate(data: bytes, ctype: str, keyword: str, path: Path) -> bytes:
    """zlib data inflated to at most `MAX_CHUNK_BYTES`: a larger chunk is refused before
    more than that is held in memory."""
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_CHUNK_BYTES + 1)
    if len(out) > MAX_CHUNK_BYTES:
        raise _error(
            path,
            f"{ctype} chunk '{keyword}' inflates to more than {MAX_CHUNK_BYTES // 1024**2} MB; "
            "a character card is a few MB at most (refused as a decompression bomb)",
        )
    if not inflater.eof:
        raise zlib.error("incomplete or truncated stream")
    return out


# ---------------------------------------------------------------- mapping


class _Reader:
    """Typed access to the fields of one JSON object; errors name the field's full path."""

    def __init__(self, obj, where: str, path: Path):
        if not isinstance(obj, dict):
            raise _error(path, f"field '{where}' must be an object")
        self.obj, self.prefix, self.path = obj, f"{where}." if where else "", path

    def wrong(self, key: str, expected: str) -> RolegenError:
        got = type(self.obj[key]).__name__
        got = _JSON_TYPES.get(got, got)
        return _error(self.path, f"field '{self.prefix}{key}' must be {expected}, got {got}")

    def text(self, key: str) -> str:
        value = self.obj.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.wrong(key, "text")
        return value

    def strings(self, key: str) -> list[str]:
        value = self.obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.wrong(key, "a list of strings")
        return list(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.obj.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.wrong(key, "true or false")
        return value

    def number(self, key: str, default: int, minimum: float = float("-inf")) -> int:
        value = self.obj.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.wrong(key, "a number")
        if not math.isfinite(value):  # JSON's NaN and Infinity: int() of them raises
            raise _error(self.path, f"field '{self.prefix}{key}' must be a finite number")
        if value < minimum:
            raise _error(self.path, f"field '{self.prefix}{key}' must be {minimum} or more")
        return int(value)


def _to_persona(card, path: Path) -> Persona:
    if not isinstance(card, dict):
        raise _error(path, "a card must be a JSON object at the top level")
    spec = card.get("spec")
    if spec is None:  # V1: the fields sit at the top level
        fields, version = _Reader(card, "", path), 1
    elif isinstance(spec, str) and spec in _SPECS:
        fields, version = _Reader(card.get("data"), "data", path), _SPECS[spec]
    else:
        expected = " or ".join(_SPECS)
        raise _error(path, f"field 'spec': unknown card spec {excerpt(spec)} (expected {expected})")
    name = fields.text("name").strip()
    if not name and version == 3:
        name = fields.text("nickname").strip()
    if not name:
        raise _error(path, f"field '{fields.prefix}name' is missing or empty")
    greeting = fields.text("first_mes")
    book = fields.obj.get("character_book")
    if book is not None:
        book = _lorebook(_Reader(book, f"{fields.prefix}character_book", path), version)
    return Persona(
        name=name,
        description=fields.text("description"),
        personality=fields.text("personality"),
        scenario=fields.text("scenario"),
        greeting=greeting,
        example_dialogues=_split_examples(fields.text("mes_example")),
        intro=_intro(greeting, name),
        system_prompt=fields.text("system_prompt"),
        post_history_instructions=fields.text("post_history_instructions"),
        depth_prompt=_depth_prompt(fields, path),
        tags=fields.strings("tags"),
        language="en",
        lorebook=book,
        source=str(path),
    )


def _depth_prompt(fields: _Reader, path: Path) -> DepthPrompt | None:
    """The card's Character's Note: `extensions.depth_prompt` ({prompt, depth, role}), as
    SillyTavern writes it; any other extension is ignored."""
    extensions = fields.obj.get("extensions")
    if not isinstance(extensions, dict):
        return None
    where = f"{fields.prefix}extensions.depth_prompt"
    return depth_prompt_from(extensions.get("depth_prompt"), where, path)


def _split_examples(text: str) -> list[str]:
    return [block.strip() for block in _START.split(text) if block.strip()]


def _intro(greeting: str, name: str) -> str:
    """The first sentence of the greeting that names the character or says "I am"/"I'm"/
    "my name"; "" if none does. Sentences end at `.`, `!`, `?` or a line break."""
    own_name = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", re.IGNORECASE)
    for sentence in _SENTENCE.findall(greeting):
        if own_name.search(sentence) or _SELF_INTRO.search(sentence):
            return sentence.strip()
    return ""


def _lorebook(book: _Reader, version: int) -> Lorebook:
    items = book.obj.get("entries")
    items = [] if items is None else items
    if not isinstance(items, list):
        raise book.wrong("entries", "a list")
    where = f"{book.prefix}entries"
    return Lorebook(
        entries=[
            _entry(_Reader(e, f"{where}[{i}]", book.path), version) for i, e in enumerate(items)
        ],
        scan_depth=book.number("scan_depth", 4, minimum=0),
        token_budget=book.number("token_budget", 512, minimum=0),
    )


def _entry(entry: _Reader, version: int) -> LoreEntry:
    lore = LoreEntry(
        keys=entry.strings("keys"),
        content=entry.text("content"),
        secondary_keys=entry.strings("secondary_keys"),
        selective=entry.flag("selective", False),
        constant=entry.flag("constant", False),
        enabled=entry.flag("enabled", True),
        case_sensitive=entry.flag("case_sensitive", False),
        use_regex=entry.flag("use_regex", False) if version == 3 else False,
        insertion_order=entry.number("insertion_order", 100),
        name=entry.text("name") or entry.text("comment"),
    )
    bad_key = lore.invalid_regex_key()
    if bad_key:
        raise _error(entry.path, f"field '{entry.prefix}{bad_key[0]}': {bad_key[1]}")
    return lore
