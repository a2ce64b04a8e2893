"""The `rolegen` command line: parse, call a recipe, print. No logic lives here.

Options of `generate` are made from `GenerateConfig`'s fields, so a flag and its
YAML key always mean the same thing; a flag given on the command line overrides
the `--config` file.
"""

from __future__ import annotations

import dataclasses
import sys
import typing

import click

from rolegen.config import (
    EvalConfig,
    FilterConfig,
    GenerateConfig,
    PipelineConfig,
    TrainConfig,
    field_types,
    load_config,
)
from rolegen.errors import RolegenError


def _options_from(cls):
    """Click options for every field of `cls` (nested dataclasses flattened)."""
    params = []
    for f in dataclasses.fields(cls):
        tp = field_types(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            params.extend(_options_from(tp))
            continue
        flag = f.metadata.get("flag") or f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if default not in (None, [], False):
            help_text += f"  [default: {default}]"
        base = typing.get_origin(tp) or tp
        if typing.get_origin(tp) in (typing.Union, __import__("types").UnionType):
            base = next(a for a in typing.get_args(tp) if a is not type(None))
        kwargs = dict(default=None, help=help_text)
        if base is dict:  # a YAML-only section
            continue
        if base is list:
            kwargs.update(multiple=True, default=())
        elif base is bool:
            params.append(click.Option([f"--{flag}/--no-{flag}", f.name], **kwargs))
            continue
        elif f.metadata.get("choices"):
            kwargs.update(type=click.Choice(f.metadata["choices"]))
        else:
            kwargs.update(type=base)
        params.append(click.Option([f"--{flag}", f.name], **kwargs))
    return params


def _overrides(kwargs: dict) -> dict:
    """The flags the user actually gave."""
    return {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in kwargs.items()
        if v is not None and v != ()
    }


def _fail(error: RolegenError) -> typing.NoReturn:
    click.echo(f"error: {error}", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="rolegen")
def main():
    """rolegen: roleplay datasets that teach a LLaMA-family model to stop repeating itself."""


def _generate(config_path, **kwargs):
    from rolegen.recipes.generate import run_generate

    try:
        cfg = load_config(GenerateConfig, config_path, _overrides(kwargs))
        summary = run_generate(cfg, echo=lambda s: click.echo(s, err=True))
    except RolegenError as e:
        _fail(e)
    except KeyboardInterrupt:
        click.echo(
            "\ninterrupted: finished dialogues are saved; rerun with --resume to go on", err=True
        )
        sys.exit(130)
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary.end_reasons.items())) or "-"
    click.echo(
        f"\n{summary.dialogues} dialogues, {summary.character_turns} character turns "
        f"({summary.skipped} already done)\n"
        f"{summary.generated_tokens} tokens generated in {summary.engine_seconds:.1f}s engine time: "
        f"{summary.tokens_per_second:.0f} tokens/s; {summary.wall_seconds:.1f}s in all\n"
        f"ended: {reasons}\n"
        f"dialogues: {summary.run_dir / 'dialogues.jsonl'}\n"
        f"manifest:  {summary.run_dir / 'manifest.json'}"
    )
    if summary.dataset:
        click.echo("")
        _print_filter(summary.dataset)


generate = click.Command(
    "generate",
    callback=_generate,
    params=[
        click.Option(
            ["--config", "config_path"],
            type=click.Path(dir_okay=False),
            help="YAML run config; flags override its fields.",
        ),
        *_options_from(GenerateConfig),
    ],
    help="Write multi-turn roleplay dialogues for one or more personas.\n\n"
    "Example: rolegen generate --persona captain-mara-vell --dialogues 8 --turns 6",
    context_settings={"max_content_width": 100},
)
main.add_command(generate)


def _print_filter(summary: dict) -> None:
    reasons = ", ".join(f"{k} {v}" for k, v in summary["rejections_by_reason"].items()) or "none"
    splits = ", ".join(f"{k} {v}" for k, v in summary["splits"].items())
    click.echo(
        f"{summary['dialogues_read']} dialogues read ({summary['bad_lines']} bad lines skipped), "
        f"{summary['turns_checked']} character turns checked\n"
        f"rejected turns by reason: {reasons}\n"
        f"kept dialogues: {splits} (truncated {summary['dialogues_truncated']}, dropped "
        f"{summary['dialogues_rejected']}); preference pairs: "
        f"{sum(summary['preference_pairs'].values())}\n"
        f"distinct-1 {summary['distinct_1']:.3f}, distinct-2 {summary['distinct_2']:.3f}\n"
        f"dataset: {summary['out']}/dataset (card: {summary['out']}/README.md)"
    )


def _filter(data, config_path, **kwargs):
    from rolegen.recipes.filter import run_filter

    try:
        cfg = load_config(FilterConfig, config_path, _overrides(kwargs))
        summary = run_filter(data, cfg, echo=lambda s: click.echo(s, err=True))
    except RolegenError as e:
        _fail(e)
    _print_filter(summary)


main.add_command(
    click.Command(
        "filter",
        callback=_filter,
        params=[
            click.Argument(["data"], type=click.Path(dir_okay=False)),
            click.Option(
                ["--config", "config_path"],
                type=click.Path(dir_okay=False),
                help="YAML config; flags override its fields.",
            ),
            *_options_from(FilterConfig),
        ],
        help="Check a dialogues.jsonl for echo, repetition and loops, and export the clean "
        "dialogues as a dataset (HF datasets, parquet, messages and ShareGPT JSONL, "
        "preference pairs, dataset card).\n\nExample: rolegen filter "
        "outputs/run/dialogues.jsonl --out outputs/run",
    )
)


def _train(config_path, **kwargs):
    from rolegen.recipes.train import run_train

    try:
        cfg = load_config(TrainConfig, config_path, _overrides(kwargs))
        summary = run_train(cfg, echo=lambda s: click.echo(s, err=True))
    except RolegenError as e:
        _fail(e)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: rerun with --resume to go on from the last checkpoint", err=True)
        sys.exit(130)
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


main.add_command(
    click.Command(
        "train",
        callback=_train,
        params=[
            click.Option(
                ["--config", "config_path"],
                type=click.Path(dir_okay=False),
                help="YAML run config; flags override its fields.",
            ),
            *_options_from(TrainConfig),
        ],
        help="LoRA fine-tune a model on a rolegen dataset: SFT on the clean dialogues, DPO on "
        "the turns the checks rejected, or SFT then DPO. Writes a PEFT adapter that vLLM and "
        "`rolegen generate --adapter` load.\n\nExample: rolegen train --data outputs/run "
        "--method sft+dpo",
        context_settings={"max_content_width": 100},
    )
)


def _eval(config_path, **kwargs):
    from rolegen.recipes.evaluate import run_eval

    try:
        cfg = load_config(EvalConfig, config_path, _overrides(kwargs))
        results = run_eval(cfg, echo=lambda s: click.echo(s, err=True))
    except RolegenError as e:
        _fail(e)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: finished dialogues are saved; rerun with --resume", err=True)
        sys.exit(130)
    _print_eval(results)


def _print_eval(results: dict) -> None:
    from rolegen.report import headline

    names = (
        "near_copy",
        "seq_rep4",
        "identity_echo",
        "identity_recall",
        "fluency_nll",
        "relevance",
    )
    click.echo(f"{'system':<34}" + "".join(f"{n:>16}" for n in names))
    for system, figures in results["systems"].items():
        cells = []
        for n in names:
            v = figures.get(n, {}).get("value")
            cells.append(f"{'-' if v is None else f'{v:.3f}':>16}")
        click.echo(f"{system:<34}" + "".join(cells))
    for h in headline(results):
        met = {True: "met", False: "NOT met", None: "n/a"}[h["met"]]
        click.echo(f"  {met:>8}: {h['criterion']}: {h['observed']}")
    click.echo(f"report: {results['out']}/report.html (and report.md, results.json)")


main.add_command(
    click.Command(
        "eval",
        callback=_eval,
        params=[
            click.Option(
                ["--config", "config_path"],
                type=click.Path(dir_okay=False),
                help="YAML config; flags override its fields.",
            ),
            *_options_from(EvalConfig),
        ],
        help="Measure repetition, identity echo and guardrails (fluency, relevance) of the base "
        "model, decoding-only fixes and the fine-tuned adapter on held-out personas, with the "
        "same user turns and seeds for every system. Writes results.json and a report.\n\n"
        "Example: rolegen eval --adapter outputs/run/adapter\n\n"
        "Score dialogues made anywhere: rolegen eval --data dialogues.jsonl",
        context_settings={"max_content_width": 100},
    )
)


def _pipeline(config_path, **kwargs):
    from rolegen.recipes.pipeline import run_pipeline

    try:
        cfg = load_config(PipelineConfig, config_path, _overrides(kwargs))
        summary = run_pipeline(cfg, echo=lambda s: click.echo(s, err=True))
    except RolegenError as e:
        _fail(e)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: rerun the same command to resume", err=True)
        sys.exit(130)
    _print_eval(summary["eval"])
    times = ", ".join(f"{k} {v / 60:.1f} min" for k, v in summary["timings_seconds"].items())
    # a stage skipped on this rerun shows the time it took when it ran
    click.echo(f"stages: {times}")


main.add_command(
    click.Command(
        "pipeline",
        callback=_pipeline,
        params=[
            click.Option(
                ["--config", "config_path"],
                type=click.Path(dir_okay=False),
                help="YAML config: the fields below, plus generate:, train: and eval: sections "
                "with any setting of those commands.",
            ),
            *_options_from(PipelineConfig),
        ],
        help="The whole loop: generate training dialogues, filter them, train a LoRA adapter "
        "(SFT + DPO on the rejected turns) and evaluate it against the base model and "
        "decoding-only fixes on held-out personas. Rerun the same command to resume.\n\n"
        "Example: rolegen pipeline --out outputs/pipeline",
        context_settings={"max_content_width": 100},
    )
)


@main.command()
@click.option("--materialize", is_flag=True, help="Build the embedded model's checkpoint now.")
def models(materialize):
    """Show the models rolegen has cached, and where."""
    from rolegen.models import cache_dir, cached_models, materialize_embedded

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
    from rolegen.personas import available_personas, available_user_personas, load_personas
    from rolegen.templates import Templates

    click.echo("characters:")
    for name in available_personas():
        p = load_personas(name)[0]
        click.echo(f"  {name:<28} {p.name} [{p.language}] {', '.join(p.tags[:4])}")
    click.echo("users:\n  " + "\n  ".join(available_user_personas()))
    click.echo("formats:\n  " + "\n  ".join(Templates().formats()))


if __name__ == "__main__":
    main()
