"""Methods ablation: which training method makes the adapter, alone and with
no decoding flag, repeat less than the best decoding fix and stay the character.

    python bench/ablation.py --data RUN/data --out /work/runs/ablation [--rows a,b]
        [--distill-data RUN2/data] [--prompts rolegen,plain] [--from-eval RUN/eval]

One row per method, each trained from the base on the same generated data (the
pipeline's train defaults plus the row's flags), each adapter evaluated with the same
eval suite, seeds and prompts; the decoding-only baselines are evaluated once. Then
every row's dialogues are scored together (`rolegen eval --data`, each row's "adapter"
renamed to the row), so the intervals are paired across rows: the same personas,
scripts, user turns and request seeds. Rows:
- sft+dpo: the pipeline's default today;
- by-reason: the same, its DPO pairs sampled evenly across rejection reasons;
- ftpo: DPO's loss replaced by the token-level preference at the divergence point;
- ul: sequence-level unlikelihood on top of SFT and DPO;
- ftpo+ul;
- by-reason+ul;
- distill: sft+dpo on data generated with `rolegen generate --distill ...` (pass that
  run as --distill-data; skipped without it);
- rounds: a second on-policy round from the sft+dpo row's adapter (generate with it,
  train from it), as `rolegen pipeline --rounds 2` does.
`--from-eval` takes an eval already run on the same suite, seed, dialogues and prompts
(a pipeline's eval/): its decoding-only baselines stand in for the baselines eval, and
its adapter becomes a row named after the pipeline (`--from-eval-row`), so a pipeline run
is one row of the table without generating its eval again.
Wall time per row (training, plus generation for rounds) is recorded; the eval's
generation is shared. A finished step is skipped on a rerun. Run it alone: vLLM slows
to a third beside another process on 2 cores.

Writes <out>/ablation.json and bench/results/ablation.json (the headline metrics per
system and prompt with their intervals) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROLEGEN = [sys.executable, "-m", "rolegen"]
BASELINES = [
    "base",
    "base+repetition-penalty=1.15",
    "base+frequency-penalty=0.5",
    "base+no-repeat-ngram=3",
]
ROWS = {
    "sft+dpo": [],
    "by-reason": ["--dpo-pair-sample", "by-reason"],
    "ftpo": ["--dpo-loss", "ftpo", "--dpo-sft-weight", "0"],
    "ul": ["--ul-weight", "0.5", "--ul-every", "4"],
    "ftpo+ul": [
        "--dpo-loss",
        "ftpo",
        "--dpo-sft-weight",
        "0",
        "--ul-weight",
        "0.5",
        "--ul-every",
        "4",
    ],
    "by-reason+ul": ["--dpo-pair-sample", "by-reason", "--ul-weight", "0.5", "--ul-every", "4"],
    "distill": [],
    "rounds": [],
}


def _train_flags() -> list[str]:
    """The pipeline's train defaults as flags (one source: pipeline.py)."""
    from rolegen.config.pipeline_stages import TRAIN_DEFAULTS

    return _flags(TRAIN_DEFAULTS)


def _flags(settings: dict) -> list[str]:
    """Config fields as command-line flags (a bool as --name / --no-name)."""
    flags = []
    for key, value in settings.items():
        name = key.replace("_", "-")
        if value is None:  # the command's own default
            continue
        if isinstance(value, bool):
            flags.append(f"--{name}" if value else f"--no-{name}")
        elif isinstance(value, list):
            flags += [f"--{name}", ",".join(value)]
        else:
            flags += [f"--{name}", str(value)]
    return flags


def _run(cmd: list[str], log: Path) -> float:
    """Run one rolegen command, its output into `log`; seconds it took."""
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    with log.open("a") as fh:
        done = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}; see {log}")
    return time.perf_counter() - start


def _train(data: Path, out: Path, flags: list[str], extra: list[str], log: Path) -> float:
    if (out / "summary.json").is_file():
        return json.loads((out / "summary.json").read_text())["seconds"]
    resume = ["--resume"] if (out / "checkpoints").is_dir() else []
    cmd = [*ROLEGEN, "train", "--data", str(data), "--out", str(out), *_train_flags()]
    return _run([*cmd, *flags, *extra, *resume], log)


def _eval(out: Path, systems: list[str], args, adapter: Path | None, log: Path) -> None:
    if (out / "results.json").is_file():
        return
    cmd = [*ROLEGEN, "eval", "--out", str(out), "--prompts", args.prompts]
    cmd += ["--dialogues", str(args.eval_dialogues), "--no-fluency", "--bootstrap", "10"]
    for s in systems:
        cmd += ["--system", s]
    if adapter:
        cmd += ["--adapter", str(adapter)]
    if (out / "dialogues.jsonl").is_file():
        cmd.append("--resume")
    _run([*cmd, *args.eval_args], log)


def _rounds(args, out: Path, first: Path, log: Path) -> float:
    """Round 2 from the sft+dpo row: generate with its adapter on new seeds, train from it."""
    from rolegen.config.pipeline_stages import GENERATE_DEFAULTS, round_seed

    manifest = json.loads((args.data / "manifest.json").read_text())
    cfg = manifest["config"]
    data = out / "data"
    seconds = 0.0
    if not (data / "manifest.json").is_file():
        cmd = [*ROLEGEN, "generate", "--out", str(data), "--adapter", str(first)]
        cmd += ["--seed", str(round_seed(cfg.get("seed", 0), 2))]
        cmd += ["--dialogues", str(cfg["dialogues"]), "--turns", str(cfg["turns"])]
        # the pipeline's settings, with round 1's prompts and decoding-fix distillation
        kept = {k: cfg[k] for k in ("prompts", "distill", "plain_negatives") if k in cfg}
        cmd += _flags({**GENERATE_DEFAULTS, **kept})
        for p in cfg["personas"]:
            cmd += ["--persona", p]
        for s in cfg.get("user_scripts") or []:
            cmd += ["--user-script", s]
        if (data / "dialogues.jsonl").is_file():
            cmd.append("--resume")
        seconds += _run([*cmd, *args.generate_args], log)
    return seconds + _train(
        data, out / "adapter", ["--init-adapter", str(first)], args.train_args, log
    )


def _renamed(eval_dir: Path, row: str | None, dest: Path) -> Path:
    """The eval's adapter dialogues with their system named after the row (row None: its
    decoding-only baselines, as they are)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("w", encoding="utf-8") as fh:
        for line in (eval_dir / "dialogues.jsonl").read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            system, sep, prompt = r["system"].partition(" @ ")
            if (row is None) != (system.split("+")[0] == "base"):
                continue
            r["system"] = (row or system) + sep + prompt
            r["id"] = r["system"] + "/" + r["id"].split("/", 1)[1]
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return dest


HEADLINE = (
    "near_copy",
    "seq_rep4",
    "identity_echo",
    "identity_recall",
    "wrong_identity",
    "assistant_drift",
    "acts_for_user",
    "persona_top1",
    "fluency_nll_clean",
    "relevance",
)


def _table(results: dict) -> list[dict]:
    """One row per system: each headline metric's value, 95% interval, and delta against
    base under the same prompt with its paired interval."""
    rows = []
    for system, metrics in results["systems"].items():
        row = {"system": system, "turns": metrics.get("turns")}
        for key in HEADLINE:
            m = metrics.get(key) or {}
            row[key] = {k: m[k] for k in ("value", "ci95", "delta", "delta_ci95") if k in m}
        rows.append(row)
    return rows


COLUMNS = (  # the markdown table: (metric, header)
    ("near_copy", "near-copy"),
    ("seq_rep4", "seq-rep-4"),
    ("identity_recall", "recall (asked)"),
    ("wrong_identity", "wrong identity"),
    ("assistant_drift", "drift"),
    ("acts_for_user", "acts for user"),
    ("persona_top1", "persona top-1"),
    ("fluency_nll_clean", "fluency NLL, clean"),
)


def _markdown(results: dict, seconds: dict, versus: str) -> str:
    """Per prompt, one line per system: the headline metrics, and for near-copy and
    seq-rep-4 the paired 95% interval of (system - `versus`) under the same prompt."""
    lines = []
    prompts = sorted({s.partition(" @ ")[2] for s in results["systems"]}, key=bool)
    for prompt in prompts:
        suffix = f" @ {prompt}" if prompt else ""
        lines += [
            f"**Prompt: {prompt or 'rolegen'}** (difference: system - {versus}{suffix})",
            "",
            "| system | train min | "
            + " | ".join(h for _, h in COLUMNS)
            + " | near-copy diff | seq-rep-4 diff |",
            "| --- " * (len(COLUMNS) + 4) + "|",
        ]
        for system, metrics in results["systems"].items():
            name, _, p = system.partition(" @ ")
            if p != prompt:
                continue
            cells = [name, f"{seconds[name] / 60:.1f}" if name in seconds else ""]
            for key, _ in COLUMNS:
                value = (metrics.get(key) or {}).get("value")
                cells.append("–" if value is None else f"{value:.3f}")
            for key in ("near_copy", "seq_rep4"):
                ci = results.get("pairwise", {}).get(key, {}).get(system, {}).get(versus + suffix)
                cells.append(f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="a generate run (the pipeline's)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--rows", default=",".join(r for r in ROWS))
    ap.add_argument("--distill-data", type=Path, help="a run of `rolegen generate --distill`")
    ap.add_argument("--prompts", default="rolegen,plain")
    ap.add_argument("--eval-dialogues", type=int, default=1)
    ap.add_argument(
        "--from-eval",
        type=Path,
        help="an eval of the same suite (a pipeline's eval/): its baselines and its adapter "
        "as a row, in place of evaluating them again",
    )
    ap.add_argument("--from-eval-row", default="pipeline", help="the row --from-eval's adapter is")
    ap.add_argument(
        "--versus",
        default="base+frequency-penalty=0.5",
        help="the decoding-only baseline each row's repetition is compared with",
    )
    ap.add_argument(
        "--row",
        action="append",
        default=[],
        metavar="NAME=FLAGS",
        help="one more row: its train flags on top of the defaults, e.g. "
        "--row 'sft-x3=--epochs 3' (repeatable; listed rows run after --rows)",
    )
    for stage in ("train", "eval", "generate"):
        ap.add_argument(
            f"--{stage}-args",
            type=shlex.split,
            default=[],
            help=f"extra flags of every `rolegen {stage}`, one string: --{stage}-args='--seed 1'",
        )
    args = ap.parse_args()
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    for spec in args.row:
        name, sep, flags = spec.partition("=")
        if not sep or not name.strip() or name.strip() in ROWS:
            raise SystemExit(f"--row {spec!r}: give NAME=FLAGS, NAME not one of {', '.join(ROWS)}")
        ROWS[name.strip()] = shlex.split(flags)
        rows.append(name.strip())
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise SystemExit(f"--rows: unknown {unknown[0]} (known: {', '.join(ROWS)})")
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "ablation.log"
    seconds = {}

    if args.from_eval:
        if not (args.from_eval / "dialogues.jsonl").is_file():
            raise SystemExit(f"--from-eval {args.from_eval}: no dialogues.jsonl (an eval's --out)")
        scored = [_renamed(args.from_eval, None, args.out / "scored" / "baselines.jsonl")]
        row = args.from_eval_row
        scored.append(_renamed(args.from_eval, row, args.out / "scored" / f"{row}.jsonl"))
        summary = args.from_eval.parent / "adapter" / "summary.json"
        if summary.is_file():
            seconds[row] = json.loads(summary.read_text())["seconds"]
    else:
        _eval(args.out / "baselines", BASELINES, args, None, log)
        scored = [args.out / "baselines" / "dialogues.jsonl"]
    for row in rows:
        adapter = args.out / row / "adapter"
        if row == "distill":
            if not args.distill_data:
                print("distill: skipped (no --distill-data)")
                continue
            seconds[row] = _train(args.distill_data, adapter, [], args.train_args, log)
        elif row == "rounds":
            first = args.out / "sft+dpo" / "adapter"
            if not (first / "adapter_model.safetensors").is_file():
                seconds["sft+dpo"] = _train(args.data, first, ROWS["sft+dpo"], args.train_args, log)
            seconds[row] = seconds.get("sft+dpo", 0.0) + _rounds(args, args.out / row, first, log)
            adapter = args.out / row / "adapter"
        else:
            seconds[row] = _train(args.data, adapter, ROWS[row], args.train_args, log)
        _eval(args.out / row / "eval", ["adapter"], args, adapter, log)
        scored.append(_renamed(args.out / row / "eval", row, args.out / "scored" / f"{row}.jsonl"))

    together = args.out / "together"
    if together.exists():
        shutil.rmtree(together)
    model = json.loads((args.data / "manifest.json").read_text())["model"]["path"]
    cmd = [*ROLEGEN, "eval", "--out", str(together)] + (["--model", model] if model else [])
    for path in scored:
        cmd += ["--data", str(path)]
    _run(cmd, log)
    results = json.loads((together / "results.json").read_text())
    report = {
        "rows": ([args.from_eval_row] if args.from_eval else []) + rows,
        "train_seconds": {k: round(v, 1) for k, v in seconds.items()},
        "table": _table(results),
        "pairwise": results.get("pairwise", {}),  # near-copy and seq-rep-4, every two systems
        "endings": results.get("endings", {}),
        "git_commit": results.get("git_commit"),
    }
    (args.out / "ablation.json").write_text(json.dumps(report, indent=2) + "\n")
    (HERE / "results" / "ablation.json").write_text(json.dumps(report, indent=2) + "\n")
    table = _markdown(results, report["train_seconds"], args.versus)
    (args.out / "ablation.md").write_text(table)
    (HERE / "results" / "ablation.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
