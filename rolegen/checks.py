"""Repetition checks on character turns: written once, used by generate, filter and eval.

All checks are word- or character-level and model-independent (definitions in the
design notes). For character turn r_t of a dialogue (t = 1 is the first reply;
the card's greeting, if any, is turn 0 and counts as an earlier turn):

- echo: t >= 2, the user did not just ask who the character is, and the persona's
  intro line matches the head of r_t (`fuzz.partial_ratio`) or r_t introduces itself
  ("I am <name>", "my name is", ...);
- repeat: max over s < t of `fuzz.ratio(r_t, r_s)` (after `utils.default_process`);
- crep4: share of r_t's word 4-grams already used in earlier character turns;
- loop: seq-rep-4 = 1 - unique/all word 4-grams of r_t, or a word n-gram repeated
  back to back ("noir noir noir noir", "I will go. I will go. I will go.");
- opener: r_t starts with the same words as an earlier character turn;
- user: r_t writes the user's lines; ooc: assistant boilerplate; empty / cut_off;
- language: a non-English persona's reply drifts into another language.

Each turn gets every score and the list of reasons it fails. Pairs are scored in
one `process.cpdist` call per batch (all dialogues together, both cores), behind a
length pre-filter: `fuzz.ratio` <= 200 * min(l1, l2) / (l1 + l2).

Dataset level: distinct-1/2 and near-duplicate openings (`dataset_scores`), and
near-duplicate dialogues (`near_duplicates`, MinHash + LSH, then `fuzz.ratio`).
Non-goals: paraphrase detection by embeddings (a separate, optional scorer).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process, utils

from rolegen.config import CheckConfig

REASONS = (
    "echo",
    "repeat",
    "crep4",
    "loop",
    "opener",
    "user",
    "ooc",
    "empty",
    "cut_off",
    "language",
)


@dataclass
class DialogueTurns:
    """One dialogue as the checks see it."""

    character: list[str]  # character turns in order; [0] is the greeting if has_greeting
    users: list[str | None]  # the user turn each character turn answers (None: greeting)
    name: str = ""
    intro: str = ""
    user_name: str = ""
    language: str = "en"
    has_greeting: bool = True
    score_from: int = 0  # index in `character` of the first turn to score
    finish_reasons: list[str | None] = field(default_factory=list)


@dataclass
class TurnCheck:
    index: int  # index in DialogueTurns.character
    turn: int  # t: 1 is the first reply
    scores: dict[str, float]
    reasons: list[str]

    @property
    def ok(self) -> bool:
        return not self.reasons


def from_messages(
    messages: list[dict],
    meta: list[dict] | None = None,
    *,
    name: str = "",
    intro: str = "",
    user_name: str = "",
    language: str = "en",
) -> DialogueTurns:
    """A dialogue in `messages` form (system / user / assistant) as the checks see it.
    An assistant turn before any user turn is the greeting (turn 0)."""
    character, users, finishes = [], [], []
    last_user, has_greeting = None, False
    for i, m in enumerate(messages):
        if m["role"] == "user":
            last_user = m["content"]
        elif m["role"] == "assistant":
            if not character and last_user is None:
                has_greeting = True
            character.append(m["content"])
            users.append(last_user)
            finishes.append(meta[i].get("finish_reason") if meta and i < len(meta) else None)
            last_user = None
    return DialogueTurns(
        character=character,
        users=users,
        name=name,
        intro=intro,
        user_name=user_name,
        language=language,
        has_greeting=has_greeting,
        finish_reasons=finishes,
    )


# ------------------------------------------------------------------ text helpers

_ASKED_IDENTITY = re.compile(
    r"\b(who are you|who you are|what(?:'s| is) your name|your name|introduce yourself|"
    r"tell me about yourself|remind me who|qui êtes[- ]vous|qui es[- ]tu|comment vous appelez|"
    r"comment tu t'appelles|votre nom|ton nom|quién eres|quién es usted|cómo te llamas|"
    r"cómo se llama|tu nombre|su nombre|wer bist du|wie heißt du|你是谁|你叫什么)",
    re.IGNORECASE,
)
_OOC = re.compile(
    r"\b(as an ai\b|an ai language model|as a language model|i'?m an ai\b|i am an ai\b|"
    r"i'?m just an ai|openai|as a helpful assistant|i cannot fulfill|i can'?t assist with|"
    r"i'?m sorry, but i can'?t|\(ooc|\[ooc|out of character)",
    re.IGNORECASE,
)
_TERMINAL = tuple(".!?…。！？\"'”’)]*~")
_STOPWORDS = {
    "en": "the and you to of is that it in my your with for this have are be was what not i".split(),
    "fr": "le la les et vous de des un une est que je pas pour dans ce qui sur au mais".split(),
    "es": "el la los las y de que en un una es no por con para lo se su mi pero".split(),
    "de": "der die das und ich sie nicht ist zu den mit ein eine es auf für du".split(),
    "it": "il la e di che non un una per con sono mi si lo ma ho".split(),
    "pt": "o a os as e de que não um uma para com se eu por mas".split(),
}
_STOP_LOOKUP = {w: lang for lang, words in _STOPWORDS.items() for w in words}
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def _self_intro(name: str) -> re.Pattern | None:
    parts = [re.escape(p) for p in re.split(r"\s+", name.strip()) if len(p) > 2]
    if not parts:
        return None
    names = "|".join(parts)
    return re.compile(
        rf"\b(?:i am|i'm|i’m|my name is|my name's|they call me|call me|je suis|je m'appelle|"
        rf"soy|me llamo|ich bin)\s+(?:\w+\s+){{0,2}}(?:{names})\b",
        re.IGNORECASE,
    )


def _grams(words: list[str], n: int = 4) -> list[tuple]:
    return list(zip(*(words[i:] for i in range(n))))


def _longest_run(words: list[str], max_n: int = 8) -> tuple[int, int]:
    """(n, repeats) of the most repeated back-to-back word n-gram."""
    best = (0, 1)
    length = len(words)
    for n in range(1, min(max_n, length // 2) + 1):
        i = 0
        while i + 2 * n <= length:
            reps = 1
            while words[i + reps * n : i + (reps + 1) * n] == words[i : i + n]:
                reps += 1
            if reps > best[1]:
                best = (n, reps)
            i += n if reps > 1 else 1
    return best


def detect_language(words: list[str], text: str) -> str | None:
    if len(_CJK.findall(text)) > max(3, len(text) // 5):
        return "zh"
    counts = Counter(_STOP_LOOKUP[w] for w in words if w in _STOP_LOOKUP)
    if sum(counts.values()) < 3:
        return None  # too short to tell
    return counts.most_common(1)[0][0]


# ------------------------------------------------------------------ the checks


def check_dialogues(
    dialogues: list[DialogueTurns], cfg: CheckConfig | None = None, prefilter: bool = True
) -> list[list[TurnCheck]]:
    """Score every turn from `score_from` on, in all dialogues at once.

    `prefilter=False` computes exact max ratios (for metrics); with it, pairs that
    cannot reach `repeat_ratio` are skipped and the max is a lower bound below it.
    """
    cfg = cfg or CheckConfig()
    processed = [[utils.default_process(t) for t in d.character] for d in dialogues]
    words = [[p.split() for p in procs] for procs in processed]

    # Cross-turn pairs (t, s < t), flattened over all dialogues for one cpdist call.
    queries, choices, owner = [], [], []
    targets = []  # (dialogue, index) of every scored turn, in order
    for di, (d, procs) in enumerate(zip(dialogues, processed)):
        for ti in range(d.score_from, len(procs)):
            if d.has_greeting and ti == 0:
                continue
            k = len(targets)
            targets.append((di, ti))
            lq = len(procs[ti])
            for s in range(ti):
                ls = len(procs[s])
                if prefilter and (lq + ls == 0 or 200 * min(lq, ls) / (lq + ls) < cfg.repeat_ratio):
                    continue
                queries.append(procs[ti])
                choices.append(procs[s])
                owner.append(k)
    max_ratio = np.zeros(len(targets))
    if queries:
        ratios = process.cpdist(queries, choices, scorer=fuzz.ratio, workers=-1)
        np.maximum.at(max_ratio, np.asarray(owner), ratios)

    # Echo: the intro line against each reply's head, one cpdist call.
    echo_pairs, echo_owner = [], []
    for k, (di, ti) in enumerate(targets):
        d = dialogues[di]
        if d.intro:
            echo_pairs.append(
                (utils.default_process(d.intro), processed[di][ti][: cfg.echo_head_chars])
            )
            echo_owner.append(k)
    echo_ratio = np.zeros(len(targets))
    if echo_pairs:
        intros, heads = zip(*echo_pairs)
        echo_ratio[np.asarray(echo_owner)] = process.cpdist(
            list(intros), list(heads), scorer=fuzz.partial_ratio, workers=-1
        )

    results: list[list[TurnCheck]] = [[] for _ in dialogues]
    intro_patterns = {d.name: _self_intro(d.name) for d in dialogues}
    for k, (di, ti) in enumerate(targets):
        d = dialogues[di]
        text = d.character[ti]
        turn = ti if d.has_greeting else ti + 1
        w = words[di][ti]
        grams = _grams(w)
        earlier = {g for s in range(ti) for g in _grams(words[di][s])}
        seq_rep = 1 - len(set(grams)) / len(grams) if grams else 0.0
        crep = sum(g in earlier for g in grams) / len(grams) if grams else 0.0
        run_n, run_reps = _longest_run(w)
        user_turn = d.users[ti] if ti < len(d.users) else None
        asked = bool(user_turn and _ASKED_IDENTITY.search(user_turn))
        pattern = intro_patterns[d.name]
        intro_hit = bool(pattern and pattern.search(text[: cfg.echo_head_chars]))
        echo_score = max(echo_ratio[k], 100.0 if intro_hit else 0.0)
        opener = tuple(w[: cfg.opener_words])
        opener_hit = len(opener) == cfg.opener_words and any(
            tuple(words[di][s][: cfg.opener_words]) == opener for s in range(ti)
        )
        lang = detect_language(w, text) if d.language != "en" else None
        finish = d.finish_reasons[ti] if ti < len(d.finish_reasons) else None

        scores = {
            "echo": float(echo_score),
            "repeat": float(max_ratio[k]),
            "crep4": crep,
            "seq_rep4": seq_rep,
            "loop_run": float(run_reps if run_n else 1),
            "opener": float(opener_hit),
            "chars": float(len(text.strip())),
        }
        reasons = []
        if turn >= 2 and not asked and echo_score >= cfg.echo_ratio:
            reasons.append("echo")
        if max_ratio[k] >= cfg.repeat_ratio:
            reasons.append("repeat")
        if crep >= cfg.crep4:
            reasons.append("crep4")
        needed = cfg.loop_repeats + (1 if run_n == 1 else 0)
        if seq_rep >= cfg.seq_rep4 or (run_n and run_reps >= needed):
            reasons.append("loop")
        if opener_hit:
            reasons.append("opener")
        if d.user_name and re.search(rf"(?:^|\n)\s*{re.escape(d.user_name)}\s*:", text):
            reasons.append("user")
        if _OOC.search(text):
            reasons.append("ooc")
        if len(text.strip()) < cfg.min_chars:
            reasons.append("empty")
        elif finish == "length" and not text.rstrip().endswith(_TERMINAL):
            reasons.append("cut_off")
        if lang is not None and lang != d.language:
            reasons.append("language")
        results[di].append(TurnCheck(index=ti, turn=turn, scores=scores, reasons=reasons))
    return results


def rejecting(check: TurnCheck, cfg: CheckConfig) -> list[str]:
    """The reasons among `check.reasons` that reject the turn under `cfg`."""
    return [r for r in check.reasons if r in cfg.reject]


# ------------------------------------------------------------------ dataset level


def distinct_n(texts: list[str], n: int) -> float:
    total, unique = 0, set()
    for t in texts:
        w = utils.default_process(t).split()
        grams = list(zip(*(w[i:] for i in range(n))))
        total += len(grams)
        unique.update(grams)
    return len(unique) / total if total else 0.0


def shared_openings(first_replies: list[str], words: int = 4) -> dict[str, int]:
    """Openings (first N words of the first reply) shared by more than one dialogue."""
    counts = Counter(
        " ".join(utils.default_process(t).split()[:words]) for t in first_replies if t.strip()
    )
    return {k: v for k, v in counts.most_common() if v > 1}


_MERSENNE = (1 << 61) - 1


def near_duplicates(
    texts: list[str],
    threshold: float = 85.0,
    num_perm: int = 64,
    bands: int = 16,
    shingle: int = 3,
    seed: int = 0,
) -> list[tuple[int, int, float]]:
    """Pairs (i, j, ratio) of texts that are near-copies (`fuzz.ratio` >= threshold).

    MinHash over word 3-gram shingles with LSH banding finds candidate pairs without
    comparing all n^2 of them; each candidate is then verified with `fuzz.ratio`.
    """
    rng = np.random.default_rng(seed)
    a = rng.integers(1, _MERSENNE, num_perm, dtype=np.uint64)
    b = rng.integers(0, _MERSENNE, num_perm, dtype=np.uint64)
    rows = num_perm // bands
    processed = [utils.default_process(t) for t in texts]
    signatures = np.full((len(texts), num_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
    for i, p in enumerate(processed):
        w = p.split()
        grams = {hash(g) for g in zip(*(w[k:] for k in range(shingle)))} or {hash(p)}
        h = np.fromiter(grams, dtype=np.int64, count=len(grams)).view(np.uint64)
        # (a * h + b) mod 2^64 as a universal hash family; the min over shingles per
        # permutation is the MinHash signature
        signatures[i] = (np.outer(h, a) + b).min(axis=0)
    candidates = set()
    for band in range(bands):
        keys = signatures[:, band * rows : (band + 1) * rows]
        buckets: dict[bytes, list[int]] = {}
        for i, key in enumerate(keys):
            buckets.setdefault(key.tobytes(), []).append(i)
        for members in buckets.values():
            if 1 < len(members) <= 1000:  # a giant bucket is shared boilerplate, not a pair
                candidates.update((x, y) for k, x in enumerate(members) for y in members[k + 1 :])
    if not candidates:
        return []
    pairs = sorted(candidates)
    scores = process.cpdist(
        [processed[i] for i, _ in pairs],
        [processed[j] for _, j in pairs],
        scorer=fuzz.ratio,
        workers=-1,
    )
    return [(i, j, float(s)) for (i, j), s in zip(pairs, scores) if s >= threshold]


def dataset_scores(dialogue_texts: list[list[str]]) -> dict:
    """distinct-1/2 over all character turns, and shared first-reply openings."""
    turns = [t for d in dialogue_texts for t in d]
    firsts = [d[0] for d in dialogue_texts if d]
    shared = shared_openings(firsts)
    return {
        "character_turns": len(turns),
        "distinct_1": distinct_n(turns, 1),
        "distinct_2": distinct_n(turns, 2),
        "shared_openings": dict(list(shared.items())[:20]),
        "share_with_shared_opening": sum(shared.values()) / len(firsts) if firsts else 0.0,
    }
