"""Recipe: persona cards + templates -> batched multi-turn dialogues.

Supports: shipped YAML personas, Character Card V2/V3 (JSON, PNG), user personas
played by the same model or a scripted user; the vLLM engine, transformers or an
OpenAI-compatible server; the tokenizer's chat template or a format template; prompts
drawn per dialogue (`--prompts`); resume after a crash. Everything that can be checked
is checked before the engine loads, so bad input fails in seconds and a finished
dialogue is never lost.

The steps live in components: the plan (`generation/plan.py`), the model and the
batches (`generation/session.py`), the manifest and summary
(`generation/run_report.py`), the checks and export (`recipes/filter.py`).
"""

from __future__ import annotations

import time
from pathlib import Path

from rolegen.cards.files import card_paths, load_cards, persona_folders
from rolegen.config import FilterConfig, GenerateConfig
from rolegen.config.options import to_dict
from rolegen.config.systems import ROLEGEN_PROMPT
from rolegen.generation.cluster import RunStats
from rolegen.generation.plan import (
    check_first_prompts,
    loop_settings,
    plan_dialogues,
    prompt_builders,
    users_and_scripts,
)
from rolegen.generation.replicas import ReplicaSpec, replica_spec
from rolegen.generation.run_report import (
    Summary,
    Tally,
    advice,
    finish_manifest,
    start_manifest,
)
from rolegen.generation.session import (
    EngineGroup,
    ModelSession,
    engine_groups,
    open_model,
    run_dialogues,
)
from rolegen.generation.templates import template_folders
from rolegen.recipes.filter import run_filter
from rolegen.runs.folders import RunDir, default_run_dir, input_hashes
from rolegen.runs.out_dirs import check_out_dir
from rolegen.runs.sillytavern_export import check_export_dir


def run_generate(cfg: GenerateConfig, echo=print) -> Summary:
    cfg.validate()
    if cfg.out:
        check_out_dir(cfg.out)  # an --out that cannot be written fails before the model loads
        if cfg.export and cfg.sillytavern:
            check_export_dir(Path(cfg.out) / "sillytavern")
    t_start = time.perf_counter()
    personas = load_cards(cfg.personas)
    users, scripts = users_and_scripts(cfg)
    server = cfg.engine_config.engine == "openai"  # the weights live with the server
    session = open_model(
        cfg.model_config,
        cfg.engine_config,
        cfg.sampling.max_new_tokens,
        need_weights=not server,
        echo=echo,
    )
    dialogues = plan_dialogues(cfg, personas, users, scripts)
    builders = prompt_builders(session.setup, cfg)
    check_first_prompts(builders, dialogues, bool(scripts), cfg.turns)

    # a resume refuses a card, script or template whose content changed, and a card
    # added to or removed from a --persona folder, not only another path
    config = to_dict(cfg)
    folders = {**persona_folders(cfg.personas), **template_folders(cfg.model_config.templates)}
    inputs = input_hashes(card_paths(personas) + cfg.user_scripts, folders)
    run = RunDir(Path(cfg.out) if cfg.out else default_run_dir(), cfg.resume, config, inputs=inputs)
    todo = [d for d in dialogues if d.id not in run.done_ids]
    if len(todo) < len(dialogues):
        done = len(dialogues) - len(todo)
        echo(f"resume: {done} dialogues already in {run.dialogues_path}, {len(todo)} to go")
    manifest = start_manifest(cfg, config, session, personas, dialogues)

    t_load = time.perf_counter()
    groups = engine_groups(session, todo, echo=echo)
    extra = {
        "format": session.setup.format.name,
        "model": session.setup.info.path,
        "seed": cfg.seed,
    }
    # a record names its prompt only when the run draws from more than rolegen's own
    tally = Tally(run, extra, varied=cfg.prompt_names != [ROLEGEN_PROMPT])
    stats = RunStats(where="ray" if cfg.cluster.on_ray else "local")
    t_gen = time.perf_counter()
    try:
        # inside the try: a run stopped from here on (a signal, an engine that fails to
        # start) always ends with its manifest saying so
        run.write_manifest(manifest)
        for group in groups:
            run_dialogues(
                _spec(cfg, session, group),
                group.dialogues,
                tally.write,
                batch_size=cfg.batch_size,
                cluster=cfg.cluster,
                planned_turns=lambda d: cfg.turns,
                desc="generate",
                stats=stats,
                echo=echo,
            )
    finally:
        run.close()
        finish_manifest(
            manifest,
            complete=run.done_ids >= {d.id for d in dialogues},
            tally=tally,
            stats=stats,
            total=len(run.done_ids),
            setup_seconds=t_load - t_start,
            # the engine loads inside run_dialogues: its time is not generation time
            gen_seconds=time.perf_counter() - t_gen - stats.load_seconds,
            on_ray=cfg.cluster.on_ray,
        )
        run.write_manifest(manifest)
    dataset = None
    if cfg.export and run.done_ids:
        echo("checking and exporting the dataset ...")
        filter_cfg = FilterConfig(
            out=str(run.path), seed=cfg.seed, checks=cfg.checks, sillytavern=cfg.sillytavern
        )
        dataset = run_filter(run.dialogues_path, filter_cfg, echo=echo)
    return Summary(
        dataset=dataset,
        run_dir=run.path,
        dialogues=tally.written,
        skipped=len(dialogues) - len(todo),
        character_turns=tally.character_turns,
        generated_tokens=stats.loop.generated_tokens,
        engine_seconds=stats.loop.engine_seconds,
        wall_seconds=time.perf_counter() - t_start,
        end_reasons=tally.end_reasons,
        turns=cfg.turns,
        replies_drawn=stats.loop.replies_drawn,
        replies_passed=stats.loop.replies_passed,
        advice=advice(cfg, tally.end_reasons),
    )


def _spec(cfg: GenerateConfig, session: ModelSession, group: EngineGroup) -> ReplicaSpec:
    """The engine replica that runs one group of the run's dialogues."""
    return replica_spec(
        session.setup,
        cfg.engine_config,
        session.engine,
        loop_settings(cfg),
        batch_size=cfg.batch_size,
        no_repeat_ngram=bool(cfg.distill_sampling.get("no_repeat_ngram")),
        tensor_parallel=cfg.cluster.tensor_parallel,
        engine_model=group.engine_model,
        lora=group.lora,
        checks=cfg.checks if cfg.check else None,
        prompts=tuple(cfg.prompt_names),
    )
