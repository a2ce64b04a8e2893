"""Recipe: does the fine-tune still repeat itself? Base vs decoding fixes vs adapter.

Supports: the shipped held-out suite (`evals/`) or any cards and user scripts; systems =
base or adapter, each with optional decoding settings (repetition/frequency/presence
penalty, no-repeat n-gram), under one or more prompts (`--prompts`); the vLLM engine,
transformers or a server; `--data` to score dialogues made anywhere, without a model.
Every system sees the same user turns and request seeds (`evaluation/suite.py`). A
dialogue that ends early leaves its later turns unscored; results.json's `endings` counts
those per system and why. On a GPU one vLLM engine serves base and LoRA requests side by
side; on a CPU the adapter systems run on a merged copy in a second engine
(`generation/session.py`).

Outputs in `<out>/`: dialogues.jsonl (every system, resumable), turns.jsonl (the per-turn
scores), results.json (figures with intervals, config, versions, git hash, date, sample
counts), report.md / report.html with plots. The steps live in `rolegen/evaluation/`: the
suite and plan (`suite.py`), dialogues made elsewhere (`data_source.py`), the scores
(`scoring.py`), the learned persona check (`persona_model.py`), the judge (`judge.py`), the
figures by depth (`depth.py`), the report.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rolegen.cards.files import load_cards
from rolegen.config import EvalConfig
from rolegen.config.options import to_dict
from rolegen.evaluation import depth
from rolegen.evaluation.data_source import data_dialogues
from rolegen.evaluation.metrics import endings
from rolegen.evaluation.scoring import figures, score_turns
from rolegen.evaluation.suite import (
    EVAL_CONTENT_FIELDS,
    check_first_prompts,
    describe,
    eval_dialogues,
    eval_systems,
    load_suite,
    loop_settings,
)
from rolegen.generation.replicas import replica_spec
from rolegen.generation.session import engine_groups, open_model, run_dialogues
from rolegen.generation.templates import template_folders
from rolegen.runs.folders import (
    RunDir,
    default_run_dir,
    git_commit,
    input_hashes,
    package_versions,
    timestamp,
    write_json_atomic,
)
from rolegen.runs.out_dirs import check_out_dir, lock_out_dir
from rolegen.runs.records import read_dialogues


def run_eval(cfg: EvalConfig, echo=print) -> dict:
    from rolegen.evaluation.report import write_report

    cfg.validate()
    started = timestamp()
    t0 = time.perf_counter()
    cards = load_cards(cfg.personas)
    records, model_path, out, meta = _dialogues(cfg, cards, echo)
    rows, persona_chance = score_turns(cfg, records, model_path, cards, echo)
    learned = None
    if cfg.persona_model:  # the learned persona check, beside the pattern checks
        from rolegen.evaluation.persona_model import add_learned

        echo(f"scoring {len(rows)} replies with the learned persona check ...")
        learned = add_learned(rows, records, cards)
        if learned["unscored"]:
            echo(
                f"the learned persona check left {learned['unscored']} replies to the patterns "
                "alone: empty, or their card has no text to read (give --persona)"
            )
    judge = None
    if cfg.judge.enabled:  # the model judge's verdicts, beside the pattern checks
        from rolegen.evaluation.judge import add_verdicts

        echo(f"asking the model judge about {len(rows)} replies ...")
        judge = add_verdicts(cfg.judge, rows, records, cards)
    summary = figures(rows, records, cfg)
    systems = list(dict.fromkeys(r["system"] for r in records))
    lock_out_dir(out)  # made now, and locked until the command ends (held already if generated)
    with (out / "turns.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    results = {
        **summary,
        "persona_chance": persona_chance,
        "depth": depth.figures(rows, cfg.bootstrap, cfg.seed),
        "persona_model": learned,
        "judge": judge,
        "config": to_dict(cfg),
        **meta,
        "samples": {s: summary["systems"].get(s, {}).get("turns", 0) for s in systems},
        "endings": endings(records, rows),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "date": started,
        "seconds": round(time.perf_counter() - t0, 1),
        "out": str(out),
    }
    write_json_atomic(out / "results.json", results)
    write_report(results, records, rows, out)
    return results


def _dialogues(cfg: EvalConfig, cards, echo) -> tuple[list[dict], Path | None, Path, dict]:
    """The dialogues to score, read (`--data`) or generated: (records, the model that
    scores fluency (None: none), the output folder, run metadata for results.json)."""
    if cfg.data:
        return data_dialogues(cfg, cards, echo)
    if cfg.out:
        out = Path(cfg.out)
    elif cfg.engine_config.adapter:
        out = Path(cfg.engine_config.adapter).expanduser().resolve().parent / "eval"
    else:
        out = default_run_dir("eval-")
    check_out_dir(out)  # before the model loads
    meta, model_path = _generate(cfg, out, echo)
    records, _ = read_dialogues(out / "dialogues.jsonl", on_error="stop")
    order = {name: i for i, name in enumerate(meta["system_settings"])}
    records = [r for r in records if r.get("system") in order]
    records.sort(key=lambda r: order[r["system"]])  # plan order: prompt by prompt
    return records, model_path, out, meta


def _generate(cfg: EvalConfig, out: Path, echo) -> tuple[dict, Path]:
    """Generate every planned dialogue not yet in `out`: (run metadata, the model's
    folder). All input is checked before the run folder is made."""
    systems = eval_systems(cfg, echo)
    suite = load_suite(cfg)
    session = open_model(cfg.model_config, cfg.engine_config, cfg.max_new_tokens, echo=echo)
    setup = session.setup
    builders = {
        name: setup.prompt_builder(cfg.max_new_tokens, setup.templates.prompt_style(name))
        for name in cfg.prompt_names
    }
    dialogues = eval_dialogues(cfg, suite, systems, cfg.prompt_names)
    check_first_prompts(suite, builders)
    config = to_dict(cfg)
    inputs = {**suite.inputs, **input_hashes((), template_folders(cfg.model_config.templates))}
    run = RunDir(out, cfg.resume, config, EVAL_CONTENT_FIELDS, inputs=inputs)
    run.write_manifest(
        {
            "config": config,
            "started": timestamp(),
            "model": setup.info.to_dict(),
            "adapter": session.adapter.to_dict() if session.adapter else None,
        }
    )
    todo = [d for d in dialogues if d.id not in run.done_ids]
    if len(todo) < len(dialogues):
        echo(f"resume: {len(dialogues) - len(todo)} dialogues done, {len(todo)} to go")

    extra = {"model": setup.info.path, "seed": cfg.seed}

    def write(d) -> None:
        record = {"system": d.id.split("/", 1)[0], "seed_key": d.seed_key, "prompt": d.prompt}
        run.append(d.to_record({**record, "format": builders[d.prompt].format.name, **extra}))

    seconds, tokens = 0.0, 0
    try:
        for group in engine_groups(session, todo, echo=echo):
            spec = replica_spec(
                setup,
                cfg.engine_config,
                session.engine,
                loop_settings(cfg, suite),
                batch_size=cfg.batch_size,
                tensor_parallel=cfg.cluster.tensor_parallel,
                engine_model=group.engine_model,
                lora=group.lora,
                no_repeat_ngram=any(d.sampling.get("no_repeat_ngram") for d in group.dialogues),
                prompts=tuple(cfg.prompt_names),
            )
            stats = run_dialogues(
                spec,
                group.dialogues,
                write,
                batch_size=cfg.batch_size,
                cluster=cfg.cluster,
                planned_turns=lambda d: len(d.script),
                desc="eval",
                echo=echo,
            )
            seconds += stats.loop.engine_seconds
            tokens += stats.loop.generated_tokens
    finally:
        run.close()
    meta = {
        "model": setup.info.to_dict(),
        "format": setup.format.name,
        "adapter": session.adapter_record(),
        **describe(cfg, suite, systems, builders),
        "engine": session.engine,
        "generated_tokens": tokens,
        "engine_seconds": round(seconds, 2),
    }
    return meta, setup.path
