"""SillyTavern chats both ways: hand-written chats in SillyTavern's own format read as
dialogues (greeting first, hidden messages left out, unchosen swipes as rejected
candidates that are never scored), bad chats skipped whole and named by line, rolegen's
dialogues written as chats that read back the same, and cards as PNG/JSON V2."""

import json
import struct
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from rolegen.cards.export import write_card_v2
from rolegen.cards.files import load_card, load_personas
from rolegen.cards.personas import Persona
from rolegen.checks.dataset import preference_pairs
from rolegen.checks.turns import CheckConfig
from rolegen.cli import main
from rolegen.errors import RolegenError
from rolegen.evaluation.metrics import turn_rows
from rolegen.runs.records import read_dialogues
from rolegen.runs.sillytavern import (
    is_chat_file,
    is_chat_source,
    read_chats,
)
from rolegen.runs.sillytavern_export import write_chats

# Written by hand the way SillyTavern saves a chat (saveChat(): the header, then the
# chat array; send_date from getMessageTimeStamp(), or milliseconds in older chats;
# the greeting's swipes are the card's alternate greetings with an empty swipe_info).
HEADER = (
    '{"user_name":"You","character_name":"Captain Mara Vell","create_date":"2024-07-12@01h31m37s",'
    '"chat_metadata":{"note_prompt":"","note_interval":1,"tainted":true}}'
)
GREETING = (
    '{"name":"Captain Mara Vell","is_user":false,"is_system":false,'
    '"send_date":"July 12, 2024 1:31am","mes":"*Mara tosses you a rope.* Hold that!",'
    '"extra":{},"swipe_id":0,"swipes":["*Mara tosses you a rope.* Hold that!",'
    '"*Mara waves from the gangway.* Late, aren\'t you?"],"swipe_info":[]}'
)
USER_1 = (
    '{"name":"You","is_user":true,"is_system":false,"send_date":"July 12, 2024 1:32am",'
    '"mes":"Is this ship even safe?","extra":{"isSmallSys":false}}'
)
REPLY_1 = (
    '{"name":"Captain Mara Vell","is_user":false,"is_system":false,'
    '"send_date":"July 12, 2024 1:32am","mes":"Safe? No. Fast? Very.",'
    '"extra":{"api":"openai","model":"gpt-4o"},"gen_started":"2024-07-11T23:32:01.123Z",'
    '"gen_finished":"2024-07-11T23:32:04.456Z","swipe_id":1,'
    '"swipes":["I\'m Captain Mara Vell, and this is my ship.","Safe? No. Fast? Very.",'
    '"Safe as a cradle, mostly."],'
    '"swipe_info":[{"send_date":"July 12, 2024 1:32am","gen_started":"2024-07-11T23:32:00.000Z",'
    '"gen_finished":"2024-07-11T23:32:00.900Z","extra":{"api":"openai","model":"gpt-4o"}},'
    '{"send_date":"July 12, 2024 1:32am","gen_started":"2024-07-11T23:32:01.123Z",'
    '"gen_finished":"2024-07-11T23:32:04.456Z","extra":{"api":"openai","model":"gpt-4o"}},'
    '{"send_date":"July 12, 2024 1:33am","extra":{}}]}'
)
HIDDEN = (
    '{"name":"You","is_user":true,"is_system":true,"send_date":1720741924000,'
    '"mes":"(an aside hidden with /hide)","extra":{}}'
)
USER_2 = (
    '{"name":"You","is_user":true,"is_system":false,"send_date":1720741980000,'
    '"mes":"What are we carrying?","extra":{}}'
)
REPLY_2 = (
    '{"name":"Captain Mara Vell","is_user":false,"send_date":1720741990000,'
    '"mes":"Crates marked machine oil. Best not to read labels on my ship."}'
)
CHAT = [HEADER, GREETING, USER_1, REPLY_1, HIDDEN, USER_2, REPLY_2]


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")  # SillyTavern writes no last newline
    return path


def _record(i: int, rejected=None) -> dict:
    """A dialogue as rolegen generate writes it (system prompt, greeting, turns, meta)."""
    messages = [
        {"role": "system", "content": "You are Mara. Stay in character."},
        {"role": "assistant", "content": "Hold that rope!"},
        {"role": "user", "content": f"Where to, captain? ({i})"},
        {"role": "assistant", "content": "Port Halcyon, before the storm."},
        {"role": "user", "content": "And then?"},
        {"role": "assistant", "content": "Then we sell the crates and drink."},
    ]
    meta = [
        {"role": "system", "source": "template"},
        {"role": "assistant", "source": "greeting"},
        {"role": "user", "source": "script", "turn": 1},
        {"role": "assistant", "source": "model", "turn": 1, "seed": 7, "checks": {"repeat": 3}},
        {"role": "user", "source": "script", "turn": 2},
        {"role": "assistant", "source": "model", "turn": 2, "seed": 9, "finish_reason": "stop"},
    ]
    if rejected:
        meta[5]["rejected"] = rejected
    return {
        "id": f"run/captain-mara-vell-{i:04d}",
        "persona": "captain-mara-vell",
        "persona_name": "Captain Mara Vell",
        "persona_intro": "I'm Captain Mara Vell.",
        "user_persona": "Alex",
        "end_reason": "completed",
        "format": "chat_template",
        "seed": i,
        "unresolved": [],
        "messages": messages,
        "meta": meta,
    }


REJECTED = [
    {
        "content": "I'm Captain Mara Vell. Port Halcyon, before the storm.",
        "reasons": ["echo", "repeat"],
        "checks": {"repeat": 91.0},
        "seed": 11,
        "sample_index": 0,
    },
    {"content": "", "reasons": ["empty"], "checks": {}, "seed": 12, "sample_index": 1},
]


def test_a_chat_reads_as_a_dialogue_greeting_first_and_hidden_messages_left_out(tmp_path):
    path = _write(tmp_path / "Captain Mara Vell" / "Mara - 2024-7-12@01h31m37s.jsonl", CHAT)
    assert is_chat_file(path) and is_chat_source(path.parent)
    (record,), skipped = read_chats(path)
    assert skipped == []
    assert record["id"] == "Mara - 2024-7-12@01h31m37s"
    assert (record["persona"], record["persona_name"], record["user_persona"]) == (
        "captain-mara-vell",
        "Captain Mara Vell",
        "You",
    )
    assert [(m["role"], m["content"]) for m in record["messages"]] == [
        ("assistant", "*Mara tosses you a rope.* Hold that!"),
        ("user", "Is this ship even safe?"),
        ("assistant", "Safe? No. Fast? Very."),
        ("user", "What are we carrying?"),
        ("assistant", "Crates marked machine oil. Best not to read labels on my ship."),
    ]
    assert len(record["meta"]) == 5 and record["meta"][2]["line"] == 4
    assert "rejected" not in record["meta"][0]  # alternate greetings are no refused replies
    assert record["meta"][2]["rejected"] == [
        {
            "content": "I'm Captain Mara Vell, and this is my ship.",
            "reasons": ["not_chosen"],
            "swipe": 0,
        },
        {"content": "Safe as a cradle, mostly.", "reasons": ["not_chosen"], "swipe": 2},
    ]


def test_unchosen_swipes_make_preference_pairs_but_are_never_scored(tmp_path):
    path = _write(tmp_path / "chat.jsonl", CHAT)
    records, _ = read_dialogues(path)
    pairs = preference_pairs(records[0])
    assert [p["rejected"][0]["content"] for p in pairs] == [
        "I'm Captain Mara Vell, and this is my ship.",
        "Safe as a cradle, mostly.",
    ]
    assert all(p["chosen"][0]["content"] == "Safe? No. Fast? Very." for p in pairs)
    assert pairs[0]["prompt"][-1] == {"role": "user", "content": "Is this ship even safe?"}
    rows = turn_rows(records, CheckConfig())
    assert [r["text"] for r in rows] == [
        "Safe? No. Fast? Very.",
        "Crates marked machine oil. Best not to read labels on my ship.",
    ]


def test_a_persona_card_gives_the_intro_the_header_lacks(tmp_path):
    headerless_name = HEADER.replace('"character_name":"Captain Mara Vell",', "")
    path = _write(tmp_path / "chat.jsonl", [headerless_name, *CHAT[1:]])
    with pytest.raises(RolegenError, match=r"chat.jsonl:1: header has no character_name"):
        read_chats(path, on_error="stop")
    card = Persona(name="Captain Mara Vell", intro="I'm {{char}}, master of the Kestrel.")
    (record,), _ = read_chats(path, [card])
    assert record["persona_name"] == "Captain Mara Vell"
    assert record["persona_intro"] == "I'm Captain Mara Vell, master of the Kestrel."
    # with several cards, each chat takes the one of its character's name
    other = Persona(name="Chef Pip", intro="I'm Chef Pip.")
    (record,), _ = read_chats(_write(tmp_path / "named.jsonl", CHAT), [other, card])
    assert record["persona_intro"] == "I'm Captain Mara Vell, master of the Kestrel."


BAD_CHATS = {
    "header-only.jsonl": ([HEADER], 1, "header only: no messages"),
    "malformed.jsonl": ([HEADER, GREETING, '{"name":"You","is_user":tr'], 3, "malformed JSON"),
    "no-mes.jsonl": ([HEADER, GREETING, USER_1.replace('"mes"', '"text"')], 3, "field 'mes'"),
    "no-is-user.jsonl": ([HEADER, USER_1.replace('"is_user":true,', "")], 2, "field 'is_user'"),
    "group.jsonl": (CHAT[1:], 1, "group chat"),
    "bad-swipe.jsonl": ([HEADER, USER_1, REPLY_1.replace('"swipe_id":1', '"swipe_id":3')], 3,
                        "'swipe_id' (3) is not an index"),
    "user-only.jsonl": ([HEADER, USER_1, HIDDEN], 1, "no character message"),
}  # fmt: skip


def test_bad_chats_are_skipped_whole_and_named_by_line(tmp_path):
    folder = tmp_path / "chats"
    good = _write(folder / "Captain Mara Vell" / "good.jsonl", CHAT)
    for name, (lines, _, _) in BAD_CHATS.items():
        _write(folder / "Captain Mara Vell" / name, lines)
    _write(folder / "notes.jsonl", ['{"id": "x", "messages": []}'])  # some other JSONL
    records, skipped = read_chats(folder)
    assert [r["id"] for r in records] == ["Captain Mara Vell/good"]
    assert records[0]["sillytavern"]["file"] == str(good)
    found = {path.name: (line, why) for path, line, why in skipped}
    assert found["notes.jsonl"] == (1, "not a SillyTavern chat (no header with user_name)")
    for name, (_, line, why) in BAD_CHATS.items():
        assert found[name][0] == line and why in found[name][1], name

    with pytest.raises(RolegenError, match=r"bad-swipe.jsonl:3: field 'swipe_id'"):
        read_chats(folder, on_error="stop")
    only_bad = tmp_path / "only-bad"
    _write(only_bad / "group.jsonl", CHAT[1:])
    with pytest.raises(RolegenError, match=r"no usable SillyTavern chats; first problem: .*group"):
        read_chats(only_bad)


def test_a_chat_whose_header_is_over_the_sniffing_limit_is_still_a_chat(tmp_path):
    # an extension's notes in chat_metadata make the header line longer than the 4 MiB
    # read to tell a chat: its leading key still does; another JSONL's long line does not
    header = json.loads(HEADER)
    header["chat_metadata"]["notes"] = "a long note. " * 400_000  # 5.2 MB
    chat = _write(tmp_path / "big" / "chat.jsonl", [json.dumps(header), *CHAT[1:]])
    assert is_chat_file(chat) and is_chat_source(chat.parent)
    records, _ = read_chats(chat)
    assert [m["content"] for m in records[0]["messages"]][-1].startswith("Crates marked")
    other = {"messages": [{"role": "user", "content": "x" * 5_000_000}], "user_name": "A"}
    assert not is_chat_file(_write(tmp_path / "other.jsonl", [json.dumps(other)]))


def test_rolegen_files_are_not_taken_for_chats(tmp_path):
    run = tmp_path / "run"
    data = _write(run / "dialogues.jsonl", [json.dumps(_record(0))])
    _write(run / "sillytavern" / "chats" / "Mara" / "x.jsonl", CHAT)
    assert not is_chat_file(data)
    assert not is_chat_source(run)  # a run folder, though it holds an export
    records, report = read_dialogues(data)
    assert records[0]["id"] == "run/captain-mara-vell-0000" and not report.skipped_chats


def test_export_then_import_gives_the_same_dialogues(tmp_path):
    records = [_record(0, rejected=REJECTED), _record(1)]
    bare = {k: v for k, v in _record(2).items() if k != "meta"}
    summary = write_chats([*records, bare], tmp_path / "st", now=0)
    assert summary == {
        "folder": str(tmp_path / "st"),
        "chats": 3,
        "characters": ["Captain Mara Vell"],
    }
    back, skipped = read_chats(tmp_path / "st" / "chats")
    assert skipped == []
    assert sorted(back, key=lambda r: r["id"]) == [*records, bare]
    # what rolegen keeps in the header is checked like any input
    chat = next((tmp_path / "st" / "chats").rglob("*.jsonl"))
    chat.write_text(chat.read_text().replace('"persona": "captain-mara-vell"', '"persona": {}', 1))
    _, skipped = read_chats(tmp_path / "st" / "chats")
    assert skipped == [(chat, 1, "field 'chat_metadata.rolegen.record.persona' must be text")]
    # a second export replaces the first whole
    write_chats(records[:1], tmp_path / "st")
    assert len(list((tmp_path / "st" / "chats").rglob("*.jsonl"))) == 1


def test_swipes_carry_the_rejected_candidates_with_the_accepted_reply_shown(tmp_path):
    write_chats([_record(0, rejected=REJECTED)], tmp_path / "st", now=0)
    (chat,) = (tmp_path / "st" / "chats" / "Captain Mara Vell").glob("*.jsonl")
    assert chat.name == "run_captain-mara-vell-0000.jsonl"
    header, *lines = [json.loads(x) for x in chat.read_text().splitlines()]
    assert set(header) == {"user_name", "character_name", "create_date", "chat_metadata"}
    assert (header["user_name"], header["character_name"]) == ("Alex", "Captain Mara Vell")
    assert lines[0]["is_system"] and lines[0]["mes"] == "You are Mara. Stay in character."
    assert [x["is_user"] for x in lines[1:]] == [False, True, False, True, False]
    last = lines[-1]
    assert last["swipes"] == [REJECTED[0]["content"], "", "Then we sell the crates and drink."]
    assert last["swipe_id"] == 2 and last["mes"] == last["swipes"][2]
    assert [i["extra"]["rolegen"]["reasons"] for i in last["swipe_info"][:2]] == [
        ["echo", "repeat"],
        ["empty"],
    ]
    assert all(set(i) == {"send_date", "extra"} for i in last["swipe_info"])
    assert "swipes" not in lines[3]  # a turn nothing was refused for has no swipes
    assert all(
        isinstance(x["send_date"], str) and x["send_date"][-2:] in ("am", "pm") for x in lines
    )


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of every chunk, each CRC checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        out.append((kind, body))
        pos += 12 + length
    return out


def test_a_shipped_persona_card_reimports_through_the_card_loader(tmp_path):
    from PIL import Image

    (persona,) = load_personas("captain-mara-vell")
    png = write_card_v2(persona, tmp_path / "characters")
    assert png == tmp_path / "characters" / "Captain Mara Vell.png"
    chunks = _chunks(png.read_bytes())
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"tEXt", b"IEND"]
    with Image.open(png) as image:
        image.load()
        assert image.size == (64, 96) and image.mode == "RGB"

    for path in (png, png.with_suffix(".json")):
        card = load_card(path)
        for field in (
            "name", "description", "personality", "scenario", "greeting", "example_dialogues",
            "system_prompt", "post_history_instructions", "tags", "lorebook",
        ):  # fmt: skip
            assert getattr(card, field) == getattr(persona, field), (path.suffix, field)
    # every field SillyTavern's TavernCardValidator.validateV2 requires
    data = json.loads(png.with_suffix(".json").read_text())
    assert (data["spec"], data["spec_version"]) == ("chara_card_v2", "2.0")
    assert {
        "name", "description", "personality", "scenario", "first_mes", "mes_example",
        "creator_notes", "system_prompt", "post_history_instructions", "alternate_greetings",
        "tags", "creator", "character_version", "extensions",
    } <= set(data["data"])  # fmt: skip
    assert {"extensions", "entries"} <= set(data["data"]["character_book"])
    assert data["data"]["extensions"]["rolegen"]["intro"] == persona.intro


def test_filter_reads_chats_and_writes_them_with_their_cards(tmp_path):
    folder = tmp_path / "chats"
    _write(folder / "Captain Mara Vell" / "a.jsonl", CHAT)
    _write(folder / "Captain Mara Vell" / "b.jsonl", [HEADER, *CHAT[1:4], "not json"])
    no_out = CliRunner().invoke(main, ["filter", str(folder)])
    assert no_out.exit_code == 2 and "SillyTavern chats need --out" in no_out.output

    out = tmp_path / "o"
    args = ["filter", str(folder), "--out", str(out), "--sillytavern", "--min-turns", "1"]
    result = CliRunner().invoke(main, [*args, "--persona", "captain-mara-vell"])
    assert result.exit_code == 0, result.output
    assert "b.jsonl:5: chat skipped: malformed JSON" in result.output
    assert "1 dialogues read" in result.output and "preference pairs: 2" in result.output
    st = out / "sillytavern"
    assert [p.name for p in (st / "chats" / "Captain Mara Vell").iterdir()] == [
        "Captain Mara Vell_a.jsonl"
    ]
    assert load_card(st / "characters" / "Captain Mara Vell.png").name == "Captain Mara Vell"
    # the chats written read back as the chats read
    first, _ = read_chats(folder, load_personas("captain-mara-vell"))
    again, _ = read_chats(st / "chats")
    assert [m for r in again for m in r["messages"]] == [m for r in first for m in r["messages"]]
    assert again[0]["persona_intro"] == "I'm Captain Mara Vell, master of the airship Kestrel."


def test_eval_data_scores_a_chat_folder_without_a_model(tmp_path):
    folder = tmp_path / "mara-chats"
    _write(folder / "a.jsonl", CHAT)
    _write(folder / "b.jsonl", [HEADER, GREETING, USER_1, REPLY_1])
    args = ["eval", "--data", str(folder), "--out", str(tmp_path / "e"), "--no-embeddings"]
    result = CliRunner().invoke(main, [*args, "--bootstrap", "20"])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "e" / "results.json").read_text())
    assert results["samples"] == {"mara-chats": 3}  # character replies, no greeting, no swipe
