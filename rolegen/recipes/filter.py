"""Recipe: any dialogues.jsonl -> checked, split, exported dataset (see `dataset.py`)."""

from __future__ import annotations

import json
from pathlib import Path

from rolegen.config import FilterConfig
from rolegen.dataset import export, filter_dialogues, read_dialogues
from rolegen.options import to_dict


def run_filter(data: str | Path, cfg: FilterConfig, echo=print) -> dict:
    data = Path(data)
    out = Path(cfg.out) if cfg.out else data.parent
    records, report = read_dialogues(data, on_error=cfg.on_error, max_chars=cfg.max_chars)
    for number, why in report.bad[:10]:
        echo(f"{data}:{number}: skipped: {why}")
    if len(report.bad) > 10:
        echo(f"... and {len(report.bad) - 10} more bad lines")

    result = filter_dialogues(records, cfg.checks, min_turns=cfg.min_turns)
    manifest = {}
    if (data.parent / "manifest.json").is_file():
        manifest = json.loads((data.parent / "manifest.json").read_text())
    card = {
        "source": str(data),
        "model": manifest.get("model", {}).get("path", records[0].get("model", "unknown")),
        "format": manifest.get("format", records[0].get("format", "unknown")),
        "checks": to_dict(cfg.checks),
        "filter": {k: v for k, v in to_dict(cfg).items() if k != "checks"},
        "bad_lines": [{"line": n, "why": w} for n, w in report.bad],
    }
    summary = export(result, out, cfg.test_share, cfg.seed, card)
    summary["out"] = str(out)
    summary["bad_lines"] = len(report.bad)
    summary["dialogues_read"] = len(records)
    return summary
