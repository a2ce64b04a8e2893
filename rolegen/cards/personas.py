"""Persona cards: who the character is, who the user is, and what the user says.

A character persona comes from a rolegen YAML card (`personas/*.yaml`, read here), or
from a Character Card V2/V3 in JSON or PNG (`files.py`, which also resolves a
`--persona` value to the right loader). User personas are YAML files
in `personas/users/`; a user script is a text file with one user turn per line.
Card text is data: macros such as `{{char}}` are replaced by plain string
substitution, never rendered as template code. A card's lorebook is `lorebook.py`'s,
its Character's Note `depth_prompts.py`'s.

Non-goals: editing cards, writing cards back out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from rolegen.bounded import load_json, load_yaml, yaml_problem
from rolegen.cards.depth_prompts import DepthPrompt, depth_prompt_from
from rolegen.cards.lorebook import Lorebook, lorebook_from_yaml
from rolegen.errors import RolegenError
from rolegen.resources import personas_dir


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


_FIELD_MACRO = re.compile(
    r"\{\{\s*(description|personality|scenario|persona)\s*\}\}", re.IGNORECASE
)


def substitute_note_macros(text: str, persona: Persona, user: UserPersona) -> str:
    """A note's macros, as SillyTavern replaces them in an Author's Note: the card's
    `{{description}}`, `{{personality}}` and `{{scenario}}`, the user's `{{persona}}`
    (its description), then `{{char}}`/`{{user}}`, inside the fields too. A field macro
    inside a field's own text stays as written (one pass, no nesting)."""
    fields = {
        "description": persona.description,
        "personality": persona.personality,
        "scenario": persona.scenario,
        "persona": user.description,
    }
    text = _FIELD_MACRO.sub(lambda m: fields[m.group(1).lower()].strip(), text)
    return substitute_macros(text, persona.name, user.name)


# ---------------------------------------------------------------- loading


def _read_yaml(path: Path) -> dict:
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), str(path))
    except UnicodeDecodeError as e:
        raise RolegenError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except yaml.YAMLError as e:
        raise RolegenError(f"{path}: malformed YAML, {yaml_problem(e)}") from None
    if not isinstance(data, dict):
        raise RolegenError(f"{path}: expected a mapping of card fields at the top level")
    return data


# Persona fields that are not plain text: read by their own loaders, or never from a card
_STRUCTURED = ("source", "lorebook", "depth_prompt")


def _check_fields(data: dict, cls, path: Path, required: tuple[str, ...]) -> dict:
    known = {f.name for f in fields(cls)} - {"source"}  # a card's, not the user's, lorebook
    unknown = sorted(set(data) - known, key=str)  # a YAML key may be a number
    if unknown:
        raise RolegenError(
            f"{path}: unknown field '{unknown[0]}' (known: {', '.join(sorted(known))})"
        )
    for name in required:
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise RolegenError(f"{path}: field '{name}' is required and must be non-empty text")
    out = {}
    for f in fields(cls):
        if f.name not in data or f.name in _STRUCTURED:
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


def load_persona_yaml(path: Path) -> Persona:
    data = _read_yaml(path)
    values = _check_fields(data, Persona, path, required=("name",))
    lorebook = lorebook_from_yaml(data.get("lorebook"), path)
    note = depth_prompt_from(data.get("depth_prompt"), "depth_prompt", path)
    return Persona(**values, lorebook=lorebook, depth_prompt=note, source=str(path))


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
        except yaml.YAMLError as e:
            raise RolegenError(f"{path}: malformed user script, {yaml_problem(e)}") from None
        except ValueError as e:
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
