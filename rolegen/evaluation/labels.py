"""Character turns labelled by reading, and how well the checks agree with them: the
calibration of the checks (tests/test_calibration.py, tests/test_persona_calibration.py,
bench/persona_calibration.py).

A labelled turn (one JSON object a line) holds the reply, the character turns before it,
the user turn it answers, the card's name, intro, language and facts (`persona_facts`),
and `label`: a list of labels ("ok" when none applies). Each turn is scored as the last
turn of a dialogue made of its earlier turns, as the generate loop scores a candidate.
Earlier user turns are not stored: checks that read them (the role swap) see only the
last one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from rolegen.checks.persona_facts import CardFacts
from rolegen.checks.turns import CheckConfig, DialogueTurns, check_dialogues


def read_labelled(
    path: Path, cards: dict[str, CardFacts] | None = None
) -> tuple[list[dict], list[DialogueTurns]]:
    """The labelled turns of a file, and each as a dialogue whose last turn is scored.
    `cards`: card name -> facts read from the card now (the stored `persona_facts` were
    read by the code of the day the turn was drawn)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    items = []
    for r in rows:
        facts = (cards or {}).get(r["persona_name"]) or CardFacts.from_dict(r.get("persona_facts"))
        d = DialogueTurns(
            character=[*r["earlier"], r["reply"]],
            users=[None] * len(r["earlier"]) + [r["user"]],
            name=r["persona_name"],
            intro=r.get("persona_intro", ""),
            user_name=r.get("user_persona", ""),
            language=r.get("persona_language", "en"),
            has_greeting=r.get("has_greeting", True),
            facts=facts,
        )
        d.score_from = len(d.character) - 1
        items.append(d)
    return rows, items


def labelled_card_folders() -> list[Path]:
    """Where the cards of the labelled turns live: the shipped personas and the eval suites
    (the held-out suite, the calibration and every holdout set of cards, `evals/holdout`,
    `evals/holdout2`, ... in the order they were written)."""
    from rolegen.resources import evals_dir, personas_dir

    evals = evals_dir()
    holdouts = sorted(
        (p for p in evals.glob("holdout*") if re.fullmatch(r"holdout\d*", p.name)),
        key=lambda p: int(p.name[len("holdout") :] or 1),
    )
    return [
        personas_dir(),
        evals / "personas",
        evals / "calibration" / "personas",
        *(p / "personas" for p in holdouts),
    ]


def card_facts_of(folders: list[Path], user: str = "User") -> dict[str, CardFacts]:
    """Card name -> facts, for every card in the folders (macros resolved for `user`)."""
    from rolegen.cards.files import load_personas
    from rolegen.checks.persona_facts import persona_facts
    from rolegen.generation.prompts import resolve_persona

    return {
        p.name: persona_facts(resolve_persona(p, user))
        for folder in folders
        for p in load_personas(str(folder))
    }


def agreement(
    rows: list[dict],
    items: list[DialogueTurns],
    checks: dict[str, set[str]],
    cfg: CheckConfig | None = None,
) -> dict[str, dict]:
    """Per label: the precision and recall of the check reasons that stand for it
    (`checks`: label -> reasons), with the counts behind them. None where undefined (no
    turn flagged, no turn labelled)."""
    scored = [turns[-1] for turns in check_dialogues(items, cfg or CheckConfig())] if items else []
    out = {}
    for label, reasons in checks.items():
        hit = [bool(reasons & set(c.reasons)) for c in scored]
        truth = [label in r["label"] for r in rows]
        tp = sum(h and t for h, t in zip(hit, truth))
        out[label] = {
            "precision": round(tp / sum(hit), 4) if any(hit) else None,
            "recall": round(tp / sum(truth), 4) if any(truth) else None,
            "true_positives": tp,
            "flagged": sum(hit),
            "labelled": sum(truth),
        }
    return out
