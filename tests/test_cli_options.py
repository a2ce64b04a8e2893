"""Every command's options, pinned: a refactor cannot drop, rename or re-default a flag.

`tests/data/cli_options.json` holds, per command, each option's flags, whether it
repeats or is a switch, its type, and its default as `--help` shows it (config
fields show theirs as `[default: X]`; none shown means empty, off or unset).
`python tests/test_cli_options.py` rewrites the file after a deliberate change.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

SNAPSHOT = Path(__file__).parent / "data" / "cli_options.json"


def _default(param: click.Option):
    shown = re.search(r"\[default: (.*)\]\s*$", param.help or "")
    if shown:
        return shown.group(1)
    if param.default in (None, (), False):
        return None
    return repr(param.default)


def cli_options() -> dict:
    from rolegen.cli import main

    commands = {}
    for name, command in sorted(main.commands.items()):
        options = {}
        for param in command.params:
            if not isinstance(param, click.Option):
                options[param.name] = {"argument": True}
                continue
            options[param.opts[0]] = {
                "flags": sorted(param.opts + param.secondary_opts),
                "multiple": param.multiple,
                "switch": bool(param.secondary_opts) or param.is_flag,
                "type": param.type.name,
                "default": _default(param),
            }
        commands[name] = options
    return commands


def test_every_command_keeps_its_options_and_defaults():
    pinned = json.loads(SNAPSHOT.read_text())
    now = cli_options()
    assert sorted(now) == sorted(pinned), "commands added or removed"
    for command, options in pinned.items():
        missing = sorted(set(options) - set(now[command]))
        assert not missing, f"rolegen {command}: options gone: {missing}"
        for flag, spec in options.items():
            assert now[command][flag] == spec, f"rolegen {command} {flag}"


if __name__ == "__main__":
    SNAPSHOT.write_text(json.dumps(cli_options(), indent=1, sort_keys=True) + "\n")
    sys.exit(0)
