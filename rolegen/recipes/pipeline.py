"""Recipe: the whole loop, generate -> filter -> train -> eval, as one resumable command.

Supports: the embedded model or any LLaMA-family checkpoint; the shipped personas
and user scripts for the training dialogues, the held-out suite (`evals/`) for the
eval; every stage's own settings through the config file's `generate:`, `train:`
and `eval:` sections. Each stage writes into `<out>/` (data/, adapter/, eval/);
a stage that finished is skipped on a rerun and one that was interrupted resumes,
so a crash costs at most the work in flight.

The defaults are sized to finish on a 2-core CPU within about 45 minutes with the
embedded model (see README, "The whole loop").
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rolegen.config import EvalConfig, GenerateConfig, PipelineConfig, TrainConfig
from rolegen.options import from_dict
from rolegen.resources import personas_dir
from rolegen.runs import hold_out_dir

# Training data: scripted users (the 135M simulator narrates as the character), 12
# turns, and a resample budget that keeps dialogues going: every rejected candidate
# becomes a DPO negative in a late-turn context, where the repetition happens.
GENERATE_DEFAULTS = {"candidates": 4, "max_resamples": 7, "on_exhausted": "keep"}
# SFT once over the clean turns, then DPO on a sample of the rejects with an NLL term
# on the chosen replies (keeps fluency while the rejected loops are pushed down).
TRAIN_DEFAULTS = {
    "method": "sft+dpo",
    "epochs": 1.0,
    "dpo_epochs": 1.0,
    "dpo_max_pairs": 128,
    "dpo_learning_rate": 1e-4,
    "dpo_sft_weight": 0.5,
    "eval_steps": 0,
}


def _teacher_server(cfg: PipelineConfig) -> dict:
    """Generate settings for a teacher behind a server: its token ids rendered with the
    teacher's own templates when its model folder is given, else chat messages."""
    if not cfg.teacher_url:
        return {}
    mode = "completions" if cfg.teacher_model else "chat"
    return {"engine": "openai", "base_url": cfg.teacher_url, "request_mode": mode}


def _status(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("status")
    except (OSError, ValueError):
        return None


def run_pipeline(cfg: PipelineConfig, echo=print) -> dict:
    from rolegen.recipes.evaluate import run_eval
    from rolegen.recipes.generate import run_generate
    from rolegen.recipes.train import run_train

    cfg.validate()
    out = Path(cfg.out).expanduser()
    data, adapter, evaluation = out / "data", out / "adapter", out / "eval"
    scripts = cfg.user_scripts or [
        str(p) for p in sorted((personas_dir() / "scripts").glob("*.txt"))
    ]
    generate = from_dict(
        GenerateConfig,
        {
            **GENERATE_DEFAULTS,
            "personas": cfg.personas or [str(personas_dir())],
            "user_scripts": scripts,
            "dialogues": cfg.dialogues * len(scripts),
            "turns": cfg.turns,
            "model": cfg.teacher_model or cfg.model,
            "seed": cfg.seed,
            **_teacher_server(cfg),
            **cfg.generate,
            "out": str(data),
            "resume": (data / "dialogues.jsonl").exists(),
        },
        "pipeline config, generate",
    )
    train = from_dict(
        TrainConfig,
        {
            **TRAIN_DEFAULTS,
            "model": cfg.model,
            "seed": cfg.seed,
            **cfg.train,
            "data": str(data),
            "out": str(adapter),
            "resume": (adapter / "checkpoints").is_dir(),
        },
        "pipeline config, train",
    )
    evaluate = from_dict(
        EvalConfig,
        {
            "model": cfg.model,
            "seed": cfg.seed,
            "dialogues": cfg.eval_dialogues,
            **cfg.eval,
            "adapter": str(adapter),
            "out": str(evaluation),
            "resume": (evaluation / "dialogues.jsonl").exists(),
        },
        "pipeline config, eval",
    )

    hold_out_dir(out)  # one pipeline per folder; each stage locks its own folder too
    # a stage skipped on a rerun keeps the time it took when it ran
    try:
        timings = json.loads((out / "pipeline.json").read_text())["timings_seconds"]
    except (OSError, ValueError, KeyError):
        timings = {}
    started = time.perf_counter()

    def so_far() -> str:
        return f"(pipeline {(time.perf_counter() - started) / 60:.1f} min so far)"

    t = time.perf_counter()
    if _status(data / "manifest.json") == "complete":
        echo(f"[1/3] generate: done ({data})")
    else:
        echo(f"[1/3] generate: {data}" + (" (resuming)" if generate.resume else ""))
        run_generate(generate, echo=echo)
        timings["generate"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    if (adapter / "summary.json").is_file():
        echo(f"[2/3] train: done ({adapter})")
    else:
        echo(f"[2/3] train: {adapter}" + (" (resuming) " if train.resume else " ") + so_far())
        run_train(train, echo=echo)
        timings["train"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    echo(f"[3/3] eval: {evaluation}" + (" (resuming) " if evaluate.resume else " ") + so_far())
    results = run_eval(evaluate, echo=echo)
    timings["eval"] = round(time.perf_counter() - t, 1)
    summary = {"out": str(out), "timings_seconds": timings, "results": str(evaluation)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline.json").write_text(json.dumps(summary, indent=2) + "\n")
    return {**summary, "eval": results}
