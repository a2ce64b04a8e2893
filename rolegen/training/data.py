"""Training data: the dataset files -> encoded examples.

Reads what `rolegen filter` exports (a run folder or its `dataset/`, with the
preference pairs of the run's `preference/`) or any JSONL/parquet of `messages`;
encodes dialogues and pairs with a `Renderer` (rendering.py), counting what did
not fit; and samples the pairs a stage trains on.

Non-goals: rendering and labels (`rendering.py`), packing and batching (`batches.py`),
the losses (`losses.py`), the training loop and sharding over processes
(`trainer.py`); streaming datasets larger than memory (every row is read into a list).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rolegen.bounded import load_json
from rolegen.config import TrainConfig
from rolegen.errors import RolegenError
from rolegen.generation.templates import Templates
from rolegen.runs.validation import messages_problem
from rolegen.training.batches import divergence
from rolegen.training.copy_pairs import copy_pairs
from rolegen.training.name_pairs import name_pairs
from rolegen.training.rendering import Example, PairExample, Renderer


@dataclass
class TrainData:
    train: list[dict]
    test: list[dict]
    pairs_train: list[dict]
    pairs_test: list[dict]
    format: str | None  # what the data was generated with, if known
    model: str | None
    source: str


def _rows(ds) -> list[dict]:
    return [dict(r) for r in ds]


def _splits(folder: Path) -> dict[str, list[dict]]:
    """The rows of each split of a `save_to_disk` folder. A split saved with zero rows
    is empty here; datasets' own loader fails on it (IndexError in concat_tables)."""
    import datasets

    index = folder / "dataset_dict.json"
    try:
        names = load_json(index.read_text(encoding="utf-8"), str(index)).get("splits")
    except (ValueError, UnicodeDecodeError, AttributeError) as e:
        raise RolegenError(f"{index}: not a dataset index ({type(e).__name__}: {e})") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RolegenError(f"{index}: field 'splits' must be a list of split names")
    out = {}
    for name in names:
        try:
            out[name] = _rows(datasets.load_from_disk(str(folder / name)))
        except IndexError:
            out[name] = []
        except Exception as e:  # a missing or torn split: named, not a traceback
            raise RolegenError(
                f"{folder / name}: split '{name}' is not readable ({type(e).__name__}: {e})"
            ) from None
    return out


def load_train_data(path: str | Path) -> TrainData:
    """A run folder, its `dataset/` (save_to_disk), or a JSONL/parquet of `messages`."""
    import datasets

    datasets.disable_progress_bars()
    p = Path(path).expanduser()
    if not p.exists():
        raise RolegenError(f"--data {p}: not found")
    run = None
    if p.is_dir() and (p / "dataset" / "dataset_dict.json").is_file():
        run, p = p, p / "dataset"
    elif p.is_dir() and (p / "dataset_dict.json").is_file():
        run = p.parent
    train, test = [], []
    if p.is_dir():
        if not (p / "dataset_dict.json").is_file():
            raise RolegenError(
                f"--data {p}: not a dataset folder (no dataset_dict.json); pass the run folder "
                "or its dataset/ that `rolegen filter` wrote"
            )
        dd = _splits(p)
        train, test = dd.get("train", []), dd.get("test", [])
    elif p.suffix in (".jsonl", ".json", ".parquet"):
        kind = "parquet" if p.suffix == ".parquet" else "json"
        try:
            train = _rows(datasets.load_dataset(kind, data_files=str(p), split="train"))
        except Exception as e:
            raise RolegenError(f"--data {p}: cannot read ({type(e).__name__}: {e})") from None
    else:
        raise RolegenError(f"--data {p}: expected a folder, .jsonl or .parquet")
    for split, rows in (("train", train), ("test", test)):
        for i, row in enumerate(rows):
            why = _messages_problem(row.get("messages"), "messages")
            if why:
                raise RolegenError(f"--data {p}: {split} row {i}: {why}")
    pairs_train, pairs_test, fmt, model = [], [], None, None
    if run is not None:
        pref = run / "preference"
        if (pref / "dataset_dict.json").is_file():
            dd = _splits(pref)
            pairs_train, pairs_test = dd.get("train", []), dd.get("test", [])
        report = run / "filter_report.json"
        if report.is_file():
            try:
                meta = load_json(report.read_text(encoding="utf-8"), str(report))
            except (ValueError, UnicodeDecodeError) as e:
                raise RolegenError(f"{report}: not readable JSON ({e})") from None
            if not isinstance(meta, dict):
                raise RolegenError(f"{report}: expected an object")
            # "unknown": what filter wrote before it wrote null
            fmt, model = (
                v if isinstance(v, str) and v != "unknown" else None
                for v in (meta.get("format"), meta.get("model"))
            )
    return TrainData(train, test, pairs_train, pairs_test, fmt, model, str(p))


def resolve_format(cfg: TrainConfig, data: TrainData, tokenizer, model_path: Path, echo):
    """The prompt format to render the data with: `--format`, else the one the data was
    generated with, else the tokenizer's chat template (which the model must have)."""
    if cfg.format and data.format and cfg.format != data.format:
        echo(
            f"note: the data was generated with format '{data.format}', training renders it "
            f"with '{cfg.format}'; generate with --format {cfg.format} to match"
        )
    name = cfg.format or data.format
    templates = Templates(cfg.templates)
    if name in (None, "chat_template") and not getattr(tokenizer, "chat_template", None):
        raise RolegenError(
            f"{data.source} was generated with a chat template, but the tokenizer of "
            f"{model_path} has none; pass --format (one of {', '.join(templates.formats())})"
        )
    return templates.resolve_format(name, tokenizer, model_path)


def _speaker_names(row: dict) -> tuple[str, str]:
    """The (character, user) names the row's prompt format renders."""
    return row.get("persona_name") or "Character", row.get("user_name") or "User"


def _messages_problem(msgs, field: str) -> str | None:
    """What is wrong with a row's list of chat messages, or None (`messages_problem`)."""
    if not isinstance(msgs, list):
        return f"field '{field}' is not a list of messages (role/content objects)"
    return messages_problem(msgs, field)


def _control_tokens(renderer: Renderer) -> tuple[str, ...]:
    tok = renderer.tokenizer
    added = getattr(tok, "added_tokens_decoder", {}) or {}
    words = {str(t) for t in getattr(tok, "all_special_tokens", [])}
    words |= {t.content for t in added.values() if getattr(t, "special", False)}
    return tuple(w for w in words if w.strip())


def _check_control_tokens(words: tuple[str, ...], messages: list[dict], where: str) -> None:
    """Refuse text that holds the tokenizer's control tokens ("<|im_end|>"): the
    tokenizer reads them as the real tokens, so a reply could end its turn and open a
    system turn of its own, and the loss would teach the model to write them."""
    for k, m in enumerate(messages):
        hit = next((w for w in words if w in m["content"]), None)
        if hit:
            raise RolegenError(
                f"{where}: messages[{k}] holds the tokenizer's control token {hit!r} as "
                "text; remove it from the data"
            )


def encode_sft(renderer: Renderer, rows: list[dict]) -> tuple[list[Example], dict]:
    """Each row's windows (`Renderer.sft_windows`); `windows` counts the examples beyond
    one per dialogue, `dropped_messages` the messages that fit no window."""
    examples, stats = [], {"too_long": 0, "no_target": 0, "windows": 0, "dropped_messages": 0}
    words = _control_tokens(renderer)
    for i, row in enumerate(rows):
        names, row_id = _speaker_names(row), str(row.get("id", ""))
        _check_control_tokens(words, row["messages"], f"training row {row_id or i}")
        rendered = renderer.sft_windows(row["messages"], names, id=row_id)
        windows = [e for e in rendered if e.target_tokens]
        if not windows:
            stats["no_target" if rendered else "too_long"] += 1
            continue
        stats["windows"] += len(windows) - 1
        stats["dropped_messages"] += sum(e.dropped_messages for e in windows)
        examples.extend(windows)
    return examples, stats


def encode_pairs(renderer: Renderer, rows: list[dict]) -> tuple[list[PairExample], dict]:
    """The pairs as examples; a pair that does not fit (`too_long`) or whose two replies
    are the same text (`same_reply`: nothing to prefer, and DPO's loss on it is a
    constant) is counted and left out."""
    pairs, stats = [], {"too_long": 0, "same_reply": 0}
    words = None  # the tokenizer's control tokens, read once the pair is known to be text
    for k, row in enumerate(rows):
        for key in ("prompt", "chosen", "rejected"):
            value = row.get(key)
            if not isinstance(value, list) or (key != "prompt" and not value):
                raise RolegenError(
                    f"preference pair {row.get('id', k)}: field '{key}' must be a list of "
                    "messages (TRL's conversational prompt/chosen/rejected)"
                )
            why = _messages_problem(value, key)
            if why is None and key != "prompt" and value[-1]["role"] != "assistant":
                why = f"{key}[-1]: the reply is not the assistant's"
            if why:
                raise RolegenError(f"preference pair {row.get('id', k)}: {why}")
        words = _control_tokens(renderer) if words is None else words
        for key in ("prompt", "chosen", "rejected"):
            _check_control_tokens(words, row[key], f"preference pair {row.get('id', k)}, {key}")
        chosen, rejected = row["chosen"][-1]["content"], row["rejected"][-1]["content"]
        if chosen == rejected:
            stats["same_reply"] += 1
            continue
        pe = renderer.pair_example(
            row["prompt"],
            chosen,
            rejected,
            _speaker_names(row),
            id=str(row.get("id", "")),
        )
        if pe is None or pe.chosen.target_tokens == 0 or pe.rejected.target_tokens == 0:
            stats["too_long"] += 1
        else:
            pairs.append(pe)
    return pairs, stats


def encode_sft_splits(
    renderer: Renderer, data: TrainData
) -> tuple[list[Example], list[Example], dict]:
    """The train and test dialogues as SFT examples, and what encoding dropped."""
    if not data.train:
        raise RolegenError(f"{data.source}: the train split is empty")
    train, train_stats = encode_sft(renderer, data.train)
    test, test_stats = encode_sft(renderer, data.test)
    if not train:
        raise RolegenError(
            f"{data.source}: no dialogue has a character turn within --max-length "
            f"{renderer.max_length} tokens ({train_stats})"
        )
    return train, test, {"sft_train": train_stats, "sft_test": test_stats}


def encode_pair_splits(
    renderer: Renderer,
    data: TrainData,
    max_pairs: int | None,
    seed: int,
    by_reason: bool = False,
    copies: int = 0,
    names: int = 0,
) -> tuple[list[PairExample], list[PairExample], dict]:
    """The train and test preference pairs (at most `max_pairs`, and an eighth of that
    for test, seeded samples, even across reasons with `by_reason`), and what encoding
    dropped. With `copies`, a seeded sample of that many self-copy pairs of the train
    dialogues (`copy_pairs.py`), and an eighth of that from the test dialogues, is added
    to each split's sample; with `names`, the same of name-swap pairs (`name_pairs.py`)."""
    rows_train, rows_test = data.pairs_train, data.pairs_test
    if max_pairs:
        sample = _sample_by_reason if by_reason else _sample
        rows_train = sample(rows_train, max_pairs, seed)
        rows_test = sample(rows_test, max(1, max_pairs // 8), seed)
    if copies:
        rows_train = rows_train + _sample(copy_pairs(data.train), copies, seed)
        rows_test = rows_test + _sample(copy_pairs(data.test), max(1, copies // 8), seed)
    if names:
        rows_train = rows_train + _sample(name_pairs(data.train, seed=seed), names, seed)
        rows_test = rows_test + _sample(name_pairs(data.test, seed=seed), max(1, names // 8), seed)
    if not rows_train:
        raise RolegenError(
            f"{data.source}: no preference pairs (the run's preference/ folder). They come "
            "from turns the checks rejected while generating (rolegen generate --check); "
            "use --method sft, or generate more dialogues"
        )
    train, train_stats = encode_pairs(renderer, rows_train)
    test, test_stats = encode_pairs(renderer, rows_test)
    train_stats["reasons"] = dict(Counter(map(_first_reason, rows_train)).most_common())
    if not train:
        raise RolegenError(
            f"{data.source}: no preference pair fits --max-length {renderer.max_length} "
            f"tokens with two different replies ({train_stats})"
        )
    return train, test, {"dpo_train": train_stats, "dpo_test": test_stats}


def _sample(rows: list, n: int, seed: int) -> list:
    """At most n rows, a seeded sample in their original order."""
    if len(rows) <= n:
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in keep]


def _first_reason(row: dict) -> str:
    """A preference pair's rejection reason: the first its rejected reply was given."""
    return (row.get("reasons") or ["unknown"])[0]


def _sample_by_reason(rows: list[dict], n: int, seed: int) -> list[dict]:
    """At most n pairs, each reason (a pair's first) an even share, in their original
    order: the reasons are filled smallest first, so a reason with fewer pairs than its
    share is taken whole and what it leaves goes to the others; seeded within a reason."""
    if len(rows) <= n:
        return rows
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(_first_reason(row), []).append(i)
    rng = random.Random(seed)
    keep, left = [], n
    order = sorted(groups, key=lambda reason: (len(groups[reason]), reason))
    for k, reason in enumerate(order):
        share = left // (len(order) - k)
        taken = sorted(rng.sample(groups[reason], min(share, len(groups[reason]))))
        keep += taken
        left -= len(taken)
    return [rows[i] for i in sorted(keep)]


def divergent_pairs(
    train: list[PairExample], test: list[PairExample]
) -> tuple[list[PairExample], list[PairExample], dict]:
    """The pairs a token-level preference can use: those whose replies differ at some
    token (not one reply a prefix of the other, nor both the same); and how many not."""
    keep_train = [p for p in train if divergence(p) is not None]
    keep_test = [p for p in test if divergence(p) is not None]
    if not keep_train:
        raise RolegenError("--dpo-loss ftpo: no preference pair has replies that differ")
    dropped = {"train": len(train) - len(keep_train), "test": len(test) - len(keep_test)}
    return keep_train, keep_test, {"ftpo_no_divergence": dropped}


def encode_stages(cfg, renderer, data, stages: list[str]) -> tuple[list, list, list, list, dict]:
    """What the stages train on: (SFT train, SFT test, pairs train, pairs test, counts).
    The dialogues are encoded for SFT and for unlikelihood (which takes its contexts from
    them); the pairs for DPO, cut to their divergence token for FTPO."""
    stats: dict = {}
    sft_train = sft_test = pairs_train = pairs_test = []
    if "sft" in stages or cfg.ul_weight:
        sft_train, sft_test, counts = encode_sft_splits(renderer, data)
        stats.update(counts)
    if "dpo" in stages:
        pairs_train, pairs_test, counts = encode_pair_splits(
            renderer,
            data,
            cfg.dpo_max_pairs,
            cfg.seed,
            cfg.dpo_pair_sample == "by-reason",
            cfg.dpo_copy_pairs,
            cfg.dpo_name_pairs,
        )
        stats.update(counts)
        if cfg.dpo_loss == "ftpo":
            pairs_train, pairs_test, counts = divergent_pairs(pairs_train, pairs_test)
            stats.update(counts)
    return sft_train, sft_test, pairs_train, pairs_test, stats
