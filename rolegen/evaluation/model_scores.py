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

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rolegen.checks.embedder import Embedder
from rolegen.models.hardware import cpu_dtype
from rolegen.training.batches import pack
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
    """Token NLL of replies under a model (the base model: eval's fluency guardrail).

    Dialogues are scored in packed rows: several back to back in one forward pass,
    position ids restarting at each, attention inside each dialogue only
    (`training/packed_attention.py`), logits only where a reply token is predicted. No
    padding, and no token attends across dialogues, so a reply's score does not depend
    on its row mates (tested against one dialogue per pass)."""

    def __init__(self, model_path: Path, tokenizer, max_length: int, row_tokens: int = 8192):
        from transformers import AutoModelForCausalLM

        from rolegen.training import packed_attention

        # bf16 where it is native (half the memory of fp32 for a 7B-13B base on a GPU),
        # fp32 on a CPU that only emulates it (models/hardware.py)
        cuda = torch.cuda.is_available()
        if cuda:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = cpu_dtype()
        self.device = "cuda" if cuda else "cpu"
        self.model = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=dtype, attn_implementation=packed_attention.register()
        )
        self.model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.row_tokens = max(row_tokens, max_length)

    def prepare(self, record: dict, fmt) -> _Scored | None:
        """The record's token ids and, per scored reply, the positions of its tokens; None
        when nothing is scored (no reply after a user turn) or the dialogue does not fit
        the model's context."""
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
            return None
        text, spans = renderer.reply_spans(messages, names, {i for _, i in scored})
        enc = renderer.encode_text(text)
        ids = list(enc["input_ids"])
        if len(ids) > self.max_length:
            return None  # scored only where the whole dialogue fits the model's context
        tokens: list[list[int]] = [[] for _ in spans]
        for t, (a, b) in enumerate(enc["offset_mapping"]):
            if t == 0 or a == b:
                continue
            for s, (lo, hi) in enumerate(spans):
                if lo <= a < hi:
                    tokens[s].append(t)
                    break
        replies = {k: ts for (k, _), ts in zip(scored, tokens) if ts}
        return _Scored(ids, replies) if replies else None

    @torch.inference_mode()
    def score(self, items: list[_Scored]) -> list[dict[int, float]]:
        """Mean NLL per scored reply of each item, in one forward pass (one packed row)."""
        ids = [t for item in items for t in item.ids]
        starts = np.cumsum([0] + [len(item.ids) for item in items])
        targets = [
            [int(starts[n]) + t for t in ts]
            for n, item in enumerate(items)
            for ts in item.replies.values()
        ]
        flat = [t for ts in targets for t in ts]
        positions = torch.cat([torch.arange(len(item.ids)) for item in items])[None]
        out = self.model(
            input_ids=torch.tensor([ids], device=self.device),
            position_ids=positions.to(self.device),
            cu_seq_lens_q=torch.tensor(starts, dtype=torch.int32, device=self.device),
            use_cache=False,
            logits_to_keep=torch.tensor(flat, device=self.device) - 1,
        )
        nll = torch.nn.functional.cross_entropy(
            out.logits[0].float(),
            torch.tensor([ids[t] for t in flat], device=self.device),
            reduction="none",
        ).tolist()
        results: list[dict[int, float]] = []
        at = 0
        for item in items:
            scores = {}
            for k, ts in item.replies.items():
                scores[k] = float(np.mean(nll[at : at + len(ts)]))
                at += len(ts)
            results.append(scores)
        return results

    def reply_nll(self, record: dict, fmt) -> dict[int, float]:
        """Mean NLL per character reply, keyed by its index among the record's assistant
        messages (the greeting, if any, is index 0 and not scored), the record alone."""
        item = self.prepare(record, fmt)
        return self.score([item])[0] if item else {}


@dataclass
class _Scored:
    ids: list[int]
    replies: dict[int, list[int]]  # index among assistant messages -> its token positions


def add_fluency(rows: list[dict], records: list[dict], scorer: FluencyScorer, formats) -> None:
    """Fill `nll` of each row; `formats(record)` gives the record's prompt format. The
    dialogues go in packed rows of up to `scorer.row_tokens` tokens (first-fit
    decreasing)."""
    by_key = {(r["system"], r["dialogue"], r["index"]): r for r in rows}
    keys, items = [], []
    for record in records:
        item = scorer.prepare(record, formats(record))
        if item is not None:
            keys.append((record.get("system", "data"), record.get("seed_key") or record["id"]))
            items.append(item)
    packed = pack([item.ids for item in items], scorer.row_tokens)
    bar = tqdm(total=len(records), desc="fluency", unit="dialogue", dynamic_ncols=True)
    bar.update(len(records) - len(items))  # nothing to score in these
    for row in packed:
        for n, scores in zip(row, scorer.score([items[n] for n in row])):
            for index, value in scores.items():
                target = by_key.get((*keys[n], index))
                if target is not None:
                    target["nll"] = round(value, 4)
        bar.update(len(row))
    bar.close()
