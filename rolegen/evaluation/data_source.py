"""Dialogues made anywhere, for `rolegen eval --data`: dialogues files, run folders and
SillyTavern chats read into records labelled by system, and the model behind them.

A record keeps its own `system` and `seed_key`; without them, its system is the name of
the folder it came from and its seed key its id. Lines that do not read are skipped and
counted (results.json's `skipped_when_read`), the first ten of each kind named. A record's
card facts (`persona_facts`, what the identity checks compare replies with) are read again
from its card where the card is found (`facts_from_cards`): stored facts are what the
rolegen that wrote the record could read, and a chat from elsewhere has none (`rolegen
filter` reads them again the same way).

Non-goals: generating dialogues (`recipes/evaluate.py`), scoring them (`scoring.py`).
"""

from __future__ import annotations

from pathlib import Path

from rolegen.bounded import excerpt
from rolegen.cards.files import card_for_record
from rolegen.checks.persona_facts import persona_facts
from rolegen.config import EvalConfig
from rolegen.errors import RolegenError
from rolegen.evaluation.distinctiveness import card_text
from rolegen.generation.prompts import resolve_persona
from rolegen.models.checkpoints import inspect_model, load_tokenizer, resolve_model
from rolegen.runs.folders import dialogues_file, read_manifest
from rolegen.runs.out_dirs import check_out_dir
from rolegen.runs.records import read_dialogues


def read_data(files: list[str], echo, personas=()) -> tuple[list[dict], dict]:
    """Dialogues files and SillyTavern chats (a file or folder; `personas` give their
    characters' intros). A record's system: its own, else the folder's name."""
    records, skipped = [], {"bad_lines": 0, "duplicate_ids": 0}  # for results.json
    seen: dict[tuple, str] = {}  # (system, seed_key) -> the --data it was read from
    for f in files:
        path = Path(f).expanduser()
        path = dialogues_file(path)
        rows, report = read_dialogues(path, on_error="skip", personas=personas)
        for number, why in report.bad[:10]:
            echo(f"{path}:{number}: skipped: {why}")
        for number, dialogue_id, first in report.duplicates[:10]:
            echo(
                f"{path}:{number}: skipped: id {excerpt(dialogue_id)} already read on line {first}"
            )
        skipped["bad_lines"] += len(report.bad)
        skipped["duplicate_ids"] += len(report.duplicates)
        for chat, number, why in report.skipped_chats[:10]:
            echo(f"{chat}:{number}: chat skipped: {why}")
        repeats = []
        for r in rows:
            r.setdefault("system", path.name if path.is_dir() else path.parent.name or path.stem)
            r.setdefault("seed_key", r["id"])
            # the same dialogue from two sources (a run folder and its dialogues.jsonl, or
            # two folders of one name) would be scored twice and folded into one system
            key = (r["system"], r["seed_key"])
            if key in seen:
                repeats.append(r)
                continue
            seen[key] = f  # as the user gave it
            records.append(r)
        for r in repeats[:10]:
            where = seen[(r["system"], r["seed_key"])]
            echo(
                f"{f}: skipped: {r['system']} dialogue {excerpt(r['seed_key'])} already "
                f"read from --data {where}"
            )
        skipped["duplicate_ids"] += len(repeats)
    if not records:
        raise RolegenError("--data: no dialogues to score")
    return records, skipped


def data_folder(data: str) -> Path:
    """Where a --data source sits: a run folder itself, else the folder around the file
    (or around a folder of chats)."""
    path = Path(data).expanduser()
    return path if dialogues_file(path) != path else path.parent


def data_provenance(data: list[str], model_path: Path | None) -> dict:
    """The model (and adapter) behind --data dialogues: --model if given, else what the
    run's manifest beside the first of `data` recorded."""
    if model_path is not None:
        return {"model": inspect_model(model_path, load_tokenizer(model_path)).to_dict()}
    recorded = read_manifest(data_folder(data[0]))
    return {k: recorded[k] for k in ("model", "adapter") if isinstance(recorded.get(k), dict)}


def data_dialogues(cfg: EvalConfig, cards, echo) -> tuple[list[dict], Path | None, Path, dict]:
    """`rolegen eval --data`: (the records, the model that scores fluency (--model, else
    none), the output folder (--out, else `eval/` beside the data), what results.json
    says of the source)."""
    records, skipped = read_data(cfg.data, echo, cards)
    facts_from_cards(records, cards, echo)
    model_path = resolve_model(cfg.model_config.model) if cfg.model_config.model else None
    out = Path(cfg.out) if cfg.out else data_folder(cfg.data[0]) / "eval"
    check_out_dir(out)
    meta = {
        "source": [str(Path(f)) for f in cfg.data],
        "skipped_when_read": skipped,
        **data_provenance(cfg.data, model_path),
    }
    return records, model_path, out, meta


def facts_from_cards(records: list[dict], personas=(), echo=None) -> int:
    """Set each record's `persona_facts` from its card (`card_for_record`: a `--persona`
    card, the file it was made from, the shipped persona), macros resolved for its user; a
    record whose card is not found (nothing but a name and a greeting) keeps its own.
    Returns how many records' facts changed, and says so through `echo` when any did."""
    read: dict[tuple, dict | None] = {}
    changed = 0
    for record in records:
        name = record.get("persona_name") or ""
        user = record.get("user_persona") or "User"
        key = (name, user, record.get("persona_source"), record.get("persona"))
        if key not in read:
            card = card_for_record(record, name, personas) if name else None
            found = card is not None and bool(card_text(card))
            read[key] = persona_facts(resolve_persona(card, user)).to_dict() if found else None
        facts = read[key]
        if facts is not None and facts != record.get("persona_facts"):
            record["persona_facts"] = facts
            changed += 1
    if changed and echo is not None:
        echo(f"card facts read again from the cards: {changed} dialogue(s) had other facts stored")
    return changed
