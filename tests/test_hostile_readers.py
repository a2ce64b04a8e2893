"""Hostile files through the CLI: nesting thousands deep, YAML alias bombs, SillyTavern
chats with fields of the wrong type, a chats folder that is a file. Each is one line
(exit 2) or a chat skipped by file and line; nothing is written for a refused run."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from rolegen.cli import main

DEEP = "[" * 5000 + "]" * 5000
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line_error(result, match: str) -> str:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and match in errors[0], result.output
    assert "Traceback" not in result.output and len(errors[0]) < 600
    return errors[0]


@pytest.mark.parametrize(
    "name,text",
    [
        (
            "card.json",
            '{"spec": "chara_card_v2", "data": {"name": "X", "extensions": ' + DEEP + "}}",
        ),
        ("card.yaml", f"name: X\ndescription: {DEEP}\n"),
    ],
)
def test_a_card_nested_thousands_deep_is_refused(tmp_path, name, text):
    card = tmp_path / name
    card.write_text(text)
    out = tmp_path / "run"
    result = _run("generate", "--persona", card, "--out", out)
    _one_line_error(result, f"{card}")
    assert "nested" in result.output and not out.exists()


def test_a_json_user_script_nested_thousands_deep_is_refused(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(DEEP)
    result = _run("generate", "--persona", "captain-mara-vell", "--user-script", script)
    _one_line_error(result, f"{script}: nested more than 100 levels deep")


def test_a_config_nested_thousands_deep_is_refused(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"persona: {DEEP}\n")
    _one_line_error(_run("generate", "--config", config), f"{config}: nested more than")


def test_a_yaml_alias_bomb_in_a_config_is_refused_and_not_quoted(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(BOMB + "turns: *i\n")
    error = _one_line_error(_run("generate", "--config", config), "alias bomb")
    assert len(error) < 300


def test_a_config_value_of_the_wrong_type_is_quoted_in_a_bounded_excerpt(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("turns: &t [" + ", ".join(["wordy value"] * 2000) + "]\n")
    error = _one_line_error(_run("generate", "--config", config), "field 'turns'")
    assert len(error) < 300


def test_a_yaml_card_alias_bomb_is_refused(tmp_path):
    card = tmp_path / "card.yaml"
    card.write_text(BOMB + "name: X\ndescription: *i\n")
    _one_line_error(_run("generate", "--persona", card), "alias bomb")


HEADER = {"user_name": "U", "character_name": "Mara", "create_date": "2024-01-01"}


def _chat(path, *messages):
    lines = [HEADER, *messages]
    path.write_text("".join(json.dumps(m) + "\n" for m in lines))
    return path


def _msg(text, user=False, **extra):
    return {"name": "U" if user else "Mara", "is_user": user, "mes": text, **extra}


GOOD = [_msg("Welcome aboard."), _msg("Hello!", True), _msg("Aye, the sea is calm today.")]


def _rolegen_meta(meta):
    return {"extra": {"rolegen": {"role": "assistant", "meta": meta}}}


@pytest.mark.parametrize(
    "bad,why",
    [
        (_msg("Aye.", **_rolegen_meta({"rejected": "a string"})), "meta[2].rejected: not a list"),
        (
            _msg("Aye.", **_rolegen_meta({"rejected": [{"content": 5, "reasons": []}]})),
            "meta[2].rejected[0]: not an object with text 'content'",
        ),
        (
            _msg(
                "Aye.",
                swipes=["Aye.", "No."],
                swipe_id=0,
                swipe_info=[{}, {"extra": {"rolegen": {"reasons": [], "content": 5}}}],
            ),
            "meta[2].rejected[0]: not an object with text 'content'",
        ),
        (  # reasons that are not text crashed the dataset's parquet export
            _msg(
                "Aye.",
                swipes=["Aye.", "No."],
                swipe_id=0,
                swipe_info=[{}, {"extra": {"rolegen": {"reasons": [{"a": 1}, [2]]}}}],
            ),
            "meta[2].rejected[0].reasons: not a list of text",
        ),
    ],
)
@pytest.mark.parametrize("command", ["filter", "eval"])
def test_a_chat_with_fields_of_the_wrong_type_is_skipped_by_file_and_line(
    tmp_path, bad, why, command
):
    chats = tmp_path / "chats"
    chats.mkdir()
    _chat(chats / "good.jsonl", *GOOD)
    _chat(chats / "bad.jsonl", *GOOD[:2], bad)
    out = tmp_path / "out"
    if command == "filter":
        result = _run("filter", chats, "--out", out, "--min-turns", "1")
    else:
        args = ("--no-fluency", "--no-embeddings", "--bootstrap", "10", "--out", out)
        result = _run("eval", "--data", chats, *args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert f"{chats / 'bad.jsonl'}:4: chat skipped: {why}" in result.output


def test_a_chat_whose_own_record_meta_is_text_is_skipped(tmp_path):
    record = {"id": "d1", "meta": "not a list"}
    header = {**HEADER, "chat_metadata": {"rolegen": {"record": record, "with_meta": False}}}
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in [header, *GOOD]))
    result = _run("filter", path, "--out", tmp_path / "out")
    _one_line_error(result, f"{path}:1: field 'meta' is not a list")


def test_a_system_flagged_greeting_is_refused_as_in_dialogues_jsonl(tmp_path):
    system = {"is_system": True, "extra": {"rolegen": {"role": "system", "meta": {}}}}
    path = _chat(
        tmp_path / "chat.jsonl",
        _msg("You are Mara.", **system),
        _msg("Welcome.", **system),
        *GOOD[1:],
    )
    result = _run("filter", path, "--out", tmp_path / "out")
    _one_line_error(result, f"{path}:3: messages[1]: a system message after the first message")
    record = {
        "id": "d",
        "messages": [
            {"role": "system", "content": "a"},
            {"role": "system", "content": "b"},
            {"role": "assistant", "content": "c"},
        ],
    }
    data = tmp_path / "dialogues.jsonl"
    data.write_text(json.dumps(record) + "\n")
    _one_line_error(_run("filter", data), "messages[1]: a system message after the first message")


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_sillytavern_into_a_file_is_refused_before_any_work(tmp_path, kind):
    data = tmp_path / "dialogues.jsonl"
    messages = [{"role": "assistant", "content": "Welcome."}, {"role": "user", "content": "Hi"}]
    messages.append({"role": "assistant", "content": "Aye, calm seas today."})
    data.write_text(json.dumps({"id": "d", "persona": "mara", "messages": messages}) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    if kind == "file":
        (out / "sillytavern").write_text("keep me")
    else:
        (out / "sillytavern").symlink_to(target)
    result = _run("filter", data, "--out", out, "--sillytavern", "--min-turns", "1")
    _one_line_error(result, "is a file, not a folder; --sillytavern writes its chats there")
    assert sorted(p.name for p in out.iterdir()) == ["sillytavern"]
    assert (out / "sillytavern").read_text() == "keep me"


def test_generate_with_sillytavern_into_a_file_is_refused_before_the_model_loads(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "sillytavern").write_text("keep me")
    result = _run("generate", "--persona", "captain-mara-vell", "--out", out, "--sillytavern")
    _one_line_error(result, "is a file, not a folder")
    assert not (out / "dialogues.jsonl").exists()


@pytest.mark.parametrize("command", ["filter", "eval"])
def test_a_record_naming_a_card_file_the_system_refuses_is_read_without_its_card(tmp_path, command):
    messages = [{"role": "system", "content": "s"}, {"role": "assistant", "content": "Hi."}]
    messages += [{"role": "user", "content": "Who are you?"}]
    messages += [{"role": "assistant", "content": "I'm Mara, of the Kestrel."}]
    base = {"persona_name": "Mara", "messages": messages}
    records = [
        {**base, "id": "long", "persona_source": "/" + "a" * 5000 + ".yaml"},
        {**base, "id": "null", "persona_source": "card\x00.yaml"},
        {**base, "id": "number", "persona_source": 7},
    ]
    data = tmp_path / "run" / "dialogues.jsonl"
    data.parent.mkdir()
    data.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    out = tmp_path / "out"
    if command == "filter":
        result = _run("filter", data, "--out", out, "--min-turns", "1")
    else:
        args = ("--no-fluency", "--bootstrap", "10", "--out", out)
        result = _run("eval", "--data", data, *args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert f"{data}:3: skipped: field 'persona_source' is int, not text" in result.output


def test_a_byte_order_mark_leaves_a_chat_a_chat_and_a_first_dialogue_read(tmp_path):
    from rolegen.runs.records import read_dialogues

    chat = _chat(tmp_path / "chat.jsonl", *GOOD)
    chat.write_bytes(b"\xef\xbb\xbf" + chat.read_bytes())  # as Windows editors save
    rows, report = read_dialogues(chat)
    assert len(rows) == 1 and report.bad == [] and report.skipped_chats == []
    said = [m["content"] for m in rows[0]["messages"] if m["role"] != "system"]
    assert said == [m["mes"] for m in GOOD]

    plain = tmp_path / "dialogues.jsonl"
    plain.write_bytes(b"\xef\xbb\xbf" + json.dumps(rows[0]).encode() + b"\n")
    again, report = read_dialogues(plain)
    assert report.bad == [] and [r["id"] for r in again] == [rows[0]["id"]]
