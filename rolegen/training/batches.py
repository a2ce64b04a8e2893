"""Encoded examples -> micro-batches and the tensors of one: packing (`pack`), the order
of batches per epoch, and the flat packed rows the losses read (SFT rows, preference
pairs as two sequences or with their shared prefix once, the divergence points of the
token-level preference).

`pack` puts several examples into one row with position ids that restart at each
example: transformers then builds a block-diagonal causal mask, so examples never
attend to each other and no compute goes to padding.

Non-goals: reading and encoding the data (`data.py`), the attention over packed rows
(`packed_attention.py`), the losses (`losses.py`).
"""

from __future__ import annotations

import random

from rolegen.config import TrainConfig
from rolegen.training.rendering import IGNORE, Example, PairExample


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
