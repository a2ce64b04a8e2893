"""Recipe: persona cards + templates -> batched multi-turn dialogues.

Supports: shipped YAML personas, Character Card V2/V3 (JSON, PNG), user personas
played by the same model or a scripted user; the vLLM engine or transformers;
the tokenizer's chat template or a format template; resume after a crash.
Everything that can be checked is checked before the engine loads, so bad input
fails in seconds and a finished dialogue is never lost.

Varied prompts (`--prompts rolegen,tavern-greeting,sheet-examples`; default rolegen
alone): each dialogue is rendered with one prompt (templates.py's `PromptStyle`), drawn
by `draw_prompt`; its system prompt and greeting (or none) are in its messages, so
training sees each dialogue under its own prompt with no setting of its own, and the
record's `prompt` names it (a run under rolegen's prompt alone writes no `prompt`). With
the transformers engine each prompt's dialogues form their own batches (the requests'
`group`, as in the eval). Not handled: prompts in another format than the run's
(training renders a dataset in one format), so such a prompt is refused.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from rolegen.cards.files import load_personas, persona_folders
from rolegen.cards.personas import (
    UserPersona,
    available_user_personas,
    load_user_persona,
    load_user_script,
)
from rolegen.config import FilterConfig, GenerateConfig
from rolegen.config.options import to_dict
from rolegen.config.systems import ROLEGEN_PROMPT
from rolegen.errors import RolegenError
from rolegen.generation.cluster import RunStats, run_batches
from rolegen.generation.dialogue import LoopSettings
from rolegen.generation.dialogue_state import Dialogue
from rolegen.generation.engines import resolve_engine
from rolegen.generation.prompts import PromptBuilder, resolve_persona
from rolegen.generation.replicas import adapter_serving, replica_spec, setup_model
from rolegen.generation.templates import template_folders
from rolegen.models.adapters import load_adapter, merged_model
from rolegen.recipes.filter import run_filter
from rolegen.runs.folders import (
    RunDir,
    default_run_dir,
    git_commit,
    input_hashes,
    package_versions,
)
from rolegen.runs.out_dirs import check_out_dir
from rolegen.runs.sillytavern_export import check_export_dir


@dataclass
class Summary:
    run_dir: Path
    dialogues: int
    skipped: int
    character_turns: int
    generated_tokens: int
    engine_seconds: float
    wall_seconds: float
    end_reasons: dict
    turns: int = 0  # character turns requested per dialogue
    replies_drawn: int = 0  # character replies sampled (resamples included)
    replies_passed: int = 0  # of those, the ones the checks accepted
    advice: list[str] = field(default_factory=list)  # settings that would raise the yield
    dataset: dict | None = None

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.engine_seconds if self.engine_seconds else 0.0


def _advice(cfg: GenerateConfig, end_reasons: dict[str, int]) -> list[str]:
    """What to change when most dialogues of this session ended early on rejected replies."""
    written = sum(end_reasons.values())
    exhausted = sum(n for r, n in end_reasons.items() if r.startswith(("rejected_", "empty_")))
    if not written or exhausted * 2 < written:
        return []
    advice = [
        f"--max-resamples {max(2 * cfg.max_resamples, cfg.max_resamples + 4)} "
        f"(now {cfg.max_resamples}): more samples per turn before a dialogue ends"
    ]
    if cfg.resample_temperature_step == 0:
        advice.append(
            "--resample-temperature-step 0.3: each resample round samples hotter, out of "
            "the loop the last one fell into (see docs/generate.md)"
        )
    if cfg.on_exhausted == "end":
        advice.append(
            "--on-exhausted keep: keep the last candidate, flagged, and go on (the filter "
            "then cuts the dialogue there)"
        )
    return advice


def _unique_slugs(personas):
    seen: dict[str, int] = {}
    for p in personas:
        n = seen.get(p.slug, 0)
        seen[p.slug] = n + 1
        yield p, p.slug if n == 0 else f"{p.slug}-{n + 1}"


def draw_prompt(seed: int, dialogue_id: str, prompts: list[str]) -> str:
    """The prompt a dialogue is rendered with, drawn from `prompts` by a hash of the run
    seed and the dialogue's id alone: a resumed run, or one with more dialogues, draws
    the same for every dialogue it already had, whatever else is planned beside it."""
    if len(prompts) == 1:
        return prompts[0]
    digest = hashlib.sha256(f"{seed}/{dialogue_id}/prompt".encode()).digest()
    return prompts[int.from_bytes(digest[:8], "big") % len(prompts)]


def plan(
    cfg: GenerateConfig, personas, users: list[UserPersona], scripts: list[list[str]]
) -> list[Dialogue]:
    """Every dialogue of the run, in a fixed order with stable ids; dialogues cycle
    through the user personas (or the user scripts) and draw their prompt."""
    dialogues = []
    for persona, slug in _unique_slugs(personas):
        for i in range(cfg.dialogues):
            user = users[i % len(users)]
            dialogue_id = f"{slug}-{i:04d}"
            dialogues.append(
                Dialogue(
                    id=dialogue_id,
                    persona=resolve_persona(persona, user.name),
                    user=user,
                    script=scripts[i % len(scripts)] if scripts else None,
                    prompt=draw_prompt(cfg.seed, dialogue_id, cfg.prompt_names),
                    sampling=cfg.distill_sampling,  # the character's decoding fix, if any
                )
            )
    return dialogues


def _prompt_builders(setup, cfg: GenerateConfig) -> dict[str, PromptBuilder]:
    """A builder per --prompts name; unknown names and prompts in another format than
    the run's are refused (training renders the whole dataset in the run's format)."""
    builders = {}
    for name in cfg.prompt_names:
        builder = setup.prompt_builder(
            cfg.sampling.max_new_tokens, setup.templates.prompt_style(name)
        )
        if builder.format.name != setup.format.name:
            raise RolegenError(
                f"--prompts {name}: the prompt renders in format '{builder.format.name}', the "
                f"run in '{setup.format.name}', and training renders a dataset in one format; "
                f"pass --format {builder.format.name}, or leave the prompt out"
            )
        builders[name] = builder
    return builders


def _render_first_prompts(
    builders: dict[str, PromptBuilder], dialogues: list[Dialogue], scripted: bool, turns: int
):
    """Render every persona's first prompts under each prompt it drew now: a broken card
    or template fails before the engine spends a minute loading."""
    for d in {(d.persona.name, d.prompt): d for d in dialogues}.values():
        builder = builders[d.prompt]
        opening = builder.greeting(d.persona)
        builder.character_system(d.persona, d.user, [])
        builder.first_prompt(d.persona, d.user)  # refuses a card too large for the context
        if not scripted:
            prompt = builder.user_prompt(d.persona, d.user, [opening] if opening else [], 1, turns)
            builder.require_fit(prompt, d.persona)


def run_generate(cfg: GenerateConfig, echo=print) -> Summary:
    cfg.validate()
    if cfg.out:
        check_out_dir(cfg.out)  # an --out that cannot be written fails before the model loads
        if cfg.export and cfg.sillytavern:
            check_export_dir(Path(cfg.out) / "sillytavern")
    t_start = time.perf_counter()
    personas = [p for source in cfg.personas for p in load_personas(source)]
    scripts = [load_user_script(path) for path in cfg.user_scripts]
    if scripts:
        users = [UserPersona(name="User", source="script")]
    else:
        names = cfg.user_personas or available_user_personas()
        users = [load_user_persona(n) for n in names] or [UserPersona()]

    server = cfg.engine_args.engine == "openai"  # the weights live with the server
    setup = setup_model(cfg.model_args, cfg.sampling.max_new_tokens, need_weights=not server)
    info, fmt = setup.info, setup.format
    echo(
        f"model: {info.path} ({info.architecture}, vocab {info.vocab_size}, tokenizer "
        f"{info.tokenizer_size}, context {info.context_length}, eos {info.eos_token_ids})"
    )
    for w in info.warnings:
        echo(f"  note: {w}")
    engine_name = resolve_engine(cfg.engine_args.engine)
    dialogues = plan(cfg, personas, users, scripts)
    builders = _prompt_builders(setup, cfg)
    _render_first_prompts(builders, dialogues, bool(scripts), cfg.turns)

    adapter, serving = None, None
    if cfg.engine_args.adapter:
        adapter = load_adapter(cfg.engine_args.adapter, setup.path, info)
        serving = adapter_serving(engine_name, cfg.engine_args.adapter_serving)
        echo(f"adapter: {adapter.path} (r={adapter.r}), served as {serving}")

    run_dir = Path(cfg.out) if cfg.out else default_run_dir()
    config = to_dict(cfg)
    # a resume refuses a card, script or template whose content changed, and a card
    # added to or removed from a --persona folder, not only another path
    cards = [p.source for p in personas if p.source and Path(p.source).is_file()]
    folders = {**persona_folders(cfg.personas), **template_folders(cfg.model_args.templates)}
    inputs = input_hashes(cards + cfg.user_scripts, folders)
    run = RunDir(run_dir, cfg.resume, config, inputs=inputs)
    todo = [d for d in dialogues if d.id not in run.done_ids]
    skipped = len(dialogues) - len(todo)
    manifest = {
        "status": "running",
        "config": config,
        "model": info.to_dict(),
        "format": fmt.name,
        "adapter": {**adapter.to_dict(), "serving": serving} if adapter else None,
        "templates": setup.templates.used,
        "max_context": setup.max_context,
        "versions": package_versions(),
        "git_commit": git_commit(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "personas": {p.name: p.source for p in personas},
        # dialogues of the whole run (resumed ones included) per prompt, in --prompts order
        "prompts": {n: sum(d.prompt == n for d in dialogues) for n in cfg.prompt_names},
    }
    if skipped:
        echo(f"resume: {skipped} dialogues already in {run.dialogues_path}, {len(todo)} to go")

    t_load = time.perf_counter()
    engine_model = None
    if adapter and serving == "merged" and todo:
        engine_model = merged_model(adapter, setup.path, echo=echo)
    spec = replica_spec(
        setup,
        cfg.engine_args,
        engine_name,
        LoopSettings(
            turns=cfg.turns,
            seed=cfg.seed,
            temperature=cfg.sampling.temperature,
            top_p=cfg.sampling.top_p,
            repetition_penalty=cfg.sampling.repetition_penalty,
            max_new_tokens=cfg.sampling.max_new_tokens,
            user_max_new_tokens=cfg.sampling.user_max_new_tokens,
            max_resamples=cfg.max_resamples,
            asked_resamples=cfg.asked_resamples,
            on_exhausted=cfg.on_exhausted,
            candidates=cfg.candidates,
            resample_temperature_step=cfg.resample_temperature_step,
            plain_negatives=cfg.plain_negatives if cfg.distill else 0,
            cross_card_negatives=cfg.cross_card_negatives,
        ),
        batch_size=cfg.batch_size,
        no_repeat_ngram=bool(cfg.distill_sampling.get("no_repeat_ngram")),
        tensor_parallel=cfg.cluster.tensor_parallel,
        engine_model=engine_model,
        lora=adapter if serving == "lora" else None,
        checks=cfg.checks if cfg.check else None,
        prompts=tuple(cfg.prompt_names),
    )
    # the batches a local run makes, in plan order (on Ray too: see cluster.py)
    batches = [todo[i : i + cfg.batch_size] for i in range(0, len(todo), cfg.batch_size)]
    # a record names its prompt only when the run draws from more than rolegen's own
    varied = cfg.prompt_names != [ROLEGEN_PROMPT]
    end_reasons: dict[str, int] = {}
    turns_done = written = 0
    stats = RunStats()
    t_gen = time.perf_counter()
    try:
        # inside the try: a run stopped from here on (a signal, an engine that fails to
        # start) always ends with its manifest saying so
        run.write_manifest(manifest)
        with tqdm(
            total=len(todo) * cfg.turns, unit="turn", desc="generate", dynamic_ncols=True
        ) as bar:

            def on_batch(batch: list[Dialogue]) -> None:
                nonlocal written, turns_done
                for d in batch:
                    extra = {"format": fmt.name, "model": info.path, "seed": cfg.seed}
                    if varied:
                        extra["prompt"] = d.prompt
                    record = d.to_record(extra)
                    run.append(record)
                    written += 1
                    end_reasons[record["end_reason"]] = end_reasons.get(record["end_reason"], 0) + 1
                    turns_done += d.character_turns
                # dialogues that ended early still count their planned turns as done
                bar.update(written * cfg.turns - bar.n)
                if not cfg.cluster.on_ray:  # a Ray run's figures come back with its stats
                    tok_s = stats.loop.generated_tokens / max(stats.loop.engine_seconds, 1e-9)
                    bar.set_postfix(tok_s=f"{tok_s:.0f}")

            run_batches(
                spec, batches, on_batch, cfg.cluster, stats=stats, on_turn=bar.update, echo=echo
            )
    finally:
        # the engine loads inside run_batches: its time is not generation time
        gen_seconds = time.perf_counter() - t_gen - stats.load_seconds
        run.close()
        engine_seconds = stats.loop.engine_seconds
        manifest.update(
            status="complete" if run.done_ids >= {d.id for d in dialogues} else "interrupted",
            finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            timings={
                "setup_seconds": round(t_load - t_start, 3),
                "engine_load_seconds": round(stats.load_seconds, 3),
                "generate_seconds": round(gen_seconds, 3),
                # summed over replicas on Ray
                "engine_seconds": round(engine_seconds, 3),
                "overhead_share": round(1 - engine_seconds / gen_seconds, 4)
                if gen_seconds > 0 and not cfg.cluster.on_ray
                else None,
            },
            tokens={
                "prompt": stats.loop.prompt_tokens,
                "generated": stats.loop.generated_tokens,
                "engine_calls": stats.loop.engine_calls,
                "resamples": stats.loop.resamples,
                "rejections": stats.loop.rejections,
                "character_replies_drawn": stats.loop.replies_drawn,
                "character_replies_passed": stats.loop.replies_passed,
            },
            dialogues={
                "written_this_session": written,
                "total": len(run.done_ids),
                "end_reasons": end_reasons,
            },
            engine=stats.to_dict(),
        )
        run.write_manifest(manifest)
    dataset = None
    if cfg.export and run.done_ids:
        echo("checking and exporting the dataset ...")
        filter_cfg = FilterConfig(
            out=str(run_dir), seed=cfg.seed, checks=cfg.checks, sillytavern=cfg.sillytavern
        )
        dataset = run_filter(run.dialogues_path, filter_cfg, echo=echo)
    return Summary(
        dataset=dataset,
        run_dir=run_dir,
        dialogues=written,
        skipped=skipped,
        character_turns=turns_done,
        generated_tokens=stats.loop.generated_tokens,
        engine_seconds=stats.loop.engine_seconds,
        wall_seconds=time.perf_counter() - t_start,
        end_reasons=end_reasons,
        turns=cfg.turns,
        replies_drawn=stats.loop.replies_drawn,
        replies_passed=stats.loop.replies_passed,
        advice=_advice(cfg, end_reasons),
    )
