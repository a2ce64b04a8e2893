"""The array part of the checks: every character turn of a batch as flat arrays of word
hashes (`Corpus`), and the lexical scores computed on them by the compiled kernels of
`_textkernels.py`: echo (the intro's `partial_ratio`), repeat, crep-4, seq-rep-4, the
back-to-back loops and the openers. `turns.check_dialogues` adds the pattern checks on
top; `repetition_scores` is this part alone (the eval's matched-length figures).
"""

from __future__ import annotations

import numpy as np
from rapidfuzz import fuzz, process, utils

from rolegen.checks import _textkernels
from rolegen.config.checks import CheckConfig


class Corpus:
    """Every character turn of a batch as flat arrays: turn k of dialogue d is
    `turn_starts[d] + k`; its words' hashes are `hashes[word_starts[k]:word_starts[k + 1]]`.
    The scored turns (`targets`) are those from `score_from` on, the greeting excepted."""

    def __init__(self, dialogues: list):
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
        self.hashes, self.word_starts = _textkernels.hash_texts(self.processed)

    def words(self, k: int) -> list[str]:
        return self.processed[k].split()


def _echo_scores(corpus: Corpus, dialogues: list, cfg: CheckConfig, prefilter: bool) -> np.ndarray:
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
            _textkernels.partial_ratio_bounds(
                _textkernels.codes("".join(heads)), lengths, pattern, bound
            )
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


def corpus_scores(
    corpus: Corpus, dialogues: list, cfg: CheckConfig, prefilter: bool
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
    dialogues: list, cfg: CheckConfig | None = None, prefilter: bool = True
) -> dict[str, np.ndarray]:
    """The echo (intro `partial_ratio` only), repeat, crep4, seq_rep4, loop (n, run)
    and opener scores of every character turn, as flat arrays in dialogue order: the
    array part of `check_dialogues`, without the regular-expression checks."""
    return corpus_scores(Corpus(dialogues), dialogues, cfg or CheckConfig(), prefilter)
