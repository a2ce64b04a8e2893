"""The checks inside the loop: what the embedded model writes by itself vs. the dataset
rolegen keeps, and what the resampling costs.

Three `rolegen generate` runs with the same personas, users, seeds and sampling: the
in-loop checks off (`--no-check`); on, resampling a rejected reply one at a time (the
default, up to --max-resamples); on, drawing all 4 candidates of the same budget at once
(`--candidates 4`). A dialogue ends at its last good turn when the budget runs out. Each run's dialogues then go through `rolegen filter`. Reports, with
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

from rolegen.checks.dataset import record_turns
from rolegen.checks.turns import CheckConfig, check_dialogues, rejecting
from rolegen.config import GenerateConfig
from rolegen.recipes.generate import run_generate


def flagged_share(path: Path, cfg: CheckConfig) -> tuple[float, int]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    items = [record_turns(r) for r in records]
    checks = [c for turns in check_dialogues(items, cfg) for c in turns]
    flagged = sum(1 for c in checks if rejecting(c, cfg))
    return (flagged / len(checks) if checks else 0.0), len(checks)


def run(out: Path, check: bool, dialogues: int, turns: int, candidates: int = 1) -> dict:
    cfg = GenerateConfig(
        personas=PERSONAS,
        dialogues=dialogues,
        turns=turns,
        check=check,
        out=str(out),
        seed=5,
        batch_size=64,
        candidates=candidates,
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
        "candidates": candidates,
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
    parser.add_argument(
        "--candidates",
        type=int,
        default=4,
        help="candidates at once in the parallel run (= max resamples + 1)",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "loop.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            "raw": run(Path(tmp) / "raw", False, args.dialogues, args.turns),
            "sequential": run(Path(tmp) / "seq", True, args.dialogues, args.turns, 1),
            "parallel": run(Path(tmp) / "par", True, args.dialogues, args.turns, args.candidates),
        }
    raw = runs["raw"]
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "settings": vars(args),
        **runs,
        "token_cost_ratio": {
            k: round(r["generated_tokens"] / raw["generated_tokens"], 3) for k, r in runs.items()
        },
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    names = {
        "raw": "no checks",
        "sequential": "resample 1 by 1",
        "parallel": f"{args.candidates} at once",
    }
    print(f"{'':40}" + "".join(f"{names[k]:>18}" for k in runs))
    for label, key in [
        ("character turns written", "character_turns_written"),
        ("flagged share of written turns", "flagged_share_written"),
        ("turns in the final dataset", "dataset_turns"),
        ("flagged share in the final dataset", "flagged_share_dataset"),
        ("generated tokens", "generated_tokens"),
        ("engine seconds", "engine_seconds"),
        ("resamples", "resamples"),
    ]:
        print(f"{label:40}" + "".join(f"{r[key]:>18}" for r in runs.values()))
    for k, r in runs.items():
        print(f"{names[k]}: end reasons {r['end_reasons']}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
