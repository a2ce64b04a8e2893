"""The features of bench/persona_probe.py: what SmolLM2, MiniLM, the reply's surface and the
pattern checks say of each labelled persona turn (tests/data/labelled_persona_turns.jsonl).

- lm: the embedded SmolLM2-135M-Instruct scores the reply after the user's last line,
  once under the card's own system prompt (rolegen's template, greeting as first turn)
  and once under the same template with a blank card. Per token, pmi = log P(own card)
  - log P(blank card); aggregated over the reply, its sentences and its first-person
  sentences (`LM_NAMES`).
- hidden: SmolLM2's hidden states (own card in context) mean-pooled over the reply tokens
  at `HIDDEN_LAYERS`.
- mini / emb: all-MiniLM-L6-v2 cosines of the reply's sentences (first-person ones apart)
  against the card's sentences (description, personality, scenario, intro), of the reply
  against the description and the user's line; and the reply's own embedding.
- text: surface cues of acting for the user; pat: the pattern checks' reasons, run as
  bench/persona_calibration.py runs them.

Rows are read one split at a time (`read_rows`): the other split is dropped as the file is
parsed. The model features are cached per split under `CACHE`.
Not handled: earlier user turns (the labelled rows do not keep them), lorebooks.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "labelled_persona_turns.jsonl"
CACHE = Path("/tmp/persona_probe")
HIDDEN_LAYERS = (8, 15, 22)  # of 30; all pooled and cached, the probe uses one
BATCH = 8
_SENT = re.compile(r"[^.!?。！？\n]+[.!?。！？]*")
_FIRST = re.compile(r"\b(I|I'm|I've|I'd|I'll|[Mm]e|[Mm]y|[Mm]ine|[Mm]yself)\b|我")


def read_rows(split: str) -> list[dict]:
    """The labelled turns of one split; other splits' rows are dropped as they are parsed."""
    rows = []
    for line in DATA.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r["split"] == split:
            rows.append(r)
    return rows


def _cards(user: str = "User") -> dict:
    from rolegen.cards.files import load_personas
    from rolegen.evaluation.labels import labelled_card_folders
    from rolegen.generation.prompts import resolve_persona

    return {
        p.name: resolve_persona(p, user)
        for folder in labelled_card_folders()
        for p in load_personas(str(folder))
    }


def _sentences(text: str) -> list[tuple[int, int, bool]]:
    """(start, end, first person) of each sentence."""
    return [(m.start(), m.end(), bool(_FIRST.search(m.group()))) for m in _SENT.finditer(text)]


# ---------------------------------------------------------------- SmolLM2 features
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


def _lm_pass(model, tok, w32, prefix: str, rows: list[dict], hidden: bool) -> list[dict]:
    """Per row: token log-probs of the reply (and pooled hidden states) after `prefix`."""
    import torch

    with torch.inference_mode():
        ids = tok(prefix, add_special_tokens=False).input_ids
        cache = model.model(input_ids=torch.tensor([ids]), use_cache=True).past_key_values
        out = []
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
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
    sents = _sentences(reply)
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


def _cached(path: Path, rows: list[dict], second: str):
    """(scalars, `second`) from a feature cache made for exactly these rows, else None."""
    if not path.exists():
        return None
    z = np.load(path)
    return (z["scalars"], z[second]) if list(z["ids"]) == [r["id"] for r in rows] else None


def lm_features(rows: list[dict], split: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows x LM_NAMES, rows x layers x 576), cached per split."""
    path = CACHE / f"lm-{split}.npz"
    if (cached := _cached(path, rows, "pools")) is not None:
        return cached
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rolegen.models.checkpoints import materialize_embedded

    folder = materialize_embedded()
    tok = AutoTokenizer.from_pretrained(folder)
    # bf16 for the blocks (avx512_bf16: about 3x fp32 here), fp32 for the vocab
    # projection so that token log-probs are not rounded to bf16's 8 bits.
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).eval()
    w32 = model.lm_head.weight.float()
    cards = _cards()
    scalars, pools = [None] * len(rows), [None] * len(rows)
    by_card: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_card.setdefault(r["persona_name"], []).append(i)
    t0 = time.time()
    for n, (name, idx) in enumerate(by_card.items()):
        card = cards[name]
        sub = [rows[i] for i in idx]
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
        print(f"lm {split}: card {n + 1}/{len(by_card)}, {time.time() - t0:.0f} s", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    out = np.array(scalars, dtype=np.float32), np.stack(pools).astype(np.float32)
    np.savez(path, ids=np.array([r["id"] for r in rows]), scalars=out[0], pools=out[1])
    return out


# ---------------------------------------------------------------- MiniLM, text, patterns
MINI_NAMES = [
    "mini_fp_min",
    "mini_fp_mean",
    "mini_all_min",
    "mini_all_mean",
    "mini_card",
    "mini_user",
]
TEXT_NAMES = ["you_start", "user_named", "star_you", "user_line", "star_share", "log_chars"]


def minilm_features(rows: list[dict], split: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows x MINI_NAMES, rows x 384 reply embeddings), cached per split."""
    path = CACHE / f"minilm-{split}.npz"
    if (cached := _cached(path, rows, "reply")) is not None:
        return cached
    from rolegen.checks.embedder import Embedder, embedder_path

    emb = Embedder(embedder_path())
    cards = _cards()
    card_sents = {}
    for name in {r["persona_name"] for r in rows}:
        c = cards[name]
        text = "\n".join([c.description, c.personality, c.scenario, c.intro])
        sents = [text[a:b].strip() for a, b, _ in _sentences(text) if len(text[a:b].strip()) > 3]
        card_sents[name] = (emb.encode(sents), emb.encode([c.description or text])[0])
    replies = emb.encode([r["reply"] for r in rows], progress="minilm replies")
    users = emb.encode([r["user"] for r in rows])
    scalars = []
    for r, rv, uv in zip(rows, replies, users):
        cs, desc = card_sents[r["persona_name"]]
        sents = [(r["reply"][a:b].strip(), fp) for a, b, fp in _sentences(r["reply"])]
        sents = [(s, fp) for s, fp in sents if len(s) > 3] or [(r["reply"], True)]
        best = (emb.encode([s for s, _ in sents]) @ cs.T).max(1)
        fp = best[[f for _, f in sents]] if any(f for _, f in sents) else best
        scalars.append([fp.min(), fp.mean(), best.min(), best.mean(), rv @ desc, rv @ uv])
    out = np.array(scalars, dtype=np.float32), replies.astype(np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, ids=np.array([r["id"] for r in rows]), scalars=out[0], reply=out[1])
    return out


def text_features(rows: list[dict]) -> np.ndarray:
    """Surface cues of acting for the user that need no model."""
    out = []
    for r in rows:
        text, user = r["reply"], r.get("user_persona") or "User"
        sents = [text[a:b].strip(" *\"'") for a, b, _ in _sentences(text)] or [""]
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
    return np.array(out, dtype=np.float32)


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
        "text": text_features(rows),
        "pat": pat,
        "hid": pools[:, HIDDEN_LAYERS.index(layer)],
        "emb": reply,
    }
    return blocks, flags
