"""Character Card V1/V2/V3 import from JSON and PNG files (rolegen.cards.files)."""

from __future__ import annotations

import base64
import json
import re
import struct
import time
import zlib

import pytest
from click.testing import CliRunner

from rolegen.cards.files import load_card, load_personas
from rolegen.cli import main
from rolegen.errors import RolegenError

# ---------------------------------------------------------------- builders


def _chunk(ctype: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(ctype + body)
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", crc)


def _png(*extra_chunks: bytes) -> bytes:
    """A 1x1 greyscale PNG with the given chunks between IHDR and IDAT."""
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00\x00")  # filter byte + one pixel
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + b"".join(extra_chunks)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def _b64(card: dict) -> bytes:
    return base64.b64encode(json.dumps(card).encode("utf-8"))


def _text(keyword: str, card: dict) -> bytes:
    return _chunk(b"tEXt", keyword.encode() + b"\0" + _b64(card))


def _ztxt(keyword: str, card: dict) -> bytes:
    return _chunk(b"zTXt", keyword.encode() + b"\0\0" + zlib.compress(_b64(card)))


def _itxt(keyword: str, card: dict, compressed: bool = False) -> bytes:
    text = zlib.compress(_b64(card)) if compressed else _b64(card)
    flag = b"\x01" if compressed else b"\x00"
    return _chunk(b"iTXt", keyword.encode() + b"\0" + flag + b"\0en\0\0" + text)


def _v2(**data) -> dict:
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"name": "Aria", **data}}


def _v3(**data) -> dict:
    return {"spec": "chara_card_v3", "spec_version": "3.0", "data": {"name": "Aria", **data}}


def _write_json(tmp_path, card, name="card.json"):
    path = tmp_path / name
    path.write_text(json.dumps(card), encoding="utf-8")
    return path


def _write_png(tmp_path, *chunks, name="card.png"):
    path = tmp_path / name
    path.write_bytes(_png(*chunks))
    return path


# ---------------------------------------------------------------- mapping


def test_v2_json_maps_every_field(tmp_path):
    card = _v2(
        description="{{char}} is a ship's navigator.",
        personality="curious, dry humour",
        scenario="{{user}} boards the ship.",
        first_mes="*She looks up.* Welcome aboard, {{user}}. I'm Aria, the navigator.",
        mes_example="<START>\n{{user}}: Hi\n{{char}}: Hello.\n<START>\n<USER>: Where?\n<BOT>: North.",
        creator_notes="ignored",
        system_prompt="You are {{char}}.",
        post_history_instructions="Stay in character.",
        alternate_greetings=["Ahoy."],
        tags=["sci-fi", "ship"],
        creator="someone",
        character_version="1.2",
        extensions={"talkativeness": "0.5"},
    )
    path = _write_json(tmp_path, card)
    persona = load_card(path)

    assert persona.name == "Aria"
    assert persona.description == "{{char}} is a ship's navigator."
    assert persona.personality == "curious, dry humour"
    assert persona.scenario == "{{user}} boards the ship."
    assert persona.greeting == card["data"]["first_mes"]
    assert persona.example_dialogues == [
        "{{user}}: Hi\n{{char}}: Hello.",
        "<USER>: Where?\n<BOT>: North.",
    ]
    assert persona.intro == "I'm Aria, the navigator."
    assert persona.system_prompt == "You are {{char}}."
    assert persona.post_history_instructions == "Stay in character."
    assert persona.tags == ["sci-fi", "ship"]
    assert persona.language == "en"
    assert persona.lorebook is None
    assert persona.source == str(path)


def test_null_text_fields_become_empty(tmp_path):
    persona = load_card(_write_json(tmp_path, _v2(description=None, tags=None, first_mes=None)))
    assert persona.description == ""
    assert persona.tags == []
    assert persona.greeting == ""
    assert persona.intro == ""


def test_mes_example_splits_on_start_markers_case_insensitively(tmp_path):
    examples = "<start>\nA: one\n\n<START>\n\n<Start>  B: two  \n<START>"
    persona = load_card(_write_json(tmp_path, _v2(mes_example=examples)))
    assert persona.example_dialogues == ["A: one", "B: two"]


def test_intro_is_first_sentence_naming_the_character(tmp_path):
    greeting = "The wind howls. Aria waves at you! Come in."
    persona = load_card(_write_json(tmp_path, _v2(first_mes=greeting)))
    assert persona.intro == "Aria waves at you!"


def test_intro_matches_my_name_phrase(tmp_path):
    greeting = "Hello there.\nMy name is Captain Vos. Sit down."
    persona = load_card(_write_json(tmp_path, _v2(first_mes=greeting)))
    assert persona.intro == "My name is Captain Vos."


def test_intro_empty_when_greeting_never_introduces_the_character(tmp_path):
    persona = load_card(_write_json(tmp_path, _v2(first_mes="Rain falls. Ariadne waits.")))
    assert persona.intro == ""


def test_v1_flat_json_is_accepted(tmp_path):
    card = {
        "name": "Bob",
        "description": "A baker.",
        "personality": "warm",
        "scenario": "A bakery.",
        "first_mes": "Hi! I am Bob.",
        "mes_example": "<START>\n<USER>: Bread?\n<BOT>: Always.",
    }
    persona = load_card(_write_json(tmp_path, card))
    assert (persona.name, persona.description, persona.personality) == ("Bob", "A baker.", "warm")
    assert persona.scenario == "A bakery."
    assert persona.greeting == "Hi! I am Bob."
    assert persona.intro == "I am Bob."
    assert persona.example_dialogues == ["<USER>: Bread?\n<BOT>: Always."]


def test_v3_card_uses_nickname_only_when_name_is_empty(tmp_path):
    named = load_card(_write_json(tmp_path, _v3(nickname="Ari"), name="a.json"))
    assert named.name == "Aria"
    unnamed = load_card(_write_json(tmp_path, _v3(name="", nickname="Ari"), name="b.json"))
    assert unnamed.name == "Ari"


# ---------------------------------------------------------------- PNG


def test_png_prefers_ccv3_over_chara(tmp_path):
    path = _write_png(tmp_path, _text("chara", _v2(name="Old")), _text("ccv3", _v3(name="New")))
    assert load_card(path).name == "New"


def test_png_reads_chara_when_no_ccv3(tmp_path):
    path = _write_png(tmp_path, _chunk(b"tEXt", b"Comment\0hello"), _text("chara", _v2()))
    persona = load_card(path)
    assert persona.name == "Aria"
    assert persona.source == str(path)


@pytest.mark.parametrize(
    "chunk",
    [
        _ztxt("chara", _v2()),
        _itxt("ccv3", _v3()),
        _itxt("chara", _v2(), compressed=True),
    ],
    ids=["zTXt", "iTXt", "iTXt-compressed"],
)
def test_png_reads_compressed_and_international_text_chunks(tmp_path, chunk):
    assert load_card(_write_png(tmp_path, chunk)).name == "Aria"


# ---------------------------------------------------------------- lorebook


def _book_card(spec=_v3, **book) -> dict:
    entries = [
        {
            "keys": ["dragon", "wyrm"],
            "content": "Dragons sleep under the mountain.",
            "extensions": {"position": 0},
            "enabled": True,
            "insertion_order": 10,
            "case_sensitive": None,
            "name": "dragons",
            "priority": 5,
            "id": 1,
        },
        {
            "keys": ["\\bships?\\b"],
            "content": "The ship is called Meridian.",
            "secondary_keys": ["captain"],
            "selective": True,
            "constant": False,
            "enabled": True,
            "case_sensitive": True,
            "use_regex": True,
            "insertion_order": 20,
            "comment": "ship",
            "extensions": {},
        },
        {"keys": ["gold"], "content": "Gold is cursed.", "enabled": False, "extensions": {}},
    ]
    return spec(character_book={"entries": entries, "extensions": {}, **book})


def test_lorebook_maps_entries_and_defaults(tmp_path):
    book = load_card(_write_json(tmp_path, _book_card(scan_depth=None))).lorebook
    assert book is not None
    assert (book.scan_depth, book.token_budget) == (4, 512)
    dragons, ship, gold = book.entries
    assert dragons.keys == ["dragon", "wyrm"]
    assert dragons.content == "Dragons sleep under the mountain."
    assert dragons.secondary_keys == []
    assert (dragons.selective, dragons.constant, dragons.enabled) == (False, False, True)
    assert (dragons.case_sensitive, dragons.use_regex) == (False, False)
    assert (dragons.insertion_order, dragons.name) == (10, "dragons")
    assert ship.secondary_keys == ["captain"]
    assert (ship.selective, ship.case_sensitive, ship.use_regex) == (True, True, True)
    assert (ship.insertion_order, ship.name) == (20, "ship")
    assert gold.enabled is False
    assert gold.insertion_order == 100


def test_lorebook_keeps_scan_depth_and_token_budget(tmp_path):
    book = load_card(_write_json(tmp_path, _book_card(scan_depth=2, token_budget=64))).lorebook
    assert (book.scan_depth, book.token_budget) == (2, 64)


def test_lorebook_use_regex_is_ignored_on_v2_cards(tmp_path):
    book = load_card(_write_json(tmp_path, _book_card(spec=_v2))).lorebook
    assert [e.use_regex for e in book.entries] == [False, False, False]


def test_lorebook_regex_entry_triggers_and_others_do_not(tmp_path):
    book = load_card(_write_json(tmp_path, _book_card())).lorebook
    active = book.active(["hello", "ships ahoy, ask the captain about gold"])
    assert [e.name for e in active] == ["ship"]  # no dragon named; gold is disabled
    assert book.active(["Ships and the captain"]) == []  # regex is case-sensitive
    assert [e.name for e in book.active(["a DRAGON!"])] == ["dragons"]


# ---------------------------------------------------------------- errors


def _bad_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"name": "Aria",\n  "description": }', encoding="utf-8")
    return path


def _latin1_json(tmp_path):
    path = tmp_path / "latin.json"
    path.write_bytes('{"name": "Ren\u00e9e"}'.encode("latin-1"))
    return path


def _bad_base64_png(tmp_path):
    return _write_png(tmp_path, _chunk(b"tEXt", b"chara\0not*base64!"), name="b64.png")


def _bad_signature_png(tmp_path):
    path = tmp_path / "fake.png"
    path.write_bytes(b"GIF89a" + _png(_text("chara", _v2()))[6:])
    return path


def _truncated_png(tmp_path):
    path = tmp_path / "cut.png"
    path.write_bytes(_png(_text("chara", _v2()))[:60])
    return path


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_bad_json, ["broken.json", "not valid JSON", "line 2, column 18"]),
        (_latin1_json, ["latin.json", "not UTF-8"]),
        (lambda p: _write_png(p, name="plain.png"), ["plain.png", "'ccv3'", "'chara'"]),
        (_bad_base64_png, ["b64.png", "chunk 'chara'", "bad base64"]),
        (_bad_signature_png, ["fake.png", "bad signature"]),
        (_truncated_png, ["cut.png", "truncated"]),
        (lambda p: _write_json(p, _v2(name=None), "noname.json"), ["noname.json", "'data.name'"]),
        (lambda p: _write_json(p, _v2(name="  "), "blank.json"), ["blank.json", "'data.name'"]),
        (lambda p: _write_json(p, {"description": "x"}, "v1.json"), ["v1.json", "'name'"]),
        (
            lambda p: _write_json(p, _v2(tags="a,b"), "tags.json"),
            ["tags.json", "'data.tags'", "list of strings"],
        ),
        (
            lambda p: _write_json(p, _v2(description=3), "desc.json"),
            ["desc.json", "'data.description'", "text"],
        ),
        (
            lambda p: _write_json(p, {"spec": "chara_card_v9", "data": {}}, "spec.json"),
            ["spec.json", "'spec'", "chara_card_v9"],
        ),
        (lambda p: _write_json(p, ["Aria"], "list.json"), ["list.json", "JSON object"]),
    ],
    ids=[
        "invalid-json",
        "not-utf8",
        "png-without-card",
        "bad-base64",
        "bad-signature",
        "truncated-chunk",
        "missing-name",
        "empty-name",
        "v1-missing-name",
        "tags-not-list",
        "text-not-string",
        "unknown-spec",
        "top-level-not-object",
    ],
)
def test_bad_card_raises_error_naming_file_and_field(tmp_path, make, expected):
    path = make(tmp_path)
    with pytest.raises(RolegenError) as info:
        load_card(path)
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message


def test_lorebook_entry_keys_not_list_names_the_entry(tmp_path):
    card = _book_card()
    card["data"]["character_book"]["entries"][2]["keys"] = "gold"
    path = _write_json(tmp_path, card, "book.json")
    with pytest.raises(
        RolegenError, match=r"book\.json.*'data\.character_book\.entries\[2\]\.keys'"
    ):
        load_card(path)


def test_png_card_with_invalid_json_names_the_chunk(tmp_path):
    chunk = _chunk(b"tEXt", b"ccv3\0" + base64.b64encode(b"{nope"))
    path = _write_png(tmp_path, chunk, name="badjson.png")
    with pytest.raises(RolegenError, match=r"badjson\.png: chunk 'ccv3': not valid JSON"):
        load_card(path)


# ---------------------------------------------------------------- personas integration


def test_load_personas_reads_json_card(tmp_path):
    path = _write_json(tmp_path, _v2(name="Juno"), "juno.json")
    [persona] = load_personas(str(path))
    assert (persona.name, persona.source) == ("Juno", str(path))


def test_load_personas_reads_png_card(tmp_path):
    path = _write_png(tmp_path, _text("ccv3", _v3(name="Juno")), name="juno.png")
    [persona] = load_personas(str(path))
    assert (persona.name, persona.source) == ("Juno", str(path))


# ---------------------------------------------------------------- hostile cards


def _bomb_chunk(ctype: bytes, size: int) -> bytes:
    """A `chara` text chunk whose zlib data inflates to `size` bytes of base64 text."""
    data = zlib.compress(b"A" * size, 9)
    if ctype == b"zTXt":
        return _chunk(ctype, b"chara\0\0" + data)
    return _chunk(ctype, b"chara\0\x01\0en\0\0" + data)


@pytest.mark.parametrize("ctype", [b"zTXt", b"iTXt"])
def test_png_chunk_that_inflates_past_the_cap_is_refused_naming_the_file(tmp_path, ctype):
    from rolegen.cards.files import MAX_CHUNK_BYTES

    path = _write_png(tmp_path, _bomb_chunk(ctype, MAX_CHUNK_BYTES + 1), name="bomb.png")
    assert path.stat().st_size < 100_000  # a small file, a big inflate
    result = CliRunner().invoke(
        main, ["generate", "--persona", str(path), "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "bomb.png" in result.output and ctype.decode() in result.output
    assert "decompression bomb" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_png_chunk_cut_short_is_a_broken_png_error(tmp_path):
    data = zlib.compress(_b64(_v2()))[:-6]
    path = _write_png(tmp_path, _chunk(b"zTXt", b"chara\0\0" + data), name="cut.png")
    with pytest.raises(RolegenError, match=r"cut\.png: broken PNG: cannot read zTXt chunk"):
        load_card(path)


def test_negative_scan_depth_names_the_field(tmp_path):
    path = _write_json(tmp_path, _book_card(scan_depth=-2), "depth.json")
    with pytest.raises(RolegenError, match=r"'data\.character_book\.scan_depth' must be 0 or more"):
        load_card(path)


def test_v3_regex_key_that_does_not_compile_names_the_card_and_entry(tmp_path):
    card = _book_card()
    card["data"]["character_book"]["entries"][1]["secondary_keys"] = ["capt(ain"]
    path = _write_json(tmp_path, card, "book.json")
    with pytest.raises(RolegenError) as info:
        load_card(path)
    message = str(info.value)
    assert message.startswith(f"{path}: field 'data.character_book.entries[1].secondary_keys[0]'")
    assert "not a valid regular expression" in message


def test_v3_regex_key_that_backtracks_stops_generate_naming_the_card_and_entry(
    tmp_path, tiny_model
):
    card = _v3(first_mes="Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!")
    card["data"]["character_book"] = {
        "entries": [{"keys": ["(a|aa)+$"], "content": "x", "use_regex": True, "name": "trap"}]
    }
    path = _write_json(tmp_path, card, "trap.json")
    start = time.perf_counter()
    result = CliRunner().invoke(
        main,
        ["generate", "--persona", str(path), "--model", str(tiny_model), "--engine", "hf"]
        + ["--out", str(tmp_path / "run")],
    )
    assert time.perf_counter() - start < 60  # hung for good before
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "trap.json: lorebook entry 0 ('trap')" in result.output
    assert "(a|aa)+$" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()  # before the engine and the run folder


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN"])
def test_a_lorebook_count_that_is_not_finite_is_refused(tmp_path, value):
    # found by tests/test_fuzz_readers.py: int() of JSON's Infinity raised OverflowError.
    # Python's json reads these words, JSON has none of them: refused where they stand
    path = tmp_path / "card.json"
    path.write_text('{"name": "A", "character_book": {"scan_depth": ' + value + "}}")
    message = f"card.json: not valid JSON: {value} is not a JSON number (line 1, column 48)"
    with pytest.raises(RolegenError, match=re.escape(message)):
        load_card(path)
