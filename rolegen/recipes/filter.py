"""Recipe: a dialogues.jsonl or SillyTavern chats -> checked, split, exported dataset (see
`dataset.py`); with `--sillytavern`, the dialogues as SillyTavern chats too (`sillytavern.py`)."""

from __future__ import annotations

from pathlib import Path

from rolegen.bounded import excerpt
from rolegen.cards.files import load_cards
from rolegen.checks.dataset import export, filter_dialogues
from rolegen.config import FilterConfig
from rolegen.config.options import to_dict
from rolegen.errors import RolegenError
from rolegen.evaluation.data_source import facts_from_cards
from rolegen.runs.folders import dialogues_file, read_manifest
from rolegen.runs.out_dirs import check_out_dir
from rolegen.runs.records import read_dialogues
from rolegen.runs.sillytavern import is_chat_source
from rolegen.runs.sillytavern_export import check_export_dir, write_chats


def run_filter(data: str | Path, cfg: FilterConfig, echo=print) -> dict:
    cfg.validate()
    data = Path(data)
    if not cfg.out and is_chat_source(data):
        raise RolegenError(
            f"{data}: SillyTavern chats need --out (the default, the chats' own folder, "
            "would put rolegen's files among SillyTavern's chats)"
        )
    data = dialogues_file(data)
    out = Path(cfg.out) if cfg.out else data.parent
    check_out_dir(out)  # before any work, and before anything is written
    if cfg.sillytavern:
        check_export_dir(out / "sillytavern")
    cards = load_cards(cfg.personas)
    records, report = read_dialogues(
        data, on_error=cfg.on_error, max_chars=cfg.max_chars, personas=cards
    )
    for number, why in report.bad[:10]:
        echo(f"{data}:{number}: skipped: {why}")
    if len(report.bad) > 10:
        echo(f"... and {len(report.bad) - 10} more bad lines")
    for number, dialogue_id, first in report.duplicates[:10]:
        echo(f"{data}:{number}: skipped: id {excerpt(dialogue_id)} already read on line {first}")
    if len(report.duplicates) > 10:
        echo(f"... and {len(report.duplicates) - 10} more repeated ids")
    for path, number, why in report.skipped_chats[:10]:
        echo(f"{path}:{number}: chat skipped: {why}")
    if len(report.skipped_chats) > 10:
        echo(f"... and {len(report.skipped_chats) - 10} more chats skipped")

    facts_from_cards(records, cards, echo)  # the checks compare replies with today's reading

    judged, judge = None, None
    if cfg.judge.enabled:  # the model judge's faults reject turns as the checks' reasons do
        from rolegen.evaluation.judge import reasons_by_turn

        echo(f"asking the model judge about the character turns of {len(records)} dialogues ...")
        judged, judge = reasons_by_turn(cfg.judge, records, cards)
    result = filter_dialogues(records, cfg.checks, min_turns=cfg.min_turns, extra_reasons=judged)
    manifest = read_manifest(data.parent)
    if not isinstance(manifest.get("model", {}), dict):
        manifest = {}
    dataset_card = {
        "source": str(data),
        # null where not known (chats, hand-made files): train then takes the tokenizer's
        # chat template, as it does for data without a filter report
        "model": manifest.get("model", {}).get("path", records[0].get("model")),
        "format": manifest.get("format", records[0].get("format")),
        "checks": to_dict(cfg.checks),
        "filter": {k: v for k, v in to_dict(cfg).items() if k != "checks"},
        "judge": judge,
        "bad_lines": [{"line": n, "why": w} for n, w in report.bad],
        "duplicate_ids": [{"line": n, "id": i, "first_line": f} for n, i, f in report.duplicates],
    }
    if report.skipped_chats:
        dataset_card["skipped_chats"] = [
            {"file": str(f), "line": n, "why": w} for f, n, w in report.skipped_chats
        ]
    summary = export(result, out, cfg.test_share, cfg.seed, dataset_card)
    summary["out"] = str(out)
    summary["bad_lines"] = len(report.bad)
    summary["dialogues_read"] = len(records)
    summary["duplicate_ids"] = len(report.duplicates)
    summary["judge"] = judge
    if cfg.sillytavern:
        # every dialogue as read, not cut: the chats are for reading what the checks refused
        summary["sillytavern"] = write_chats(records, out / "sillytavern", cards)
        echo(
            f"SillyTavern: {len(records)} chats and "
            f"{len(summary['sillytavern']['characters'])} character cards in {out / 'sillytavern'}"
        )
    return summary
