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
length pre-filter: `fuzz.ratio` <= 200 * min(l1, l2) / (l1 + l2). The n-gram
statistics run over the whole batch at once as numpy arrays of hashed words.

Dataset level: distinct-1/2 and near-duplicate openings (`dataset_scores`), and
near-duplicate dialogues (`near_duplicates`, MinHash + LSH, then `fuzz.ratio`).
Non-goals: paraphrase detection by embeddings (a separate, optional scorer).
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process, utils

from rolegen.config import REASONS, CheckConfig
from rolegen.errors import RolegenError


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


def detect_language(words: list[str], text: str) -> str | None:
    if len(_CJK.findall(text)) > max(3, len(text) // 5):
        return "zh"
    counts = Counter(_STOP_LOOKUP[w] for w in words if w in _STOP_LOOKUP)
    if sum(counts.values()) < 3:
        return None  # too short to tell
    return counts.most_common(1)[0][0]


def asks_identity(user_turn: str | None) -> bool:
    """The user asked who the character is (an echo then is an answer, not a tic)."""
    return bool(user_turn) and _ASKED_IDENTITY.search(user_turn) is not None


_TITLES = {
    "captain", "sir", "lady", "lord", "doctor", "dr", "professor", "chef", "detective",
    "tutor", "master", "mister", "mrs", "miss", "madame", "monsieur", "don", "doña", "señor",
    "the", "of", "von", "van", "de", "la", "le", "el", "old", "keeper", "ai",
}  # fmt: skip


def names_character(reply: str, name: str) -> bool:
    """The reply says the character's name: any part of it that is not a title ("Mara" or
    "Vell" for "Captain Mara Vell"); identity recall when the user asked for it."""
    parts = [p for p in re.split(r"[\s,.]+", name.strip()) if len(p) > 1]
    own = [p for p in parts if p.lower() not in _TITLES] or parts
    if not own:
        return False
    pattern = r"\b(?:" + "|".join(re.escape(p) for p in own) + r")\b"
    return re.search(pattern, reply, re.IGNORECASE) is not None


# ------------------------------------------------------------------ the checks


_MIX = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5],
    dtype=np.uint64,
)
_MAX_LOOP_N = 8


def _first_in_group(keys: list[np.ndarray], order_key: np.ndarray) -> np.ndarray:
    """For rows grouped by equal `keys`, the smallest `order_key` of each row's group."""
    if len(order_key) == 0:
        return order_key.copy()
    order = np.lexsort([order_key, *keys[::-1]])
    same = np.ones(len(order) - 1, dtype=bool)
    for k in keys:
        ks = k[order]
        same &= ks[1:] == ks[:-1]
    start = np.concatenate([[True], ~same])
    group = np.cumsum(start) - 1
    out = np.empty_like(order_key)
    out[order] = order_key[order][start][group]
    return out


class _Corpus:
    """Every character turn of a batch as flat numpy arrays of word hashes, so n-gram
    statistics run once over the whole batch instead of per turn in Python."""

    def __init__(self, dialogues: list[DialogueTurns]):
        self.text = [t for d in dialogues for t in d.character]
        self.processed = [utils.default_process(t) for t in self.text]
        words = [p.split() for p in self.processed]
        self.words = words
        self.n_words = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
        self.dialogue = np.repeat(np.arange(len(dialogues)), [len(d.character) for d in dialogues])
        self.index = (
            np.concatenate([np.arange(len(d.character)) for d in dialogues])
            if dialogues
            else np.zeros(0, dtype=np.int64)
        )
        total = int(self.n_words.sum())
        self.hash = np.fromiter(
            (hash(x) for w in words for x in w), dtype=np.int64, count=total
        ).view(np.uint64)
        self.turn_of_word = np.repeat(np.arange(len(words)), self.n_words)
        starts = np.concatenate([[0], np.cumsum(self.n_words)[:-1]]) if len(words) else []
        self.pos = (
            np.arange(total) - np.repeat(starts, self.n_words)
            if total
            else np.zeros(0, dtype=np.int64)
        )

    def grams(self, n: int = 4):
        """(turn id, hash) of every word n-gram."""
        valid = self.pos <= np.repeat(self.n_words, self.n_words) - n
        idx = np.nonzero(valid)[0]
        g = np.zeros(len(idx), dtype=np.uint64)
        for k in range(n):
            g = g * _MIX[k % 4] + self.hash[idx + k]
        return self.turn_of_word[idx], g

    def ngram_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """seq-rep-4 and crep-4 of every turn.

        Both come from one-key sorts: the owner (turn, or dialogue) goes in the high 24
        bits and 40 bits of the gram hash in the low ones; a 40-bit clash inside one
        turn or dialogue (a few hundred grams) is vanishingly rare."""
        turn, g = self.grams(4)
        count = np.bincount(turn, minlength=len(self.text)).astype(float)
        low = g & np.uint64((1 << 40) - 1)
        by_turn = np.sort((turn.astype(np.uint64) << np.uint64(40)) | low)
        new = np.ones(len(by_turn), dtype=bool)
        new[1:] = by_turn[1:] != by_turn[:-1]
        unique = np.bincount(
            (by_turn[new] >> np.uint64(40)).astype(np.int64), minlength=len(self.text)
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            seq_rep = np.where(count > 0, 1 - unique / count, 0.0)
        # A gram was used earlier in the dialogue iff an equal gram of the same dialogue
        # comes before it. Grams are in dialogue order, so a stable sort keeps that order
        # inside each group and "not first in its group" is "used before" -- unless the
        # earlier use is in the same turn, which seq-rep counts instead.
        key = (self.dialogue[turn].astype(np.uint64) << np.uint64(40)) | low
        order = np.argsort(key, kind="stable")
        ks = key[order]
        start = np.ones(len(ks), dtype=bool)
        start[1:] = ks[1:] != ks[:-1]
        group_first = np.maximum.accumulate(np.where(start, np.arange(len(ks)), 0))
        first_index = self.index[turn][order][group_first]
        earlier = np.empty(len(ks), dtype=bool)
        earlier[order] = first_index < self.index[turn][order]
        seen = np.bincount(turn, weights=earlier, minlength=len(self.text))
        with np.errstate(divide="ignore", invalid="ignore"):
            crep = np.where(count > 0, seen / count, 0.0)
        return seq_rep, crep

    def longest_runs(self) -> tuple[np.ndarray, np.ndarray]:
        """Per turn, the (n, repeats) of the most repeated back-to-back word n-gram."""
        best_n = np.zeros(len(self.text), dtype=np.int64)
        best_reps = np.ones(len(self.text), dtype=np.int64)
        h, t = self.hash, self.turn_of_word
        for n in range(1, _MAX_LOOP_N + 1):
            if len(h) <= n:
                break
            eq = (h[:-n] == h[n:]) & (t[:-n] == t[n:])
            # length of the run of equal positions ending at each position
            idx = np.arange(len(eq))
            last_false = np.maximum.accumulate(np.where(eq, -1, idx))
            run = idx - last_false
            reps = run // n + 1
            per_turn = np.zeros(len(self.text), dtype=np.int64)
            np.maximum.at(per_turn, t[:-n], reps)
            better = per_turn > best_reps
            best_reps[better] = per_turn[better]
            best_n[better] = n
        return best_n, best_reps

    def repeated_openers(self, k: int) -> np.ndarray:
        """Whether a turn starts with the same k words as an earlier turn of its dialogue."""
        has = self.n_words >= k
        starts = np.concatenate([[0], np.cumsum(self.n_words)[:-1]]).astype(np.int64)
        key = np.zeros(len(self.text), dtype=np.uint64)
        for j in range(k):
            key = key * _MIX[j % 4] + np.where(
                has,
                self.hash[np.minimum(starts + j, len(self.hash) - 1)] if len(self.hash) else 0,
                0,
            ).astype(np.uint64)
        key = np.where(has, key, np.arange(len(key), dtype=np.uint64) ^ _MIX[0])  # unique if short
        first = _first_in_group([self.dialogue, key], self.index)
        return has & (first < self.index)


_OOC_NEEDLES = (
    " ai",
    "language model",
    "openai",
    "assistant",
    "cannot",
    "can't",
    "can’t",
    "ooc",
    "out of character",
)


def _search_each(
    pattern: re.Pattern, texts: list[str | None], needles: tuple[str, ...] | None = None
) -> np.ndarray:
    """Whether `pattern` occurs in each text. `needles`, if given, are lowercase strings of
    which a match must contain one: plain substring tests (fast) pick the few texts the
    regular expression (slow) then looks at."""
    hits = np.zeros(len(texts), dtype=bool)
    for k, text in enumerate(texts):
        if not text:
            continue
        if needles is not None:
            low = text.lower()
            if not any(n in low for n in needles):
                continue
        hits[k] = pattern.search(text) is not None
    return hits


def _pairs(dialogues: list[DialogueTurns], offsets: np.ndarray):
    """(query, choice) flat turn ids of every (t, s < t) pair for the scored turns."""
    sizes = np.array([len(d.character) for d in dialogues])
    q, c = [], []
    for di, d in enumerate(dialogues):
        lo = max(d.score_from, 1 if d.has_greeting else 0)
        t, s = np.tril_indices(sizes[di], -1)
        keep = t >= lo
        q.append(t[keep] + offsets[di])
        c.append(s[keep] + offsets[di])
    if not q:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(q), np.concatenate(c)


def check_dialogues(
    dialogues: list[DialogueTurns], cfg: CheckConfig | None = None, prefilter: bool = True
) -> list[list[TurnCheck]]:
    """Score every turn from `score_from` on, in all dialogues at once.

    `prefilter=False` computes exact max ratios (for metrics); with it, pairs that
    cannot reach `repeat_ratio` are skipped and a max below it reads 0.
    """
    cfg = cfg or CheckConfig()
    unknown = sorted(set(cfg.reject) - set(REASONS))
    if unknown:
        raise RolegenError(
            f"field 'reject': unknown reason '{unknown[0]}' (known: {', '.join(REASONS)})"
        )
    corpus = _Corpus(dialogues)
    sizes = np.array([len(d.character) for d in dialogues], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if len(sizes) else sizes
    targets = [
        (di, ti)
        for di, d in enumerate(dialogues)
        for ti in range(d.score_from, len(d.character))
        if not (d.has_greeting and ti == 0)
    ]
    flat_target = np.array([offsets[di] + ti for di, ti in targets], dtype=np.int64)

    # Cross-turn ratio: all pairs of the batch in one cpdist call, behind a length bound.
    q, c = _pairs(dialogues, offsets)
    lengths = np.fromiter(
        (len(p) for p in corpus.processed), dtype=np.int64, count=len(corpus.processed)
    )
    max_ratio = np.zeros(len(corpus.text))
    if len(q):
        if prefilter:
            lq, lc = lengths[q], lengths[c]
            with np.errstate(divide="ignore", invalid="ignore"):
                bound = np.where(lq + lc > 0, 200 * np.minimum(lq, lc) / (lq + lc), 0)
            keep = bound >= cfg.repeat_ratio
            q, c = q[keep], c[keep]
        if len(q):
            ratios = process.cpdist(
                [corpus.processed[i] for i in q],
                [corpus.processed[i] for i in c],
                scorer=fuzz.ratio,
                workers=-1,
                score_cutoff=cfg.repeat_ratio if prefilter else None,
            )
            np.maximum.at(max_ratio, q, ratios)

    # Echo: the intro line against each scored reply's head, one cpdist call.
    echo_ratio = np.zeros(len(corpus.text))
    with_intro = [k for k, (di, _) in enumerate(targets) if dialogues[di].intro]
    if with_intro:
        intros = [utils.default_process(dialogues[targets[k][0]].intro) for k in with_intro]
        heads = [corpus.processed[flat_target[k]][: cfg.echo_head_chars] for k in with_intro]
        echo_ratio[flat_target[with_intro]] = process.cpdist(
            intros, heads, scorer=fuzz.partial_ratio, workers=-1
        )

    seq_rep, crep = corpus.ngram_scores()
    run_n, run_reps = corpus.longest_runs()
    openers = corpus.repeated_openers(cfg.opener_words)

    # The regular-expression checks, one pass over the joined texts per pattern.
    texts = [dialogues[di].character[ti] for di, ti in targets]
    heads = [t[: cfg.echo_head_chars] for t in texts]
    asked = _search_each(
        _ASKED_IDENTITY,
        [dialogues[di].users[ti] if ti < len(dialogues[di].users) else None for di, ti in targets],
    )
    ooc = _search_each(_OOC, texts, _OOC_NEEDLES)
    intro_hit = np.zeros(len(targets), dtype=bool)
    speaks_for_user = np.zeros(len(targets), dtype=bool)
    by_name: dict[tuple[str, str], list[int]] = {}
    for k, (di, _) in enumerate(targets):
        by_name.setdefault((dialogues[di].name, dialogues[di].user_name), []).append(k)
    for (name, user_name), ks in by_name.items():
        pattern = _self_intro(name)
        if pattern is not None:
            parts = tuple(p.lower() for p in name.split() if len(p) > 2)
            intro_hit[ks] = _search_each(pattern, [heads[k] for k in ks], parts)
        if user_name:
            line = re.compile(rf"(?:^|\n)\s*{re.escape(user_name)}\s*:")
            speaks_for_user[ks] = _search_each(line, [texts[k] for k in ks], (user_name.lower(),))

    results: list[list[TurnCheck]] = [[] for _ in dialogues]
    for k, ((di, ti), f) in enumerate(zip(targets, flat_target)):
        d = dialogues[di]
        text = d.character[ti]
        turn = ti if d.has_greeting else ti + 1
        echo_score = max(float(echo_ratio[f]), 100.0 if intro_hit[k] else 0.0)
        n, reps = int(run_n[f]), int(run_reps[f])
        finish = d.finish_reasons[ti] if ti < len(d.finish_reasons) else None
        scores = {
            "echo": echo_score,
            "repeat": float(max_ratio[f]),
            "crep4": float(crep[f]),
            "seq_rep4": float(seq_rep[f]),
            "loop_run": float(reps),
            "opener": float(openers[f]),
            "chars": float(len(text.strip())),
        }
        reasons = []
        if turn >= 2 and not asked[k] and echo_score >= cfg.echo_ratio:
            reasons.append("echo")
        if max_ratio[f] >= cfg.repeat_ratio:
            reasons.append("repeat")
        if crep[f] >= cfg.crep4:
            reasons.append("crep4")
        needed = cfg.loop_repeats + (1 if n == 1 else 0)
        if seq_rep[f] >= cfg.seq_rep4 or (n and reps >= needed):
            reasons.append("loop")
        if openers[f]:
            reasons.append("opener")
        if speaks_for_user[k]:
            reasons.append("user")
        if ooc[k]:
            reasons.append("ooc")
        if len(text.strip()) < cfg.min_chars:
            reasons.append("empty")
        elif finish == "length" and not text.rstrip().endswith(_TERMINAL):
            reasons.append("cut_off")
        if d.language != "en":
            lang = detect_language(corpus.words[f], text)
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


def _stable_hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def near_duplicates(
    texts: list[str],
    threshold: float = 85.0,
    num_perm: int = 128,
    bands: int = 32,
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
        grams = {_stable_hash(" ".join(g)) for g in zip(*(w[k:] for k in range(shingle)))}
        grams = grams or {_stable_hash(p)}
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
            if 1 < len(members) <= 100:  # a giant bucket is shared boilerplate, not a pair
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
