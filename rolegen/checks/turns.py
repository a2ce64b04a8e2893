"""Repetition checks on character turns: written once, used by generate, filter and eval.

All checks are word- or character-level and model-independent (definitions in
docs/design.md and docs/checks.md). For character turn r_t of a dialogue (t = 1 is the
first reply; the card's greeting, if any, is turn 0 and counts as an earlier turn):

- echo: t >= 2, the user did not just ask who the character is, and the persona's
  intro line matches the head of r_t (`fuzz.partial_ratio`) or r_t introduces itself
  under any name ("I am <name>", "my name is", "我叫", ...);
- repeat: max over s < t of `fuzz.ratio` over the word sequences of r_t and r_s
  (after `utils.default_process`): 100 * 2 * LCS / (len_t + len_s), in words;
- crep4: share of r_t's word 4-grams already used in earlier character turns;
- loop: seq-rep-4 = 1 - unique/all word 4-grams of r_t, or a word n-gram repeated
  back to back ("noir noir noir noir", "I will go. I will go. I will go.");
- opener: r_t starts with the same words as an earlier character turn;
- user: r_t writes the user's lines, or its narration acts for the user ("*You look
  around.*", "*Alex nods.*", `user_actions` sentences or more); ooc: assistant
  boilerplate; empty / cut_off;
- language: a non-English persona's reply drifts into another language;
- wrong_identity: r_t introduces itself under a name that is not the character's
  ("I am Akua" from Bram), labels its lines with one ("Mala: (smiles)") or opens its
  narration on one ("*Ava's eyes sparkle*" from Kašpar), or it claims what the card
  contradicts (`self_claims`);
- identity_confusion: not asked directly ("Who are you?"), the character's own name in
  what it says aloud (outside *narration*, self-introductions, its own speaker label, a
  place named after it and its self-naming: `names_not_aloud`): the user addressed by
  it ("Mara, I'm not sure"), or the character talking of itself in the third person;
- identity_miss: the user asked who the character is and r_t does not name it;
- assistant_drift: generic helpful-assistant voice ("How can I assist you",
  "feel free to ask").

Each turn gets every score and the list of reasons it fails. A batch is scored at
once: its texts become flat arrays of word hashes, and compiled kernels
(`_textkernels`, driven by `repetition.py`) compute per dialogue the cross-turn ratios (bit-parallel LCS over
word ids), the n-gram statistics and the back-to-back runs. Pre-filters skip what
cannot reach a threshold: pairs by the length bound `fuzz.ratio` <= 200 * min(l1, l2)
/ (l1 + l2), and reply heads by an LCS bound on the echo's `partial_ratio` (rapidfuzz
scores the heads that pass, one `cdist` per intro).

Dataset level (dataset_checks.py): distinct-1/2, shared openings and near-duplicate
dialogues. The phrase patterns (identity questions, self-introductions, boilerplate,
language) are in phrases.py.
Paraphrase (optional, `paraphrase` > 0): the max cosine of a reply's sentence embedding
against the dialogue's earlier character turns. This module stays model-free: the caller
passes the encoder (`embedder.paraphrase_encoder`).
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from rolegen.checks.batch_search import holding, search_distinct, search_each
from rolegen.checks.contradictions import contradictions
from rolegen.checks.persona_facts import CardFacts
from rolegen.checks.phrases import (
    ASKED_DIRECTLY,
    ASKED_IDENTITY,
    SELF_INTRO_NEEDLES,
    TERMINAL,
    detect_language,
    identity,
    name_parts,
    names_another_speaker,
    names_character,
)
from rolegen.checks.repetition import Corpus, corpus_scores
from rolegen.checks.self_claims import ASKED_ABOUT_SELF, CLAIM_NEEDLES, claims
from rolegen.checks.speech import speech_and_narration
from rolegen.checks.user_acts import role_swap, user_actions
from rolegen.checks.voice import ASSISTANT, ASSISTANT_NEEDLES, OOC, OOC_NEEDLES
from rolegen.config.checks import REASONS, CheckConfig
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
    facts: CardFacts | None = None  # the card's facts (sex, age, kind, trade, aliases)


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
    facts: CardFacts | None = None,
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
        facts=facts,
    )


# ------------------------------------------------------------------ the checks


# Texts -> unit-length sentence embeddings, one row per text.
Encoder = Callable[[list[str]], np.ndarray]


def _paraphrase(corpus: Corpus, encode: Encoder) -> np.ndarray:
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
    corpus: Corpus, dialogues: list[DialogueTurns], cfg: CheckConfig
) -> dict[str, np.ndarray]:
    """The regular-expression and per-text checks of the scored turns (`corpus.targets`)."""
    targets = corpus.targets.tolist()
    texts = [corpus.text[f] for f in targets]
    lows = [t.lower() for t in texts]
    d_of = corpus.dialogue[corpus.targets]
    users = []
    for di, ti in zip(d_of.tolist(), corpus.index[corpus.targets].tolist()):
        u = dialogues[di].users
        users.append(u[ti] if ti < len(u) else None)
    flags = {
        "asked": search_distinct(ASKED_IDENTITY, users),
        "asked_directly": search_distinct(ASKED_DIRECTLY, users),
        "ooc": search_each(OOC, texts, OOC_NEEDLES, lows),
        "user": np.zeros(len(targets), dtype=bool),
        "cut_off": np.zeros(len(targets), dtype=bool),
        "language": np.zeros(len(targets), dtype=bool),
    }
    flags["drift"] = search_each(ASSISTANT, texts, ASSISTANT_NEEDLES, lows)
    asked_about_self = search_distinct(ASKED_ABOUT_SELF, users)
    flags["user_actions"] = np.zeros(len(targets), dtype=np.int64)
    for key in ("own_intro", "other_intro", "named", "miss", "contradicts", "role_swap"):
        flags[key] = np.zeros(len(targets), dtype=bool)
    # Name and fact checks, once per (name, user name, card facts) in the batch.
    by_card: dict[tuple, int] = {}
    group = np.array(
        [by_card.setdefault((d.name, d.user_name, d.facts), len(by_card)) for d in dialogues],
        dtype=np.int64,
    )
    of_target = group[d_of]
    for (name, user_name, facts), g in by_card.items():
        ks = np.nonzero(of_target == g)[0]
        if not len(ks):
            continue
        group_texts = [texts[k] for k in ks.tolist()]
        group_lows = [lows[k] for k in ks.tolist()]
        aliases = facts.aliases if facts else ()
        parts = name_parts(name, aliases)
        if name_parts(name):
            # only texts holding a name part or an introduction can say who speaks
            needles = SELF_INTRO_NEEDLES + tuple(p.lower() for p in parts)
            parts_low = {p.lower() for p in parts}
            held = holding(group_lows, needles)
            for k, text, hold in zip(ks.tolist(), group_texts, held.tolist()):
                if not hold:
                    if "*" in text or ":" in text:  # "Mala: …", "*Ava's eyes sparkle*"
                        flags["other_intro"][k] = names_another_speaker(text, parts_low, user_name)
                    continue
                who = identity(text, name, aliases, user_name)
                flags["own_intro"][k], flags["other_intro"][k] = who.own_intro, who.other_intro
                flags["named"][k] = who.named_in_speech
            for k in ks[flags["asked"][ks]].tolist():
                flags["miss"][k] = not names_character(texts[k], name, aliases)
        if facts is not None:
            held = holding(group_lows, CLAIM_NEEDLES)
            for k, text, hold in zip(ks.tolist(), group_texts, held.tolist()):
                # a claim needs a first-person phrase, or a question about the character
                # before it; a narrated sex, a star or a quotation
                asked = bool(asked_about_self[k])
                if (
                    asked
                    or hold
                    or (facts.sex in ("female", "male") and any(c in text for c in '*"“'))
                ):
                    flags["contradicts"][k] = bool(
                        contradictions(facts, claims(*speech_and_narration(text), asked=asked))
                    )
        if user_name:
            line = re.compile(rf"(?:^|\n)\s*{re.escape(user_name)}\s*:")
            flags["user"][ks] = search_each(line, group_texts, (user_name.lower(),))
        flags["user_actions"][ks] = [user_actions(t, user_name) for t in group_texts]
        flags["role_swap"][ks] = [role_swap(texts[k], users[k]) for k in ks.tolist()]
    # A dialogue's targets are contiguous; only some dialogues need a look at each text.
    bounds = np.searchsorted(corpus.targets, corpus.turn_starts).tolist()
    for di, d in enumerate(dialogues):
        if d.language == "en" and "length" not in d.finish_reasons:
            continue
        for k in range(bounds[di], bounds[di + 1]):
            ti = int(corpus.index[targets[k]])
            if ti < len(d.finish_reasons) and d.finish_reasons[ti] == "length":
                flags["cut_off"][k] = not texts[k].rstrip().endswith(TERMINAL)
            if d.language != "en":
                lang = detect_language(corpus.words(targets[k]), texts[k])
                flags["language"][k] = lang is not None and lang != d.language
    flags["chars"] = np.fromiter((len(t.strip()) for t in texts), np.int64, len(texts))
    return flags


@contextmanager
def _collector_paused():
    """The cyclic garbage collector off while a batch's per-turn objects are made: they
    hold no cycles, and its passes over them cost a tenth of the checks' time."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


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
    cfg.validate()
    if cfg.paraphrase > 0 and encode is None:
        raise RolegenError("the paraphrase check (--paraphrase) needs a sentence encoder")
    with _collector_paused():
        return _check(dialogues, cfg, prefilter, encode)


def _check(
    dialogues: list[DialogueTurns], cfg: CheckConfig, prefilter: bool, encode: Encoder | None
) -> list[list[TurnCheck]]:
    corpus = Corpus(dialogues)
    scores = {
        k: v[corpus.targets] for k, v in corpus_scores(corpus, dialogues, cfg, prefilter).items()
    }
    text = _text_flags(corpus, dialogues, cfg)

    has_greeting = np.fromiter((d.has_greeting for d in dialogues), bool, len(dialogues))
    turn = corpus.index[corpus.targets] + ~has_greeting[corpus.dialogue[corpus.targets]]
    intro = text["own_intro"] | text["other_intro"]
    echo = np.where(intro, 100.0, scores["echo"])
    unasked = (turn >= 2) & ~text["asked"]
    run_n, run_reps = scores["loop_n"], scores["loop_run"]
    empty = text["chars"] < cfg.min_chars
    flags = {
        "echo": unasked & (echo >= cfg.echo_ratio),
        "repeat": scores["repeat"] >= cfg.repeat_ratio,
        "crep4": scores["crep4"] >= cfg.crep4,
        "loop": (scores["seq_rep4"] >= cfg.seq_rep4)
        | ((run_n > 0) & (run_reps >= cfg.loop_repeats + (run_n == 1))),
        "opener": scores["opener"],
        "user": text["user"]
        | text["role_swap"]
        | ((cfg.user_actions > 0) & (text["user_actions"] >= max(cfg.user_actions, 1))),
        "ooc": text["ooc"],
        "empty": empty,
        "cut_off": text["cut_off"] & ~empty,
        "language": text["language"],
        "wrong_identity": text["other_intro"] | text["contradicts"],
        "identity_confusion": (turn >= 1) & ~text["asked_directly"] & text["named"],
        "identity_miss": text["miss"],
        "assistant_drift": text["drift"],
    }
    paraphrase = None
    if cfg.paraphrase > 0:
        paraphrase = _paraphrase(corpus, encode)
        flags["paraphrase"] = paraphrase >= cfg.paraphrase
    # one bit per reason, in REASONS order, so a turn's reasons list in that order
    mask = np.zeros(len(turn), dtype=np.int64)
    for bit, reason in enumerate(REASONS):
        if reason in flags:
            mask |= flags[reason].astype(np.int64) << bit
    names = {
        m: tuple(r for bit, r in enumerate(REASONS) if m >> bit & 1)
        for m in np.unique(mask).tolist()
    }
    columns = [echo, scores["repeat"], scores["crep4"], scores["seq_rep4"], run_reps]
    columns += [scores["opener"], text["chars"], text["user_actions"]]
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
                "user_actions": ua,
            },  # fmt: skip
            reasons=list(names[m]),
        )
        for ti, t, m, (e, r, c, s, lr, o, ch, ua) in zip(
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
