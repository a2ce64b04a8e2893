"""Where the shipped templates and personas live.

In a wheel they are packaged under `rolegen/_data/`; in a source checkout
(editable install, tests) they are the repository's top-level folders. The eval
suite (`evals/`) ships the same way.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"rolegen's shipped '{name}' folder is missing from the installation")


def templates_dir() -> Path:
    return _shipped("templates")


def personas_dir() -> Path:
    return _shipped("personas")


def evals_dir() -> Path:
    """The shipped eval suite: held-out personas and user scripts."""
    return _shipped("evals")
