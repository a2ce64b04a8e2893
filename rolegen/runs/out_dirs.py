"""An output folder (`--out`): checked before any work is done, made, and held by one
writer at a time.

A command locks each folder it writes into (`lock_out_dir`) until it ends
(`command_scope`). The lock is an `flock` on a file inside the folder, which the kernel
drops when the process dies, so a killed run never blocks its own resume. Linux and
macOS only (fcntl). What goes into a run folder is `folders.py`'s.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from rolegen.errors import RolegenError

LOCK = ".rolegen.lock"


def check_out_dir(path: str | Path) -> None:
    """Refuse, before any work is done and without writing anything, an output folder
    that cannot be made or written: an existing file, a path under a file, a folder
    without write permission."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RolegenError(f"{path}: --out is an existing file, not a folder")
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent  # the nearest existing folder: where the new ones would go
    if not probe.is_dir():
        raise RolegenError(f"{path}: cannot make this --out folder: {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RolegenError(f"{path}: cannot write here: no write permission on {probe}")


def make_out_dir(path: str | Path) -> Path:
    """`check_out_dir`, then the folder (and its parents) made; an OS refusal becomes an
    error that names the path."""
    path = Path(path)
    check_out_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RolegenError(f"{path}: cannot make this --out folder ({e.strerror})") from None
    return path


# This process's locks: folder (real path) -> lock file descriptor; and the open
# `command_scope`s, each with the folders locked inside it.
_held: dict[str, int] = {}
_scopes: list[list[str]] = []


def _lock(folder: Path) -> int:
    path = folder / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise RolegenError(f"{path}: cannot open the lock file ({e.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RolegenError(
            f"{folder}: in use by another rolegen process (pid {holder}, lock file {path}); "
            "wait for it to end (or stop it), or use another --out"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def lock_out_dir(path: str | Path, lock: bool = True) -> Path:
    """The folder made (`make_out_dir`) and locked against other processes until the
    command ends (`command_scope`), or without one, until this process ends. A second
    writer is refused with the PID of the holder; this process taking a folder it holds
    again is fine. The lock file stays: removing it on release would let two later
    writers lock two different files. `lock=False`: the non-main processes of a
    distributed run, whose main process holds the lock."""
    folder = make_out_dir(path)
    key = os.path.realpath(folder)
    if lock and key not in _held:
        _held[key] = _lock(folder)
        if _scopes:
            _scopes[-1].append(key)
    return folder


@contextmanager
def command_scope():
    """The folders locked inside the block (`lock_out_dir`, `RunDir`) are released when
    it ends: one command holds its folders from the moment it first writes until it is
    done, whatever it does in between (an export after the dialogues, a report after
    the eval)."""
    _scopes.append([])
    try:
        yield
    finally:
        for key in _scopes.pop():
            fd = _held.pop(key)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
