"""Dialogues made anywhere, for `rolegen eval --data`: dialogues files, run folders and
SillyTavern chats read into records labelled by system, and the model behind them.

A record keeps its own `system` and `seed_key`; without them, its system is the name of
the folder it came from and its seed key its id. Lines that do not read are skipped and
counted (results.json's `skipped_when_read`), the first ten of each kind named.

Non-goals: generating dialogues (`recipes/evaluate.py`), scoring them (`scoring.py`).
"""

from __future__ import annotations

import json
from pathlib import Path

from rolegen.errors import RolegenError
from rolegen.models.checkpoints import inspect_model, load_tokenizer
from rolegen.runs.records import read_dialogues


def read_data(files: list[str], echo, personas=()) -> tuple[list[dict], dict]:
    """Dialogues files and SillyTavern chats (a file or folder; `personas` give their
    characters' intros). A record's system: its own, else the folder's name."""
    records, skipped = [], {"bad_lines": 0, "duplicate_ids": 0}  # for results.json
    for f in files:
        path = Path(f).expanduser()
        if (path / "dialogues.jsonl").is_file():
            path = path / "dialogues.jsonl"  # a run folder
        rows, report = read_dialogues(path, on_error="skip", personas=personas)
        for number, why in report.bad[:10]:
            echo(f"{path}:{number}: skipped: {why}")
        for number, dialogue_id, first in report.duplicates[:10]:
            echo(f"{path}:{number}: skipped: id {dialogue_id!r} already read on line {first}")
        skipped["bad_lines"] += len(report.bad)
        skipped["duplicate_ids"] += len(report.duplicates)
        for chat, number, why in report.skipped_chats[:10]:
            echo(f"{chat}:{number}: chat skipped: {why}")
        for r in rows:
            r.setdefault("system", path.name if path.is_dir() else path.parent.name or path.stem)
            r.setdefault("seed_key", r["id"])
        records.extend(rows)
    if not records:
        raise RolegenError("--data: no dialogues to score")
    return records, skipped


def data_folder(data: str) -> Path:
    """Where a --data source sits: a run folder itself, else the folder around the file
    (or around a folder of chats)."""
    path = Path(data).expanduser()
    return path if (path / "dialogues.jsonl").is_file() else path.parent


def data_provenance(data: list[str], model_path: Path | None) -> dict:
    """The model (and adapter) behind --data dialogues: --model if given, else what the
    run's manifest beside the first of `data` recorded."""
    if model_path is not None:
        return {"model": inspect_model(model_path, load_tokenizer(model_path)).to_dict()}
    manifest = data_folder(data[0]) / "manifest.json"
    try:
        recorded = json.loads(manifest.read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(recorded, dict):
        return {}
    return {k: recorded[k] for k in ("model", "adapter") if isinstance(recorded.get(k), dict)}
