"""Eval metrics: one row per character turn, then per-system figures with intervals.

Every lexical score comes from `checks/turns.py` (the same code generate and filter
use), with exact ratios (no pre-filter). A row holds, for character turn t >= 1
of one dialogue (the card's greeting is context, not scored):

- echo: the checks flagged identity echo: an unasked self-introduction at t >= 2, under
  the character's name or another;
- wrong_identity: the reply introduces itself under a name not the character's (any t);
- identity_confusion: unasked, the character's name where it does not belong: for the
  user, or the character speaking of itself in the third person;
- asked / recall / identity_miss: the user asked who the character is; the reply names
  it / the checks flagged that it does not (None when not asked);
- assistant_drift: the generic helpful-assistant voice in the character's mouth;
- repeat (max `fuzz.ratio` against earlier character turns), near_copy (repeat >=
  the checks' repeat threshold), crep4, seq_rep4, loop (the checks' loop reason);
- opener: the reply opens with the same first words (the checks' `opener_words`) as an
  earlier character turn of the dialogue, the greeting included (the checks' opener);
- tic: the reply keeps coming back to a short phrase set off by punctuation, 3 times or
  more ("…, you know? … you know? … you know?"; `checks/tics.py`), which neither
  seq-rep-4 (4-grams) nor the loop check (back-to-back repeats) counts;
- words, ooc (assistant boilerplate);
- paraphrase, relevance, nll: filled in by `model_scores.py` when a model and the
  embedder are at hand (None otherwise);
- persona_rank, persona_top1, persona_rr: the reply's own card ranked among the run's
  cards, filled in by `distinctiveness.py` (None without the embedder or two cards);
- wrong_identity_learned: the wrong identity pattern check's flag, or the learned persona
  check's (`persona_model.py`; None without `--persona-model`);
- judge_out_of_character, judge_wrong_identity, judge_acts_for_user, judge_helper_voice:
  the model judge's verdicts, filled in by `judge.py` (None without a judge, or where its
  answer is missing).

Relevance is not a persona measure: a generic assistant reply ("Right now I'm ready to
help you find whatever you're looking for") is closer to most user turns than an
in-character one. It stands beside the persona figures, never for them.

Figures are means over the turns a metric applies to. Fluency is also given over the
turns that neither loop nor copy an earlier turn: repeated text is easy to predict
(measured on the embedded model: NLL 0.61 on looping turns, 0.17 on near-copies, 1.35
on the rest), so the plain mean rewards repetition and penalizes any fix of it. Intervals: a cluster
bootstrap over dialogues (turns of one dialogue are not independent); deltas
against a reference system resample the same dialogues for both, which is what
makes "same user turns, same seeds" pay off. distinct-1/2 are corpus figures
and carry no interval (a resample with repeated dialogues would deflate them).
Repetition at matched length (two systems' paired turns cut to the shorter reply) needs a
pair of systems, not one row: it is in matched.py, with this module's bootstrap.

Non-goals: generating, writing files, plotting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rolegen.checks.dataset import record_turns
from rolegen.checks.dataset_stats import distinct_n
from rolegen.checks.phrases import asks_identity, names_character
from rolegen.checks.tics import filler_tics
from rolegen.checks.turns import CheckConfig, check_dialogues
from rolegen.evaluation.judge import FIELDS as JUDGE_FIELDS
from rolegen.evaluation.judge import LABELS as JUDGE_LABELS


@dataclass(frozen=True)
class Metric:
    name: str
    field: str
    label: str
    better: str  # "lower", "higher" or "" (no direction: length)
    applies: Callable[[dict], bool] = lambda row: True
    guardrail: bool = False


def _unasked_t2(row: dict) -> bool:
    return row["turn"] >= 2 and not row["asked"]


def _asked(row: dict) -> bool:
    return row["asked"]


METRICS = (
    # identity_echo: the name is kept from when only self-introductions under the character's
    # own name counted, so older results.json still read
    Metric(
        "identity_echo", "echo", "identity statements, unasked (share of turns)", "lower",
        _unasked_t2,
    ),
    Metric("wrong_identity", "wrong_identity", "wrong identity: names itself as another", "lower"),
    Metric(
        "wrong_identity_learned", "wrong_identity_learned",
        "wrong identity, the patterns or the learned check", "lower",
    ),
    Metric(
        "identity_confusion", "identity_confusion",
        "identity confusion: own name for the user or in 3rd person, unasked", "lower",
        lambda r: not r["asked"],
    ),
    Metric("identity_recall", "recall", "identity recall, asked (share)", "higher", _asked),
    Metric("identity_miss", "identity_miss", "identity miss, asked (share)", "lower", _asked),
    Metric("assistant_drift", "assistant_drift", "assistant drift: generic helper voice", "lower"),
    Metric("acts_for_user", "acts_for_user", "acts or speaks for the user (share)", "lower"),
    # the model judge's verdicts (judge.py), beside the pattern checks; None without a judge
    *(
        Metric(field, field, f"judge: {JUDGE_LABELS[fault]} (share)", "lower")
        for fault, field in JUDGE_FIELDS.items()
    ),
    Metric("near_copy", "near_copy", "near-copy of an earlier turn (share)", "lower"),
    Metric("repeat_ratio", "repeat", "max fuzz.ratio vs earlier turns (mean)", "lower"),
    Metric("crep4", "crep4", "crep-4: 4-grams reused from earlier turns", "lower"),
    Metric("opener_reuse", "opener", "opener reuse: opens as an earlier reply did", "lower"),
    Metric("paraphrase", "paraphrase", "paraphrase: max cosine vs earlier turns", "lower"),
    Metric("seq_rep4", "seq_rep4", "seq-rep-4 inside a reply", "lower"),
    Metric("filler_tic", "tic", "filler tic: a short phrase 3+ times in a reply", "lower"),
    Metric("loop", "loop", "loop flagged (share of turns)", "lower"),
    Metric("words", "words", "reply length (words)", ""),
    Metric("fluency_nll", "nll", "fluency: token NLL under the base model", "lower", guardrail=True),
    Metric(
        "fluency_nll_clean", "nll", "fluency on turns that neither loop nor copy (NLL)", "lower",
        lambda r: not r["loop"] and not r["near_copy"], guardrail=True,
    ),
    Metric(
        "relevance", "relevance", "relevance: cosine of reply and user turn (not persona)",
        "higher", guardrail=True,
    ),
    Metric("persona_top1", "persona_top1", "persona top-1: own card ranked first", "higher"),
    Metric("persona_mrr", "persona_rr", "persona MRR: reciprocal rank of own card", "higher"),
    Metric("ooc", "ooc", "out-of-character boilerplate (share)", "lower", guardrail=True),
)  # fmt: skip
BY_NAME = {m.name: m for m in METRICS}
PAIRWISE = ("near_copy", "seq_rep4")  # paired intervals between every two systems
CURVES = ("near_copy", "identity_echo", "seq_rep4", "paraphrase")  # plotted by turn index
# the terminal's table after an eval (the report has every metric)
SUMMARY = (
    "near_copy", "seq_rep4", "identity_echo", "identity_recall", "fluency_nll", "relevance",
    "wrong_identity", "identity_confusion", "identity_miss", "assistant_drift", "acts_for_user",
    "persona_top1",
)  # fmt: skip


# check reasons that become a row's 0/1 field of the same name
_FLAGS = (
    "echo", "wrong_identity", "identity_confusion", "identity_miss", "assistant_drift", "loop", "ooc"
)  # fmt: skip


def turn_rows(records: list[dict], cfg: CheckConfig | None = None) -> list[dict]:
    """One row per scored character turn of every record (see the module docstring).
    A record's `system` and `seed_key` name the system and pair dialogues across systems."""
    cfg = cfg or CheckConfig()
    items = [record_turns(r) for r in records]
    rows = []
    for record, item, checks in zip(records, items, check_dialogues(items, cfg, prefilter=False)):
        for c in checks:
            text, user = item.character[c.index], item.users[c.index]
            asked = asks_identity(user)
            flagged = {r: float(r in c.reasons) for r in _FLAGS}
            rows.append(
                {
                    "system": record.get("system", "data"),
                    "dialogue": record.get("seed_key") or record["id"],
                    "persona": record.get("persona", ""),
                    "turn": c.turn,
                    "index": c.index,
                    "text": text,
                    "user": user,
                    "asked": asked,
                    "echo": flagged["echo"],
                    "wrong_identity": flagged["wrong_identity"],
                    "wrong_identity_learned": None,
                    "identity_confusion": flagged["identity_confusion"],
                    "recall": float(
                        names_character(text, item.name, item.facts.aliases if item.facts else ())
                    )
                    if asked
                    else None,
                    "identity_miss": flagged["identity_miss"] if asked else None,
                    "assistant_drift": flagged["assistant_drift"],
                    "acts_for_user": float("user" in c.reasons),
                    "repeat": c.scores["repeat"],
                    "near_copy": float(c.scores["repeat"] >= cfg.repeat_ratio),
                    "crep4": c.scores["crep4"],
                    "seq_rep4": c.scores["seq_rep4"],
                    "opener": c.scores["opener"],
                    "tic": float(bool(filler_tics(text))),
                    "loop": flagged["loop"],
                    "words": float(len(text.split())),
                    "ooc": flagged["ooc"],
                    "paraphrase": None,
                    "relevance": None,
                    "nll": None,
                    "persona_rank": None,
                    "persona_top1": None,
                    "persona_rr": None,
                    **dict.fromkeys(JUDGE_FIELDS.values()),
                }
            )
    return rows


def _sums(rows: list[dict], metric: Metric, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-dialogue sum and count of a metric's values, in the order of `keys`."""
    at = {k: i for i, k in enumerate(keys)}
    s, n = np.zeros(len(keys)), np.zeros(len(keys))
    for r in rows:
        v = r.get(metric.field)
        if v is None or not metric.applies(r):
            continue
        s[at[r["dialogue"]]] += v
        n[at[r["dialogue"]]] += 1
    return s, n


def interval(samples: np.ndarray) -> list[float] | None:
    samples = samples[np.isfinite(samples)]
    if not len(samples):
        return None
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return [round(float(lo), 4), round(float(hi), 4)]


def resample_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """How often each dialogue is drawn in each bootstrap resample."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1 / n), size=resamples).astype(float)


def summarize(
    rows: list[dict],
    reference: str | None = None,
    resamples: int = 1000,
    seed: int = 0,
    references: dict[str, str] | None = None,
) -> dict:
    """Per system, per metric: value, 95% interval, n (turns), and the delta against
    `reference` (or the system's own in `references`: the eval's prompt axis compares
    within a prompt) with its paired interval. Also distinct-1/2 and per-turn curves."""
    references = references or {}
    systems = list(dict.fromkeys(r["system"] for r in rows))
    keys = sorted({r["dialogue"] for r in rows})
    weights = resample_weights(len(keys), resamples, seed) if keys else np.zeros((0, 0))
    out: dict = {}
    pairwise: dict = {}
    per_system = {s: [r for r in rows if r["system"] == s] for s in systems}
    for metric in METRICS:
        sums = {s: _sums(per_system[s], metric, keys) for s in systems}
        boot = {}
        for s in systems:
            total, count = sums[s]
            with np.errstate(invalid="ignore", divide="ignore"):
                boot[s] = (weights @ total) / (weights @ count)
        for s in systems:
            total, count = sums[s]
            entry = {
                "value": round(float(total.sum() / count.sum()), 4) if count.sum() else None,
                "ci95": interval(boot[s]) if count.sum() else None,
                "n": int(count.sum()),
            }
            ref = references.get(s, reference)
            if ref and s != ref and ref in sums and entry["value"] is not None:
                ref_total, ref_count = sums[ref]
                if ref_count.sum():
                    entry["delta"] = round(
                        entry["value"] - float(ref_total.sum() / ref_count.sum()), 4
                    )
                    entry["delta_ci95"] = interval(boot[s] - boot[ref])
            out.setdefault(s, {})[metric.name] = entry
        if metric.name in PAIRWISE:  # every system against every other, paired
            pairwise[metric.name] = {
                a: {b: interval(boot[a] - boot[b]) for b in systems if b != a} for a in systems
            }
    for s in systems:
        texts = [r["text"] for r in per_system[s] if "text" in r]
        for n in (1, 2):
            out[s][f"distinct_{n}"] = {"value": round(distinct_n(texts, n), 4), "n": len(texts)}
        out[s]["dialogues"] = len({r["dialogue"] for r in per_system[s]})
        out[s]["turns"] = len(per_system[s])
    summary = {"systems": out, "curves": curves(rows), "reference": reference, "pairwise": pairwise}
    if references:
        summary["references"] = references
    return summary


# End reasons of a dialogue that ran its whole script (an eval plays each script to its end).
_FINISHED = ("completed", "script_exhausted")


def endings(records: list[dict], rows: list[dict]) -> dict:
    """Per system: dialogues, those that ended before their script's last turn by end
    reason (their later turns go unscored, so the systems are then scored on different
    turns), empty replies replaced by a resample, and the turns scored."""
    out: dict = {}
    for r in records:
        entry = out.setdefault(
            r.get("system", "data"),
            {"dialogues": 0, "ended_early": {}, "empty_resampled": 0, "turns_scored": 0},
        )
        entry["dialogues"] += 1
        reason = r.get("end_reason") or "completed"
        if reason not in _FINISHED:
            entry["ended_early"][reason] = entry["ended_early"].get(reason, 0) + 1
        entry["empty_resampled"] += sum(
            "empty" in reject.get("reasons", ())
            for m in r.get("meta") or ()
            if m.get("role") == "assistant"
            for reject in m.get("rejected") or ()
        )
    for row in rows:
        out[row["system"]]["turns_scored"] += 1
    return out


def curves(rows: list[dict], names: tuple[str, ...] = CURVES) -> dict:
    """system -> metric -> turn index -> mean (the turns each metric applies to), for the
    metrics `names`."""
    out: dict = {}
    for r in rows:
        for name in names:
            m = BY_NAME[name]
            v = r.get(m.field)
            if v is None or not m.applies(r):
                continue
            cell = out.setdefault(r["system"], {}).setdefault(name, {}).setdefault(r["turn"], [])
            cell.append(v)
    return {
        s: {
            name: {int(t): round(float(np.mean(v)), 4) for t, v in sorted(by_turn.items())}
            for name, by_turn in per.items()
        }
        for s, per in out.items()
    }
