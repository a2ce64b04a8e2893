"""The features of bench/persona_probe.py for the labelled persona turns
(tests/data/labelled_persona_turns.jsonl): those of the learned persona check
(`rolegen/evaluation/persona_features.py`: SmolLM2, MiniLM, the reply's surface), cached
per split under `CACHE`, and the pattern checks' reasons, run as
bench/persona_calibration.py runs them.

Rows are read one split at a time (`read_rows`): the other split is dropped as the file is
parsed. Not handled: earlier user turns (the labelled rows do not keep them), lorebooks.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import numpy as np

from rolegen.evaluation import persona_features as feats

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "labelled_persona_turns.jsonl"
CACHE = Path("/tmp/persona_probe")
HIDDEN_LAYERS = feats.HIDDEN_LAYERS  # all pooled and cached, the probe uses one


def read_rows(split: str) -> list[dict]:
    """The labelled turns of one split; other splits' rows are dropped as they are parsed."""
    rows = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r["split"] == split:
            rows.append(r)
    return rows


def cards(user: str = "User") -> dict:
    """Card name -> the resolved card, for every card of the labelled turns."""
    from rolegen.cards.files import load_personas
    from rolegen.evaluation.labels import labelled_card_folders
    from rolegen.generation.prompts import resolve_persona

    return {
        p.name: resolve_persona(p, user)
        for folder in labelled_card_folders()
        for p in load_personas(str(folder))
    }


def _cached(path: Path, rows: list[dict], second: str):
    """(scalars, `second`) from a feature cache made for exactly these rows, else None."""
    if not path.exists():
        return None
    z = np.load(path)
    return (z["scalars"], z[second]) if list(z["ids"]) == [r["id"] for r in rows] else None


def _save(path: Path, rows: list[dict], **arrays) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, ids=np.array([r["id"] for r in rows]), **arrays)


def lm_features(rows: list[dict], split: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows x LM_NAMES, rows x layers x 576), cached per split."""
    path = CACHE / f"lm-{split}.npz"
    if (cached := _cached(path, rows, "pools")) is not None:
        return cached
    t0 = time.time()

    def progress(done: int, total: int) -> None:
        print(f"lm {split}: card {done}/{total}, {time.time() - t0:.0f} s", flush=True)

    out = feats.lm_features(rows, cards(), progress)
    _save(path, rows, scalars=out[0], pools=out[1])
    return out


def minilm_features(rows: list[dict], split: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows x MINI_NAMES, rows x 384 reply embeddings), cached per split."""
    path = CACHE / f"minilm-{split}.npz"
    if (cached := _cached(path, rows, "reply")) is not None:
        return cached
    from rolegen.checks.embedder import Embedder, embedder_path

    out = feats.minilm_features(rows, cards(), Embedder(embedder_path()))
    _save(path, rows, scalars=out[0], reply=out[1])
    return out


def pattern_flags(rows: list[dict]) -> list[list[str]]:
    """The pattern checks' reasons per row, run as bench/persona_calibration.py runs them."""
    spec = importlib.util.spec_from_file_location(
        "calib", ROOT / "bench" / "persona_calibration.py"
    )
    calib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(calib)
    return calib._flags(rows)


def feature_blocks(rows: list[dict], split: str, layer: int) -> tuple[dict, list[list[str]]]:
    """Named feature blocks of the rows (each rows x k), and the pattern reasons."""
    from rolegen.config.checks import REASONS

    lm, pools = lm_features(rows, split)
    mini, reply = minilm_features(rows, split)
    flags = pattern_flags(rows)
    pat = np.array([[r in f for r in REASONS] for f in flags], dtype=np.float32)
    blocks = {
        "lm": lm,
        "mini": mini,
        "text": feats.text_features(rows),
        "pat": pat,
        "hid": pools[:, HIDDEN_LAYERS.index(layer)],
        "emb": reply,
    }
    return blocks, flags
