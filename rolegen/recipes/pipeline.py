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

The stages' settings, the defaults and why they were chosen are in
`config/pipeline_stages.py`; the measured time of the default loop is in
docs/pipeline.md. A teacher (`--teacher-model`, `--teacher-url`) writes round 1's
dialogues only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rolegen.config import EvalConfig, GenerateConfig, PipelineConfig
from rolegen.config.pipeline_stages import eval_stage, plan_round, round_dir
from rolegen.config.shared import check_prompt_names
from rolegen.config.systems import ROLEGEN_PROMPT
from rolegen.errors import RolegenError
from rolegen.generation.templates import Templates
from rolegen.runs.out_dirs import lock_out_dir


def _check_prompts(generate: GenerateConfig, evaluate: EvalConfig, echo) -> None:
    """Prompt names of both stages checked now, not after the training rounds; an eval
    prompt the training dialogues were also drawn from (rolegen's own aside) is noted."""
    for names, folder in (
        (generate.prompt_names, generate.model_config.templates),
        (evaluate.prompt_names, evaluate.model_config.templates),
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
    rounds = [plan_round(cfg, out, k) for k in range(1, cfg.rounds + 1)]
    last = rounds[-1]
    evaluation = round_dir(out, cfg.rounds) / "eval"
    evaluate = eval_stage(cfg, evaluation, last.adapter)

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

    def record(stage: str, k: int, t: float) -> None:
        # written as each stage ends, so a crash later keeps the times of those before it
        timings[key(stage, k)] = round(time.perf_counter() - t, 1)
        out.mkdir(parents=True, exist_ok=True)
        (out / "pipeline.json").write_text(
            json.dumps({"out": str(out), "timings_seconds": timings}, indent=2) + "\n"
        )

    for r in rounds:
        t = time.perf_counter()
        tag = _tag("generate", r.k, cfg.rounds)
        if _status(r.data / "manifest.json") == "complete":
            echo(f"{tag}: done ({r.data})")
        else:
            echo(f"{tag}: {r.data}" + (" (resuming)" if r.generate.resume else ""))
            run_generate(r.generate, echo=echo)
            record("generate", r.k, t)

        t = time.perf_counter()
        tag = _tag("train", r.k, cfg.rounds)
        if (r.adapter / "summary.json").is_file():
            echo(f"{tag}: done ({r.adapter})")
        else:
            resuming = " (resuming) " if r.train.resume else " "
            echo(f"{tag}: {r.adapter}{resuming}{so_far()}")
            run_train(r.train, echo=echo)
            record("train", r.k, t)

    t = time.perf_counter()
    tag = _tag("eval", cfg.rounds, cfg.rounds)
    whose = f"(round {cfg.rounds} adapter) " if cfg.rounds > 1 else ""
    resuming = " (resuming) " if evaluate.resume else " "
    echo(f"{tag}: {evaluation}{resuming}{whose}{so_far()}")
    results = run_eval(evaluate, echo=echo)
    record("eval", cfg.rounds, t)
    summary = {"out": str(out), "timings_seconds": timings, "results": str(evaluation)}
    if cfg.rounds > 1:
        summary.update(rounds=cfg.rounds, adapter=str(last.adapter))
    (out / "pipeline.json").write_text(json.dumps(summary, indent=2) + "\n")
    return {**summary, "eval": results}
