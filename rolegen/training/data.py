"""Training data: the dataset files -> encoded examples -> micro-batches.

Reads what `rolegen filter` exports (a run folder or its `dataset/`, with the
preference pairs of the run's `preference/`) or any JSONL/parquet of `messages`;
encodes dialogues and pairs with a `Renderer` (rendering.py), counting what did
not fit; and batches them per epoch in a seeded order.

`pack` puts several examples into one row with position ids that restart at each
example: transformers then builds a block-diagonal causal mask, so examples never
attend to each other and no compute goes to padding.

Non-goals: rendering and labels (`rendering.py`), the losses (`losses.py`), the
training loop and sharding over processes (`trainer.py`); streaming datasets
larger than memory (every row is read into a list).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rolegen.config import TrainConfig
from rolegen.errors import RolegenError
from rolegen.generation.templates import Templates
from rolegen.training.rendering import IGNORE, Example, PairExample, Renderer


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

    names = json.loads((folder / "dataset_dict.json").read_text()).get("splits", [])
    out = {}
    for name in names:
        try:
            out[name] = _rows(datasets.load_from_disk(str(folder / name)))
        except IndexError:
            out[name] = []
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
    for i, row in enumerate(train + test):
        msgs = row.get("messages")
        if not isinstance(msgs, list) or not all(
            isinstance(m, dict) and m.get("role") in ("system", "user", "assistant") for m in msgs
        ):
            raise RolegenError(
                f"--data {p}: row {i} has no valid 'messages' (a list of role/content dicts)"
            )
    pairs_train, pairs_test, fmt, model = [], [], None, None
    if run is not None:
        pref = run / "preference"
        if (pref / "dataset_dict.json").is_file():
            dd = _splits(pref)
            pairs_train, pairs_test = dd.get("train", []), dd.get("test", [])
        report = run / "filter_report.json"
        if report.is_file():
            meta = json.loads(report.read_text())
            fmt, model = meta.get("format"), meta.get("model")
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


def encode_sft(renderer: Renderer, rows: list[dict]) -> tuple[list[Example], dict]:
    examples, stats = [], {"too_long": 0, "no_target": 0, "dropped_messages": 0}
    for row in rows:
        e = renderer.sft_example(row["messages"], _speaker_names(row), id=str(row.get("id", "")))
        if e is None:
            stats["too_long"] += 1
        elif e.target_tokens == 0:
            stats["no_target"] += 1
        else:
            stats["dropped_messages"] += e.dropped_messages
            examples.append(e)
    return examples, stats


def encode_pairs(renderer: Renderer, rows: list[dict]) -> tuple[list[PairExample], dict]:
    pairs, stats = [], {"too_long": 0}
    for k, row in enumerate(rows):
        for key in ("prompt", "chosen", "rejected"):
            value = row.get(key)
            if not isinstance(value, list) or (key != "prompt" and not value):
                raise RolegenError(
                    f"preference pair {row.get('id', k)}: field '{key}' must be a list of "
                    "messages (TRL's conversational prompt/chosen/rejected)"
                )
        pe = renderer.pair_example(
            row["prompt"],
            row["chosen"][-1]["content"],
            row["rejected"][-1]["content"],
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
) -> tuple[list[PairExample], list[PairExample], dict]:
    """The train and test preference pairs (at most `max_pairs`, and an eighth of that
    for test, seeded samples, even across reasons with `by_reason`), and what encoding
    dropped."""
    if not data.pairs_train:
        raise RolegenError(
            f"{data.source}: no preference pairs (the run's preference/ folder). They come "
            "from turns the checks rejected while generating (rolegen generate --check); "
            "use --method sft, or generate more dialogues"
        )
    rows_train, rows_test = data.pairs_train, data.pairs_test
    if max_pairs:
        sample = _sample_by_reason if by_reason else _sample
        rows_train = sample(rows_train, max_pairs, seed)
        rows_test = sample(rows_test, max(1, max_pairs // 8), seed)
    train, train_stats = encode_pairs(renderer, rows_train)
    test, test_stats = encode_pairs(renderer, rows_test)
    train_stats["reasons"] = dict(Counter(map(_first_reason, rows_train)).most_common())
    if not train:
        raise RolegenError(
            f"{data.source}: no preference pair fits --max-length {renderer.max_length} tokens"
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


def pack(examples: list[Example], row_length: int) -> list[list[int]]:
    """Rows of example indices, each row's total length <= row_length (first-fit
    decreasing: nearly full rows, little padding)."""
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i]))
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = len(examples[i])
        for r, free in enumerate(room):
            if n <= free:
                rows[r].append(i)
                room[r] -= n
                break
        else:
            rows.append([i])
            room.append(row_length - n)
    return rows


def collate_packed(rows: list[list[Example]]) -> dict:
    """A micro-batch of packed rows -> one flat row of all its examples (no padding).
    `position_ids` restart at each example and `cu_seq_lens_q` holds the boundaries
    (the attention boundary either way, see packed_attention.py); `segments` numbers
    the examples so per-example sums can be taken from per-token values."""
    import torch

    examples = [e for row in rows for e in row]
    ids = torch.tensor([[t for e in examples for t in e.input_ids]], dtype=torch.long)
    labels = torch.tensor([[t for e in examples for t in e.labels]], dtype=torch.long)
    positions = torch.cat([torch.arange(len(e)) for e in examples])[None]
    segments = torch.cat(
        [torch.full((len(e),), k, dtype=torch.long) for k, e in enumerate(examples)]
    )[None]
    bounds = [0]
    for e in examples:
        bounds.append(bounds[-1] + len(e))
    return {
        "input_ids": ids,
        "labels": labels,
        "position_ids": positions,
        "segments": segments,
        "cu_seq_lens_q": torch.tensor(bounds, dtype=torch.int32),
    }


def sft_batches(examples: list[Example], cfg: TrainConfig, epoch: int) -> list[list[list[int]]]:
    """Micro-batches of packed rows (example indices); row order shuffled per epoch."""
    rows = pack(examples, cfg.max_length)
    random.Random(cfg.seed * 1000 + epoch).shuffle(rows)
    return [rows[i : i + cfg.batch_size] for i in range(0, len(rows), cfg.batch_size)]


def pair_batches(pairs: list[PairExample], cfg: TrainConfig, epoch: int) -> list[list[int]]:
    order = list(range(len(pairs)))
    random.Random(cfg.seed * 1000 + epoch).shuffle(order)
    # batch_size rows hold about batch_size * max_length tokens; a pair takes two sequences.
    per = max(1, cfg.batch_size * cfg.max_length // max(1, 2 * _mean_len(pairs)))
    return [order[i : i + per] for i in range(0, len(order), per)]


def _mean_len(pairs: list[PairExample]) -> int:
    return int(sum(len(p.chosen) + len(p.rejected) for p in pairs) / (2 * max(1, len(pairs))))


def pair_tensors(pairs: list[PairExample]) -> dict:
    """The chosen and rejected sequences of the pairs in one flat packed row; segment
    2k is pair k's chosen, 2k+1 its rejected."""
    return collate_packed([[e for p in pairs for e in (p.chosen, p.rejected)]])


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading tokens `a` and `b` share."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def shared_pair_tensors(pairs: list[PairExample]) -> dict:
    """The pairs in one flat row, each as its shared prefix, then the rest of the chosen
    sequence, then the rest of the rejected one (`prefix_groups` gives the attention its
    blocks, see packed_attention.py; the rejected part's position ids continue from the
    prefix). The shared prefix is the longest common one of the two token sequences:
    the context, and any first reply tokens both replies have.

    The labels cannot be a shifted copy of the row: the rejected part's first token is
    predicted at the prefix's last position, not at the position before it in the row,
    and a labelled token inside the shared prefix belongs to both replies. So each
    labelled token becomes one entry of `logit_index` (the row position whose logits
    predict it), `targets` and `target_segments` (2k: pair k's chosen, 2k+1: its
    rejected); a shared one appears once for each reply."""
    import torch

    ids, positions, groups = [], [], []
    logit_index, targets, segments = [], [], []
    for k, pair in enumerate(pairs):
        c, r = pair.chosen, pair.rejected
        n = common_prefix(c.input_ids, r.input_ids)
        a = len(ids)
        ids += c.input_ids + r.input_ids[n:]
        positions += [*range(len(c)), *range(n, len(r))]
        groups.append((a, a + n, a + len(c), a + len(c) + len(r) - n))
        for seg, e, tail in ((2 * k, c, a), (2 * k + 1, r, a + len(c) - n)):
            for i in range(1, len(e)):
                if e.labels[i] != IGNORE:
                    # position i-1 in the example: in the prefix, or in this reply's part
                    logit_index.append(a + i - 1 if i - 1 < n else tail + i - 1)
                    targets.append(e.labels[i])
                    segments.append(seg)
    return {
        "input_ids": torch.tensor([ids], dtype=torch.long),
        "position_ids": torch.tensor([positions], dtype=torch.long),
        "prefix_groups": torch.tensor(groups, dtype=torch.long).view(-1, 4),
        "logit_index": torch.tensor(logit_index, dtype=torch.long),
        "targets": torch.tensor(targets, dtype=torch.long),
        "target_segments": torch.tensor(segments, dtype=torch.long),
    }


def divergence(pair: PairExample) -> int | None:
    """The index of the first token where the chosen and rejected sequences differ, or
    None when one is a prefix of the other (nothing to prefer at a single token)."""
    c, r = pair.chosen.input_ids, pair.rejected.input_ids
    n = common_prefix(c, r)
    return n if 0 < n < min(len(c), len(r)) else None


def divergence_tensors(pairs: list[PairExample]) -> dict:
    """For the token-level preference: each pair's shared prefix up to its divergence
    point, packed into one flat row (`collate_packed`), with `logit_index` (the row
    position whose logits predict the divergence token) and the chosen and rejected
    tokens there. Every pair must have a `divergence`."""
    import torch

    prefixes, logit_index, chosen, rejected = [], [], [], []
    end = 0
    for pair in pairs:
        n = divergence(pair)
        prefixes.append(Example(pair.chosen.input_ids[:n], [IGNORE] * n))
        end += n
        logit_index.append(end - 1)
        chosen.append(pair.chosen.input_ids[n])
        rejected.append(pair.rejected.input_ids[n])
    batch = collate_packed([prefixes])
    batch.update(
        logit_index=torch.tensor(logit_index, dtype=torch.long),
        chosen_tokens=torch.tensor(chosen, dtype=torch.long),
        rejected_tokens=torch.tensor(rejected, dtype=torch.long),
    )
    return batch


def reply_starts(examples: list[Example]) -> list[tuple[int, int]]:
    """(example index, position) of the first token of every labelled run (a character
    turn) that has context before it: the places a reply can be sampled from."""
    out = []
    for k, e in enumerate(examples):
        for i in range(1, len(e)):
            if e.labels[i] != IGNORE and e.labels[i - 1] == IGNORE:
                out.append((k, i))
    return out


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
