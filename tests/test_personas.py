"""YAML persona cards (rolegen.cards.personas, rolegen.cards.lorebook): the lorebook's fields are checked when the card
loads, and a `use_regex` key cannot hang the lorebook scan."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from rolegen.cards.files import load_personas
from rolegen.cards.lorebook import Lorebook, LoreEntry
from rolegen.cli import main
from rolegen.errors import RolegenError

CARD = """\
name: Mara
description: Captain of the airship Kestrel.
greeting: Welcome aboard.
lorebook:
{book}
"""


def _card(tmp_path, book: str):
    path = tmp_path / "mara.yaml"
    path.write_text(CARD.format(book=book))
    return path


def _generate(*args):
    return CliRunner().invoke(main, ["generate", *args])


@pytest.mark.parametrize(
    ("book", "field"),
    [
        ("  entries:\n    - keys: [42]\n      content: x", "'lorebook.entries[0].keys'"),
        ("  scan_depth: abc\n  entries: []", "'lorebook.scan_depth'"),
        ("  token_budget: -1\n  entries: []", "'lorebook.token_budget'"),
        ("  entries:\n    - keys: Kestrel\n      content: x", "'lorebook.entries[0].keys'"),
        ("  entries:\n    - keys: [a]\n      content: 3", "'lorebook.entries[0].content'"),
        ("  entries:\n    - keys: [a]\n      content: x\n      constant: yes please", "constant'"),
        (
            "  entries:\n    - keys: ['(a']\n      content: x\n      use_regex: true",
            "'lorebook.entries[0].keys[0]': not a valid regular expression",
        ),
        (  # YAML keys that are numbers beside text ones: sorting them raised a TypeError
            "  entries:\n    - keys: [a]\n      content: x\n      1: y\n      zz: z",
            "'lorebook.entries[0]': unknown field '1'",
        ),
    ],
    ids=[
        "key-is-a-number",
        "scan-depth-not-a-number",
        "negative-token-budget",
        "keys-is-a-bare-string",
        "content-not-text",
        "flag-not-a-boolean",
        "regex-does-not-compile",
        "keys-of-mixed-types",
    ],
)
def test_bad_yaml_lorebook_is_a_one_line_error_naming_the_file_and_field(tmp_path, book, field):
    card = _card(tmp_path, book)
    result = _generate("--persona", str(card), "--out", str(tmp_path / "run"))
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert "Traceback" not in result.output
    assert "mara.yaml" in result.output and field in result.output
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_bare_string_of_keys_is_refused_not_read_as_one_letter_keys(tmp_path):
    card = _card(tmp_path, "  entries:\n    - keys: Kestrel\n      content: The ship.")
    with pytest.raises(RolegenError, match=r"a list of strings, e\.g\. \[Kestrel, airship\]"):
        load_personas(str(card))


def test_a_good_yaml_lorebook_loads_with_its_settings(tmp_path):
    book = (
        "  scan_depth: 2\n  token_budget: 64\n  entries:\n"
        "    - keys: [Kestrel]\n      content: The ship.\n      name: ship\n"
        "    - keys: ['gold\\b']\n      content: Cursed.\n      use_regex: true\n"
        "    - keys: []\n      content: Always.\n      constant: true\n"
    )
    (persona,) = load_personas(str(_card(tmp_path, book)))
    book = persona.lorebook
    assert (book.scan_depth, book.token_budget) == (2, 64)
    assert [e.name for e in book.entries] == ["ship", "", ""]
    assert [e.content for e in book.active(["the Kestrel and its gold"])] == [
        "The ship.",
        "Cursed.",
        "Always.",
    ]


def test_a_constant_yaml_lorebook_entry_needs_no_keys(tmp_path):
    # found by `make fuzz`: an entry with `constant: true` and no `keys` raised TypeError
    book = "  entries:\n    - content: ''\n      constant: true\n"
    (persona,) = load_personas(str(_card(tmp_path, book)))
    assert [(e.keys, e.constant) for e in persona.lorebook.entries] == [([], True)]


def test_a_regex_key_that_backtracks_without_end_stops_within_the_time_limit():
    book = Lorebook(
        entries=[
            LoreEntry(keys=["calm"], content="fine"),
            LoreEntry(keys=["(a|aa)+$"], content="x", use_regex=True, name="trap"),
        ]
    )
    start = time.perf_counter()
    with pytest.raises(RolegenError) as info:
        book.active(["a" * 60 + "!"], card="cards/trap.json")
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert message.startswith("cards/trap.json: lorebook entry 1 ('trap')")
    assert "(a|aa)+$" in message and "\n" not in message


def _slow_regex(monkeypatch, seconds: float) -> list[str]:
    """Every regex search takes `seconds` (key 'hit' matches at once), under a 0.1 s
    limit per search and a 0.2 s budget per card; returns the keys searched."""
    from rolegen.cards import lorebook

    monkeypatch.setattr(lorebook, "REGEX_SECONDS", 0.1)
    monkeypatch.setattr(lorebook, "REGEX_CARD_SECONDS", 0.2)
    searched = []

    def search(key, text, flags=0, timeout=None):
        searched.append(key)
        if key == "hit":
            return True
        time.sleep(min(seconds, timeout))
        if seconds > timeout:
            raise TimeoutError
        return None

    monkeypatch.setattr(lorebook.regex, "search", search)
    return searched


def test_a_card_s_regex_keys_share_one_budget_per_scan_and_the_skip_is_noted_once(
    monkeypatch, capsys
):
    searched = _slow_regex(monkeypatch, 0.05)  # each key just under its own limit
    slow = [LoreEntry(keys=[f"k{i}"], content=f"slow {i}", use_regex=True) for i in range(40)]
    book = Lorebook(
        entries=[
            LoreEntry(keys=["hit"], content="matched", use_regex=True),
            *slow,
            LoreEntry(keys=["gold"], content="plain"),
            LoreEntry(keys=["k"], content="always", use_regex=True, constant=True),
        ]
    )
    for _ in range(2):
        start = time.perf_counter()
        chosen = book.active(["the gold"], card="cards/slow.json")
        assert time.perf_counter() - start < 1.0  # 40 x 0.05 s = 2 s without the budget
        assert [e.content for e in chosen] == ["matched", "plain", "always"]
    assert len(searched) < 2 * 10  # about 5 of the 41 regex keys per scan
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "warning: cards/slow.json: the lorebook's regular expressions took more than 0.2 s"
    )
    assert "regex entries (from entry " in warnings[0]


def test_a_hanging_key_first_in_the_scan_is_still_named(monkeypatch):
    _slow_regex(monkeypatch, 5.0)
    book = Lorebook(entries=[LoreEntry(keys=["(a|aa)+$"], content="x", use_regex=True)])
    with pytest.raises(RolegenError, match=r"^cards/trap.json: lorebook entry 0: the regular"):
        book.active(["aaa"], card="cards/trap.json")


def test_the_nested_quantifier_of_the_issue_answers_at_once():
    entry = LoreEntry(keys=["(a+)+$"], content="x", use_regex=True)
    start = time.perf_counter()
    assert not entry.triggered_by("a" * 60 + "!")  # hung Python's re for good
    assert entry.triggered_by("aaaa")
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("value", [".inf", ".nan"])
def test_a_yaml_lorebook_count_that_is_not_finite_is_refused_by_field(tmp_path, value):
    # found by tests/test_fuzz_readers.py: int() of YAML's .inf raised OverflowError
    path = _card(tmp_path, f"  scan_depth: {value}\n  entries: []")
    with pytest.raises(RolegenError, match=r"field 'lorebook.scan_depth' must be a finite number"):
        load_personas(str(path))
