"""dialogues.jsonl -> checked, split, exported training data.

Takes the dialogues `records.py` read (rolegen's `dialogues.jsonl`, or SillyTavern
chats), scores every character turn
with the shared checks, and keeps each dialogue up to its first rejected turn
(flagged, never silently deleted: the rest goes to `rejected.jsonl` with reasons
and scores). The accepted dialogues are split by persona, so no persona is in both
train and test, and exported as:

- `dataset/`: a Hugging Face `DatasetDict` (`save_to_disk`), column `messages`;
- `data/{split}.parquet`, `messages/{split}.jsonl` (TRL, axolotl) and
  `sharegpt/{split}.jsonl` (`conversations` of `from`/`value`, LLaMA-Factory);
- `preference/`: (prompt, chosen, rejected) triples from the in-loop resamples, in
  the conversational form TRL's DPOTrainer loads (also as JSONL);
- `README.md`: a dataset card with sizes, personas, model, thresholds, rejections
  by reason, distinct-n and sample rows.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rolegen.checks.dataset_stats import dataset_scores, near_duplicates
from rolegen.checks.persona_facts import CardFacts
from rolegen.checks.turns import (
    REASONS,
    CheckConfig,
    DialogueTurns,
    check_dialogues,
    from_messages,
    rejecting,
)

_SHAREGPT = {"system": "system", "user": "human", "assistant": "gpt"}


@dataclass
class FilterResult:
    accepted: list[dict]
    rejected: list[dict]
    preference: list[dict]
    rejections: Counter
    turns_checked: int


def _cut_at(record: dict, bad, cfg: CheckConfig) -> tuple[dict, dict]:
    """The dialogue up to the rejected character turn `bad`, and what was cut."""
    # the cut starts at the user turn the bad reply answers
    assistant_positions = [i for i, m in enumerate(record["messages"]) if m["role"] == "assistant"]
    pos = assistant_positions[bad.index]
    while pos > 0 and record["messages"][pos - 1]["role"] == "user":
        pos -= 1
    kept = {**record, "messages": record["messages"][:pos]}
    if "meta" in record:
        kept["meta"] = record["meta"][:pos]
    cut = {
        "id": record["id"],
        "persona": record.get("persona"),
        "turn": bad.turn,
        "reasons": rejecting(bad, cfg),
        "scores": bad.scores,
        "content": record["messages"][assistant_positions[bad.index]]["content"],
    }
    return kept, cut


def preference_pairs(record: dict) -> list[dict]:
    """(prompt, chosen, rejected) from the in-loop resamples: same context, the accepted
    reply chosen, each rejected candidate (not empty ones) rejected. A turn kept flagged
    when the resamples ran out (`--on-exhausted keep`) is no chosen reply: it failed too."""
    pairs = []
    messages, meta = record["messages"], record.get("meta") or []
    for i, m in enumerate(meta):
        if m.get("role") != "assistant" or not m.get("rejected") or m.get("flags"):
            continue
        prompt = [{"role": x["role"], "content": x["content"]} for x in messages[:i]]
        for r in m["rejected"]:
            if "empty" in r.get("reasons", []) or not r.get("content", "").strip():
                continue
            pairs.append(
                {
                    "id": f"{record['id']}-t{m.get('turn', i)}-s{r.get('sample_index', 0)}",
                    "persona": record.get("persona"),
                    "persona_name": record.get("persona_name") or "",
                    "user_name": record.get("user_persona") or "",
                    "prompt": prompt,
                    "chosen": [{"role": "assistant", "content": messages[i]["content"]}],
                    "rejected": [{"role": "assistant", "content": r["content"]}],
                    "reasons": r.get("reasons", []),
                }
            )
    return pairs


def record_turns(record: dict) -> DialogueTurns:
    """A dialogue record as the checks see it (persona fields from the record)."""
    return from_messages(
        record["messages"],
        record.get("meta"),
        name=record.get("persona_name", ""),
        intro=record.get("persona_intro", ""),
        user_name=record.get("user_persona", ""),
        language=record.get("persona_language", "en"),
        facts=CardFacts.from_dict(record.get("persona_facts")),
    )


def filter_dialogues(
    records: list[dict],
    cfg: CheckConfig,
    min_turns: int = 2,
    extra_reasons: list[dict[int, list[str]]] | None = None,
) -> FilterResult:
    """`extra_reasons`: per record, character index -> reasons found outside the checks
    (the model judge's), added to that turn's own and rejecting it as they do."""
    items = [record_turns(r) for r in records]
    encode = None
    if cfg.paraphrase > 0:
        from rolegen.checks.embedder import paraphrase_encoder

        encode = paraphrase_encoder()
    all_checks = check_dialogues(items, cfg, encode=encode)
    for checks, extra in zip(all_checks, extra_reasons or ()):
        for c in checks:
            c.reasons += [r for r in extra.get(c.index, ()) if r not in c.reasons]
    accepted, rejected, preference, reasons = [], [], [], Counter()
    turns = 0
    for record, checks in zip(records, all_checks):
        turns += len(checks)
        for c in checks:
            reasons.update(rejecting(c, cfg))
        bad = next((c for c in checks if rejecting(c, cfg)), None)
        kept, cut = _cut_at(record, bad, cfg) if bad else (record, None)
        n_kept = sum(1 for c in checks if bad is None or c.index < bad.index)
        preference.extend(preference_pairs(record))
        if n_kept >= min_turns:
            kept = {**kept, "filter": {"truncated_at_turn": cut["turn"] if cut else None}}
            accepted.append(kept)
            if cut:
                rejected.append({**cut, "kept_turns": n_kept, "action": "truncated"})
        else:
            rejected.append(
                {
                    **(
                        cut
                        or {
                            "id": record["id"],
                            "persona": record.get("persona"),
                            "reasons": ["too_short"],
                        }
                    ),
                    "kept_turns": n_kept,
                    "action": "dropped",
                }
            )
    # Near-duplicate dialogues (greetings left out: they are the same by design).
    texts = []
    for r in accepted:
        item = from_messages(r["messages"])
        texts.append(" ".join(item.character[1:] if item.has_greeting else item.character)[:1500])
    duplicate_of = {}
    for i, j, score in near_duplicates(texts, cfg.near_duplicate):
        if j not in duplicate_of and i not in duplicate_of:
            duplicate_of[j] = (i, score)
    for j, (i, score) in duplicate_of.items():
        rejected.append(
            {
                "id": accepted[j]["id"],
                "persona": accepted[j].get("persona"),
                "reasons": ["near_duplicate"],
                "scores": {"ratio": score},
                "duplicate_of": accepted[i]["id"],
                "action": "dropped",
            }
        )
        reasons["near_duplicate"] += 1
    accepted = [r for k, r in enumerate(accepted) if k not in duplicate_of]
    return FilterResult(accepted, rejected, preference, reasons, turns)


def split_by_persona(records: list[dict], test_share: float, seed: int = 0) -> dict[str, list]:
    """Whole personas go to test, chosen by a stable hash, about `test_share` of them."""
    personas = sorted({r.get("persona") or "unknown" for r in records})
    n_test = round(len(personas) * test_share) if len(personas) > 1 else 0
    if test_share > 0 and len(personas) > 1:
        n_test = max(1, n_test)
    ranked = sorted(personas, key=lambda p: hashlib.sha256(f"{seed}/{p}".encode()).hexdigest())
    test = set(ranked[:n_test])
    splits = {"train": [r for r in records if (r.get("persona") or "unknown") not in test]}
    if test:
        splits["test"] = [r for r in records if (r.get("persona") or "unknown") in test]
    return splits


def _clean_messages(record: dict) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in record["messages"]]


def _write_jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _first_reply(messages: list[dict]) -> str:
    """The first character turn that answers the user (a greeting comes before any user
    turn); empty if there is none."""
    asked = False
    for m in messages:
        if m["role"] == "user":
            asked = True
        elif m["role"] == "assistant" and asked:
            return m["content"]
    return ""


# The folders `export` writes, and so removes first
_EXPORTED = ("messages", "sharegpt", "data", "dataset", "preference")


def export(
    result: FilterResult, out: Path, test_share: float, seed: int, dataset_card: dict
) -> dict:
    """Write every format; returns the numbers the dataset card shows."""
    import datasets
    from datasets import Dataset, DatasetDict

    datasets.disable_progress_bars()  # a few small files; bars would only be noise
    out.mkdir(parents=True, exist_ok=True)
    # an export into the folder of an earlier one replaces it whole: a split or a
    # preference/ folder that this data has not would otherwise stay and be trained on
    for name in _EXPORTED:
        old = out / name
        if old.is_symlink() or old.is_file():
            old.unlink()
        elif old.is_dir():
            shutil.rmtree(old)
    splits = split_by_persona(result.accepted, test_share, seed)
    dd = {}
    for name, rows in splits.items():
        table = {
            "id": [r["id"] for r in rows],
            "persona": [r.get("persona") or "" for r in rows],
            # names fill {{char}}/{{user}} of format templates when training renders the rows
            "persona_name": [r.get("persona_name") or "" for r in rows],
            "user_name": [r.get("user_persona") or "" for r in rows],
            "messages": [_clean_messages(r) for r in rows],
        }
        dd[name] = Dataset.from_dict(table)
        _write_jsonl(
            out / "messages" / f"{name}.jsonl",
            ({"id": i, "messages": m} for i, m in zip(table["id"], table["messages"])),
        )
        _write_jsonl(
            out / "sharegpt" / f"{name}.jsonl",
            (
                {
                    "id": i,
                    "conversations": [
                        {"from": _SHAREGPT[x["role"]], "value": x["content"]} for x in m
                    ],
                }
                for i, m in zip(table["id"], table["messages"])
            ),
        )
        (out / "data").mkdir(exist_ok=True)
        dd[name].to_parquet(str(out / "data" / f"{name}.parquet"))
    DatasetDict(dd).save_to_disk(str(out / "dataset"))

    test_personas = {r.get("persona") for r in splits.get("test", [])}
    pref = {
        "train": [p for p in result.preference if p["persona"] not in test_personas],
        "test": [p for p in result.preference if p["persona"] in test_personas],
    }
    pref = {k: v for k, v in pref.items() if v}
    if pref:
        DatasetDict({k: Dataset.from_list(v) for k, v in pref.items()}).save_to_disk(
            str(out / "preference")
        )
        for k, v in pref.items():
            _write_jsonl(out / "preference" / f"{k}.jsonl", v)
    _write_jsonl(out / "rejected.jsonl", result.rejected)

    stats = dataset_scores(
        [
            [m["content"] for m in r["messages"] if m["role"] == "assistant"]
            for r in result.accepted
        ],
        [_first_reply(r["messages"]) for r in result.accepted],
    )
    summary = {
        "splits": {k: len(v) for k, v in splits.items()},
        "personas": {
            k: sorted({r.get("persona") or "unknown" for r in v}) for k, v in splits.items()
        },
        "preference_pairs": {k: len(v) for k, v in pref.items()},
        "turns_checked": result.turns_checked,
        "rejections_by_reason": dict(result.rejections.most_common()),
        "dialogues_rejected": sum(1 for r in result.rejected if r["action"] == "dropped"),
        "dialogues_truncated": sum(1 for r in result.rejected if r["action"] == "truncated"),
        **stats,
    }
    (out / "filter_report.json").write_text(
        json.dumps({**summary, **dataset_card}, indent=2, ensure_ascii=False) + "\n"
    )
    (out / "README.md").write_text(_dataset_readme(summary, dataset_card, splits), encoding="utf-8")
    return summary


def _every_reason(counts: dict, dataset_card: dict) -> list[tuple[str, int]]:
    """Every rejecting reason of the run, 0 where none was rejected for it (a reason that
    rejects nothing was still checked), then the dataset-level ones."""
    reject = dataset_card.get("checks", {}).get("reject", REASONS)
    return [(r, counts.get(r, 0)) for r in REASONS if r in reject] + [
        (k, v) for k, v in counts.items() if k not in REASONS
    ]


def _dataset_readme(summary: dict, dataset_card: dict, splits: dict) -> str:
    lines = [
        "---",
        "task_categories: [text-generation]",
        "tags: [roleplay, dialogue, rolegen]",
        "configs:",
        "- config_name: default",
        "  data_files:",
        *[f"  - split: {k}\n    path: data/{k}.parquet" for k in splits],
        "---",
        "",
        "# rolegen roleplay dialogues",
        "",
        f"Generated by rolegen from `{dataset_card.get('source', '?')}` with model "
        f"`{dataset_card.get('model') or 'unknown'}` (prompt format "
        f"`{dataset_card.get('format') or 'unknown'}`), checked for "
        "identity echo, cross-turn repetition, loops and persona fidelity (wrong identity, "
        "identity confusion, identity miss, assistant drift); each dialogue is kept up to its "
        "first rejected character turn.",
        "",
        "| split | dialogues | personas |",
        "| --- | --- | --- |",
        *[
            f"| {k} | {summary['splits'][k]} | {', '.join(summary['personas'][k])} |"
            for k in splits
        ],
        "",
        f"Character turns checked: {summary['turns_checked']}; dialogues truncated: "
        f"{summary['dialogues_truncated']}, dropped: {summary['dialogues_rejected']}; preference "
        f"pairs: {summary['preference_pairs'] or 0}. Skipped when read: "
        f"{len(dataset_card.get('bad_lines', []))} bad lines, {len(dataset_card.get('duplicate_ids', []))} "
        "repeated ids (the first copy kept).",
        f"distinct-1 {summary['distinct_1']:.3f}, distinct-2 {summary['distinct_2']:.3f}; share of "
        f"dialogues whose first reply opens like another's: {summary['share_with_shared_opening']:.3f} "
        "(the first reply to the user; the card's greeting, the same by design, is left out).",
        "",
        "## Rejections by reason",
        "",
        "| reason | turns |",
        "| --- | --- |",
        *[
            f"| {k} | {n} |"
            for k, n in _every_reason(summary["rejections_by_reason"], dataset_card)
        ],
        "",
        "## Thresholds",
        "",
        "```json",
        json.dumps(dataset_card.get("checks", {}), indent=2),
        "```",
        "",
        "## Files",
        "",
        "- `dataset/`: `datasets.load_from_disk` DatasetDict, column `messages`",
        "- `data/*.parquet`, `messages/*.jsonl` (TRL, axolotl), `sharegpt/*.jsonl` (LLaMA-Factory)",
        "- `preference/`: prompt / chosen / rejected (TRL DPOTrainer, conversational)",
        "- `rejected.jsonl`: what was cut or dropped, with reasons and scores",
        "",
        "## Sample",
        "",
    ]
    for r in splits.get("train", [])[:1]:
        for m in r["messages"][1:7]:
            lines.append(f"> **{m['role']}**: {m['content'][:300]}")
            lines.append(">")
    return "\n".join(lines) + "\n"
