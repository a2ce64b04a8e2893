"""The checks inside the loop: what the embedded model writes by itself vs. the dataset
rolegen keeps, and what the resampling costs.

Two `rolegen generate` runs with the same personas, users, seeds and sampling: one with
the in-loop checks off (`--no-check`), one with them on (default: resample a rejected
reply up to --max-resamples times, end the dialogue at its last good turn when the
budget runs out). Each run's dialogues then go through `rolegen filter`. Reports, with
the same check code and thresholds throughout:
- share of character turns flagged in what the model wrote without resampling;
- share flagged among the turns the checked run accepted, and in its final dataset;
- clean character turns obtained per run, and the resample cost in generated tokens.

Writes bench/results/loop.json. Usage: python bench/loop_bench.py [--dialogues 2] [--turns 6]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from generate_bench import PERSONAS  # the same eight personas as the generate benchmark

from rolegen.checks import check_dialogues, rejecting
from rolegen.config import CheckConfig, GenerateConfig
from rolegen.dataset import record_turns
from rolegen.generate import run_generate


def flagged_share(path: Path, cfg: CheckConfig) -> tuple[float, int]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    items = [record_turns(r) for r in records]
    checks = [c for turns in check_dialogues(items, cfg) for c in turns]
    flagged = sum(1 for c in checks if rejecting(c, cfg))
    return (flagged / len(checks) if checks else 0.0), len(checks)


def run(out: Path, check: bool, dialogues: int, turns: int) -> dict:
    cfg = GenerateConfig(
        personas=PERSONAS,
        dialogues=dialogues,
        turns=turns,
        check=check,
        out=str(out),
        seed=5,
        batch_size=64,
    )
    start = time.perf_counter()
    summary = run_generate(cfg, echo=lambda s: None)
    manifest = json.loads((out / "manifest.json").read_text())
    written_share, written_turns = flagged_share(out / "dialogues.jsonl", cfg.checks)
    final_share, final_turns = (
        flagged_share(out / "messages" / "train.jsonl", cfg.checks)
        if (out / "messages" / "train.jsonl").exists()
        else (0.0, 0)
    )
    test = out / "messages" / "test.jsonl"
    if test.exists():
        share_t, turns_t = flagged_share(test, cfg.checks)
        final_share = (final_share * final_turns + share_t * turns_t) / max(
            final_turns + turns_t, 1
        )
        final_turns += turns_t
    return {
        "check_in_loop": check,
        "generated_tokens": summary.generated_tokens,
        "engine_seconds": round(summary.engine_seconds, 1),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "character_turns_written": written_turns,
        "flagged_share_written": round(written_share, 4),
        "dataset_turns": final_turns,
        "flagged_share_dataset": round(final_share, 4),
        "resamples": manifest["tokens"]["resamples"],
        "rejections": manifest["tokens"]["rejections"],
        "end_reasons": manifest["dialogues"]["end_reasons"],
        "preference_pairs": summary.dataset["preference_pairs"] if summary.dataset else {},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dialogues", type=int, default=2, help="per persona (8 personas)")
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "loop.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = run(Path(tmp) / "raw", False, args.dialogues, args.turns)
        checked = run(Path(tmp) / "checked", True, args.dialogues, args.turns)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "settings": vars(args),
        "raw": raw,
        "checked": checked,
        "token_cost_ratio": round(checked["generated_tokens"] / raw["generated_tokens"], 3),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'':44}{'no checks':>12}{'checks in loop':>16}")
    for label, key in [
        ("character turns written", "character_turns_written"),
        ("flagged share of written turns", "flagged_share_written"),
        ("turns in the final dataset", "dataset_turns"),
        ("flagged share in the final dataset", "flagged_share_dataset"),
        ("generated tokens", "generated_tokens"),
        ("resamples", "resamples"),
    ]:
        print(f"{label:44}{raw[key]:>12}{checked[key]:>16}")
    print(f"token cost of checking in the loop: {result['token_cost_ratio']:.2f}x")
    print(f"end reasons (checked): {checked['end_reasons']}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
