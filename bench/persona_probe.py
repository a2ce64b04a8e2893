"""Does a learned classifier catch the persona failures the pattern checks miss, on cards
it was not fitted on? And its weights (it shipped behind `--persona-model` until the
claims encoder replaced it on the twenty-fifth blind set, bench/learned_choice.py).

    python bench/persona_probe.py            # dev only: features, method, out-of-fold figures
    python bench/persona_probe.py --nested   # the same, with nested dev CV (about an hour)
    python bench/persona_probe.py --test     # the one look at the frozen test split
    python bench/persona_probe.py --export wrong_identity  # bench/results/persona_probe_model.json
    python bench/persona_probe.py --cost 32  # milliseconds per reply of the feature passes

Labelled turns: tests/data/labelled_persona_turns.jsonl; features: persona_features.py over
rolegen/evaluation/persona_features.py (SmolLM2 card-vs-blank log-prob ratios and hidden
states, MiniLM cosines and embedding, surface cues) and the pattern checks' reasons. Per
label, a class-weighted L2 logistic regression (numpy Newton steps; scikit-learn is not
installed here), in two variants: `classifier` (model features only) and
`classifier_with_patterns` (plus the pattern reasons as features); and
`patterns_or_classifier`, a turn flagged by either the patterns or the model-only
classifier (what `rolegen eval --persona-model` reports).

How the split rule is kept: the development split alone chooses everything. The feature
set, the L2 strength and the decision threshold (the highest recall at out-of-fold
precision >= 0.85; the best F1 where none reaches it) are chosen by cross-validation
grouped by card (`persona_name`) inside dev. `dev_oof` holds the chosen method's
out-of-fold figures (the choice saw the same folds); `--nested` adds nested figures: an
outer 5-fold over cards, every choice made again by an inner grouped 4-fold. Without
`--test` no test row is read (rows are filtered by split as the file is parsed). `--test`
and `--export` recompute the method from dev and refuse to go on unless it equals the one
in the committed `--out` (so after the development split grows they refuse: the committed
figures and the shipped weights belong to the split of their day, 8,367 turns); `--test` refuses a second look, refits on all dev rows, scores
the test rows once and writes aggregate figures only. The patterns were written against
the dev cards: their dev figures (and what the `with_patterns` classifier learns of them)
are in-sample; their test figures are not.

Writes bench/results/persona_probe.json (`--out`) and prints a table. Features are cached
under /tmp/persona_probe (SmolLM2 over 8,367 dev turns: about 45 minutes on two cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import persona_features as pf  # noqa: E402
from persona_calibration import CHECKS  # noqa: E402  label -> the check reasons for it

OUT = pf.ROOT / "bench" / "results" / "persona_probe.json"
MODEL = pf.ROOT / "bench" / "results" / "persona_probe_model.json"
PRECISION = 0.8  # the checks' goal (0.7 is the goal for acting for the user)
# The precision a threshold must reach on inner out-of-fold scores. Nested dev CV: a
# target of 0.8 landed at 0.77 for wrong identity once the model was refit on more cards.
TARGET = 0.85


# ---------------------------------------------------------------- the classifier
def fit(x: np.ndarray, y: np.ndarray, lam: float) -> tuple:
    """Class-weighted L2 logistic regression on standardized features (Newton steps)."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = np.hstack([(x - mu) / sd, np.ones((len(x), 1))])
    s = np.where(y, len(y) / (2 * max(y.sum(), 1)), len(y) / (2 * max((~y).sum(), 1)))
    reg = np.full(z.shape[1], lam * len(y) / 1000)  # per 1,000 rows: fold sizes differ
    reg[-1] = 1e-6  # the bias is not shrunk
    w = np.zeros(z.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(z @ w, -30, 30)))
        g = z.T @ (s * (p - y)) + reg * w
        h = (z * (s * p * (1 - p))[:, None]).T @ z + np.diag(reg)
        step = np.linalg.solve(h, g)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return mu, sd, w


def score(model: tuple, x: np.ndarray) -> np.ndarray:
    mu, sd, w = model
    return ((x - mu) / sd) @ w[:-1] + w[-1]


def folds(groups: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    """k folds of whole cards, balanced by rows: cards shuffled, each to the lightest fold."""
    rng = np.random.default_rng(seed)
    names = list(dict.fromkeys(groups))
    rng.shuffle(names)
    sizes = {n: (groups == n).sum() for n in names}
    load, members = [0] * k, [[] for _ in range(k)]
    for n in sorted(names, key=lambda n: -sizes[n]):
        j = int(np.argmin(load))
        load[j] += sizes[n]
        members[j].append(n)
    return [np.isin(groups, m) for m in members]


def threshold(scores: np.ndarray, y: np.ndarray) -> tuple[float, bool]:
    """The cut with the highest recall at precision >= TARGET (at least 5 flagged), and
    True; where none reaches it, the cut with the best F1, and False."""
    order = np.argsort(-scores)
    tp = np.cumsum(y[order])
    k = np.arange(1, len(y) + 1)
    prec, rec = tp / k, tp / max(y.sum(), 1)
    ok = np.flatnonzero((prec >= TARGET) & (k >= 5))
    cut = ok[-1] if len(ok) else int(np.argmax(2 * prec * rec / np.maximum(prec + rec, 1e-9)))
    s = scores[order]
    at = float((s[cut] + s[cut + 1]) / 2) if cut + 1 < len(s) else float(s[cut] - 1e-6)
    return round(at, 6), bool(len(ok))


def average_precision(scores: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(-scores)
    tp = np.cumsum(y[order])
    return float((tp / np.arange(1, len(y) + 1))[y[order]].mean()) if y.any() else 0.0


def stack(blocks: dict, names: str) -> np.ndarray:
    return np.hstack([blocks[b] for b in names.split("+")])


def oof_scores(blocks, y, groups, names, lam, k) -> np.ndarray:
    """Out-of-fold scores over k grouped folds."""
    x, out = stack(blocks, names), np.zeros(len(y))
    for test in folds(groups, k):
        out[test] = score(fit(x[~test], y[~test], lam), x[test])
    return out


def choose(blocks, y, groups, grid, k: int = 4) -> dict:
    """The (feature set, L2) of best out-of-fold average precision and its threshold."""
    best = None
    for names, lam in grid:
        s = oof_scores(blocks, y, groups, names, lam, k)
        ap = average_precision(s, y)
        if best is None or ap > best["ap"]:
            cut, reached = threshold(s, y)
            best = {"features": names, "lam": lam, "ap": round(ap, 4), "cut": cut}
            best["reached"] = reached
    return best


# ---------------------------------------------------------------- the experiment
# Chosen on dev by grouped 5-fold CV before the nested runs (bench notes in the module
# docstring): the lm/mini/text scalars alone reach an average precision of 0.38 for
# wrong identity (base rate 0.24), the hidden states of layer 22 0.78, layer 15 0.75,
# layer 8 0.72; the reply's MiniLM embedding 0.72.
LAYER = 22
MODEL_SETS = ("emb+mini+text", "hid", "hid+lm+mini+text", "hid+emb+lm+mini+text")
LAMBDAS = (10.0, 100.0, 1000.0)
# "classifier": model features only. "with_patterns": the same sets plus the pattern
# reasons as features (the classifier learns when to trust them). The patterns were
# written against the dev cards, so selection by dev CV would always favour them: the
# two grids are kept apart rather than chosen between.
GRIDS = {
    "classifier": [(n, lam) for n in MODEL_SETS for lam in LAMBDAS],
    "with_patterns": [(f"{n}+pat", lam) for n in MODEL_SETS for lam in LAMBDAS],
}


def _subset(blocks: dict, mask: np.ndarray) -> dict:
    return {k: v[mask] for k, v in blocks.items()}


def figures(pred: np.ndarray, truth: np.ndarray) -> dict:
    tp = int((pred & truth).sum())
    return {
        "precision": round(tp / pred.sum(), 4) if pred.any() else None,
        "recall": round(tp / truth.sum(), 4) if truth.any() else None,
        "true_positives": tp,
        "flagged": int(pred.sum()),
        "labelled": int(truth.sum()),
    }


def _systems(pat: np.ndarray, dec: dict, truth: np.ndarray) -> dict:
    """Figures of the patterns, each classifier, and patterns OR the model-only one."""
    return {
        "patterns": figures(pat, truth),
        "classifier": figures(dec["classifier"], truth),
        "classifier_with_patterns": figures(dec["with_patterns"], truth),
        "patterns_or_classifier": figures(pat | dec["or"], truth),
    }


def _labels(rows: list[dict], label: str) -> np.ndarray:
    return np.array([label in r["label"] for r in rows])


def _pattern_hits(flags, label: str) -> np.ndarray:
    return np.array([bool(set(CHECKS[label]) & set(f)) for f in flags])


def nested_cv(blocks: dict, flags, rows: list[dict], outer_k: int = 5) -> dict:
    """Dev figures of the whole procedure: every choice remade inside each outer fold."""
    groups = np.array([r["persona_name"] for r in rows])
    out = {}
    for label in CHECKS:
        y = _labels(rows, label)
        dec = {v: np.zeros(len(rows), bool) for v in [*GRIDS, "or"]}
        picks: dict[str, list[str]] = {v: [] for v in GRIDS}
        for test in folds(groups, outer_k, seed=1):
            train = _subset(blocks, ~test)
            for variant, grid in GRIDS.items():
                c = choose(train, y[~test], groups[~test], grid)
                model = fit(stack(train, c["features"]), y[~test], c["lam"])
                s = score(model, stack(_subset(blocks, test), c["features"]))
                dec[variant][test] = s > c["cut"]
                if variant == "classifier" and c["reached"]:
                    dec["or"][test] = s > c["cut"]
                picks[variant].append(f"{c['features']} lam={c['lam']:g}")
        out[label] = {**_systems(_pattern_hits(flags, label), dec, y), "outer_choices": picks}
        print(f"nested cv: {label} done", flush=True)
    return out


def method(blocks: dict, rows: list[dict]) -> dict:
    """Per label and classifier: the feature set, L2 and threshold chosen on all dev rows."""
    groups = np.array([r["persona_name"] for r in rows])
    return {
        label: {v: choose(blocks, _labels(rows, label), groups, g) for v, g in GRIDS.items()}
        for label in CHECKS
    }


def dev_oof(blocks: dict, flags, rows: list[dict], chosen: dict, k: int = 4) -> dict:
    """Dev figures of the chosen method on out-of-fold scores (grouped k-fold). Not nested:
    the method was chosen on the same folds, so they lean optimistic; `--nested` remakes
    every choice inside each outer fold (about 2,900 fits at 8,000 rows: an hour here)."""
    groups = np.array([r["persona_name"] for r in rows])
    out = {}
    for label in CHECKS:
        y = _labels(rows, label)
        dec = {}
        for variant, c in chosen[label].items():
            s = oof_scores(blocks, y, groups, c["features"], c["lam"], k)
            dec[variant] = s > c["cut"]
        reached = chosen[label]["classifier"]["reached"]
        dec["or"] = dec["classifier"] if reached else np.zeros(len(rows), bool)
        out[label] = _systems(_pattern_hits(flags, label), dec, y)
    return out


def export(blocks: dict, rows: list[dict], chosen: dict, labels: list[str], path: Path) -> None:
    """Fit each label's model-only classifier on all dev rows and write the learned
    classifier's weights (`MODEL`)."""
    spec = {
        "about": "Logistic classifiers of the learned persona check, fitted by "
        "bench/persona_probe.py --export on the development split of "
        "tests/data/labelled_persona_turns.jsonl; a turn is flagged where its score is above "
        "`cut`. Figures: bench/results/persona_probe.json.",
        "hidden_layer": LAYER,
        "dev_turns": len(rows),
        "labels": {},
    }
    for label in labels:
        c = chosen[label]["classifier"]
        mu, sd, w = fit(stack(blocks, c["features"]), _labels(rows, label), c["lam"])
        spec["labels"][label] = {
            "features": c["features"],
            "lam": c["lam"],
            "cut": c["cut"],
            "mu": [float(f"{v:.7g}") for v in mu],
            "sd": [float(f"{v:.7g}") for v in sd],
            "w": [float(f"{v:.7g}") for v in w],
        }
    path.write_text(json.dumps(spec) + "\n", encoding="utf-8")


def test_look(dev_blocks, dev_rows, chosen: dict) -> dict:
    """The one look at the test split: fit on all dev, score test, aggregate figures only."""
    rows = pf.read_rows("test")
    blocks, flags = pf.feature_blocks(rows, "test", LAYER)
    out = {}
    for label in CHECKS:
        dec = {}
        for variant, c in chosen[label].items():
            model = fit(stack(dev_blocks, c["features"]), _labels(dev_rows, label), c["lam"])
            dec[variant] = score(model, stack(blocks, c["features"])) > c["cut"]
        reached = chosen[label]["classifier"]["reached"]
        dec["or"] = dec["classifier"] if reached else np.zeros(len(rows), bool)
        out[label] = _systems(_pattern_hits(flags, label), dec, _labels(rows, label))
    out["turns"] = len(rows)
    out["cards"] = len({r["persona_name"] for r in rows})
    return out


def cost(rows: list[dict]) -> dict:
    """Milliseconds per reply of each feature pass, uncached, on these rows."""
    kept, pf.CACHE = pf.CACHE, Path("/tmp/persona_probe_cost")
    try:
        t0 = time.perf_counter()
        pf.lm_features(rows, "cost")
        t1 = time.perf_counter()
        pf.minilm_features(rows, "cost")
        t2 = time.perf_counter()
        pf.pattern_flags(rows)
        t3 = time.perf_counter()
    finally:
        pf.CACHE = kept
    ms = lambda a, b: round(1000 * (b - a) / len(rows), 1)  # noqa: E731
    return {
        "rows": len(rows),
        "smollm_two_passes": ms(t0, t1),
        "minilm": ms(t1, t2),
        "patterns": ms(t2, t3),
    }


SYSTEMS = ("patterns", "classifier", "classifier_with_patterns", "patterns_or_classifier")


def _table(result: dict) -> None:
    print(f"{'label':<15}{'system':<26}{'dev-oof P/R':>14}{'test P/R':>14}{'pos dev/test':>14}")
    pr = lambda g: f"{g['precision']!s:>6}/{g['recall']!s:<6}"  # noqa: E731
    for label in CHECKS:
        for system in SYSTEMS:
            d = result["dev_oof"][label][system]
            t = result.get("test", {}).get(label, {}).get(system)
            print(
                f"{label:<15}{system:<26}{pr(d):>14}{pr(t) if t else '-':>14}"
                f"{d['labelled']:>7}/{t['labelled'] if t else '-'}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument(
        "--test",
        action="store_true",
        help="the one look at the frozen test split, with the method and dev figures of the "
        "committed --out (the method is recomputed from dev and must match)",
    )
    ap.add_argument("--nested", action="store_true", help="nested dev CV (about an hour)")
    ap.add_argument(
        "--export",
        metavar="LABEL,...",
        help="fit these labels' classifiers on all dev rows and write the learned check's "
        f"weights to {MODEL.relative_to(pf.ROOT)} (the method of the committed --out)",
    )
    ap.add_argument("--cost", type=int, default=0, help="time the features on N dev rows")
    args = ap.parse_args()
    rows = pf.read_rows("dev")
    if args.cost:
        spent = cost(rows[: args.cost])
        print(json.dumps(spent))
        if args.out.exists():  # kept beside the figures; the method check ignores it
            result = json.loads(args.out.read_text(encoding="utf-8"))
            result["cost_ms_per_reply"] = spent
            args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        return
    blocks, flags = pf.feature_blocks(rows, "dev", LAYER)
    chosen = method(blocks, rows)
    if args.test or args.export:
        result = json.loads(args.out.read_text(encoding="utf-8"))
        if result["method"] != json.loads(json.dumps(chosen)):
            sys.exit(f"{args.out}: the method recomputed from dev differs from the committed one")
    if args.export:
        export(blocks, rows, chosen, args.export.split(","), MODEL)
        print(f"wrote {MODEL}")
        return
    if args.test:
        if "test" in result:
            sys.exit(f"{args.out}: already holds a test look; the test split is scored once")
        result["test"] = test_look(blocks, rows, chosen)
        result["turns"]["test"] = result["test"]["turns"]
    else:
        result = {
            "turns": {"dev": len(rows)},
            "grids": {v: [f"{n} lam={lam:g}" for n, lam in g] for v, g in GRIDS.items()},
            "hidden_layer": LAYER,
            "precision_goal": PRECISION,
            "threshold_target": TARGET,
            "method": chosen,
            "dev_oof": dev_oof(blocks, flags, rows, chosen),
        }
        if args.nested:
            result["dev_nested_cv"] = nested_cv(blocks, flags, rows)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    _table(result)


if __name__ == "__main__":
    main()
