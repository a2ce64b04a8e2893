"""rolegen filter / export: bad input, cutting at the first rejected turn, preference
pairs, the persona split, and exports that datasets and a chat template load."""

import json

import pytest
from click.testing import CliRunner

from rolegen.checks.dataset import filter_dialogues, preference_pairs, split_by_persona
from rolegen.checks.turns import CheckConfig
from rolegen.cli import main
from rolegen.config import FilterConfig
from rolegen.errors import RolegenError
from rolegen.recipes.filter import run_filter
from rolegen.runs.records import read_dialogues

GOOD = [
    "The storm is close now, so tie down the crates and mind the ropes.",
    "Dobs says the boilers are singing again; that usually means trouble below deck.",
    "Port Halcyon smells of coal smoke and fried eel, you'll see soon enough.",
    "Keep your goggles on when we pass the chain towers, the sparks fly sideways.",
]


POOL = [
    f"{a} {b}, {c}."
    for a, b, c in zip(
        [
            "The tide turns",
            "Lanterns flicker",
            "Gulls circle",
            "The engine coughs",
            "Rain drums",
            "A bell rings",
            "Smoke rises",
            "The map tears",
            "Boots creak",
            "Coins clink",
            "Thunder rolls",
            "The cat hisses",
        ],
        [
            "near the pier",
            "over the tower",
            "below the deck",
            "past the chains",
            "on the roof",
            "in the market",
            "above the vents",
            "along the fold",
            "on the stairs",
            "in my pocket",
            "across the reach",
            "at the door",
        ],
        [
            "so we wait for dawn",
            "and the crew goes quiet",
            "which means trouble",
            "but Dobs only laughs",
            "like an old drum",
            "calling the night watch",
            "thick as porridge",
            "right through Halcyon",
            "with every step",
            "a fine sound for a captain",
            "far to the east",
            "then sleeps again",
        ],
    )
]


def _replies(i):
    """Four distinct two-sentence replies; no sentence repeats within a dialogue."""
    return [
        POOL[(i * 2 + k * 3) % len(POOL)] + " " + POOL[(i * 2 + k * 3 + 1) % len(POOL)]
        for k in range(4)
    ]


def _record(i, persona="mara", replies=GOOD, rejected=None):
    messages = [
        {"role": "system", "content": "You are Mara."},
        {"role": "assistant", "content": "Hold that rope!"},
    ]
    meta = [{"role": "system"}, {"role": "assistant", "source": "greeting"}]
    for t, reply in enumerate(replies, start=1):
        messages += [
            {"role": "user", "content": f"Question number {t} from me?"},
            {"role": "assistant", "content": reply},
        ]
        meta += [
            {"role": "user", "source": "script"},
            {"role": "assistant", "source": "model", "turn": t, "finish_reason": "stop"},
        ]
    if rejected:
        meta[-1]["rejected"] = rejected
    return {
        "id": f"{persona}-{i}",
        "persona": persona,
        "persona_name": "Captain Mara Vell",
        "persona_intro": "I'm Captain Mara Vell.",
        "user_persona": "Alex",
        "messages": messages,
        "meta": meta,
    }


def _write(path, records, extra_lines=()):
    with path.open("w") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
        for line in extra_lines:
            fh.write(line + "\n")
    return path


def test_bad_lines_are_reported_by_number_and_good_lines_kept(tmp_path):
    path = tmp_path / "d.jsonl"
    _write(
        path,
        [_record(0)],
        ['{"id": "x", "messa', json.dumps({"messages": [{"role": "narrator", "content": "hi"}]})],
    )
    with path.open("ab") as fh:
        fh.write(b'{"messages": "\xff\xfe"}\n')
    records, report = read_dialogues(path)
    assert [r["id"] for r in records] == ["mara-0"]
    assert [n for n, _ in report.bad] == [2, 3, 4]
    assert "malformed JSON" in report.bad[0][1]
    assert "role 'narrator'" in report.bad[1][1]
    assert "not UTF-8" in report.bad[2][1]


def test_a_dialogue_ended_before_its_first_reply_is_read_and_dropped_by_the_filter(tmp_path):
    # a card without a greeting whose first reply came back empty: the eval counts it
    system_only = {"messages": [{"role": "system", "content": "You are Mara."}]}
    path = _write(
        tmp_path / "d.jsonl",
        [
            _record(0),
            {"id": "ended", **system_only, "end_reason": "empty_assistant_reply"},
            {"id": "done", **system_only, "end_reason": "completed"},
            {"id": "odd", **system_only, "end_reason": ["empty"]},
        ],
    )
    records, report = read_dialogues(path)
    assert [r["id"] for r in records] == ["mara-0", "ended"]
    assert report.bad == [(3, "no assistant turn"), (4, "field 'end_reason' is list, not text")]
    result = filter_dialogues(records, CheckConfig())
    assert [r["id"] for r in result.accepted] == ["mara-0"]


def test_nan_and_infinity_are_bad_lines_and_null_ids_are_named_by_their_line(tmp_path):
    # Python's json reads NaN, Infinity and 1e999; they are not JSON, and a chat written
    # back with them is one SillyTavern cannot read
    nan = json.dumps(_record(1)).replace('"stop"', "NaN", 1)
    huge = json.dumps(_record(2)).replace('"stop"', "1e999", 1)
    path = _write(
        tmp_path / "d.jsonl", [_record(0), {**_record(3), "id": None}, {**_record(4), "id": None}]
    )
    with path.open("a") as fh:
        fh.write(nan + "\n" + huge + "\n")
    records, report = read_dialogues(path)
    # two records without an id are two dialogues, not one read twice
    assert [r["id"] for r in records] == ["mara-0", "line-2", "line-3"]
    assert report.duplicates == []
    assert [n for n, _ in report.bad] == [4, 5]
    assert "NaN is not a JSON number" in report.bad[0][1]
    assert "1e999 is too large for a number" in report.bad[1][1]


def test_bad_line_stops_the_run_when_asked(tmp_path):
    path = _write(tmp_path / "d.jsonl", [_record(0)], ["not json"])
    with pytest.raises(RolegenError, match=r"d.jsonl:2: malformed JSON"):
        read_dialogues(path, on_error="stop")


def test_empty_file_and_huge_turns(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(RolegenError, match="empty.jsonl: no usable dialogues"):
        read_dialogues(empty)
    huge = _record(0, replies=["x" * 30])
    with pytest.raises(RolegenError, match="over the 20 limit"):
        read_dialogues(_write(tmp_path / "h.jsonl", [huge]), max_chars=20)


def test_dialogue_is_cut_at_its_first_rejected_turn():
    replies = [GOOD[0], GOOD[1], GOOD[1] + " Aye.", GOOD[3]]  # turn 3 repeats turn 2
    result = filter_dialogues([_record(0, replies=replies)], CheckConfig())
    assert len(result.accepted) == 1
    kept = result.accepted[0]
    assert [m["content"] for m in kept["messages"] if m["role"] == "assistant"][1:] == GOOD[:2]
    assert kept["messages"][-1]["role"] == "assistant"
    assert len(kept["meta"]) == len(kept["messages"])
    assert result.rejected[0]["turn"] == 3 and "repeat" in result.rejected[0]["reasons"]
    assert result.rejected[0]["action"] == "truncated"
    assert result.rejections["repeat"] == 1


def test_dialogue_with_too_few_clean_turns_is_dropped_not_lost():
    replies = [GOOD[0], GOOD[0]]
    result = filter_dialogues([_record(0, replies=replies)], CheckConfig(), min_turns=2)
    assert result.accepted == []
    assert result.rejected[0]["action"] == "dropped" and result.rejected[0]["kept_turns"] == 1


def test_preference_pairs_from_in_loop_rejects():
    rejected = [
        {"content": "noir noir noir noir", "reasons": ["loop"], "sample_index": 0},
        {"content": "", "reasons": ["empty"], "sample_index": 1},
    ]
    record = _record(0, replies=GOOD[:2], rejected=rejected)
    pairs = preference_pairs(record)
    assert len(pairs) == 1  # the empty candidate is no useful negative
    pair = pairs[0]
    assert pair["chosen"] == [{"role": "assistant", "content": GOOD[1]}]
    assert pair["rejected"] == [{"role": "assistant", "content": "noir noir noir noir"}]
    assert pair["prompt"][-1] == {"role": "user", "content": "Question number 2 from me?"}
    assert pair["prompt"][0]["role"] == "system"
    assert GOOD[1] not in json.dumps(pair["prompt"])


def test_turn_kept_flagged_gives_no_pairs():
    rejected = [{"content": "noir noir noir noir", "reasons": ["loop"], "sample_index": 0}]
    record = _record(0, replies=GOOD[:2], rejected=rejected)
    last = max(i for i, m in enumerate(record["meta"]) if m.get("rejected"))
    record["meta"][last]["flags"] = ["loop"]  # kept after the resamples ran out
    assert preference_pairs(record) == []


def test_split_by_persona_never_leaks():
    records = [_record(i, persona=p) for p in ("a", "b", "c", "d", "e") for i in range(3)]
    splits = split_by_persona(records, test_share=0.2)
    train = {r["persona"] for r in splits["train"]}
    test = {r["persona"] for r in splits["test"]}
    assert not train & test and len(test) == 1 and len(train) == 4
    assert split_by_persona(records[:3], 0.5) == {"train": records[:3]}  # one persona: no test


def test_export_loads_in_datasets_and_tokenizes_with_the_chat_template(tmp_path, embedded_model):
    import datasets
    from transformers import AutoTokenizer

    rejected = [{"content": "noir noir noir noir", "reasons": ["loop"], "sample_index": 0}]
    records = [
        _record(i, persona=p, replies=_replies(k * 2 + i), rejected=rejected)
        for k, p in enumerate("abc")
        for i in range(2)
    ]
    path = _write(tmp_path / "dialogues.jsonl", records)
    summary = run_filter(
        path, FilterConfig(out=str(tmp_path / "out"), test_share=0.34), echo=lambda s: None
    )
    out = tmp_path / "out"
    assert summary["splits"] == {"train": 4, "test": 2}

    dd = datasets.load_from_disk(str(out / "dataset"))
    assert set(dd) == {"train", "test"} and dd["train"].num_rows == 4
    assert dd["train"][0]["messages"][0] == {"role": "system", "content": "You are Mara."}
    parquet = datasets.load_dataset("parquet", data_files=str(out / "data" / "train.parquet"))
    assert parquet["train"].num_rows == 4
    jsonl = datasets.load_dataset("json", data_files=str(out / "messages" / "train.jsonl"))
    assert jsonl["train"][0]["messages"] == dd["train"][0]["messages"]
    share = json.loads((out / "sharegpt" / "train.jsonl").read_text().splitlines()[0])
    assert [c["from"] for c in share["conversations"][:3]] == ["system", "gpt", "human"]

    tok = AutoTokenizer.from_pretrained(embedded_model)
    text = tok.apply_chat_template(dd["train"][0]["messages"], tokenize=False)
    assert text.startswith("<|im_start|>system\nYou are Mara.<|im_end|>")
    assert dd["train"][0]["messages"][-1]["content"] in text

    pref = datasets.load_from_disk(str(out / "preference"))
    row = pref["train"][0]
    assert set(row) >= {"prompt", "chosen", "rejected"}
    assert row["rejected"][0]["content"] == "noir noir noir noir"
    tok.apply_chat_template(row["prompt"] + row["chosen"], tokenize=True)

    card = (out / "README.md").read_text()
    assert (
        "Rejections by reason" in card
        and "| assistant_drift | " in card
        and "path: data/train.parquet" in card
    )
    assert (out / "rejected.jsonl").exists()


def test_filter_cli_reports_and_fails_cleanly(tmp_path):
    path = _write(
        tmp_path / "dialogues.jsonl",
        [_record(i, persona=p) for p in "ab" for i in range(2)],
        ["garbage"],
    )
    result = CliRunner().invoke(main, ["filter", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "4 dialogues read (1 bad lines skipped)" in result.output
    assert "dialogues.jsonl:5: skipped: malformed JSON" in result.output

    missing = CliRunner().invoke(main, ["filter", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "file not found" in missing.output
    stop = CliRunner().invoke(main, ["filter", str(path), "--on-error", "stop"])
    assert stop.exit_code == 2 and "dialogues.jsonl:5" in stop.output


def test_near_duplicate_dialogues_are_dropped_with_a_reason():
    records = [
        _record(0, persona="a"),
        _record(1, persona="a"),
        _record(2, persona="a", replies=[GOOD[3], GOOD[2], GOOD[1], GOOD[0]]),
    ]
    records[2]["messages"][3]["content"] = "A different first reply about the weather today."
    result = filter_dialogues(records, CheckConfig())
    assert [r["id"] for r in result.accepted] == ["a-0", "a-2"]
    dup = next(r for r in result.rejected if r["reasons"] == ["near_duplicate"])
    assert dup["id"] == "a-1" and dup["duplicate_of"] == "a-0"


def test_shared_openings_leave_out_the_greeting_every_dialogue_shares(tmp_path):
    # every dialogue opens with the card's greeting "Hold that rope!"; the first replies differ
    path = _write(tmp_path / "d.jsonl", [_record(i, replies=_replies(i)) for i in range(4)])
    summary = run_filter(path, FilterConfig(out=str(tmp_path / "out")), echo=lambda s: None)
    assert summary["share_with_shared_opening"] == 0.0
    # two dialogues whose first replies open alike are counted, greeting or not
    same = [_record(i, replies=[GOOD[0], *_replies(i)[1:]]) for i in range(2)]
    path = _write(tmp_path / "e.jsonl", same + [_record(9, replies=_replies(9))])
    summary = run_filter(path, FilterConfig(out=str(tmp_path / "out2")), echo=lambda s: None)
    assert summary["share_with_shared_opening"] == pytest.approx(2 / 3)


# ------------------------------------------------------------------ hostile input


def _filter(*args):
    return CliRunner().invoke(main, ["filter", *map(str, args)])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(persona={}), "field 'persona' is dict, not text"),
        (lambda r: r["meta"].__setitem__(3, "x"), "meta[3]: not an object"),
        (lambda r: r.update(meta={"a": 1}), "field 'meta' is not a list"),
        (  # a meta shifted by one: a user turn's candidates against a character's context
            lambda r: r.update(meta=r["meta"][1:]),
            "meta[0].role is 'assistant' but messages[0] is system's",
        ),
        (
            lambda r: r["meta"][3].update(rejected=[7]),
            "meta[3].rejected[0]: not an object with text 'content'",
        ),
        (
            lambda r: r["meta"][3].update(rejected=[{"content": "Safe.", "reasons": [1, 2]}]),
            "meta[3].rejected[0].reasons: not a list of text",
        ),
        (lambda r: r["messages"].append(r["messages"][-1]), "messages[10]: assistant after"),
        (lambda r: r["messages"].append(r["messages"][0]), "messages[10]: a system message"),
    ],
)
def test_records_of_the_wrong_shape_are_bad_lines_named_by_field(tmp_path, change, message):
    bad = _record(1)
    change(bad)
    path = _write(tmp_path / "dialogues.jsonl", [_record(0, persona="b"), bad])
    out = tmp_path / "out"
    result = _filter(path, "--out", out)
    assert result.exit_code == 0, result.output
    assert f"dialogues.jsonl:2: skipped: {message}" in result.output
    assert "Traceback" not in result.output
    report = json.loads((out / "filter_report.json").read_text())  # the export is whole
    assert [b["line"] for b in report["bad_lines"]] == [2] and report["splits"] == {"train": 1}


def test_deeply_nested_line_is_skipped_and_a_file_of_only_bad_lines_writes_nothing(tmp_path):
    path = tmp_path / "dialogues.jsonl"
    path.write_text("[" * 100_000 + "\n" + json.dumps({"persona": {}, "messages": []}) + "\n")
    out = tmp_path / "out"
    result = _filter(path, "--out", out)
    assert result.exit_code == 2
    assert "dialogues.jsonl: no usable dialogues; first problem: line 1: malformed JSON " in (
        result.output
    )
    assert "nested too deeply" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_repeated_ids_are_read_once_and_counted(tmp_path):
    first = _record(0, rejected=[{"content": "Rope! Rope! Rope!", "reasons": ["loop"]}])
    copy = {**first, "messages": first["messages"][:4], "meta": first["meta"][:4]}
    path = _write(tmp_path / "dialogues.jsonl", [first, _record(1), copy])
    records, report = read_dialogues(path)
    assert [r["id"] for r in records] == ["mara-0", "mara-1"]
    assert records[0] == first  # the first copy is the one kept
    assert report.duplicates == [(3, "mara-0", 1)]

    out = tmp_path / "out"
    result = _filter(path, "--out", out)
    assert result.exit_code == 0, result.output
    assert "dialogues.jsonl:3: skipped: id 'mara-0' already read on line 1" in result.output
    assert "(0 bad lines skipped, 1 repeated ids skipped)" in result.output
    pairs = (out / "preference" / "train.jsonl").read_text().splitlines()
    assert len(pairs) == 1  # not once per copy
    report = json.loads((out / "filter_report.json").read_text())
    assert report["duplicate_ids"] == [{"line": 3, "id": "mara-0", "first_line": 1}]
    assert "1 repeated ids (the first copy kept)" in (out / "README.md").read_text()


def test_filter_takes_a_run_folder_and_writes_beside_its_dialogues(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    _write(run / "dialogues.jsonl", [_record(i, persona=p) for p in "ab" for i in range(2)])
    (run / "manifest.json").write_text("{not json")  # unreadable: the records say enough
    result = _filter(run)
    assert result.exit_code == 0, result.output
    assert (run / "filter_report.json").is_file() and (run / "dataset").is_dir()

    empty = tmp_path / "empty"
    empty.mkdir()
    result = _filter(empty)
    assert result.exit_code == 2
    assert f"{empty}: a folder without dialogues.jsonl" in result.output


def test_filter_out_that_is_a_file_fails_before_any_work(tmp_path):
    path = _write(tmp_path / "dialogues.jsonl", [_record(0)])
    taken = tmp_path / "taken"
    taken.write_text("mine")
    for out in (taken, taken / "sub"):
        result = _filter(path, "--out", out)
        assert result.exit_code == 2 and f"error: {out}: " in result.output
        assert "Traceback" not in result.output
    assert taken.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dialogues.jsonl", "taken"]


def test_an_export_into_an_earlier_ones_folder_leaves_none_of_its_splits_or_pairs(tmp_path):
    from collections import Counter

    from support import dialogue_record, preference_pair

    from rolegen.checks.dataset import FilterResult, export

    out = tmp_path / "data"
    first = [dialogue_record(i, slug) for slug in ("mara", "orla", "pip") for i in range(3)]
    pairs = [preference_pair(0, "mara")]
    export(FilterResult(first, [], pairs, Counter(), 9), out, 0.34, 0, {})
    assert (out / "preference").is_dir() and (out / "messages" / "test.jsonl").is_file()
    again = [dialogue_record(i, "mara") for i in range(2)]  # one persona: no test split
    summary = export(FilterResult(again, [], [], Counter(), 2), out, 0.0, 0, {})
    assert summary["preference_pairs"] == {} and summary["splits"] == {"train": 2}
    assert not (out / "preference").exists()
    assert sorted(p.name for p in (out / "messages").iterdir()) == ["train.jsonl"]
    assert sorted(p.name for p in (out / "data").iterdir()) == ["train.parquet"]
