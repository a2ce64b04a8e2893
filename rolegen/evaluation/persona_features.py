"""What the embedded models make of a reply beside its card: the features of the learned
persona check (`persona_model.py`) and of its fitting (bench/persona_probe.py).

An item is one character reply: `reply`, the user's line it answers (`user`), the card's
name (`persona_name`) and the user's name (`user_persona`). Cards are resolved personas.

- lm: the embedded SmolLM2-135M-Instruct scores the reply after the user's line, once
  under the card's own system prompt (rolegen's template, greeting as first turn) and once
  under the same template with a blank card. Per token, pmi = log P(own card) - log
  P(blank card), aggregated over the reply, its sentences and its first-person sentences
  (`LM_NAMES`).
- hid: SmolLM2's hidden states (own card in context), mean-pooled over the reply tokens, at
  `HIDDEN_LAYERS`.
- mini / emb: all-MiniLM-L6-v2 cosines of the reply's sentences (first-person ones apart)
  against the card's sentences (description, personality, scenario, intro), of the reply
  against the description and the user's line; and the reply's own embedding.
- text: surface cues of acting for the user.

Not read: earlier turns of the dialogue, lorebooks.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable

import numpy as np

from rolegen.models.hardware import cpu_dtype

HIDDEN_LAYERS = (8, 15, 22)  # of SmolLM2's 30 blocks
BATCH = 8
_SENT = re.compile(r"[^.!?。！？\n]+[.!?。！？]*")
_FIRST = re.compile(r"\b(I|I'm|I've|I'd|I'll|[Mm]e|[Mm]y|[Mm]ine|[Mm]yself)\b|我")

LM_NAMES = [
    "lp_own",
    "lp_blank",
    "pmi_mean",
    "pmi_head",
    "pmi_min_tok",
    "pmi_p05",
    "pmi_frac_low",
    "sent_pmi_min",
    "sent_lp_min",
    "fp_pmi_min",
    "fp_pmi_mean",
    "fp_count",
]
MINI_NAMES = [
    "mini_fp_min",
    "mini_fp_mean",
    "mini_all_min",
    "mini_all_mean",
    "mini_card",
    "mini_user",
]
TEXT_NAMES = ["you_start", "user_named", "star_you", "user_line", "star_share", "log_chars"]


def sentences(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, first person) of each sentence."""
    return [(m.start(), m.end(), bool(_FIRST.search(m.group()))) for m in _SENT.finditer(text)]


# ---------------------------------------------------------------- SmolLM2
def _system(card, user: str) -> str:
    from rolegen.cards.personas import Persona, UserPersona
    from rolegen.generation.templates import ROLEGEN_STYLE, Templates

    # The blank card is the same template with no card text, so the pmi isolates what
    # the card itself says (the reply guidelines stand in both).
    persona = card if card is not None else Persona(name="the character")
    return (
        Templates()
        .render(
            ROLEGEN_STYLE.system,
            persona=persona,
            user=UserPersona(name=user),
            lore=[],
            examples=persona.example_dialogues,
        )
        .strip()
    )


def _lm_pass(model, tok, w32, prefix: str, items: list[dict], hidden: bool) -> list[dict]:
    """Per item: token log-probs of the reply (and pooled hidden states) after `prefix`."""
    import torch

    with torch.inference_mode():
        ids = tok(prefix, add_special_tokens=False).input_ids
        cache = model.model(input_ids=torch.tensor([ids]), use_cache=True).past_key_values
        out = []
        for start in range(0, len(items), BATCH):
            batch = items[start : start + BATCH]
            seqs, spans, offsets = [], [], []
            for r in batch:
                head = tok(
                    f"<|im_start|>user\n{r['user']}<|im_end|>\n<|im_start|>assistant\n",
                    add_special_tokens=False,
                ).input_ids
                rep = tok(r["reply"], add_special_tokens=False, return_offsets_mapping=True)
                seqs.append(head + rep.input_ids + [tok.eos_token_id])
                spans.append((len(head), len(head) + len(rep.input_ids)))
                offsets.append(rep.offset_mapping)
            width = max(map(len, seqs))
            x = torch.full((len(seqs), width), tok.eos_token_id)
            mask = torch.zeros((len(seqs), len(ids) + width), dtype=torch.long)
            mask[:, : len(ids)] = 1
            for i, s in enumerate(seqs):
                x[i, : len(s)] = torch.tensor(s)
                mask[i, len(ids) : len(ids) + len(s)] = 1
            c = copy.deepcopy(cache)
            c.batch_repeat_interleave(len(seqs))
            o = model.model(
                input_ids=x, attention_mask=mask, past_key_values=c, output_hidden_states=hidden
            )
            for i, (a, b) in enumerate(spans):
                h = o.last_hidden_state[i, a - 1 : b - 1].float()
                logp = torch.log_softmax(h @ w32.T, dim=-1)
                lp = logp.gather(1, x[i, a:b, None]).squeeze(1).numpy()
                item = {"lp": lp, "offsets": offsets[i]}
                if hidden:
                    item["pool"] = np.stack(
                        [o.hidden_states[k][i, a:b].float().mean(0).numpy() for k in HIDDEN_LAYERS]
                    )
                out.append(item)
    return out


def _lm_scalars(reply: str, own: np.ndarray, blank: np.ndarray, offsets) -> list[float]:
    pmi = own - blank
    sents = sentences(reply)
    tok_sent = np.array(
        [next((j for j, (s, e, _) in enumerate(sents) if s <= a < e), -1) for a, _ in offsets]
    )
    per = [(pmi[tok_sent == j], own[tok_sent == j], fp) for j, (_, _, fp) in enumerate(sents)]
    per = [(p, o, fp) for p, o, fp in per if len(p) >= 3]
    fp = [p.mean() for p, _, f in per if f]
    if len(pmi) == 0:
        return [0.0] * len(LM_NAMES)
    return [
        own.mean(),
        blank.mean(),
        pmi.mean(),
        pmi[:24].mean(),
        pmi.min(),
        np.percentile(pmi, 5),
        (pmi < -2).mean(),
        min((p.mean() for p, _, _ in per), default=0.0),
        min((o.mean() for _, o, _ in per), default=0.0),
        min(fp, default=0.0),
        float(np.mean(fp)) if fp else 0.0,
        len(fp),
    ]


def lm_features(
    items: list[dict], cards: dict, progress: Callable[[int, int], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(items x LM_NAMES, items x HIDDEN_LAYERS x 576). The card's prompt is computed once
    per card; `progress(cards done, cards)` after each."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rolegen.models.checkpoints import materialize_embedded

    folder = materialize_embedded()
    tok = AutoTokenizer.from_pretrained(folder)
    # bf16 for the blocks where the CPU has it natively (avx512_bf16: about 3x fp32), else
    # fp32 (models/hardware.py); fp32 for the vocab projection so that token log-probs
    # are not rounded to bf16's 8 bits.
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=cpu_dtype()).eval()
    w32 = model.lm_head.weight.float()
    scalars, pools = [None] * len(items), [None] * len(items)
    by_card: dict[str, list[int]] = {}
    for i, r in enumerate(items):
        by_card.setdefault(r["persona_name"], []).append(i)
    for n, (name, idx) in enumerate(by_card.items()):
        card = cards[name]
        sub = [items[i] for i in idx]
        # the user is "User" in every prompt, as in the turns the classifier (bench/persona_probe.py) was fitted on
        own_msgs = [{"role": "system", "content": _system(card, "User")}]
        if card.greeting:
            own_msgs.append({"role": "assistant", "content": card.greeting})
        blank_msgs = [{"role": "system", "content": _system(None, "User")}]
        own = _lm_pass(
            model, tok, w32, tok.apply_chat_template(own_msgs, tokenize=False), sub, True
        )
        blank = _lm_pass(
            model, tok, w32, tok.apply_chat_template(blank_msgs, tokenize=False), sub, False
        )
        for i, r, o, b in zip(idx, sub, own, blank):
            scalars[i] = _lm_scalars(r["reply"], o["lp"], b["lp"], o["offsets"])
            pools[i] = o["pool"]
        if progress:
            progress(n + 1, len(by_card))
    if not items:
        return np.zeros((0, len(LM_NAMES)), np.float32), np.zeros((0, 3, 576), np.float32)
    return np.array(scalars, dtype=np.float32), np.stack(pools).astype(np.float32)


# ---------------------------------------------------------------- MiniLM and the surface
def card_sentences(card) -> list[str]:
    """The sentences of a card's description, personality, scenario and intro (a card
    without any has no MiniLM features)."""
    text = "\n".join([card.description, card.personality, card.scenario, card.intro])
    return [text[a:b].strip() for a, b, _ in sentences(text) if len(text[a:b].strip()) > 3]


def minilm_features(items: list[dict], cards: dict, embedder) -> tuple[np.ndarray, np.ndarray]:
    """(items x MINI_NAMES, items x 384 reply embeddings); `embedder`: checks.embedder."""
    card_sents = {}
    for name in {r["persona_name"] for r in items}:
        c = cards[name]
        text = "\n".join([c.description, c.personality, c.scenario, c.intro])
        sents = card_sentences(c)
        card_sents[name] = (embedder.encode(sents), embedder.encode([c.description or text])[0])
    replies = embedder.encode([r["reply"] for r in items], progress="minilm replies")
    users = embedder.encode([r["user"] for r in items])
    scalars = []
    for r, rv, uv in zip(items, replies, users):
        cs, desc = card_sents[r["persona_name"]]
        sents = [(r["reply"][a:b].strip(), fp) for a, b, fp in sentences(r["reply"])]
        sents = [(s, fp) for s, fp in sents if len(s) > 3] or [(r["reply"], True)]
        best = (embedder.encode([s for s, _ in sents]) @ cs.T).max(1)
        fp = best[[f for _, f in sents]] if any(f for _, f in sents) else best
        scalars.append([fp.min(), fp.mean(), best.min(), best.mean(), rv @ desc, rv @ uv])
    if not items:
        return np.zeros((0, len(MINI_NAMES)), np.float32), np.zeros((0, 384), np.float32)
    return np.array(scalars, dtype=np.float32), np.asarray(replies, dtype=np.float32)


def text_features(items: list[dict]) -> np.ndarray:
    """Surface cues of acting for the user that need no model (items x TEXT_NAMES)."""
    out = []
    for r in items:
        text, user = r["reply"], r.get("user_persona") or "User"
        sents = [text[a:b].strip(" *\"'") for a, b, _ in sentences(text)] or [""]
        stars = re.findall(r"\*[^*]+\*", text)
        out.append(
            [
                np.mean([s.startswith(("You ", "You'", "Your ")) for s in sents]),
                text.count(user),
                sum(bool(re.search(r"\b[Yy]ou(r)?\b", s)) for s in stars),
                bool(re.search(rf"(^|\n)\s*({re.escape(user)}|You)\s*:", text)),
                sum(map(len, stars)) / max(len(text), 1),
                np.log1p(len(text)),
            ]
        )
    return np.array(out, dtype=np.float32).reshape(len(items), len(TEXT_NAMES))
