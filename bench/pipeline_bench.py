"""The default pipeline, timed stage by stage, for one or more commits side by side.

Each commit is checked out in a git worktree and its `rolegen pipeline` runs with the
same venv, the same seed and the same sizes; nothing else should run on the machine.
Sizes:
- `full`: the default pipeline (every shipped persona and script, the held-out suite);
- `quarter`: 3 of the 11 shipped personas (both scripts: 6 of 22 training dialogues)
  and 3 of the 6 held-out cards with 1 of their 2 scripts (3 of 12 eval dialogues),
  every other setting the commit's default.

The machine's limits (`machine.py`) are measured in this process before the runs, and
each stage is stated beside them: generate's tokens/s against the decode limit at the
run's batch and mean prompt length, train's tokens/s as MFU of the bf16 peak
(6 x parameters x tokens/s). The load average before each run is recorded: a figure
taken with another process on the cores is not comparable.

    python bench/pipeline_bench.py --commit f9eaa7e --commit HEAD --size quarter

Writes bench/results/pipeline_<size>.json and prints a table; each run's log is in
outputs/pipeline-bench/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from machine import EMBEDDED_PARAMETERS, decode_limit, limits, run_limits

REPO = Path(__file__).resolve().parent.parent
PARAMETERS = EMBEDDED_PARAMETERS
QUARTER = {
    "personas": [
        "personas/alchemist-orla-finch.yaml",
        "personas/captain-mara-vell.yaml",
        "personas/starship-ai-vega.yaml",
    ],
    "eval": {
        "personas": [
            "evals/personas/archivist-bram.yaml",
            "evals/personas/mechanic-juno.yaml",
            "evals/personas/oracle-sefa.yaml",
        ],
        "user_scripts": ["evals/scripts/lost-traveller.txt"],
    },
}


def worktree(commit: str, root: Path) -> tuple[Path, str]:
    sha = subprocess.run(
        ["git", "rev-parse", commit], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    path = root / sha[:10]
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), sha],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return path, sha


def run_pipeline(tree: Path, size: str, log: Path) -> tuple[float, Path]:
    out = tree / "outputs" / "bench"
    args = [sys.executable, "-m", "rolegen", "pipeline", "--out", str(out), "--seed", "0"]
    if size == "quarter":
        config = tree / "bench-quarter.yaml"
        config.write_text(yaml.safe_dump(QUARTER))
        args += ["--config", str(config)]
    # the worktree's own package, not the one installed from this checkout
    env = {**os.environ, "PYTHONPATH": str(tree)}
    started = time.perf_counter()
    with log.open("w") as f:
        subprocess.run(args, cwd=tree, env=env, stdout=f, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - started, out


def stage_figures(out: Path, machine: dict) -> dict:
    """Each stage's seconds, and its throughput against the machine's limit."""
    times = json.loads((out / "pipeline.json").read_text())["timings_seconds"]
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    tokens = manifest["tokens"]
    engine_s = manifest["timings"].get("engine_seconds") or manifest["timings"]["generate_seconds"]
    # sequences in flight: every dialogue of a batch, each drawing its candidates together
    count = manifest["dialogues"]
    count = count["total"] if isinstance(count, dict) else len(count)
    config = manifest["config"]
    dialogues = min(count, config.get("batch_size") or count) * (config.get("candidates") or 1)
    context = tokens["prompt"] / max(1, tokens.get("character_replies_drawn", 1))
    limit = decode_limit(
        machine["copy_bandwidth_gbs"] * 1e9, dialogues, int(context), machine["training_dtype"]
    )
    gen_rate = tokens["generated"] / engine_s
    dtype = {"dtype": machine["training_dtype"], "tokens_per_s": limit}
    run = run_limits(
        {**machine, "decode_limit": dtype},
        tokens["generated"],
        tokens["prompt"],
        tokens.get("prompt_cached", 0),  # 0 in a manifest written before it was counted
    )
    summary = json.loads((out / "adapter" / "summary.json").read_text())
    peak = machine["training_peak_gflops"] * 1e9  # the dtype training ran in
    train = {
        s["name"]: {
            "tokens_per_s": s["tokens_per_second"],
            "mfu": round(6 * PARAMETERS * s["tokens_per_second"] / peak, 3),
        }
        for s in summary["stages"]
    }
    return {
        "seconds": times,
        "generate": {
            "tokens_per_s": round(gen_rate, 1),
            "batch": dialogues,
            "mean_prompt_tokens": round(context),
            "decode_limit": round(limit, 1),
            "fraction_of_limit": round(gen_rate / limit, 3),
            "machine_limit": run,
            "fraction_of_machine_limit": round(gen_rate / run["machine_limit_tokens_per_s"], 3),
        },
        "train": train,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commit", action="append", default=None, help="Repeatable.")
    parser.add_argument("--size", choices=["quarter", "full"], default="quarter")
    parser.add_argument("--keep", action="store_true", help="Keep the worktrees.")
    args = parser.parse_args()
    commits = args.commit or ["HEAD"]

    machine = limits()
    print(f"machine: {machine}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        root = Path(tmp)
        for commit in commits:
            tree, sha = worktree(commit, root)
            load = os.getloadavg()[0]
            print(f"{commit} ({sha[:10]}): running, load average {load:.2f}", flush=True)
            try:
                logs = REPO / "outputs" / "pipeline-bench"
                logs.mkdir(parents=True, exist_ok=True)
                wall, out = run_pipeline(tree, args.size, logs / f"{args.size}-{sha[:10]}.log")
                row = {"commit": commit, "sha": sha, "load_average_before": round(load, 2)}
                row["wall_seconds"] = round(wall, 1)
                try:
                    row.update(stage_figures(out, machine))
                except (KeyError, OSError, ValueError) as e:  # an older commit's records
                    times = json.loads((out / "pipeline.json").read_text())["timings_seconds"]
                    row.update(seconds=times, figures_error=repr(e))
                rows.append(row)
            finally:
                if not args.keep:
                    subprocess.run(
                        ["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False
                    )
            print(json.dumps(rows[-1], indent=2), flush=True)

    result = {"size": args.size, "machine": machine, "runs": rows}
    if len(rows) > 1:
        result["speedup_vs_first"] = {
            r["commit"]: round(rows[0]["wall_seconds"] / r["wall_seconds"], 2) for r in rows
        }
    path = REPO / "bench" / "results" / f"pipeline_{args.size}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")

    print(
        "\n| commit | wall min | generate | train | eval | gen / decode limit "
        "| gen / machine limit | SFT MFU | DPO MFU |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        s, t = r["seconds"], r.get("train", {})
        fraction = r.get("generate", {}).get("fraction_of_limit", float("nan"))
        machine_share = r.get("generate", {}).get("fraction_of_machine_limit", float("nan"))
        print(
            f"| {r['commit']} | {r['wall_seconds'] / 60:.1f} | {s.get('generate', 0) / 60:.1f} | "
            f"{s.get('train', 0) / 60:.1f} | {s.get('eval', 0) / 60:.1f} | "
            f"{fraction:.2f} | {machine_share:.2f} | {t.get('sft', {}).get('mfu', '-')} | "
            f"{t.get('dpo', {}).get('mfu', '-')} |"
        )
    if "speedup_vs_first" in result:
        print(f"speed-up against {rows[0]['commit']}: {result['speedup_vs_first']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
