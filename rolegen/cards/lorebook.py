"""A card's lorebook (`character_book` in Character Cards, `lorebook:` in rolegen YAML
cards): entries whose content goes into the prompt while their keys occur in recent turns,
within a token budget.

A `use_regex` key is compiled when the card loads and searched with a time limit
(`REGEX_SECONDS`): a key that backtracks without end stops the run with an error naming
the card and the entry. All of a card's regex keys share a budget per scan
(`REGEX_CARD_SECONDS`): past it, the rest of them are skipped for that scan, with a
warning once per card.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import regex

from rolegen.errors import RolegenError

# The most one search of a `use_regex` key may take. A sane key scans a few KB of
# dialogue in microseconds; a key such as `(a|aa)+$` backtracks exponentially and would
# hang the run (Python's `re` cannot be interrupted; the `regex` package stops it).
REGEX_SECONDS = 1.0
# The most all of one card's `use_regex` keys may take together in one scan. Each key
# alone stays under REGEX_SECONDS, but 40 keys just under it made a run 8x slower; past
# this budget the scan skips the card's remaining regex keys (warned of once per card).
# Twice REGEX_SECONDS: the first searches still have their whole limit, so a key that
# hangs is named as such.
REGEX_CARD_SECONDS = 2.0


class _RegexTimeout(Exception):
    def __init__(self, key: str):
        self.key = key


class _BudgetSpent(Exception):
    """The card's REGEX_CARD_SECONDS ran out before this search could finish."""


@dataclass
class LoreEntry:
    """One lorebook entry: `content` is inserted while any of `keys` occurs in recent turns."""

    keys: list[str]
    content: str
    secondary_keys: list[str] = field(default_factory=list)
    selective: bool = False  # also needs one of secondary_keys
    constant: bool = False  # always inserted
    enabled: bool = True
    case_sensitive: bool = False
    use_regex: bool = False
    insertion_order: int = 100
    name: str = ""

    def _matches(self, key: str, text: str, deadline: float) -> bool:
        if self.use_regex:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _BudgetSpent
            timeout = min(REGEX_SECONDS, left)
            flags = 0 if self.case_sensitive else regex.IGNORECASE
            try:
                return regex.search(key, text, flags, timeout=timeout) is not None
            except regex.error:  # the loaders refuse such keys; a hand-built entry skips it
                return False
            except TimeoutError:
                if timeout < REGEX_SECONDS:  # cut short by the card's budget, not its own limit
                    raise _BudgetSpent from None
                raise _RegexTimeout(key) from None
        if self.case_sensitive:
            return key in text
        return key.lower() in text.lower()

    def invalid_regex_key(self) -> tuple[str, str] | None:
        """The first key of a `use_regex` entry that does not compile, as (field, why),
        e.g. ("keys[1]", "not a valid regular expression (missing ) at position 1)")."""
        if not self.use_regex:
            return None
        flags = 0 if self.case_sensitive else regex.IGNORECASE
        for field_name in ("keys", "secondary_keys"):
            for j, key in enumerate(getattr(self, field_name)):
                try:
                    regex.compile(key, flags)
                except regex.error as e:
                    return f"{field_name}[{j}]", f"not a valid regular expression ({e})"
        return None

    def triggered_by(self, text: str, deadline: float = math.inf) -> bool:
        """Whether the entry goes in; its regex keys search until `deadline`
        (`time.monotonic()`), each for REGEX_SECONDS at most."""
        if not self.enabled:
            return False
        if self.constant:
            return True
        if not any(self._matches(k, text, deadline) for k in self.keys if k):
            return False
        if self.selective and self.secondary_keys:
            return any(self._matches(k, text, deadline) for k in self.secondary_keys if k)
        return True


@dataclass
class Lorebook:
    entries: list[LoreEntry] = field(default_factory=list)
    scan_depth: int = 4  # how many of the latest messages are scanned for keys
    token_budget: int = 512  # rough budget (4 characters a token) for inserted entries
    # whether a scan has run out of REGEX_CARD_SECONDS (warned of once per card)
    _budget_warned: bool = field(default=False, init=False, repr=False, compare=False)

    def active(self, recent_messages: list[str], card: str = "card") -> list[LoreEntry]:
        """Entries whose keys occur in the last `scan_depth` messages, within the budget.
        A regex key that runs past `REGEX_SECONDS` raises, naming `card` and the entry;
        once the card's regex keys have taken `REGEX_CARD_SECONDS` in this scan, its
        remaining regex entries are skipped (not inserted) for this scan."""
        text = "\n".join(recent_messages[-self.scan_depth :] if self.scan_depth else [])
        deadline = time.monotonic() + REGEX_CARD_SECONDS
        hits, skipped = [], []
        for i, entry in enumerate(self.entries):
            if skipped and entry.use_regex and entry.enabled and not entry.constant:
                skipped.append(i)
                continue
            try:
                if entry.triggered_by(text, deadline):
                    hits.append(entry)
            except _BudgetSpent:
                skipped.append(i)
            except _RegexTimeout as t:
                name = f" ('{entry.name}')" if entry.name else ""
                raise RolegenError(
                    f"{card}: lorebook entry {i}{name}: the regular expression {t.key!r} took "
                    f"more than {REGEX_SECONDS} s on {len(text)} characters of dialogue (it "
                    "backtracks without end, e.g. a repeated group that can match the same "
                    "text two ways); simplify the key or turn off use_regex"
                ) from None
        if skipped and not self._budget_warned:
            self._budget_warned = True
            print(
                f"warning: {card}: the lorebook's regular expressions took more than "
                f"{REGEX_CARD_SECONDS:g} s in one scan of {len(text)} characters; "
                f"{len(skipped)} regex entries (from entry {skipped[0]}) were skipped in that "
                "scan, and are whenever the budget runs out (noted once); simplify the keys",
                file=sys.stderr,
            )
        hits.sort(key=lambda e: e.insertion_order)
        chosen, used = [], 0
        for entry in hits:
            cost = len(entry.content) // 4 + 1
            if used + cost > self.token_budget:
                continue
            chosen.append(entry)
            used += cost
        return chosen


def _yaml_type(value) -> str:
    return {"str": "text", "NoneType": "nothing", "dict": "a mapping"}.get(
        type(value).__name__, type(value).__name__
    )


def lorebook_from_yaml(raw, path: Path) -> Lorebook | None:
    """The card's `lorebook:` mapping: `entries` (each with `keys`, a list of strings,
    and `content`, text), `scan_depth` and `token_budget`. `keys: Kestrel` is an error,
    not one key: a bare string would be read letter by letter (seven one-letter keys that
    fire on almost any text), and a comma-separated string is ambiguous; JSON cards refuse
    it too. Errors name the field's path, e.g. 'lorebook.entries[0].keys'."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("entries") or [], list):
        raise RolegenError(f"{path}: field 'lorebook' must be a mapping with a list of 'entries'")

    def wrong(where: str, expected: str, value) -> RolegenError:
        return RolegenError(
            f"{path}: field 'lorebook.{where}' must be {expected}, got {_yaml_type(value)}"
        )

    def count(value, where: str, default: int) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise wrong(where, "a number, 0 or more", value)
        if not math.isfinite(value):  # YAML's .inf and .nan: int() of them raises
            raise RolegenError(f"{path}: field 'lorebook.{where}' must be a finite number")
        return int(value)

    allowed = {f.name for f in fields(LoreEntry)}
    entries = []
    for i, e in enumerate(raw.get("entries") or []):
        where = f"entries[{i}]"
        if not isinstance(e, dict):
            raise wrong(where, "a mapping with 'keys' and 'content'", e)
        bad = sorted(set(e) - allowed, key=str)  # a YAML key may be a number
        if bad:
            raise RolegenError(f"{path}: field 'lorebook.{where}': unknown field '{bad[0]}'")
        for key in ("keys", "secondary_keys"):
            value = e.get(key, [])
            if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
                raise wrong(f"{where}.{key}", "a list of strings, e.g. [Kestrel, airship]", value)
        if not any(k.strip() for k in e.get("keys", [])) and not e.get("constant"):
            raise RolegenError(f"{path}: field 'lorebook.{where}.keys' needs at least one key")
        for key in ("content", "name"):
            value = e.get(key, "" if key == "name" else None)
            if not isinstance(value, str) and not (key == "name" and value is None):
                raise wrong(f"{where}.{key}", "text", value)
        for key in ("selective", "constant", "enabled", "case_sensitive", "use_regex"):
            if key in e and not isinstance(e[key], bool):
                raise wrong(f"{where}.{key}", "true or false", e[key])
        values = {"keys": [], **e, "name": e.get("name") or ""}  # a constant entry has none
        values["insertion_order"] = count(e.get("insertion_order"), f"{where}.insertion_order", 100)
        entry = LoreEntry(**values)
        bad_key = entry.invalid_regex_key()
        if bad_key:
            raise RolegenError(f"{path}: field 'lorebook.{where}.{bad_key[0]}': {bad_key[1]}")
        entries.append(entry)
    return Lorebook(
        entries=entries,
        scan_depth=count(raw.get("scan_depth"), "scan_depth", 4),
        token_budget=count(raw.get("token_budget"), "token_budget", 512),
    )
