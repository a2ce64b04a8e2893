"""Which learned wrong-identity check belongs behind `rolegen eval --persona-model`: the
shipped logistic classifier (rolegen/evaluation/persona_model.py) or the `claims`
cross-encoder of bench/persona_cross.py, judged on a blind set neither has seen.

    python bench/learned_choice.py LABELLED.jsonl --weights MODEL.pt [--out FILE]

LABELLED.jsonl: turns labelled by readers who never saw the checks (`label_packets.py
merge`), of cards in one of `labelled_card_folders()`. MODEL.pt holds the claims
encoder's trainable weights (as `persona_cross.py --variant claims` writes them); its
threshold is the one chosen on the development split's validation fifth, read from
bench/results/persona_cross_claims.json. Nothing here is fitted or chosen on the set.

The rule, written and committed while the set's turns were being generated, before any
was read or labelled (2026-12-07, evals/holdout24):
- Both were measured once on the frozen test split. There, patterns or classifier scored
  0.85 / 0.72 for wrong identity and patterns or claims encoder 0.89 / 0.72 (160 of 222),
  one turn short of the encoder's own ship rule (recall >= the patterns' + 0.05). The
  classifier needs two SmolLM2 passes per reply; the encoder one MiniLM pass of 128 tokens.
- On this set, for wrong identity: the encoder replaces the classifier if patterns or
  encoder has an F1 at least that of patterns or classifier, and a precision of at least
  0.80. Otherwise the classifier stays, and the encoder is not shipped.
- The set is scored once; its figures are written whatever they say.
It came out a tie in the third decimal (0.8158 against 0.8170), and the classifier stayed.

The second rule, `--rule cost`, written and committed before the set's cards existed
(2026-12-07, evals/holdout25), because the first rule did not weigh cost and scoring the
400 replies of holdout24 took the classifier 440 s and the encoder 11 s:
- On this set, for wrong identity: the encoder replaces the classifier if patterns or
  encoder has an F1 no more than 0.02 below that of patterns or classifier, a precision of
  at least 0.80, and the encoder scores the set in at most a tenth of the classifier's
  time, both timed here in one run. Otherwise the classifier stays.
- The same encoder weights and cut as on holdout24; nothing is fitted on the set.
- The set is scored once (`bench/results/learned_choice_holdout25.json`); its figures are
  written whatever they say.

It came out for the encoder (patterns or encoder 0.89 / 0.64, F1 0.74; patterns or
classifier 0.82 / 0.66, F1 0.73; 12 s against 540 s), which now stands behind
`--persona-model`; the classifier left the package, so scoring it again takes a checkout
of b50825f.

Writes bench/results/learned_choice.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import persona_cross as pc  # noqa: E402
import persona_features as pf  # noqa: E402
import persona_probe as probe  # noqa: E402

OUT = pf.ROOT / "bench" / "results" / "learned_choice.json"
LABEL = "wrong_identity"
MIN_PRECISION = 0.80
# rule -> (how far below the classifier's F1 the encoder's may be, the largest share of
# the classifier's seconds the encoder may take)
RULES = {"f1": (0.0, None), "cost": (0.02, 0.10)}


def f1(fig: dict) -> float:
    p, r = fig["precision"] or 0.0, fig["recall"] or 0.0
    return round(2 * p * r / (p + r), 4) if p + r else 0.0


def classifier_flags(rows: list[dict], cards: dict) -> np.ndarray:
    from rolegen.evaluation import persona_model

    if not hasattr(persona_model, "load"):
        sys.exit(
            "the classifier left the package when the encoder replaced it (holdout25's rule): "
            "run this from a checkout of b50825f to score it again"
        )

    items = [
        {"reply": r["reply"], "user": r.get("user") or "", "persona_name": r["persona_name"],
         "user_persona": "User"}
        for r in rows
    ]  # fmt: skip
    spec = persona_model.load()
    return np.array([v[LABEL] for v in persona_model.verdicts(items, cards, spec)])


def encoder_scores(rows: list[dict], weights: Path) -> np.ndarray:
    from transformers import AutoTokenizer

    from rolegen.checks.embedder import embedder_path

    pc.use_variant("claims")
    tokenizer = AutoTokenizer.from_pretrained(embedder_path())
    return pc.score(rows, weights, tokenizer)[:, pc.LABELS.index(LABEL)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("labelled", type=Path)
    ap.add_argument("--weights", type=Path, required=True, help="the encoder's model.pt")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--rule", choices=sorted(RULES), default="f1",
                    help="f1: holdout24's rule; cost: holdout25's (see above)")  # fmt: skip
    args = ap.parse_args()
    if args.out.exists():
        sys.exit(f"{args.out} already holds this set's one look")
    torch.set_num_threads(2)
    rows = [json.loads(x) for x in args.labelled.read_text(encoding="utf-8").splitlines() if x]
    cut = json.loads((pf.ROOT / "bench/results/persona_cross_claims.json").read_text())
    cut = cut["thresholds"][LABEL]["cut"]
    t0 = time.time()
    truth = probe._labels(rows, LABEL)
    patterns = probe._pattern_hits(pf.pattern_flags(rows), LABEL)
    cards = pf.cards()
    t1 = time.time()
    classifier = classifier_flags(rows, cards)
    t2 = time.time()
    scores = encoder_scores(rows, args.weights)
    t3 = time.time()
    encoder = scores > cut
    figs = {
        "patterns": probe.figures(patterns, truth),
        "classifier": probe.figures(classifier, truth),
        "encoder": probe.figures(encoder, truth),
        "patterns_or_classifier": probe.figures(patterns | classifier, truth),
        "patterns_or_encoder": probe.figures(patterns | encoder, truth),
    }
    for f in figs.values():
        f["f1"] = f1(f)
    both, cls = figs["patterns_or_encoder"], figs["patterns_or_classifier"]
    margin, time_share = RULES[args.rule]
    replaces = both["f1"] >= cls["f1"] - margin and (both["precision"] or 0) >= MIN_PRECISION
    if time_share is not None:
        replaces = replaces and (t3 - t2) <= time_share * (t2 - t1)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "set": {
            "file": str(args.labelled),
            "turns": len(rows),
            "cards": len({r["persona_name"] for r in rows}),
        },
        "label": LABEL,
        "rule": args.rule,
        "encoder_cut": cut,
        "figures": figs,
        "encoder_average_precision": round(probe.average_precision(scores, truth), 4),
        "seconds": {"classifier": round(t2 - t1, 1), "encoder": round(t3 - t2, 1)},
        "patterns_seconds": round(t1 - t0, 1),
        "encoder_replaces_classifier": bool(replaces),
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{len(rows)} turns, {result['set']['cards']} cards, {int(truth.sum())} {LABEL}")
    print(f"{'':24}{'precision':>10}{'recall':>8}{'F1':>7}{'flagged':>9}")
    for name, f in figs.items():
        p = "-" if f["precision"] is None else f"{f['precision']:.2f}"
        r = "-" if f["recall"] is None else f"{f['recall']:.2f}"
        print(f"{name:24}{p:>10}{r:>8}{f['f1']:>7.2f}{f['flagged']:>9}")
    print(f"seconds: classifier {result['seconds']['classifier']}, "
          f"encoder {result['seconds']['encoder']}")  # fmt: skip
    print(f"the encoder replaces the classifier: {replaces}")


if __name__ == "__main__":
    main()
