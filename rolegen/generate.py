"""Recipe: persona cards + templates -> batched multi-turn dialogues.

Supports: shipped YAML personas, Character Card V2/V3 (JSON, PNG), user personas
played by the same model or a scripted user; the vLLM engine or transformers;
the tokenizer's chat template or a format template; resume after a crash.
Everything that can be checked is checked before the engine loads, so bad input
fails in seconds and a finished dialogue is never lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from rolegen.adapters import load_adapter, merged_model, vllm_max_lora_rank
from rolegen.checks import check_dialogues, from_messages, rejecting
from rolegen.config import CheckConfig, FilterConfig, GenerateConfig, to_dict
from rolegen.dialogue import Dialogue, TurnLoop
from rolegen.engines import EngineOptions, load_engine, resolve_engine
from rolegen.errors import RolegenError
from rolegen.filter import run_filter
from rolegen.models import inspect_model, load_tokenizer, resolve_model
from rolegen.personas import (
    UserPersona,
    available_user_personas,
    load_personas,
    load_user_persona,
    load_user_script,
)
from rolegen.prompts import PromptBuilder, resolve_persona
from rolegen.runs import RunDir, default_run_dir, git_commit, package_versions
from rolegen.templates import Templates

DEFAULT_MAX_CONTEXT = 4096


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
    dataset: dict | None = None

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.engine_seconds if self.engine_seconds else 0.0


def make_judge(check_cfg: CheckConfig):
    """The in-loop judge: the shared checks on each candidate reply, against the
    dialogue's earlier turns."""

    def judge(dialogues: list[Dialogue], texts: list[str]) -> list[tuple[list[str], dict]]:
        items = []
        for d, text in zip(dialogues, texts):
            item = from_messages(
                [*d.messages, {"role": "assistant", "content": text}],
                name=d.persona.name,
                intro=d.persona.intro,
                user_name=d.user.name,
                language=d.persona.language,
            )
            item.score_from = len(item.character) - 1
            items.append(item)
        verdicts = []
        for turns in check_dialogues(items, check_cfg):
            last = turns[-1]
            scores = {k: round(v, 3) for k, v in last.scores.items()}
            verdicts.append((rejecting(last, check_cfg), scores))
        return verdicts

    return judge


def check_flags(cfg: GenerateConfig) -> None:
    if not cfg.personas:
        raise RolegenError("no persona given: pass --persona NAME (see `rolegen personas`)")
    if cfg.user_scripts and cfg.user_personas:
        raise RolegenError(
            "--user-script and --user-persona conflict: a scripted user plays no persona"
        )
    if cfg.resume and not cfg.out:
        raise RolegenError("--resume needs --out: the run folder to continue")
    for name in ("dialogues", "turns", "batch_size", "candidates"):
        if getattr(cfg, name) < 1:
            raise RolegenError(f"--{name.replace('_', '-')} must be at least 1")
    if cfg.sampling.max_new_tokens < 1 or cfg.sampling.user_max_new_tokens < 1:
        raise RolegenError("--max-new-tokens must be at least 1")


def _unique_slugs(personas):
    seen: dict[str, int] = {}
    for p in personas:
        n = seen.get(p.slug, 0)
        seen[p.slug] = n + 1
        yield p, p.slug if n == 0 else f"{p.slug}-{n + 1}"


def plan(
    cfg: GenerateConfig, personas, users: list[UserPersona], scripts: list[list[str]]
) -> list[Dialogue]:
    """Every dialogue of the run, in a fixed order with stable ids; dialogues cycle
    through the user personas (or the user scripts)."""
    dialogues = []
    for persona, slug in _unique_slugs(personas):
        for i in range(cfg.dialogues):
            user = users[i % len(users)]
            dialogues.append(
                Dialogue(
                    id=f"{slug}-{i:04d}",
                    persona=resolve_persona(persona, user.name),
                    user=user,
                    script=scripts[i % len(scripts)] if scripts else None,
                )
            )
    return dialogues


def run_generate(cfg: GenerateConfig, echo=print) -> Summary:
    check_flags(cfg)
    t_start = time.perf_counter()
    personas = [p for spec in cfg.personas for p in load_personas(spec)]
    scripts = [load_user_script(path) for path in cfg.user_scripts]
    if scripts:
        users = [UserPersona(name="User", source="script")]
    else:
        names = cfg.user_personas or available_user_personas()
        users = [load_user_persona(n) for n in names] or [UserPersona()]

    model_path = resolve_model(cfg.model)
    tokenizer = load_tokenizer(model_path)
    info = inspect_model(model_path, tokenizer)
    echo(
        f"model: {info.path} ({info.architecture}, vocab {info.vocab_size}, tokenizer "
        f"{info.tokenizer_size}, context {info.context_length}, eos {info.eos_token_ids})"
    )
    for w in info.warnings:
        echo(f"  note: {w}")

    templates = Templates(cfg.templates)
    fmt = templates.resolve_format(cfg.format, tokenizer, model_path)
    max_context = min(cfg.max_context or DEFAULT_MAX_CONTEXT, info.context_length)
    if max_context <= cfg.sampling.max_new_tokens + 16:
        raise RolegenError(f"--max-context {max_context} leaves no room for the prompt")
    builder = PromptBuilder(templates, fmt, tokenizer, max_context, cfg.sampling.max_new_tokens)

    dialogues = plan(cfg, personas, users, scripts)
    # The loop is built before the engine: rendering every persona's first prompts now
    # makes a broken card or template fail before the engine spends a minute loading.
    loop = TurnLoop(
        None,
        builder,
        turns=cfg.turns,
        seed=cfg.seed,
        temperature=cfg.sampling.temperature,
        top_p=cfg.sampling.top_p,
        repetition_penalty=cfg.sampling.repetition_penalty,
        max_new_tokens=cfg.sampling.max_new_tokens,
        user_max_new_tokens=cfg.sampling.user_max_new_tokens,
        max_resamples=cfg.max_resamples,
        judge=make_judge(cfg.checks) if cfg.check else None,
        on_exhausted=cfg.on_exhausted,
        candidates=cfg.candidates,
        resample_temperature_step=cfg.resample_temperature_step,
    )
    for d in {d.persona.name: d for d in dialogues}.values():
        d = loop.start(Dialogue(id=d.id, persona=d.persona, user=d.user, script=d.script))
        builder.character_prompt(
            d.persona, d.user, d.messages + [{"role": "user", "content": "Hi."}]
        )
        if not scripts:
            builder.user_prompt(d.persona, d.user, d.messages, 1, cfg.turns)

    engine_name = resolve_engine(cfg.engine)
    adapter, serving, engine_model, lora_path, lora_rank = None, None, model_path, None, 16
    if cfg.adapter:
        adapter = load_adapter(cfg.adapter, model_path, info)
        serving = "lora" if engine_name == "hf" else cfg.adapter_serving
        if serving == "auto":
            import torch

            serving = "lora" if torch.cuda.is_available() else "merged"
        if serving == "lora":
            lora_path = str(adapter.path)
            if engine_name == "vllm":
                lora_rank = vllm_max_lora_rank(adapter)
        echo(f"adapter: {adapter.path} (r={adapter.r}), served as {serving}")

    run_dir = Path(cfg.out) if cfg.out else default_run_dir()
    config = to_dict(cfg)
    run = RunDir(run_dir, cfg.resume, config)
    todo = [d for d in dialogues if d.id not in run.done_ids]
    skipped = len(dialogues) - len(todo)
    manifest = {
        "status": "running",
        "config": config,
        "model": info.to_dict(),
        "format": fmt.name,
        "adapter": {**adapter.to_dict(), "serving": serving} if adapter else None,
        "templates": templates.used,
        "max_context": max_context,
        "versions": package_versions(),
        "git_commit": git_commit(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "personas": {p.name: p.source for p in personas},
    }
    run.write_manifest(manifest)
    if skipped:
        echo(f"resume: {skipped} dialogues already in {run.dialogues_path}, {len(todo)} to go")

    t_load = time.perf_counter()
    options = EngineOptions(
        seed=cfg.seed,
        max_model_len=max_context,
        dtype=cfg.dtype,
        eos_token_ids=info.eos_token_ids,
        batch_size=cfg.batch_size,
        kv_cache_gib=cfg.kv_cache_gib,
        enforce_eager=not cfg.compile,
        lora_path=lora_path,
        max_lora_rank=lora_rank,
    )
    if adapter and serving == "merged" and todo:
        engine_model = merged_model(adapter, model_path, echo=echo)
    engine = load_engine(engine_name, engine_model, options) if todo else None
    load_seconds = time.perf_counter() - t_load
    loop.engine = engine

    end_reasons: dict[str, int] = {}
    turns_done = written = 0
    t_gen = time.perf_counter()
    try:
        with tqdm(
            total=len(todo) * cfg.turns, unit="turn", desc="generate", dynamic_ncols=True
        ) as bar:
            for start in range(0, len(todo), cfg.batch_size):
                batch = [loop.start(d) for d in todo[start : start + cfg.batch_size]]
                done_before = bar.n
                loop.run(batch, on_turn=bar.update)
                # dialogues that ended early still count their planned turns as done
                bar.update(done_before + len(batch) * cfg.turns - bar.n)
                for d in batch:
                    record = d.to_record({"format": fmt.name, "model": info.path, "seed": cfg.seed})
                    run.append(record)
                    written += 1
                    end_reasons[record["end_reason"]] = end_reasons.get(record["end_reason"], 0) + 1
                    turns_done += d.character_turns
                bar.set_postfix(
                    tok_s=f"{loop.stats.generated_tokens / max(loop.stats.engine_seconds, 1e-9):.0f}"
                )
    finally:
        gen_seconds = time.perf_counter() - t_gen
        run.close()
        manifest.update(
            status="complete" if run.done_ids >= {d.id for d in dialogues} else "interrupted",
            finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            timings={
                "setup_seconds": round(t_load - t_start, 3),
                "engine_load_seconds": round(load_seconds, 3),
                "generate_seconds": round(gen_seconds, 3),
                "engine_seconds": round(loop.stats.engine_seconds, 3),
                "overhead_share": round(1 - loop.stats.engine_seconds / gen_seconds, 4)
                if gen_seconds > 0
                else None,
            },
            tokens={
                "prompt": loop.stats.prompt_tokens,
                "generated": loop.stats.generated_tokens,
                "engine_calls": loop.stats.engine_calls,
                "resamples": loop.stats.resamples,
                "rejections": loop.stats.rejections,
            },
            dialogues={
                "written_this_session": written,
                "total": len(run.done_ids),
                "end_reasons": end_reasons,
            },
        )
        run.write_manifest(manifest)
        if engine is not None:
            engine.close()
    dataset = None
    if cfg.export and run.done_ids:
        echo("checking and exporting the dataset ...")
        filter_cfg = FilterConfig(out=str(run_dir), seed=cfg.seed, checks=cfg.checks)
        dataset = run_filter(run.dialogues_path, filter_cfg, echo=echo)
    return Summary(
        dataset=dataset,
        run_dir=run_dir,
        dialogues=written,
        skipped=skipped,
        character_turns=turns_done,
        generated_tokens=loop.stats.generated_tokens,
        engine_seconds=loop.stats.engine_seconds,
        wall_seconds=time.perf_counter() - t_start,
        end_reasons=end_reasons,
    )
