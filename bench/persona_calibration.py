"""The persona checks against turns labelled by reading, per split: the development split
(cards the patterns were fitted on) and the frozen test split (cards no pattern change
looked at: tests/data/persona_split.json).

    python bench/persona_calibration.py                      # figures of this checkout
    python bench/persona_calibration.py --baseline /tmp/old  # and of another checkout's
                                                             # checks on the same turns
    python bench/persona_calibration.py --data NEW.jsonl     # turns not yet in the set

Writes bench/results/persona_calibration.json (`--out`) and prints a table. The second
reading (tests/data/labelled_persona_second.jsonl: another reader's labels of a sample)
gives the labels' own agreement, Cohen's kappa per label. Recall is also given apart on
the positives whose reader wrote no doubt in the note and on those where they did.
`--baseline DIR` scores the same turns with the checks of the rolegen source tree in DIR
(e.g. a `git worktree` of an older commit), in a subprocess, so the figures before and
after a pattern change sit side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "labelled_persona_turns.jsonl"
SECOND = ROOT / "tests" / "data" / "labelled_persona_second.jsonl"
OUT = ROOT / "bench" / "results" / "persona_calibration.json"
# label -> the check reasons that stand for it
CHECKS = {
    "wrong_identity": ["wrong_identity"],
    "acts_for_user": ["user"],
    "drift": ["assistant_drift"],
    "confusion": ["identity_confusion"],
    "miss": ["identity_miss"],
}


def _flags(rows: list[dict]) -> list[list[str]]:
    """The check reasons of each labelled turn, by the checks importable here."""
    from rolegen.checks.turns import DialogueTurns, check_dialogues

    has_facts = "facts" in {f.name for f in dataclasses.fields(DialogueTurns)}
    facts = {}
    if has_facts:
        from rolegen.evaluation.labels import card_facts_of, labelled_card_folders

        facts = card_facts_of(labelled_card_folders())
        facts.update(_facts_of_sources(rows, set(facts)))
    items = []
    for r in rows:
        extra = {"facts": facts.get(r["persona_name"])} if has_facts else {}
        d = DialogueTurns(
            character=[*r["earlier"], r["reply"]],
            users=[None] * len(r["earlier"]) + [r["user"]],
            name=r["persona_name"],
            intro=r.get("persona_intro", ""),
            user_name=r.get("user_persona", ""),
            language=r.get("persona_language", "en"),
            has_greeting=r.get("has_greeting", True),
            **extra,
        )
        d.score_from = len(d.character) - 1
        items.append(d)
    return [turns[-1].reasons for turns in check_dialogues(items)]


def _facts_of_sources(rows: list[dict], known: set[str]) -> dict:
    """Card name -> facts, read by the importable checks from the card file of each turn
    (`persona_source`) whose card is not in the shipped folders: a checkout older than a
    set of cards does not know their folder, and must still read them with its own code."""
    from rolegen.cards.files import load_personas
    from rolegen.checks.persona_facts import persona_facts
    from rolegen.generation.prompts import resolve_persona

    out = {}
    for r in rows:
        name, source = r["persona_name"], r.get("persona_source") or ""
        path = ROOT / source
        if name in known or name in out or not source or not path.is_file():
            continue
        card = next((p for p in load_personas(str(path)) if p.name == name), None)
        if card is not None:
            out[name] = persona_facts(resolve_persona(card, r.get("user_persona") or "User"))
    return out


def _agreement(rows: list[dict], flags: list[list[str]]) -> dict:
    out = {}
    for label, reasons in CHECKS.items():
        hit = [bool(set(reasons) & set(f)) for f in flags]
        truth = [label in r["label"] for r in rows]
        tp = sum(h and t for h, t in zip(hit, truth))
        out[label] = {
            "precision": round(tp / sum(hit), 4) if any(hit) else None,
            "recall": round(tp / sum(truth), 4) if any(truth) else None,
            "true_positives": tp,
            "flagged": sum(hit),
            "labelled": sum(truth),
        }
    out["turns"] = len(rows)
    return out


def doubted(row: dict) -> bool:
    """The reader wrote a doubt in the turn's note (the readers are asked to: "When in
    doubt, write the doubt in the note"). The note covers the whole turn, so a doubt may
    concern another of its labels."""
    note = str(row.get("note") or "").lower()
    return "doubt" in note or "borderline" in note


def recall_by_certainty(rows: list[dict], flags: list[list[str]]) -> dict:
    """Per label: recall on the positives whose note records no doubt (`sure`), and on
    those whose note does (`doubted`), with their counts."""
    out = {}
    for label, reasons in CHECKS.items():
        block = {}
        for name, want in (("sure", False), ("doubted", True)):
            hits = [
                bool(set(reasons) & set(f))
                for r, f in zip(rows, flags)
                if label in r["label"] and doubted(r) == want
            ]
            block[name] = {
                "labelled": len(hits),
                "true_positives": sum(hits),
                "recall": round(sum(hits) / len(hits), 4) if hits else None,
            }
        out[label] = block
    return out


def figures(rows: list[dict], flags: list[list[str]]) -> dict:
    by_split = {
        split: [(r, f) for r, f in zip(rows, flags) if r["split"] == split]
        for split in ("dev", "test")
    }
    return {
        "all": _agreement(rows, flags),
        **{s: _agreement([r for r, _ in v], [f for _, f in v]) for s, v in by_split.items()},
        "recall_by_certainty": {
            s: recall_by_certainty([r for r, _ in v], [f for _, f in v])
            for s, v in {"all": list(zip(rows, flags)), **by_split}.items()
        },
    }


def second_reading(rows: list[dict]) -> dict:
    """Cohen's kappa per label between the first reading and a second reader's."""
    from rolegen.evaluation.judge import cohen_kappa

    if not SECOND.exists():
        return {}
    first = {r["id"]: set(r["label"]) for r in rows}
    second = [json.loads(line) for line in SECOND.read_text(encoding="utf-8").splitlines()]
    second = [s for s in second if s["id"] in first]
    out = {"turns": len(second)}
    for label in CHECKS:
        a = [label in first[s["id"]] for s in second]
        b = [label in s["label"] for s in second]
        out[label] = {"kappa": cohen_kappa(a, b), "first": sum(a), "second": sum(b)}
    return out


def describe(rows: list[dict]) -> dict:
    count = lambda key: dict(sorted(_counter(r.get(key) or "" for r in rows).items()))  # noqa: E731
    return {
        "turns": len(rows),
        "cards": len({r["persona_name"] for r in rows}),
        "systems": count("system"),
        "splits": count("split"),
        "labels": dict(sorted(_counter(x for r in rows for x in r["label"]).items())),
    }


def _counter(values) -> dict:
    out: dict = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--data", type=Path, default=DATA, help="labelled turns (default: the set)")
    ap.add_argument("--baseline", type=Path, help="a rolegen source tree to score alongside")
    ap.add_argument("--flags-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines()]
    if args.flags_only:  # the baseline's subprocess: print its flags
        print(json.dumps(_flags(rows)))
        return
    result = {"set": describe(rows), "checks": figures(rows, _flags(rows))}
    if args.baseline:
        env = {**os.environ, "PYTHONPATH": str(args.baseline)}
        out = subprocess.run(
            [sys.executable, __file__, "--flags-only", "--data", str(args.data)],
            env=env,
            capture_output=True,
            text=True,
        )
        if out.returncode:
            sys.exit(out.stderr)
        result["baseline"] = {
            "source": str(args.baseline),
            "checks": figures(rows, json.loads(out.stdout.splitlines()[-1])),
        }
    result["second_reading"] = second_reading(rows)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result["set"], ensure_ascii=False))
    print(f"{'label':<16}{'split':<6}{'precision':>10}{'recall':>8}{'labelled':>10}")
    for name, block in [
        ("now", result["checks"]),
        *([("baseline", result["baseline"]["checks"])] if args.baseline else []),
    ]:
        print(f"-- {name}")
        for label in CHECKS:
            for split in ("dev", "test"):
                g = block[split][label]
                print(
                    f"{label:<16}{split:<6}{g['precision']!s:>10}{g['recall']!s:>8}{g['labelled']:>10}"
                )
    print("-- now: recall on the positives the reader was sure of / wrote a doubt on")
    for label in CHECKS:
        for split in ("dev", "test"):
            c = result["checks"]["recall_by_certainty"][split][label]
            sure, doubt = c["sure"], c["doubted"]
            print(
                f"{label:<16}{split:<6}{sure['recall']!s:>8} of {sure['labelled']:<5}"
                f"{doubt['recall']!s:>8} of {doubt['labelled']}"
            )


if __name__ == "__main__":
    main()
