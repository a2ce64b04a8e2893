"""Persona cards: who the character is, who the user is, and what the user says.

A character persona comes from a rolegen YAML card (`personas/*.yaml`, read here), or
from a Character Card V2/V3 in JSON or PNG (`files.py`, which also resolves a
`--persona` value to the right loader). User personas are YAML files
in `personas/users/`; a user script is a text file with one user turn per line.
Card text is data: macros such as `{{char}}` are replaced by plain string
substitution, never rendered as template code. A lorebook's `use_regex` keys are
compiled when the card loads and searched with a time limit (`REGEX_SECONDS`): a key
that backtracks without end stops the run with an error naming the card and the entry.
All of a card's regex keys share a budget per scan (`REGEX_CARD_SECONDS`): past it, the
rest of them are skipped for that scan, with a warning once per card.

Non-goals: editing cards, writing cards back out.
"""

from __future__ import annotations

import math
import re
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import regex
import yaml

from rolegen.bounded import load_json, load_yaml
from rolegen.errors import RolegenError
from rolegen.resources import personas_dir

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


DEPTH_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class DepthPrompt:
    """Text placed inside the chat history, `depth` messages before its end, as a message
    of `role` (SillyTavern's Character's Note, a card's `extensions.depth_prompt`, and its
    Author's Note): 0 puts it after the last message; a history shorter than `depth` gets
    it first. It moves with the chat, so it stays near the reply however long the chat."""

    text: str
    depth: int = 4
    role: str = "system"


def depth_prompt_from(raw, where: str, path) -> DepthPrompt | None:
    """A depth prompt from a card: a mapping of `prompt`, `depth` (default 4) and `role`
    (system, user or assistant; default system), or plain text. None when its text is
    empty. Errors name the field, e.g. 'data.extensions.depth_prompt.depth'."""
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"prompt": raw}
    if not isinstance(raw, dict):
        raise RolegenError(f"{path}: field '{where}' must be a mapping of prompt, depth and role")
    text = raw.get("prompt")
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if not isinstance(text, str):
        raise RolegenError(f"{path}: field '{where}.prompt' must be text")
    depth = raw.get("depth", 4)
    if isinstance(depth, float) and depth.is_integer():
        depth = int(depth)
    if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= 1000:
        raise RolegenError(f"{path}: field '{where}.depth' must be a whole number from 0 to 1000")
    role = raw.get("role", "system")
    if role not in DEPTH_ROLES:
        raise RolegenError(
            f"{path}: field '{where}.role' must be one of {', '.join(DEPTH_ROLES)}, got {role!r}"
        )
    return DepthPrompt(text.strip(), depth, role)


@dataclass
class Persona:
    """A character card in rolegen's own terms."""

    name: str
    description: str = ""
    personality: str = ""
    scenario: str = ""
    greeting: str = ""
    example_dialogues: list[str] = field(default_factory=list)
    intro: str = ""  # how the character introduces itself; the echo check looks for it
    style: str = ""  # style notes for the replies
    language: str = "en"
    system_prompt: str = ""  # a card's own system prompt, replaces the template's opening
    post_history_instructions: str = ""
    depth_prompt: DepthPrompt | None = None  # the card's Character's Note
    tags: list[str] = field(default_factory=list)
    lorebook: Lorebook | None = None
    source: str = ""

    @property
    def slug(self) -> str:
        return slugify(self.name)


@dataclass
class UserPersona:
    """Who the user simulator plays."""

    name: str = "User"
    description: str = ""
    goals: str = ""
    style: str = ""
    source: str = ""


def slugify(text: str) -> str:
    slug = re.sub(r"[^\w]+", "-", text.lower(), flags=re.UNICODE).strip("-")
    return slug or "persona"


_MACROS = [
    (re.compile(r"\{\{\s*char\s*\}\}", re.IGNORECASE), "char"),
    (re.compile(r"\{\{\s*user\s*\}\}", re.IGNORECASE), "user"),
    (re.compile(r"<BOT>"), "char"),
    (re.compile(r"<USER>"), "user"),
]


def substitute_macros(text: str, char: str, user: str) -> str:
    """Replace `{{char}}`/`{{user}}` (and `<BOT>`/`<USER>`) as the card specs say."""
    names = {"char": char, "user": user}
    for pattern, which in _MACROS:
        text = pattern.sub(lambda _m, w=which: names[w], text)
    return text


# ---------------------------------------------------------------- loading


def _read_yaml(path: Path) -> dict:
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), str(path))
    except UnicodeDecodeError as e:
        raise RolegenError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise RolegenError(f"{path}:{where} malformed YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise RolegenError(f"{path}: expected a mapping of card fields at the top level")
    return data


def _check_fields(data: dict, cls, path: Path, required: tuple[str, ...]) -> dict:
    known = {f.name for f in fields(cls)} - {"source", "lorebook", "depth_prompt"}
    unknown = sorted(set(data) - known - {"lorebook", "depth_prompt"})
    if unknown:
        raise RolegenError(
            f"{path}: unknown field '{unknown[0]}' (known: {', '.join(sorted(known))})"
        )
    for name in required:
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise RolegenError(f"{path}: field '{name}' is required and must be non-empty text")
    out = {}
    for f in fields(cls):
        if f.name not in data or f.name in ("source", "lorebook", "depth_prompt"):
            continue
        value = data[f.name]
        if f.name in ("example_dialogues", "tags"):
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise RolegenError(f"{path}: field '{f.name}' must be a list of strings")
        elif value is None:
            value = ""
        elif not isinstance(value, str):
            raise RolegenError(f"{path}: field '{f.name}' must be text, got {type(value).__name__}")
        out[f.name] = value
    return out


def _yaml_type(value) -> str:
    return {"str": "text", "NoneType": "nothing", "dict": "a mapping"}.get(
        type(value).__name__, type(value).__name__
    )


def _lorebook_from_yaml(raw, path: Path) -> Lorebook | None:
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
        bad = sorted(set(e) - allowed)
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


def load_persona_yaml(path: Path) -> Persona:
    data = _read_yaml(path)
    values = _check_fields(data, Persona, path, required=("name",))
    return Persona(
        **values,
        lorebook=_lorebook_from_yaml(data.get("lorebook"), path),
        depth_prompt=depth_prompt_from(data.get("depth_prompt"), "depth_prompt", path),
        source=str(path),
    )


def load_user_persona_yaml(path: Path) -> UserPersona:
    data = _read_yaml(path)
    values = _check_fields(data, UserPersona, path, required=("name",))
    return UserPersona(**values, source=str(path))


def available_personas() -> list[str]:
    return sorted(p.stem for p in personas_dir().glob("*.yaml"))


def available_user_personas() -> list[str]:
    return sorted(p.stem for p in (personas_dir() / "users").glob("*.yaml"))


def load_user_persona(source: str) -> UserPersona:
    path = Path(source).expanduser()
    if path.is_file():
        return load_user_persona_yaml(path)
    shipped = personas_dir() / "users" / f"{source}.yaml"
    if shipped.is_file():
        return load_user_persona_yaml(shipped)
    raise RolegenError(
        f"unknown user persona '{source}': not a file, and not one of the shipped ones: "
        + ", ".join(available_user_personas())
    )


def load_user_script(path: str | Path) -> list[str]:
    """User turns from a file: one per line (`\\n` inside a line is a line break), or a
    YAML/JSON list of strings. Blank lines are skipped."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise RolegenError(f"{path}: user script not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise RolegenError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        try:
            json_file = path.suffix.lower() == ".json"
            data = load_json(text, str(path)) if json_file else load_yaml(text, str(path))
        except (ValueError, yaml.YAMLError) as e:
            raise RolegenError(f"{path}: malformed user script: {e}") from None
        if not isinstance(data, list) or not all(isinstance(t, str) for t in data):
            raise RolegenError(f"{path}: a user script must be a list of strings")
        turns = [t.strip() for t in data]
    else:
        turns = [line.replace("\\n", "\n").strip() for line in text.splitlines()]
    turns = [t for t in turns if t]
    if not turns:
        raise RolegenError(f"{path}: user script holds no user turns")
    return turns
