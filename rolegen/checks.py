"""Repetition checks on character turns: written once, used by generate, filter and eval.

All checks are word- or character-level and model-independent (definitions in the
design notes). For character turn r_t of a dialogue (t = 1 is the first reply;
the card's greeting, if any, is turn 0 and counts as an earlier turn):

- echo: t >= 2, the user did not just ask who the character is, and the persona's
  intro line matches the head of r_t (`fuzz.partial_ratio`) or r_t introduces itself
  ("I am <name>", "my name is", ...);
- repeat: max over s < t of `fuzz.ratio` over the word sequences of r_t and r_s
  (after `utils.default_process`): 100 * 2 * LCS / (len_t + len_s), in words;
- crep4: share of r_t's word 4-grams already used in earlier character turns;
- loop: seq-rep-4 = 1 - unique/all word 4-grams of r_t, or a word n-gram repeated
  back to back ("noir noir noir noir", "I will go. I will go. I will go.");
- opener: r_t starts with the same words as an earlier character turn;
- user: r_t writes the user's lines; ooc: assistant boilerplate; empty / cut_off;
- language: a non-English persona's reply drifts into another language.

Each turn gets every score and the list of reasons it fails. A batch is scored at
once: its texts become flat arrays of word hashes, and compiled kernels
(`_textkernels`) compute per dialogue the cross-turn ratios (bit-parallel LCS over
word ids), the n-gram statistics and the back-to-back runs. Pre-filters skip what
cannot reach a threshold: pairs by the length bound `fuzz.ratio` <= 200 * min(l1, l2)
/ (l1 + l2), and reply heads by an LCS bound on the echo's `partial_ratio` (rapidfuzz
scores the heads that pass, one `cdist` per intro).

Dataset level: distinct-1/2 and near-duplicate openings (`dataset_scores`), and
near-duplicate dialogues (`near_duplicates`, MinHash + LSH, then `fuzz.ratio`).
Paraphrase (optional, `paraphrase` > 0): the max cosine of a reply's sentence embedding
against the dialogue's earlier character turns. This module stays model-free: the caller
passes the encoder (`guardrails.paraphrase_encoder`).
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process, utils

from rolegen import _textkernels
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


def _codes(text: str) -> np.ndarray:
    """The code points of `text`: 1 byte each where it fits Latin-1, else 4."""
    try:
        return np.frombuffer(text.encode("latin-1"), dtype=np.uint8)
    except UnicodeEncodeError:
        return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


_CHUNK_CHARS = 1 << 24  # texts are hashed in chunks of about this many characters


def _hash_words(processed: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(word hashes, word_starts) of `utils.default_process`ed texts, without a Python
    object per word: each chunk of texts goes to the kernel as one code-point array
    (1 byte per character when it fits Latin-1, else 4)."""
    lengths = np.fromiter(map(len, processed), dtype=np.int64, count=len(processed))
    bounds = np.searchsorted(
        np.cumsum(lengths), np.arange(_CHUNK_CHARS, lengths.sum(), _CHUNK_CHARS)
    )
    hashes, counts = [], []
    for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), len(processed)]):
        h, c = _textkernels.word_hashes(_codes("".join(processed[lo:hi])), lengths[lo:hi])
        hashes.append(h)
        counts.append(c)
    starts = np.zeros(len(processed) + 1, dtype=np.int64)
    if processed:
        np.cumsum(np.concatenate(counts), out=starts[1:])
    return (np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)), starts


class _Corpus:
    """Every character turn of a batch as flat arrays: turn k of dialogue d is
    `turn_starts[d] + k`; its words' hashes are `hashes[word_starts[k]:word_starts[k + 1]]`.
    The scored turns (`targets`) are those from `score_from` on, the greeting excepted."""

    def __init__(self, dialogues: list[DialogueTurns]):
        self.text = [t for d in dialogues for t in d.character]
        self.processed = [utils.default_process(t) for t in self.text]
        sizes = np.fromiter((len(d.character) for d in dialogues), np.int64, len(dialogues))
        self.turn_starts = np.zeros(len(dialogues) + 1, dtype=np.int64)
        np.cumsum(sizes, out=self.turn_starts[1:])
        self.dialogue = np.repeat(np.arange(len(dialogues)), sizes)
        self.index = np.arange(len(self.text)) - self.turn_starts[self.dialogue]
        first = np.fromiter(
            (max(d.score_from, 1 if d.has_greeting else 0) for d in dialogues),
            np.int64,
            len(dialogues),
        )
        self.first_scored = self.turn_starts[:-1] + first
        self.targets = np.nonzero(self.index >= first[self.dialogue])[0]
        self.hashes, self.word_starts = _hash_words(self.processed)

    def words(self, k: int) -> list[str]:
        return self.processed[k].split()


def _echo_scores(
    corpus: _Corpus, dialogues: list[DialogueTurns], cfg: CheckConfig, prefilter: bool
) -> np.ndarray:
    """partial_ratio of each scored turn's head against its persona's intro line: one
    `cdist` per distinct intro, so each needle is prepared once. With `prefilter`, only
    heads whose LCS with the intro lets the score reach `echo_ratio` are scored."""
    echo = np.zeros(len(corpus.text))
    intro_id: dict[str, int] = {}
    of_dialogue = np.array(
        [intro_id.setdefault(d.intro, len(intro_id)) if d.intro else -1 for d in dialogues],
        dtype=np.int64,
    )
    of_target = of_dialogue[corpus.dialogue[corpus.targets]]
    for intro, i in intro_id.items():
        ks = corpus.targets[of_target == i]
        heads = [corpus.processed[k][: cfg.echo_head_chars] for k in ks.tolist()]
        needle = utils.default_process(intro)
        if prefilter:
            bound = np.zeros(len(heads))
            lengths = np.fromiter(map(len, heads), dtype=np.int64, count=len(heads))
            pattern = np.frombuffer(needle.encode("utf-32-le", "surrogatepass"), np.uint32)
            _textkernels.partial_ratio_bounds(_codes("".join(heads)), lengths, pattern, bound)
            keep = np.nonzero(bound >= cfg.echo_ratio - 1e-9)[0]  # margin for rounding
            ks = ks[keep]
            heads = [heads[j] for j in keep.tolist()]
        echo[ks] = process.cdist(
            [needle],
            heads,
            scorer=fuzz.partial_ratio,
            score_cutoff=cfg.echo_ratio if prefilter else None,
            dtype=np.float64,
            workers=-1,
        )[0]
    return echo


def _repetition(
    corpus: _Corpus, dialogues: list[DialogueTurns], cfg: CheckConfig, prefilter: bool
) -> dict[str, np.ndarray]:
    """The lexical scores of every turn of the batch as flat arrays (turns that are not
    scored read 0 for echo and repeat)."""
    n = len(corpus.text)
    out = {
        "repeat": np.zeros(n),
        "crep4": np.zeros(n),
        "seq_rep4": np.zeros(n),
        "loop_n": np.zeros(n, dtype=np.int64),
        "loop_run": np.zeros(n, dtype=np.int64),
        "opener": np.zeros(n, dtype=np.bool_),
    }
    args = (corpus.hashes, corpus.word_starts, corpus.turn_starts)
    _textkernels.ngram_stats(
        *args, cfg.opener_words, 0, len(dialogues),
        out["seq_rep4"], out["crep4"], out["loop_n"], out["loop_run"], out["opener"],
    )  # fmt: skip
    _textkernels.max_word_ratios(
        *args,
        corpus.first_scored,
        float(cfg.repeat_ratio) if prefilter else 0.0,
        0,
        len(dialogues),
        out["repeat"],
    )
    out["echo"] = _echo_scores(corpus, dialogues, cfg, prefilter)
    return out


def repetition_scores(
    dialogues: list[DialogueTurns], cfg: CheckConfig | None = None, prefilter: bool = True
) -> dict[str, np.ndarray]:
    """The echo (intro `partial_ratio` only), repeat, crep4, seq_rep4, loop (n, run)
    and opener scores of every character turn, as flat arrays in dialogue order: the
    array part of `check_dialogues`, without the regular-expression checks."""
    return _repetition(_Corpus(dialogues), dialogues, cfg or CheckConfig(), prefilter)


# Lowercase strings of which every match of a pattern contains one: plain substring
# tests (fast) pick the few texts that the regular expression (slow) then looks at.
_OOC_NEEDLES = (
    "an ai",
    "language model",
    "openai",
    "helpful assistant",
    "cannot fulfill",
    "t assist with",
    "sorry, but i can",
    "(ooc",
    "[ooc",
    "out of character",
)
# Joins texts that are searched as one string; no pattern here matches across it.
_SEPARATOR = "\x00\n"


def _search_each(
    pattern: re.Pattern, texts: list[str | None], needles: tuple[str, ...] | None = None
) -> np.ndarray:
    """Whether `pattern` occurs in each text. With `needles` (lowercase strings of which
    a match must contain one) the regular expression runs only on texts holding one."""
    hits = np.zeros(len(texts), dtype=bool)
    texts = [t or "" for t in texts]
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + len(_SEPARATOR)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if texts else lengths
    joined = _SEPARATOR.join(texts)
    if needles is None:
        ends = [m.end() - 1 for m in pattern.finditer(joined)]  # the match's last character
        hits[np.searchsorted(starts, ends, side="right") - 1] = True
        return hits
    low = joined.lower()
    if len(low) == len(joined):  # lower() kept every position
        candidates: set[int] = set()
        for needle in needles:
            i = low.find(needle)
            while i != -1:
                k = int(np.searchsorted(starts, i, side="right")) - 1
                candidates.add(k)
                i = low.find(needle, starts[k] + lengths[k]) if k + 1 < len(texts) else -1
    else:
        candidates = {k for k, t in enumerate(texts) if any(n in t.lower() for n in needles)}
    for k in candidates:
        hits[k] = pattern.search(texts[k]) is not None
    return hits


# Texts -> unit-length sentence embeddings, one row per text.
Encoder = Callable[[list[str]], np.ndarray]


def _paraphrase(corpus: _Corpus, encode: Encoder) -> np.ndarray:
    """Max cosine of each scored turn against the earlier character turns of its dialogue
    (the greeting included); 0 for a first turn."""
    vectors = np.asarray(encode(corpus.text), dtype=np.float32)
    out = np.zeros(len(corpus.targets))
    for k, f in enumerate(corpus.targets.tolist()):
        start = int(corpus.turn_starts[corpus.dialogue[f]])
        if f > start:
            out[k] = float((vectors[start:f] @ vectors[f]).max())
    return out


def _text_flags(
    corpus: _Corpus, dialogues: list[DialogueTurns], cfg: CheckConfig
) -> dict[str, np.ndarray]:
    """The regular-expression and per-text checks of the scored turns (`corpus.targets`)."""
    targets = corpus.targets.tolist()
    texts = [corpus.text[f] for f in targets]
    d_of = corpus.dialogue[corpus.targets]
    users = []
    for di, ti in zip(d_of.tolist(), corpus.index[corpus.targets].tolist()):
        u = dialogues[di].users
        users.append(u[ti] if ti < len(u) else None)
    flags = {
        "asked": _search_each(_ASKED_IDENTITY, users),
        "ooc": _search_each(_OOC, texts, _OOC_NEEDLES),
        "self_intro": np.zeros(len(targets), dtype=bool),
        "user": np.zeros(len(targets), dtype=bool),
        "cut_off": np.zeros(len(targets), dtype=bool),
        "language": np.zeros(len(targets), dtype=bool),
    }
    # Name patterns, once per (name, user name) in the batch.
    by_name: dict[tuple[str, str], int] = {}
    group = np.array(
        [by_name.setdefault((d.name, d.user_name), len(by_name)) for d in dialogues],
        dtype=np.int64,
    )
    of_target = group[d_of]
    for (name, user_name), g in by_name.items():
        ks = np.nonzero(of_target == g)[0]
        group_texts = [texts[k] for k in ks.tolist()]
        pattern = _self_intro(name)
        if pattern is not None and len(ks):
            parts = tuple(p.lower() for p in name.split() if len(p) > 2)
            heads = [t[: cfg.echo_head_chars] for t in group_texts]
            flags["self_intro"][ks] = _search_each(pattern, heads, parts)
        if user_name and len(ks):
            line = re.compile(rf"(?:^|\n)\s*{re.escape(user_name)}\s*:")
            flags["user"][ks] = _search_each(line, group_texts, (user_name.lower(),))
    # A dialogue's targets are contiguous; only some dialogues need a look at each text.
    bounds = np.searchsorted(corpus.targets, corpus.turn_starts).tolist()
    for di, d in enumerate(dialogues):
        if d.language == "en" and "length" not in d.finish_reasons:
            continue
        for k in range(bounds[di], bounds[di + 1]):
            ti = int(corpus.index[targets[k]])
            if ti < len(d.finish_reasons) and d.finish_reasons[ti] == "length":
                flags["cut_off"][k] = not texts[k].rstrip().endswith(_TERMINAL)
            if d.language != "en":
                lang = detect_language(corpus.words(targets[k]), texts[k])
                flags["language"][k] = lang is not None and lang != d.language
    flags["chars"] = np.fromiter((len(t.strip()) for t in texts), np.int64, len(texts))
    return flags


def check_dialogues(
    dialogues: list[DialogueTurns],
    cfg: CheckConfig | None = None,
    prefilter: bool = True,
    encode: Encoder | None = None,
) -> list[list[TurnCheck]]:
    """Score every turn from `score_from` on, in all dialogues at once.

    `prefilter=False` computes exact max ratios (for metrics); with it, pairs that
    cannot reach `repeat_ratio` are skipped and a max below it reads 0, and so does an
    intro `partial_ratio` below `echo_ratio`. `encode`: the sentence encoder of the
    paraphrase check, needed when `cfg.paraphrase` > 0.
    """
    cfg = cfg or CheckConfig()
    unknown = sorted(set(cfg.reject) - set(REASONS))
    if unknown:
        raise RolegenError(
            f"field 'reject': unknown reason '{unknown[0]}' (known: {', '.join(REASONS)})"
        )
    if cfg.paraphrase > 0 and encode is None:
        raise RolegenError("the paraphrase check (--paraphrase) needs a sentence encoder")
    corpus = _Corpus(dialogues)
    scores = {
        k: v[corpus.targets] for k, v in _repetition(corpus, dialogues, cfg, prefilter).items()
    }
    text = _text_flags(corpus, dialogues, cfg)

    has_greeting = np.fromiter((d.has_greeting for d in dialogues), bool, len(dialogues))
    turn = corpus.index[corpus.targets] + ~has_greeting[corpus.dialogue[corpus.targets]]
    echo = np.where(text["self_intro"], 100.0, scores["echo"])
    run_n, run_reps = scores["loop_n"], scores["loop_run"]
    empty = text["chars"] < cfg.min_chars
    flags = (
        (turn >= 2) & ~text["asked"] & (echo >= cfg.echo_ratio),
        scores["repeat"] >= cfg.repeat_ratio,
        scores["crep4"] >= cfg.crep4,
        (scores["seq_rep4"] >= cfg.seq_rep4)
        | ((run_n > 0) & (run_reps >= cfg.loop_repeats + (run_n == 1))),
        scores["opener"],
        text["user"],
        text["ooc"],
        empty,
        text["cut_off"] & ~empty,
        text["language"],
    )
    paraphrase = None
    if cfg.paraphrase > 0:
        paraphrase = _paraphrase(corpus, encode)
        flags += (paraphrase >= cfg.paraphrase,)
    mask = np.zeros(len(turn), dtype=np.int64)
    for bit, flag in enumerate(flags):
        mask |= flag.astype(np.int64) << bit
    names = {
        m: tuple(r for bit, r in enumerate(REASONS) if m >> bit & 1)
        for m in np.unique(mask).tolist()
    }
    columns = [echo, scores["repeat"], scores["crep4"], scores["seq_rep4"], run_reps]
    columns += [scores["opener"], text["chars"]]
    checks = [
        TurnCheck(
            index=ti,
            turn=t,
            scores={
                "echo": e,
                "repeat": r,
                "crep4": c,
                "seq_rep4": s,
                "loop_run": lr,
                "opener": o,
                "chars": ch,
            },  # fmt: skip
            reasons=list(names[m]),
        )
        for ti, t, m, (e, r, c, s, lr, o, ch) in zip(
            corpus.index[corpus.targets].tolist(),
            turn.tolist(),
            mask.tolist(),
            np.column_stack(columns).astype(float).tolist(),
        )
    ]
    if paraphrase is not None:
        for check, score in zip(checks, paraphrase.tolist()):
            check.scores["paraphrase"] = score
    bounds = np.searchsorted(corpus.targets, corpus.turn_starts).tolist()
    return [checks[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


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
