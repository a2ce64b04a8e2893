"""The model-based eval scores: what keeps a repetition figure honest.

- fluency: mean token NLL of each character reply under the *base* model (no
  penalties, no adapter), given the dialogue before it, rendered with the prompt
  format the dialogue was generated with. Rambling or broken text scores high.
- relevance: cosine of the reply's and the user turn's sentence embeddings. Not a
  persona measure: a generic helpful-assistant reply scores higher than an in-character
  one (persona fidelity: the identity checks and `distinctiveness.py`).
- paraphrase: max cosine of the reply against earlier character turns (the
  repetition lexical scores miss: "delighted to have you" / "a pleasure to host you").

Embeddings come from the sentence embedder of `checks/embedder.py` (all-MiniLM-L6-v2).

Both fill in the `nll`, `relevance` and `paraphrase` fields of `metrics.turn_rows`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rolegen.checks.embedder import Embedder
from rolegen.training.rendering import Renderer


def add_embedding_scores(rows: list[dict], records: list[dict], embedder: Embedder) -> None:
    """Fill `relevance` and `paraphrase` of each row (rows from `metrics.turn_rows`)."""
    texts: dict[str, int] = {}

    def slot(text: str) -> int:
        return texts.setdefault(text, len(texts))

    characters = {}  # (system, dialogue) -> every character turn, greeting included
    for r in records:
        key = (r.get("system", "data"), r.get("seed_key") or r["id"])
        characters[key] = [m["content"] for m in r["messages"] if m["role"] == "assistant"]
        for t in characters[key]:
            slot(t)
    for row in rows:
        slot(row["text"])
        if row["user"]:
            slot(row["user"])
    vectors = embedder.encode(list(texts), progress="embeddings")
    for row in rows:
        v = vectors[texts[row["text"]]]
        if row["user"]:
            row["relevance"] = round(float(v @ vectors[texts[row["user"]]]), 4)
        earlier = characters[(row["system"], row["dialogue"])][: row["index"]]
        if earlier:
            sims = vectors[[texts[t] for t in earlier]] @ v
            row["paraphrase"] = round(float(sims.max()), 4)


class FluencyScorer:
    """Token NLL of replies under a model (the base model: eval's fluency guardrail)."""

    def __init__(self, model_path: Path, tokenizer, max_length: int):
        from transformers import AutoModelForCausalLM

        # bf16: AMX on the CPU here, and half the memory of fp32 for a 7B-13B base on a GPU
        cuda = torch.cuda.is_available()
        dtype = torch.float16 if cuda and not torch.cuda.is_bf16_supported() else torch.bfloat16
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
        self.model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.max_length = max_length

    @torch.inference_mode()
    def reply_nll(self, record: dict, fmt) -> dict[int, float]:
        """Mean NLL per character reply, keyed by its index among the record's assistant
        messages (the greeting, if any, is index 0 and not scored)."""
        messages = [{"role": m["role"], "content": m["content"]} for m in record["messages"]]
        renderer = Renderer(fmt, self.tokenizer, self.max_length)
        names = (record.get("persona_name") or "", record.get("user_persona") or "")
        assistant = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
        seen_user = False
        scored = []  # (index among assistant messages, message index)
        for k, i in enumerate(assistant):
            seen_user = seen_user or any(m["role"] == "user" for m in messages[:i])
            if seen_user:
                scored.append((k, i))
        if not scored:
            return {}
        text, spans = renderer.reply_spans(messages, names, {i for _, i in scored})
        enc = renderer.encode_text(text)
        ids = enc["input_ids"]
        if len(ids) > self.max_length:
            return {}  # scored only where the whole dialogue fits the model's context
        logits = self.model(torch.tensor([ids], device=self.device)).logits[0, :-1].float()
        nll = torch.nn.functional.cross_entropy(
            logits, torch.tensor(ids[1:], device=self.device), reduction="none"
        ).tolist()
        per_span: list[list[float]] = [[] for _ in spans]
        for t, (a, b) in enumerate(enc["offset_mapping"][1:], start=1):
            if a == b:
                continue
            for s, (lo, hi) in enumerate(spans):
                if lo <= a < hi:
                    per_span[s].append(nll[t - 1])
                    break
        return {k: float(np.mean(v)) for (k, _), v in zip(scored, per_span) if v}


def add_fluency(rows: list[dict], records: list[dict], scorer: FluencyScorer, formats) -> None:
    """Fill `nll` of each row; `formats(record)` gives the record's prompt format."""
    by_key = {(r["system"], r["dialogue"], r["index"]): r for r in rows}
    # One forward pass per dialogue, unbatched: each is a long sequence already (the
    # matmuls are full), and the scores then do not depend on batch mates' padding.
    bar = tqdm(records, desc="fluency (one pass per dialogue)", unit="dialogue", dynamic_ncols=True)
    for record in bar:
        key = (record.get("system", "data"), record.get("seed_key") or record["id"])
        for index, value in scorer.reply_nll(record, formats(record)).items():
            row = by_key.get((*key, index))
            if row is not None:
                row["nll"] = round(value, 4)
