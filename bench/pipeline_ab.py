"""Two pipeline runs side by side: their adapters' eval dialogues scored together, paired.

    python bench/pipeline_ab.py --arm default=RUN_A --arm card-choice=RUN_B \
        --out /work/runs/ab/paired --name card_choice_ab [--persona-model]

Each RUN is a `rolegen pipeline --out RUN` folder whose two configs differ in one setting
and share the seed, suite and prompts (e.g. `generate: {card_choice: true}` in one). The
adapter's dialogues of each run's eval are renamed to the arm (`bench/ablation.py`'s
`_renamed`) and scored by one `rolegen eval --data A --data B`, so every interval is
paired: the same personas, scripts, user turns and request seeds. The first arm is the
reference; the table gives each headline metric per arm and the paired difference
(second - first) with its 95% interval, per prompt.

Writes <out>/results.json (the eval's) and bench/results/<name>.json, and prints the
table. Run it alone when it runs the learned check (`--persona-model`, SmolLM2 passes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from ablation import HEADLINE, _renamed

HERE = Path(__file__).resolve().parent
METRICS = (*HEADLINE, "wrong_identity_learned", "identity_confusion", "opener_reuse", "words")


def _arm(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or "@" in name or "+" in name:
        raise argparse.ArgumentTypeError(f"--arm {text!r}: expected NAME=RUN (no '@' or '+')")
    run = Path(path)
    if not (run / "eval" / "dialogues.jsonl").is_file():
        raise argparse.ArgumentTypeError(f"--arm {text!r}: {run}/eval/dialogues.jsonl missing")
    return name, run


def _stage_seconds(run: Path) -> dict:
    """The pipeline's stage times, as its pipeline.json recorded them."""
    path = run / "pipeline.json"
    return json.loads(path.read_text()).get("timings_seconds", {}) if path.is_file() else {}


def table(results: dict, arms: list[str]) -> list[dict]:
    """Per prompt and metric: each arm's value and interval, and (second - first) paired."""
    prompts = sorted({s.partition(" @ ")[2] for s in results["systems"]}, key=bool)
    rows = []
    for prompt in prompts:
        suffix = f" @ {prompt}" if prompt else ""
        first, second = (results["systems"].get(a + suffix, {}) for a in arms)
        for metric in METRICS:
            a, b = first.get(metric), second.get(metric)
            if not a or not b or a.get("value") is None:
                continue
            rows.append(
                {
                    "prompt": prompt or "rolegen",
                    "metric": metric,
                    arms[0]: {k: a.get(k) for k in ("value", "ci95", "n")},
                    arms[1]: {k: b.get(k) for k in ("value", "ci95", "n")},
                    "difference": b.get("delta"),
                    "difference_ci95": b.get("delta_ci95"),
                }
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arm", type=_arm, action="append", required=True, help="NAME=RUN, twice")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--name", required=True, help="bench/results/<name>.json")
    ap.add_argument("--persona-model", action="store_true", help="the learned check too")
    args = ap.parse_args()
    if len(args.arm) != 2 or args.arm[0][0] == args.arm[1][0]:
        ap.error("--arm: exactly two, with different names")
    data = []
    for name, run in args.arm:
        data += ["--data", str(_renamed(run / "eval", name, args.out / f"{name}.jsonl"))]
    cmd = [sys.executable, "-m", "rolegen", "eval", *data, "--no-fluency"]
    cmd += ["--persona-model"] if args.persona_model else []
    subprocess.run([*cmd, "--out", str(args.out / "paired")], check=True)
    results = json.loads((args.out / "paired" / "results.json").read_text())
    arms = [name for name, _ in args.arm]
    rows = table(results, arms)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    report = {
        "arms": {name: str(run) for name, run in args.arm},
        # each arm's generate settings, as its data's manifest recorded them
        "generate_config": {
            name: json.loads((run / "data" / "manifest.json").read_text()).get("config")
            for name, run in args.arm
        },
        "stage_seconds": {name: _stage_seconds(run) for name, run in args.arm},
        "persona_model": args.persona_model,
        "git_commit": commit,
        "table": rows,
    }
    (HERE / "results" / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")

    def cell(entry: dict) -> str:
        ci = entry.get("ci95") or [None, None]
        return f"{entry['value']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci[0] is not None else "–"

    print(f"| prompt | metric | {arms[0]} | {arms[1]} | {arms[1]} - {arms[0]} |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        ci = row["difference_ci95"]
        diff = f"{row['difference']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "–"
        print(
            f"| {row['prompt']} | {row['metric']} | {cell(row[arms[0]])} | "
            f"{cell(row[arms[1]])} | {diff} |"
        )


if __name__ == "__main__":
    main()
