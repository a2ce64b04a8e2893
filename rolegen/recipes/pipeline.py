"""Recipe: the whole loop, generate -> filter -> train -> eval, as one resumable command.

Supports: the embedded model or any LLaMA-family checkpoint; the shipped personas
and user scripts for the training dialogues, the held-out suite (`evals/`) for the
eval; every stage's own settings through the config file's `generate:`, `train:`
and `eval:` sections; on-policy rounds (`--rounds N`): round k >= 2 generates with
round k-1's adapter (served as `rolegen generate --adapter` serves one) under seeds
of its own (`round_seed`), so the checks reject, and the resamples pair against,
the adapter's own failures rather than the base model's; it then trains on from
that adapter (`rolegen train --init-adapter`, same settings as round 1). The eval
runs once, on the last round's adapter.

Layout of `<out>/`, round 1 being the whole of a one-round run:
    data/, adapter/                  round 1: generate + filter, train
    round2/data/, round2/adapter/    round 2 (and round3/, ... likewise)
    eval/ or round<N>/eval/          the eval of the last round's adapter
    pipeline.json                    stage timings, where the results are
A stage that finished is skipped on a rerun and one that was interrupted resumes,
so a crash costs at most the work in flight; a rerun with a larger `--rounds`
goes on after the last finished round.

Varied prompts: the training dialogues are rendered under rolegen's, tavern-greeting and
sheet-examples prompts, and the eval scores under rolegen's and the held-out plain one
(`generate: {prompts: [...]}` and `eval: {prompts: [...]}` change them); a prompt in
both is no held-out prompt, and the run says so before it starts.

Decoding-fix distillation by default: the training dialogues' replies are drawn with
frequency penalty 0.5 on, each paired against a plain-sampled reply from the same
context (`generate: {distill: null}` turns it off).

A teacher (`--teacher-model`, `--teacher-url`) writes round 1's dialogues only:
later rounds are the student's own, in-process. Not handled: a persona split that
stays put across rounds (the export splits with each round's generate seed).

The defaults are sized to finish on a 2-core CPU within 45 minutes with the embedded
model (about 36 minutes; see docs/pipeline.md).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from rolegen.config import EvalConfig, GenerateConfig, PipelineConfig, TrainConfig
from rolegen.config.options import from_dict
from rolegen.config.shared import check_prompt_names
from rolegen.config.systems import ROLEGEN_PROMPT
from rolegen.errors import RolegenError
from rolegen.generation.templates import Templates
from rolegen.resources import personas_dir
from rolegen.runs.out_dirs import lock_out_dir

# Training data: scripted users (the 135M simulator narrates as the character), 12
# turns, and a resample budget that keeps dialogues going: every rejected candidate
# becomes a DPO negative in a late-turn context, where the repetition happens.
# A reply to "who are you?" gets 24 draws: the embedded base names itself in about 1
# draw in 25 that also passes the other checks.
# The character's replies are drawn with frequency penalty 0.5 on, and beside each
# accepted reply one plain-sampled reply from the same context is its rejected side
# (decoding-fix distillation: the adapter learns what the flag does, without the flag).
# Three training prompts, so that the adapter learns the habit rather than the template;
# `plain` stays out of training for the eval.
GENERATE_DEFAULTS = {
    "candidates": 4,
    "max_resamples": 7,
    "asked_resamples": 23,
    "on_exhausted": "keep",
    "distill": "frequency-penalty=0.5",
    "plain_negatives": 1,
    "prompts": ["rolegen", "tavern-greeting", "sheet-examples"],
}
# SFT three epochs over the clean (distilled) turns, then DPO on a sample of the rejects
# with an NLL term on the chosen replies (keeps fluency while the rejected loops are
# pushed down); each pair's shared context is run once (1.75x the pair tokens/s of two
# sequences). Sequence-level unlikelihood on every 4th micro-batch of both stages pushes
# down the 4-grams the model's own greedy replies repeat. The methods ablation
# (bench/ablation.py, docs/results/) chose the three epochs and the unlikelihood: with one epoch
# and no unlikelihood seq-rep-4 stayed at 5x the frequency penalty's; with both it is
# at or below the flag's under rolegen's prompt and the held-out plain one.
TRAIN_DEFAULTS = {
    "method": "sft+dpo",
    "epochs": 3.0,
    "dpo_epochs": 1.0,
    "dpo_max_pairs": 128,
    "dpo_learning_rate": 1e-4,
    "dpo_sft_weight": 0.5,
    "dpo_shared_prefix": True,
    "ul_weight": 0.5,
    "ul_every": 4,
    "eval_steps": 0,
}
# The eval scores under rolegen's prompt and under the held-out plain one, against base
# and the decoding fixes a user tries first (repetition penalty 1.3 and the adapter with
# a flag on top are left to `rolegen eval`: neither is the question the pipeline asks).
EVAL_DEFAULTS = {
    "prompts": ["rolegen", "plain"],
    "systems": [
        "base",
        "base+repetition-penalty=1.15",
        "base+frequency-penalty=0.5",
        "base+no-repeat-ngram=3",
        "adapter",
    ],
}


def _teacher_server(cfg: PipelineConfig) -> dict:
    """Generate settings for a teacher behind a server: its token ids rendered with the
    teacher's own templates when its model folder is given, else chat messages."""
    if not cfg.teacher_url:
        return {}
    mode = "completions" if cfg.teacher_model else "chat"
    return {"engine": "openai", "base_url": cfg.teacher_url, "request_mode": mode}


def round_seed(seed: int, k: int) -> int:
    """Round k's generate seed: `seed` itself in round 1 (a one-round pipeline generates
    with the run's own seed), after that one derived from both, so that round k does not
    replay round k-1's dialogues; a hash, so that no round's seed is another run's seed + 1."""
    if k == 1:
        return seed
    return int.from_bytes(hashlib.sha256(f"{seed}/round/{k}".encode()).digest()[:4], "big") >> 1


def round_dir(out: Path, k: int) -> Path:
    """Round k's folder: the run folder itself for round 1, `<out>/round<k>` after."""
    return out if k == 1 else out / f"round{k}"


@dataclass
class _Round:
    k: int
    data: Path
    adapter: Path
    generate: GenerateConfig
    train: TrainConfig


def _round(cfg: PipelineConfig, out: Path, k: int) -> _Round:
    """Round k's generate and train settings: round 1 from the pipeline's settings (and
    the teacher's), round k >= 2 the student with round k-1's adapter, on new seeds."""
    data, adapter = round_dir(out, k) / "data", round_dir(out, k) / "adapter"
    previous = round_dir(out, k - 1) / "adapter"
    scripts = cfg.user_scripts or [
        str(p) for p in sorted((personas_dir() / "scripts").glob("*.txt"))
    ]
    teacher = {"model": cfg.teacher_model or cfg.model, **_teacher_server(cfg)}
    generate = {
        **GENERATE_DEFAULTS,
        "personas": cfg.personas or [str(personas_dir())],
        "user_scripts": scripts,
        "dialogues": cfg.dialogues * len(scripts),
        "turns": cfg.turns,
        "model": cfg.model,
        "seed": cfg.seed,
        **(teacher if k == 1 else {}),
        **cfg.generate,
    }
    if k > 1:
        seed = round_seed(generate["seed"], k)
        generate.update(model=cfg.model, seed=seed, adapter=str(previous))
    train = {
        **TRAIN_DEFAULTS,
        "model": cfg.model,
        "seed": cfg.seed,
        **cfg.train,
        **({"init_adapter": str(previous)} if k > 1 else {}),
        "data": str(data),
        "out": str(adapter),
        "resume": (adapter / "checkpoints").is_dir(),
    }
    generate.update(out=str(data), resume=(data / "dialogues.jsonl").exists())
    return _Round(
        k,
        data,
        adapter,
        from_dict(GenerateConfig, generate, "pipeline config, generate"),
        from_dict(TrainConfig, train, "pipeline config, train"),
    )


def _check_prompts(generate: GenerateConfig, evaluate: EvalConfig, echo) -> None:
    """Prompt names of both stages checked now, not after the training rounds; an eval
    prompt the training dialogues were also drawn from (rolegen's own aside) is noted."""
    for names, folder in (
        (generate.prompt_names, generate.model_args.templates),
        (evaluate.prompt_names, evaluate.model_args.templates),
    ):
        check_prompt_names(names)
        templates = Templates(folder)
        for name in names:
            templates.prompt_style(name)
    trained = [p for p in evaluate.prompt_names if p in generate.prompt_names]
    trained = [p for p in trained if p != ROLEGEN_PROMPT]
    if trained:
        echo(
            f"note: eval prompt(s) {', '.join(trained)} also render training dialogues "
            "(generate: prompts): their figures do not measure a held-out prompt"
        )


def _validate(config, stage: str) -> None:
    """A stage's settings checked before any stage runs, the error naming the stage."""
    try:
        config.validate()
    except RolegenError as e:
        raise RolegenError(f"pipeline config, {stage}: {e}") from None


def _tag(stage: str, k: int, rounds: int) -> str:
    """A stage header's start: `[2/3] train` in a one-round run, `[round 2/3] train` in
    a run of more rounds (the eval then belongs to the last)."""
    if rounds == 1:
        return f"[{('generate', 'train', 'eval').index(stage) + 1}/3] {stage}"
    return f"[round {k}/{rounds}] {stage}"


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
    # every round's settings now: a bad one fails before round 1 has spent its minutes
    rounds = [_round(cfg, out, k) for k in range(1, cfg.rounds + 1)]
    last = rounds[-1]
    evaluation = round_dir(out, cfg.rounds) / "eval"
    evaluate = from_dict(
        EvalConfig,
        {
            "model": cfg.model,
            "seed": cfg.seed,
            "dialogues": cfg.eval_dialogues,
            **EVAL_DEFAULTS,
            **cfg.eval,
            "adapter": str(last.adapter),
            "out": str(evaluation),
            "resume": (evaluation / "dialogues.jsonl").exists(),
        },
        "pipeline config, eval",
    )

    for r in rounds:
        _validate(r.generate, "generate")
        _validate(r.train, "train")
    _validate(evaluate, "eval")
    _check_prompts(rounds[0].generate, evaluate, echo)

    lock_out_dir(out)  # one pipeline per folder; each stage locks its own folder too
    # a stage skipped on a rerun keeps the time it took when it ran
    try:
        timings = json.loads((out / "pipeline.json").read_text())["timings_seconds"]
    except (OSError, ValueError, KeyError):
        timings = {}
    started = time.perf_counter()

    def so_far() -> str:
        return f"(pipeline {(time.perf_counter() - started) / 60:.1f} min so far)"

    def key(stage: str, k: int) -> str:  # round 1's keys are a one-round run's
        return stage if k == 1 else f"round{k}/{stage}"

    for r in rounds:
        t = time.perf_counter()
        tag = _tag("generate", r.k, cfg.rounds)
        if _status(r.data / "manifest.json") == "complete":
            echo(f"{tag}: done ({r.data})")
        else:
            echo(f"{tag}: {r.data}" + (" (resuming)" if r.generate.resume else ""))
            run_generate(r.generate, echo=echo)
            timings[key("generate", r.k)] = round(time.perf_counter() - t, 1)

        t = time.perf_counter()
        tag = _tag("train", r.k, cfg.rounds)
        if (r.adapter / "summary.json").is_file():
            echo(f"{tag}: done ({r.adapter})")
        else:
            resuming = " (resuming) " if r.train.resume else " "
            echo(f"{tag}: {r.adapter}{resuming}{so_far()}")
            run_train(r.train, echo=echo)
            timings[key("train", r.k)] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    tag = _tag("eval", cfg.rounds, cfg.rounds)
    whose = f"(round {cfg.rounds} adapter) " if cfg.rounds > 1 else ""
    resuming = " (resuming) " if evaluate.resume else " "
    echo(f"{tag}: {evaluation}{resuming}{whose}{so_far()}")
    results = run_eval(evaluate, echo=echo)
    timings[key("eval", cfg.rounds)] = round(time.perf_counter() - t, 1)
    summary = {"out": str(out), "timings_seconds": timings, "results": str(evaluation)}
    if cfg.rounds > 1:
        summary.update(rounds=cfg.rounds, adapter=str(last.adapter))
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline.json").write_text(json.dumps(summary, indent=2) + "\n")
    return {**summary, "eval": results}
