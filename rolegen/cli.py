"""The `rolegen` command line: parse, call a recipe, print. No logic lives here.

Every command is made by one factory (`_command`) from its config dataclass: the
options come from the config's fields (options.py), so a flag and its YAML key
always mean the same thing, and a flag given on the command line overrides the
`--config` file. The factory also turns a `RolegenError` into a one-line error
(exit 2) and Ctrl-C or SIGTERM into exit 130 or 143 with a hint, the same way for
every command.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
import typing
from collections.abc import Callable
from contextlib import contextmanager

import click

from rolegen import interrupts
from rolegen.config import EvalConfig, FilterConfig, GenerateConfig, PipelineConfig, TrainConfig
from rolegen.config.options import click_options, given, load_config
from rolegen.errors import RolegenError
from rolegen.runs.out_dirs import command_scope


def _echo(text: str) -> None:
    click.echo(text, err=True)


def _fail(error: RolegenError) -> typing.NoReturn:
    click.echo(f"error: {error}", err=True)
    sys.exit(2)


@contextmanager
def _interrupts():
    """SIGTERM (from `timeout`, a scheduler, `kill`) acts like Ctrl-C: a KeyboardInterrupt
    in the main thread, so the recipes' `finally:` blocks mark the run interrupted. A
    second signal while that cleanup runs is only noted (a cut-short manifest write is
    what this prevents); a third stops at once. Yields the signals received (also
    `interrupts.received`, which the long loops check: see interrupts.py)."""
    received: list[int] = []
    interrupts.received.clear()

    def handler(signum, frame):
        received.append(signum)
        interrupts.received.append(signum)
        if len(received) == 2:
            _echo("\nstill saving what is finished; interrupt once more to stop at once")
            return
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield received  # signals reach only the main thread
        return
    before = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, h in before.items():
            signal.signal(s, h)
        interrupts.received.clear()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="rolegen")
def main():
    """rolegen: roleplay datasets that teach a LLaMA-family model to stop repeating itself."""


def _command(
    name: str,
    config_cls,
    recipe: str,  # "module:function", called as function(*arguments, cfg, echo=...)
    show: Callable,  # result -> None (prints)
    help: str,
    on_interrupt: str,
    config_help: str = "YAML run config; flags override its fields.",
    arguments: tuple[click.Argument, ...] = (),
) -> click.Command:
    """A command from its config: --config, the config's options, one error policy."""

    def callback(config_path, **kwargs):
        args = [kwargs.pop(a.name) for a in arguments]
        signals: list[int] = []  # the signals received, filled by _interrupts
        try:
            # the folders the command writes stay locked until it ends (runs.py)
            with _interrupts() as signals, command_scope():
                cfg = load_config(config_cls, config_path, given(kwargs))
                module, function = recipe.split(":")  # imported here: `--help` stays fast
                result = getattr(importlib.import_module(module), function)(*args, cfg, echo=_echo)
        except RolegenError as e:
            _fail(e)
        except KeyboardInterrupt:
            click.echo(f"\ninterrupted: {on_interrupt}", err=True)
            sys.exit(128 + (signals[0] if signals else signal.SIGINT))
        show(result)

    command = click.Command(
        name,
        callback=callback,
        params=[
            *arguments,
            click.Option(
                ["--config", "config_path"], type=click.Path(dir_okay=False), help=config_help
            ),
            *click_options(config_cls),
        ],
        help=help,
    )
    main.add_command(command)
    return command


# ---------------------------------------------------------------- generate


def _show_generate(summary) -> None:
    completed = summary.end_reasons.get("completed", 0)
    early = {k: v for k, v in sorted(summary.end_reasons.items()) if k != "completed"}
    ended = ", ".join(f"{k} {v}" for k, v in early.items()) or "none"
    lines = [
        f"\n{summary.dialogues} dialogues, {summary.character_turns} character turns "
        f"({summary.skipped} already done)",
        f"{summary.generated_tokens} tokens generated in {summary.engine_seconds:.1f}s engine "
        f"time: {summary.tokens_per_second:.0f} tokens/s; {summary.wall_seconds:.1f}s in all",
        f"completed all {summary.turns} turns: {completed} of {summary.dialogues}; "
        f"ended early: {ended}",
    ]
    if summary.replies_drawn:
        lines.append(
            f"character replies that passed the checks: {summary.replies_passed} of "
            f"{summary.replies_drawn} drawn"
        )
    if summary.advice:
        lines.append("most dialogues ended early on rejected replies; to raise the yield, try:")
        lines += [f"  {a}" for a in summary.advice]
    lines += [
        f"dialogues: {summary.run_dir / 'dialogues.jsonl'}",
        f"manifest:  {summary.run_dir / 'manifest.json'}",
    ]
    click.echo("\n".join(lines))
    if summary.dataset:
        click.echo("")
        _show_filter(summary.dataset)


_command(
    "generate",
    GenerateConfig,
    "rolegen.recipes.generate:run_generate",
    _show_generate,
    help="Write multi-turn roleplay dialogues for one or more personas.\n\n"
    "Example: rolegen generate --persona captain-mara-vell --dialogues 8 --turns 6",
    on_interrupt="finished dialogues are saved; rerun with --resume to go on",
)


# ---------------------------------------------------------------- filter


def _repeated(summary: dict) -> str:
    n = summary.get("duplicate_ids", 0)
    return f", {n} repeated ids skipped" if n else ""


def _show_filter(summary: dict) -> None:
    reasons = ", ".join(f"{k} {v}" for k, v in summary["rejections_by_reason"].items()) or "none"
    splits = ", ".join(f"{k} {v}" for k, v in summary["splits"].items())
    click.echo(
        f"{summary['dialogues_read']} dialogues read ({summary['bad_lines']} bad lines skipped"
        f"{_repeated(summary)}), "
        f"{summary['turns_checked']} character turns checked\n"
        f"rejected turns by reason: {reasons}\n"
        f"kept dialogues: {splits} (truncated {summary['dialogues_truncated']}, dropped "
        f"{summary['dialogues_rejected']}); preference pairs: "
        f"{sum(summary['preference_pairs'].values())}\n"
        f"distinct-1 {summary['distinct_1']:.3f}, distinct-2 {summary['distinct_2']:.3f}\n"
        f"dataset: {summary['out']}/dataset (card: {summary['out']}/README.md)"
    )


_command(
    "filter",
    FilterConfig,
    "rolegen.recipes.filter:run_filter",
    _show_filter,
    help="Check a dialogues.jsonl for echo, repetition and loops, and export the clean "
    "dialogues as a dataset (HF datasets, parquet, messages and ShareGPT JSONL, "
    "preference pairs, dataset card). DATA may also be a SillyTavern chat or a folder of "
    "them (then --out is needed).\n\nExample: rolegen filter "
    "outputs/run/dialogues.jsonl --out outputs/run",
    on_interrupt="rerun the same command (the dialogues file is only read)",
    arguments=(click.Argument(["data"], type=click.Path()),),
)


# ---------------------------------------------------------------- train


def _show_train(summary: dict) -> None:
    if not summary:  # a non-main process under accelerate launch
        return
    for st in summary["stages"]:
        ev = ", ".join(f"{k} {v}" for k, v in st["eval"].items()) or "no test split"
        click.echo(
            f"{st['name']}: {st['steps']} steps, {st['tokens']} tokens in {st['seconds']:.0f}s "
            f"({st['tokens_per_second']} tokens/s, padding {st['padded_share']:.1%}); "
            f"final train loss {st['final_train_loss']:.4f}; eval: {ev}"
        )
    click.echo(f"adapter: {summary['out']}")
    if summary["merged"]:
        click.echo(f"merged model: {summary['merged']}")


_command(
    "train",
    TrainConfig,
    "rolegen.recipes.train:run_train",
    _show_train,
    help="LoRA fine-tune a model on a rolegen dataset: SFT on the clean dialogues, DPO on "
    "the turns the checks rejected, or SFT then DPO. Writes a PEFT adapter that vLLM and "
    "`rolegen generate --adapter` load.\n\nExample: rolegen train --data outputs/run "
    "--method sft+dpo",
    on_interrupt="rerun with --resume to go on from the last checkpoint",
)


# ---------------------------------------------------------------- eval


def _show_eval(results: dict) -> None:
    from rolegen.evaluation.headline import BY_PROMPT, by_prompt, ending, headline, prompts_of
    from rolegen.evaluation.metrics import SUMMARY

    def value(figures: dict, metric: str, width: int) -> str:
        v = figures.get(metric, {}).get("value")
        return f"{'-' if v is None else f'{v:.3f}':>{width}}"

    first = max([34, *(len(s) + 2 for s in results["systems"])])
    widths = [max(10, len(n) + 2) for n in SUMMARY]
    click.echo(f"{'system':<{first}}" + "".join(f"{n:>{w}}" for n, w in zip(SUMMARY, widths)))
    for system, figures in results["systems"].items():
        cells = "".join(value(figures, n, w) for n, w in zip(SUMMARY, widths))
        click.echo(f"{system:<{first}}{cells}")
    prompts = prompts_of(results)
    if len(prompts) > 1:  # the prompt axis side by side, a column group per prompt
        shown = BY_PROMPT[:3]
        group = max([8 * len(shown), *(len(p) + 2 for p in prompts)])
        click.echo(f"\nby prompt, each: {' / '.join(shown)}")
        click.echo(f"{'system':<34}" + "".join(f"{p:>{group}}" for p in prompts))
        for system, per in by_prompt(results).items():
            cells = "".join(
                f"{''.join(value(per.get(p, {}), m, 8) for m in shown):>{group}}" for p in prompts
            )
            click.echo(f"{system:<34}{cells}")
    for system, entry in results.get("endings", {}).items():
        click.echo(f"  {system}: {ending(entry)}")
    chance = results.get("persona_chance")
    if chance:
        click.echo(f"  persona_top1 at chance: {chance['top1']:.3f} ({chance['cards']} cards)")
    for prompt in prompts:
        where = f" [{prompt}]" if len(prompts) > 1 else ""
        for h in headline(results, prompt):
            met = {True: "met", False: "NOT met", None: "n/a"}[h["met"]]
            click.echo(f"  {met:>8}{where}: {h['criterion']}: {h['observed']}")
    click.echo(f"report: {results['out']}/report.html (and report.md, results.json)")


_command(
    "eval",
    EvalConfig,
    "rolegen.recipes.evaluate:run_eval",
    _show_eval,
    help="Measure repetition, persona fidelity (identity statements, wrong identity, "
    "assistant drift, each reply's own card ranked among the run's cards) and guardrails "
    "(fluency, relevance) of the base model, decoding-only fixes and the fine-tuned "
    "adapter on held-out personas, with the "
    "same user turns and seeds for every system. Writes results.json and a report.\n\n"
    "Example: rolegen eval --adapter outputs/run/adapter\n\n"
    "Score dialogues made anywhere: rolegen eval --data dialogues.jsonl",
    on_interrupt="finished dialogues are saved; rerun with --resume",
)


# ---------------------------------------------------------------- pipeline


def _show_pipeline(summary: dict) -> None:
    _show_eval(summary["eval"])
    # a stage skipped on this rerun shows the time it took when it ran
    times = ", ".join(f"{k} {v / 60:.1f} min" for k, v in summary["timings_seconds"].items())
    click.echo(f"stages: {times}")


_command(
    "pipeline",
    PipelineConfig,
    "rolegen.recipes.pipeline:run_pipeline",
    _show_pipeline,
    help="The whole loop: generate training dialogues, filter them, train a LoRA adapter "
    "(SFT + DPO on the rejected turns) and evaluate it against the base model and "
    "decoding-only fixes on held-out personas. Rerun the same command to resume.\n\n"
    "Example: rolegen pipeline --out outputs/pipeline",
    on_interrupt="rerun the same command to resume",
    config_help="YAML config: the fields below, plus generate:, train: and eval: sections "
    "with any setting of those commands.",
)


# ---------------------------------------------------------------- listings


@main.command()
@click.option("--materialize", is_flag=True, help="Build the embedded model's checkpoint now.")
def models(materialize):
    """Show the models rolegen has cached, and where."""
    from rolegen.models.checkpoints import cache_dir, cached_models, materialize_embedded

    try:
        if materialize:
            click.echo(f"embedded model ready: {materialize_embedded()}")
    except RolegenError as e:
        _fail(e)
    rows = cached_models()
    click.echo(f"cache: {cache_dir() / 'models'}")
    if not rows:
        click.echo("  (empty: the embedded model is built on first use, or with --materialize)")
    for row in rows:
        click.echo(f"  {row['name']:<32} {row['size_mb']:>8.1f} MB  {row['path']}")


@main.command()
def personas():
    """List the shipped character and user personas and prompt formats."""
    from rolegen.cards.files import load_personas
    from rolegen.cards.personas import available_personas, available_user_personas
    from rolegen.generation.templates import Templates

    click.echo("characters:")
    for name in available_personas():
        p = load_personas(name)[0]
        click.echo(f"  {name:<28} {p.name} [{p.language}] {', '.join(p.tags[:4])}")
    click.echo("users:\n  " + "\n  ".join(available_user_personas()))
    click.echo("formats:\n  " + "\n  ".join(Templates().formats()))


if __name__ == "__main__":
    main()
