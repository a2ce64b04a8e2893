"""Repetition at matched length: near-copy and seq-rep-4 of two systems' replies, each
paired turn cut to the shorter reply's length.

Why: a system whose replies are shorter has fewer chances to repeat (fewer 4-grams to
reuse, fewer words to copy), so a fix that only shortens the replies would look like a
fix of looping. Scored at matched length, both systems get the same word budget on
every paired turn.

A paired turn: the same dialogue seed key and the same character turn t in two
systems (same user turns, same seeds; see evaluate.py). Both replies are cut to the
shorter one's word count, then scored again with the checks' own scorers
(`checks/repetition.py`):
- seq-rep-4 of the cut reply;
- near-copy: the cut reply's `fuzz.ratio` over words against every earlier character
  turn of its own dialogue (the greeting included) >= the checks' repeat threshold,
  with each earlier turn cut to the same word count. Why the earlier turns are cut
  too: `fuzz.ratio` <= 200 * min / (l1 + l2), so a k-word head against a whole
  earlier turn of 2k words reads at most 67 even when it copies it word for word;
  cutting only the reply would hide the longer system's copies. Both sides cut, the
  question is "do the first k words repeat the first k words of an earlier turn".

Length is counted in words as the checks count them (`utils.default_process`, then
runs of non-space), not in model tokens: the records do not all carry token counts,
and the systems of one eval may not share a tokenizer. Not handled: languages written
without spaces count a run of characters as one word, as the checks do. A turn where
either reply has no word is left out.

Intervals: the cluster bootstrap over dialogue keys of `metrics.summarize`, with the
same resample weights, so the paired delta resamples the same dialogues for both.
"""

from __future__ import annotations

import numpy as np
from rapidfuzz import utils

from rolegen.checks.dataset import record_turns
from rolegen.checks.repetition import repetition_scores
from rolegen.checks.turns import CheckConfig, DialogueTurns
from rolegen.evaluation.metrics import interval, resample_weights

# results.json's names of the matched figures, and the report's labels
MATCHED = {
    "near_copy_matched": "near-copy at matched length (share)",
    "seq_rep4_matched": "seq-rep-4 at matched length",
}


def words(text: str) -> list[str]:
    """A reply's words as the checks count them."""
    return utils.default_process(text).split()


def cut(text: str, k: int) -> str:
    """The first `k` of the checks' words of `text` (whole when it has fewer)."""
    return " ".join(words(text)[:k])


def _histories(records: list[dict]) -> dict[tuple[str, str], list[str]]:
    """(system, seed key) -> every character turn, greeting included, in the checks'
    indexing (a row's `index`)."""
    return {
        (r.get("system", "data"), r.get("seed_key") or r["id"]): record_turns(r).character
        for r in records
    }


def pair_scores(
    rows: list[dict], histories: dict, a: str, b: str, cfg: CheckConfig
) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """Systems `a` and `b` at matched length: field -> dialogue key -> [(a's score, b's
    score)] per paired turn, fields `near_copy_matched` and `seq_rep4_matched`."""
    by_turn = {(r["system"], r["dialogue"], r["turn"]): r for r in rows}
    keys = sorted(
        (d, t) for s, d, t in by_turn if s == a and (b, d, t) in by_turn
    )  # the paired turns
    dialogues, owners = [], []
    for d, t in keys:
        ra, rb = by_turn[(a, d, t)], by_turn[(b, d, t)]
        k = min(len(words(ra["text"])), len(words(rb["text"])))
        if k == 0:
            continue
        for row, system in ((ra, a), (rb, b)):
            history = histories[(system, d)][: row["index"] + 1]
            dialogues.append(
                DialogueTurns(
                    character=[cut(text, k) for text in history],
                    users=[None] * len(history),
                    has_greeting=False,
                    score_from=len(history) - 1,  # only the paired turn is scored
                )
            )
        owners.append(d)
    out: dict[str, dict[str, list[tuple[float, float]]]] = {f: {} for f in MATCHED}
    if not dialogues:
        return out
    scores = repetition_scores(dialogues, cfg, prefilter=False)
    last = np.cumsum([len(x.character) for x in dialogues]) - 1  # each dialogue's scored turn
    near = (scores["repeat"][last] >= cfg.repeat_ratio).astype(float)
    loop = scores["seq_rep4"][last]
    for i, d in enumerate(owners):
        pa, pb = 2 * i, 2 * i + 1
        out["near_copy_matched"].setdefault(d, []).append((float(near[pa]), float(near[pb])))
        out["seq_rep4_matched"].setdefault(d, []).append((float(loop[pa]), float(loop[pb])))
    return out


def summarize_matched(
    rows: list[dict],
    records: list[dict],
    cfg: CheckConfig,
    reference: str | None,
    references: dict[str, str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """{"systems": system -> field -> entry, "pairwise": field -> a -> b -> interval}.

    A system's entry is against its reference (`references`, else `reference`): value
    and 95% interval of its cut replies, `reference_value` (the reference's replies cut
    on the same turns), delta and paired interval, n (paired turns). The reference has
    no entry of its own: its figure at matched length depends on the system it is cut
    against. `pairwise`: the interval of a - b for every two systems, each pair cut to
    its own shorter reply (the headline's comparison with a decoding fix)."""
    references = references or {}
    systems = list(dict.fromkeys(r["system"] for r in rows))
    keys = sorted({r["dialogue"] for r in rows})  # as metrics.summarize: the same weights
    at = {k: i for i, k in enumerate(keys)}
    weights = resample_weights(len(keys), resamples, seed) if keys else np.zeros((0, 0))
    histories = _histories(records)
    out: dict = {"systems": {}, "pairwise": {f: {s: {} for s in systems} for f in MATCHED}}

    def sums(per_dialogue: dict, side: int) -> tuple[np.ndarray, np.ndarray]:
        total, count = np.zeros(len(keys)), np.zeros(len(keys))
        for d, pairs in per_dialogue.items():
            total[at[d]] += sum(p[side] for p in pairs)
            count[at[d]] += len(pairs)
        return total, count

    for i, a in enumerate(systems):
        for b in systems[i + 1 :]:
            scored = pair_scores(rows, histories, a, b, cfg)
            for field, per_dialogue in scored.items():
                (ta, ca), (tb, cb) = sums(per_dialogue, 0), sums(per_dialogue, 1)
                if not ca.sum():
                    continue
                with np.errstate(invalid="ignore", divide="ignore"):
                    boot_a, boot_b = (
                        (weights @ ta) / (weights @ ca),
                        (weights @ tb) / (weights @ cb),
                    )
                out["pairwise"][field][a][b] = interval(boot_a - boot_b)
                out["pairwise"][field][b][a] = interval(boot_b - boot_a)
                for s, ref, (ts, boot_s), (tr, boot_r) in (
                    (a, b, (ta, boot_a), (tb, boot_b)),
                    (b, a, (tb, boot_b), (ta, boot_a)),
                ):
                    if references.get(s, reference) != ref or s == ref:
                        continue
                    value, ref_value = ts.sum() / ca.sum(), tr.sum() / ca.sum()
                    out["systems"].setdefault(s, {})[field] = {
                        "value": round(float(value), 4),
                        "ci95": interval(boot_s),
                        "n": int(ca.sum()),
                        "reference": ref,
                        "reference_value": round(float(ref_value), 4),
                        "delta": round(float(value - ref_value), 4),
                        "delta_ci95": interval(boot_s - boot_r),
                    }
    return out
