"""YAML persona cards (rolegen.personas): the lorebook's fields are checked when the card
loads, and a `use_regex` key cannot hang the lorebook scan."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from rolegen.cards import load_personas
from rolegen.cli import main
from rolegen.errors import RolegenError
from rolegen.personas import Lorebook, LoreEntry

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
    ],
    ids=[
        "key-is-a-number",
        "scan-depth-not-a-number",
        "negative-token-budget",
        "keys-is-a-bare-string",
        "content-not-text",
        "flag-not-a-boolean",
        "regex-does-not-compile",
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


def test_the_nested_quantifier_of_the_issue_answers_at_once():
    entry = LoreEntry(keys=["(a+)+$"], content="x", use_regex=True)
    start = time.perf_counter()
    assert not entry.triggered_by("a" * 60 + "!")  # hung Python's re for good
    assert entry.triggered_by("aaaa")
    assert time.perf_counter() - start < 5
