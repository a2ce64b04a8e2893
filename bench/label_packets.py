"""Hand sampled turns to readers, and take their labels back.

    python bench/label_packets.py write SAMPLE.jsonl OUT_DIR --per 100 [--cards DIR ...]
    python bench/label_packets.py merge SAMPLE.jsonl LABELS.jsonl [...] --out LABELLED.jsonl

`write` renders each turn of a sample (bench/label_sample.py) as plain text a reader can
label without any code: the card (name, description, personality), the last character
turns, the user turn, the reply; packets of `--per` turns. Cards are found by the turn's
`persona_source`, else by name among the shipped personas, the held-out suite and
`--cards`. It also fills in a turn's `persona_facts` when the sample lacks them.
`merge` writes the sample's turns with the readers' labels (`label`, `labeller`, `note`)
and the split each card belongs to (tests/data/persona_split.json); a turn without a
label is left out and counted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rolegen.cards.files import load_personas
from rolegen.checks.persona_facts import persona_facts
from rolegen.generation.prompts import resolve_persona
from rolegen.resources import evals_dir, personas_dir

SPLIT = Path(__file__).parent.parent / "tests" / "data" / "persona_split.json"
LABELS = {"ok", "wrong_identity", "acts_for_user", "drift", "confusion", "miss"}


def _cards(extra: list[str]) -> dict:
    out = {}
    for source in [str(personas_dir()), str(evals_dir() / "personas"), *extra]:
        for p in load_personas(source):
            out.setdefault(p.name, p)
    return out


def _card(item: dict, cards: dict):
    source = item.get("persona_source") or ""
    if source and Path(source).exists():
        return load_personas(source)[0]
    return cards.get(item["persona_name"])


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def write(sample: Path, out: Path, per: int, extra: list[str]) -> None:
    cards = _cards(extra)
    items = [json.loads(line) for line in sample.read_text(encoding="utf-8").splitlines()]
    out.mkdir(parents=True, exist_ok=True)
    for item in items:
        card = _card(item, cards)
        if card is not None:
            card = resolve_persona(card, item.get("user_persona") or "User")
            item["_card"] = card
            if not item.get("persona_facts"):
                item["persona_facts"] = persona_facts(card).to_dict()
    sample.write_text(
        "".join(
            json.dumps({k: v for k, v in it.items() if k != "_card"}, ensure_ascii=False) + "\n"
            for it in items
        ),
        encoding="utf-8",
    )
    for k in range(0, len(items), per):
        lines = []
        for item in items[k : k + per]:
            card = item.get("_card")
            lines.append(f"### id: {item['id']}")
            if card is not None:
                lines.append(f"Card: {card.name}")
                lines.append(f"Description: {_clip(card.description, 900)}")
                lines.append(f"Personality: {_clip(card.personality, 400)}")
            else:
                lines.append(f"Card: {item['persona_name']} (card text not found)")
            lines.append(f"User persona name: {item.get('user_persona') or 'User'}")
            for earlier in item["earlier"][-2:]:
                lines.append(f"Earlier character turn: {_clip(earlier, 300)}")
            lines.append(f"User turn: {item['user'] or '(none: the character opens)'}")
            lines.append(f"REPLY:\n{item['reply'].strip()}\n")
        name = out / f"packet-{k // per + 1:02d}.md"
        name.write_text("\n".join(lines), encoding="utf-8")
        print(f"{name}: {len(items[k : k + per])} turns")


def merge(sample: Path, label_files: list[Path], out: Path) -> None:
    test_cards = set(json.loads(SPLIT.read_text(encoding="utf-8"))["test"])
    labels = {}
    for path in label_files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            wanted = [x for x in row.get("label") or [] if x in LABELS]
            labels[row["id"]] = (wanted or ["ok"], path.stem, row.get("note", ""))
    kept, missing = [], 0
    for line in sample.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if item["id"] not in labels:
            missing += 1
            continue
        item["label"], item["labeller"], item["note"] = labels[item["id"]]
        item["split"] = "test" if item["persona_name"] in test_cards else "dev"
        kept.append(item)
    with out.open("w", encoding="utf-8") as fh:
        for item in kept:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"{len(kept)} labelled turns -> {out} ({missing} without a label)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("sample", type=Path)
    w.add_argument("out", type=Path)
    w.add_argument("--per", type=int, default=100)
    w.add_argument("--cards", action="append", default=[])
    m = sub.add_parser("merge")
    m.add_argument("sample", type=Path)
    m.add_argument("labels", type=Path, nargs="+")
    m.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.command == "write":
        write(args.sample, args.out, args.per, args.cards)
    else:
        merge(args.sample, args.labels, args.out)


if __name__ == "__main__":
    main()
