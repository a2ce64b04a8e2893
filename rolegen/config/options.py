"""Settings in, from YAML and flags: the one reader of every command's config.

A config is a dataclass whose fields are made with `opt` (the help text is both the
`--flag`'s help and the YAML key's meaning) and `section` (a nested dataclass).
`load_config` reads a YAML file, puts the flags the user gave on top and builds the
dataclass, naming the file and the field of anything wrong; `click_options` makes
the flags from the same fields, so a flag and its YAML key cannot drift apart.

Sections: `sampling:`, `checks:`, `cluster:` and `lora:` may be written nested or
flat in YAML (`temperature: 0.7`); a section made with `section(..., flat=True)`
(the model and engine settings that several commands share) is also flat in
`to_dict`, so it reads back as the flat keys a user writes. Not handled: two
sections with a field of the same name (the first one would take it).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path

import click
import yaml

from rolegen.bounded import excerpt, load_yaml, yaml_problem
from rolegen.errors import RolegenError
from rolegen.urls import redact


def opt(default=None, help: str = "", flag: str | None = None, factory=None, choices=None):
    """A config field with CLI metadata: `flag` renames the option, `choices` restricts it."""
    metadata = {"help": help, "flag": flag, "choices": choices}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def section(cls, flat: bool = False):
    """A nested config section; `flat`: its fields also read and write as top-level keys."""
    return dataclasses.field(default_factory=cls, metadata={"flat": flat})


def field_types(cls) -> dict[str, typing.Any]:
    return typing.get_type_hints(cls)


def base_type(tp):
    """`int | None` -> int, `list[str]` -> list."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return base_type(args[0])
    return origin or tp


def _is_section(tp) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value, tp, where: str):
    base = base_type(tp)
    if value is None:
        if type(None) in typing.get_args(tp):
            return None
        raise RolegenError(f"{where}: must not be empty")
    if base is list:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RolegenError(f"{where}: must be a list of strings")
        return list(value)
    if base is bool:
        if not isinstance(value, bool):
            raise RolegenError(f"{where}: must be true or false, got {excerpt(value)}")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RolegenError(f"{where}: must be an integer, got {excerpt(value)}")
        return value
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RolegenError(f"{where}: must be a number, got {excerpt(value)}")
        # inf and nan reach an engine (a probability tensor of inf) or the JSON writer
        # (Infinity is not JSON) if they pass here
        if not math.isfinite(value):
            raise RolegenError(f"{where}: must be a finite number, got {value}")
        return float(value)
    if base is dict:
        if not isinstance(value, dict):
            raise RolegenError(f"{where}: must be a mapping")
        return dict(value)
    if base is str:
        if not isinstance(value, (str, int, float)):
            raise RolegenError(f"{where}: must be text, got {excerpt(value)}")
        return str(value)
    return value


def from_dict(cls, data: dict, source: str):
    """Build `cls` from a mapping, naming the file and field of anything wrong."""
    hints = field_types(cls)
    nested = {n: t for n, t in hints.items() if _is_section(t)}
    # A nested field may be written flat, by name or by its flag (`lora_r:` for lora.r).
    flat_owner = {}
    for n, t in nested.items():
        for f in dataclasses.fields(t):
            flat_owner.setdefault(f.name, (n, f.name))
            if f.metadata.get("flag"):
                flat_owner.setdefault(f.metadata["flag"].replace("-", "_"), (n, f.name))
    # A YAML key may also be written as its flag: `persona:` for `personas:`.
    aliases = {
        f.metadata["flag"].replace("-", "_"): f.name
        for f in dataclasses.fields(cls)
        if f.metadata.get("flag")
    }
    values, sub_values = {}, {n: {} for n in nested}
    for key, value in data.items():
        if not isinstance(key, str):
            raise RolegenError(f"{source}: field names are text, got {excerpt(key)}")
        name = key.replace("-", "_")
        name = aliases.get(name, name)
        if name in nested:
            if not isinstance(value, dict):
                raise RolegenError(f"{source}: field '{key}' must be a mapping")
            sub_values[name].update(value)
        elif name in hints:
            choices = cls.__dataclass_fields__[name].metadata.get("choices")
            values[name] = _coerce(value, hints[name], f"{source}: field '{key}'")
            if choices and values[name] not in choices:
                raise RolegenError(f"{source}: field '{key}' must be one of {', '.join(choices)}")
        elif name in flat_owner:
            owner, sub = flat_owner[name]
            sub_values[owner][sub] = value
        else:
            known = sorted([*(n for n in hints if n not in nested), *flat_owner])
            raise RolegenError(
                f"{source}: unknown field {excerpt(key)} (known: {', '.join(known)})"
            )
    for name, t in nested.items():
        values[name] = from_dict(t, sub_values[name], source)
    return cls(**values)


def load_config(cls, path: str | None, overrides: dict):
    """The YAML file (if any) with `overrides` (flags the user gave) on top."""
    data = {}
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise RolegenError(f"{p}: config file not found")
        try:
            data = load_yaml(p.read_text(encoding="utf-8"), str(p)) or {}
        except UnicodeDecodeError as e:
            raise RolegenError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
        except yaml.YAMLError as e:
            raise RolegenError(f"{p}: malformed YAML, {yaml_problem(e)}") from None
        if not isinstance(data, dict):
            raise RolegenError(f"{p}: a run config must be a mapping of fields")
    merged = dict(data)
    for key, value in overrides.items():
        merged[key] = value
    return from_dict(cls, merged, str(path) if path else "command line")


def to_dict(config) -> dict:
    """The config as plain data (manifests, results, resume checks); flat sections as
    top-level keys. Every URL in it is without its credentials (`urls.redact`): this is
    what rolegen writes of a run's settings, and a password must not reach disk."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            if f.metadata.get("flat"):
                out.update(to_dict(value))
                continue
            value = to_dict(value)
        else:
            value = redact(value)
        out[f.name] = value
    return out


def click_options(cls) -> list[click.Option]:
    """Click options for every field of `cls` (sections flattened; YAML-only mappings left
    out). Each option defaults to None: only the flags a user gives override the config."""
    params = []
    for f in dataclasses.fields(cls):
        tp = field_types(cls)[f.name]
        if _is_section(tp):
            params.extend(click_options(tp))
            continue
        base = base_type(tp)
        if base is dict:  # a YAML-only section
            continue
        flag = f.metadata.get("flag") or f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if default not in (None, [], False):
            help_text += f"  [default: {default}]"
        kwargs = dict(default=None, help=help_text)
        if base is list:
            kwargs.update(multiple=True, default=())
        elif base is bool:
            params.append(click.Option([f"--{flag}/--no-{flag}", f.name], **kwargs))
            continue
        elif f.metadata.get("choices"):
            kwargs.update(type=click.Choice(f.metadata["choices"]))
        else:
            kwargs.update(type=base)
        params.append(click.Option([f"--{flag}", f.name], **kwargs))
    return params


def given(kwargs: dict) -> dict:
    """The flags the user actually gave."""
    return {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in kwargs.items()
        if v is not None and v != ()
    }
