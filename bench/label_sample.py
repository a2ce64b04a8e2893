"""Draw character turns to label by hand, for calibrating the persona checks.

    python bench/label_sample.py OUT.jsonl RUN/eval/dialogues.jsonl [...] --n 200

Writes turns in the form of tests/data/labelled_turns.jsonl (the turn, the earlier
character turns, the user turn it answers, the card's name) with an empty `label`, for
a reader to fill in from the dialogue, not from the checks. Half the turns are drawn at
random; half from a wide net that none of the checks use (the turn holds "help",
"assist", "question", "anything", an "I am / I'm" + capital, a "*You" / "*Your", the
character's name, or answers an identity question), so that the rare faults are
represented. Each item records which half it came from (`drawn`). `--candidates` also
draws the refused candidates of generate's turns (their reasons are not copied)."""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from rolegen.checks.dataset import record_turns
from rolegen.checks.phrases import asks_identity, name_parts

# A wide net of words that no check uses as its rule: turns that may speak of who the
# character is, address or narrate the user, or offer help. Half the sample comes from it
# so that rare faults appear; the other half is drawn at random.
NET = re.compile(
    r"help|assist|question|anything|\b(?:i am|i'm|i’m)\b|\*you|\*your|(?:^|[.!?*]\s*)you\b|"
    r"my name|\bname\b|\byears?\b|\bhuman|\bman\b|\bwoman\b|\bgirl\b|\bboy\b|\bhe\b|"
    r"我|名|岁|je suis|soy|ich bin",
    re.IGNORECASE,
)


def _assistant_meta(record: dict) -> list[dict]:
    """The meta of each assistant message, in order (empty where there is none)."""
    meta = record.get("meta") or []
    return [
        meta[i] if i < len(meta) and isinstance(meta[i], dict) else {}
        for i, m in enumerate(record["messages"])
        if m["role"] == "assistant"
    ]


def _system(record: dict, path: Path) -> str:
    """The system and, under another prompt than rolegen's, the prompt ("base @ plain")."""
    system = record.get("system", path.parent.name)
    prompt = record.get("prompt") or "rolegen"
    return system if prompt == "rolegen" or "@" in system else f"{system} @ {prompt}"


def _items(path: Path, candidates: bool) -> list[dict]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        d = record_turns(record)
        first = 1 if d.has_greeting else 0
        metas = _assistant_meta(record)
        for i in range(first, len(d.character)):
            replies = [("", d.character[i])]
            if candidates and i < len(metas):  # refused candidates of the same turn
                rejected = metas[i].get("rejected") or []
                replies += [(f"-c{j}", c["content"]) for j, c in enumerate(rejected)]
            for suffix, reply in replies:
                out.append(
                    {
                        "id": f"{_system(record, path)}/{record['id']}-t{i}{suffix}",
                        "system": _system(record, path),
                        "dialogue": record["id"],
                        "turn": i + 1 - first,
                        "persona_name": d.name,
                        "persona_intro": d.intro,
                        "persona_language": d.language,
                        "persona_facts": record.get("persona_facts"),
                        "persona_source": record.get("persona_source", ""),
                        "prompt": record.get("prompt", ""),
                        "user_persona": d.user_name,
                        "has_greeting": d.has_greeting,
                        "earlier": d.character[:i],
                        "user": d.users[i],
                        "reply": reply,
                        "label": [],
                        "labeller": "",
                        "note": "",
                    }
                )
    return out


def _in_net(item: dict) -> bool:
    parts = name_parts(item["persona_name"])
    named = any(p in item["reply"] for p in parts)
    return bool(NET.search(item["reply"])) or named or asks_identity(item["user"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("dialogues", type=Path, nargs="+")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--candidates", action="store_true", help="also draw refused candidates (meta.rejected)"
    )
    args = ap.parse_args()
    rng = random.Random(args.seed)
    items = [it for path in args.dialogues for it in _items(path, args.candidates)]
    rng.shuffle(items)
    net = [it for it in items if _in_net(it)]
    chosen = {it["id"]: {**it, "drawn": "net"} for it in net[: args.n // 2]}
    for it in items:
        if len(chosen) >= args.n:
            break
        chosen.setdefault(it["id"], {**it, "drawn": "random"})
    picked = sorted(chosen.values(), key=lambda it: (it["system"], it["dialogue"], it["turn"]))
    with args.out.open("w", encoding="utf-8") as fh:
        for it in picked:
            fh.write(json.dumps(it, ensure_ascii=False) + "\n")
    print(f"{len(picked)} turns from {len(items)} ({len(net)} in the net) -> {args.out}")


if __name__ == "__main__":
    main()
