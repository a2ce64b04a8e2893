"""Reading a user's JSON and YAML with limits: how deep values nest, how far YAML aliases
expand, and how much of a value an error message quotes.

Every reader of a user's file (cards, user scripts, chats, run configs) and of a
server's answers parses through here, so the limits hold in one place:
- nesting: at most `MAX_DEPTH` levels. Python's parsers recurse, and so does much code
  that walks what they return; thousands of `[` made a `RecursionError` far from the file.
- YAML aliases: a value may repeat an anchor, but the whole document, aliases expanded,
  holds at most `MAX_VALUES` values. Nine anchors of nine aliases each (an "alias bomb",
  a few hundred bytes) expand to 387 million, which json.dumps or an error message's
  `repr` then tries to build.
- excerpts: an error quotes a value through `excerpt`, a bounded repr.
"""

from __future__ import annotations

import json
import math
import reprlib

import yaml

from rolegen.errors import RolegenError

MAX_DEPTH = 100  # a card's deepest real field (an extension inside a lorebook entry) is < 10
MAX_VALUES = 1_000_000  # values of a YAML document with its aliases expanded

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 80
_repr.maxlevel, _repr.maxlist, _repr.maxdict, _repr.maxtuple = 2, 4, 4, 4


def excerpt(value) -> str:
    """A short repr of `value` for an error message, however large or nested it is."""
    return _repr.repr(value)


def check_depth(value, where: str, limit: int = MAX_DEPTH, max_values: int | None = None):
    """`value` itself, once it is known to nest at most `limit` levels (and, with
    `max_values`, to hold at most that many values when shared parts count each time).
    The walk is iterative: it cannot itself run out of stack."""
    stack = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if max_values is not None and seen > max_values:
            raise RolegenError(
                f"{where}: expands to more than {max_values:,} values (YAML aliases that "
                "repeat each other, an alias bomb?); refused"
            )
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if children and depth >= limit:
            raise RolegenError(f"{where}: nested more than {limit} levels deep; refused")
        stack.extend((c, depth + 1) for c in children)
    return value


def too_deep(where: str) -> RolegenError:
    return RolegenError(f"{where}: nested more than {MAX_DEPTH} levels deep; refused")


def load_json(text: str | bytes, where: str):
    """JSON of bounded depth, without Python's NaN and Infinity (not JSON: other tools
    refuse them, and they would be written back). `json.JSONDecodeError` (a ValueError)
    passes through, for the caller's own message with the line and column."""

    def refuse(word: str, why: str):
        doc = text if isinstance(text, str) else text.decode("utf-8", "replace")
        at = doc.find(word)  # the first, where a string before it does not hold the word
        raise json.JSONDecodeError(f"{word} {why}", doc, max(at, 0))

    def finite(number: str) -> float:
        value = float(number)
        if math.isinf(value):  # 1e999
            refuse(number, "is too large for a number")
        return value

    try:
        value = json.loads(
            text,
            parse_constant=lambda name: refuse(name, "is not a JSON number"),
            parse_float=finite,
        )
    except RecursionError:
        raise too_deep(where) from None
    return check_depth(value, where)


def yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML error in one line: where it is and what is wrong ("line 3: found character
    '\\t' that cannot start any token"), not PyYAML's several lines with the text."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"line {mark.line + 1}: {problem}" if mark else problem


def load_yaml(text: str, where: str):
    """YAML (safe_load) of bounded depth and bounded alias expansion. `yaml.YAMLError`
    passes through, for the caller's own message."""
    try:
        value = yaml.safe_load(text)
    except RecursionError:
        raise too_deep(where) from None
    return check_depth(value, where, max_values=MAX_VALUES)
