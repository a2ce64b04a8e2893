"""Compiled kernels behind the per-turn checks in `turns.py` (numba, no Python objects).

The batch is flat arrays: a text's code points, then one 64-bit hash per word and
`word_starts` (turn k's words are `[word_starts[k], word_starts[k + 1])`), with
dialogue d's turns `[turn_starts[d], turn_starts[d + 1])`. Each kernel walks a range
of dialogues, so callers can split a batch.

- `hash_texts` (Python: chunks of texts into `word_hashes`), `word_hashes`: split `utils.default_process`ed text on spaces and hash each word;
- `ngram_stats`: seq-rep-4, crep-4, the longest back-to-back n-gram run and repeated
  openers, in one pass per dialogue with an open-addressing table of 4-gram hashes;
- `max_word_ratios`: per turn, the max over earlier turns of `fuzz.ratio` over the two
  word sequences (Indel similarity, 100 * 2 * LCS / (len_a + len_b) in words), with a
  bit-parallel LCS (Hyyro 2004; the algorithm rapidfuzz uses) over word ids that are
  remapped per dialogue to small integers so match vectors sit in a dense table.

The compiling, the hash table and the LCS they share are `_kernelparts.py`'s.

Non-goals: parallel threads inside the kernels (numba's OpenMP layer is not fork-safe,
and the engine forks workers); hashing is not cryptographic (equal words are equal
hashes; a 64-bit clash between two different words is the accepted risk).
"""

from __future__ import annotations

import numpy as np

from rolegen.checks._kernelparts import compile_kernel, lcs_length, slot, table_bits

_U64 = np.uint64
_FNV_OFFSET = _U64(0xCBF29CE484222325)
_FNV_PRIME = _U64(0x100000001B3)
# multipliers of the n-gram and opener hashes (word k of the gram uses _MIX[k % 4])
_MIX = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5],
    dtype=np.uint64,
)
MAX_LOOP_N = 8  # longest phrase, in words, that the back-to-back run check looks for


@compile_kernel
def _is_space(c):
    # str.split()'s whitespace; default_process leaves only " ", the rest is cheap insurance
    if c == 32:
        return True
    if c < 32:
        return 9 <= c <= 13 or 28 <= c <= 31
    if c < 0x85:
        return False
    return (
        c == 0x85
        or c == 0xA0
        or c == 0x1680
        or 0x2000 <= c <= 0x200A
        or c == 0x2028
        or c == 0x2029
        or c == 0x202F
        or c == 0x205F
        or c == 0x3000
    )


@compile_kernel
def _finish(h):
    # splitmix64's finalizer over FNV-1a, so that low and high bits both mix well
    h ^= h >> _U64(30)
    h *= _U64(0xBF58476D1CE4E5B9)
    h ^= h >> _U64(27)
    h *= _U64(0x94D049BB133111EB)
    return h ^ (h >> _U64(31))


@compile_kernel
def word_hashes(codes, char_lengths):
    """(hashes, words per text) of texts concatenated in `codes` (code points, any
    unsigned dtype) with the given lengths. A word's hash depends only on its code
    points, so texts encoded with different dtypes hash alike."""
    hashes = np.empty(len(codes) // 2 + len(char_lengths) + 1, dtype=np.uint64)
    counts = np.zeros(len(char_lengths), dtype=np.int64)
    n = 0
    pos = 0
    for k in range(len(char_lengths)):
        end = pos + char_lengths[k]
        inside = False
        h = _FNV_OFFSET
        for i in range(pos, end):
            c = np.int64(codes[i])
            if _is_space(c):
                if inside:
                    hashes[n] = _finish(h)
                    n += 1
                    counts[k] += 1
                    inside = False
                    h = _FNV_OFFSET
            else:
                inside = True
                h = (h ^ np.uint64(c)) * _FNV_PRIME
        if inside:
            hashes[n] = _finish(h)
            n += 1
            counts[k] += 1
        pos = end
    return hashes[:n].copy(), counts


@compile_kernel
def ngram_stats(
    hashes,
    word_starts,
    turn_starts,
    opener_words,
    d_lo,
    d_hi,
    seq_rep,
    crep,
    run_n,
    run_reps,
    opener,
):
    """Per turn of dialogues [d_lo, d_hi), written into the output arrays:

    - seq_rep: 1 - unique / all word 4-grams of the turn (0 without 4-grams);
    - crep: share of the turn's 4-grams that occur in an earlier turn of the dialogue;
    - run_n, run_reps: the n (1..MAX_LOOP_N) whose back-to-back repetition is longest
      and its repeat count (0 and 1 when nothing repeats; the smallest n wins ties);
    - opener: the turn starts with the same `opener_words` words as an earlier turn.
    """
    bits = table_bits(word_starts, turn_starts, d_lo, d_hi)
    keys = np.zeros(1 << bits, dtype=np.uint64)
    stamp = np.full(1 << bits, -1, dtype=np.int64)
    first_turn = np.zeros(1 << bits, dtype=np.int64)
    last_turn = np.zeros(1 << bits, dtype=np.int64)
    for d in range(d_lo, d_hi):
        for t in range(turn_starts[d], turn_starts[d + 1]):
            ws, we = word_starts[t], word_starts[t + 1]
            grams = max(we - ws - 3, 0)
            unique = 0
            earlier = 0
            for i in range(ws, ws + grams):
                g = _U64(0)
                for k in range(4):
                    g = g * _MIX[k] + hashes[i + k]
                j = slot(keys, stamp, g, d, bits)
                if stamp[j] != d:
                    stamp[j] = d
                    keys[j] = g
                    first_turn[j] = t
                    last_turn[j] = -1
                if first_turn[j] < t:
                    earlier += 1
                if last_turn[j] != t:
                    unique += 1
                    last_turn[j] = t
            seq_rep[t] = 1.0 - unique / grams if grams else 0.0
            crep[t] = earlier / grams if grams else 0.0

            best_n, best_reps = 0, 1
            for n in range(1, MAX_LOOP_N + 1):
                run = 0
                most = 1
                for i in range(ws, we - n):
                    if hashes[i] == hashes[i + n]:
                        run += 1
                        most = max(most, run // n + 1)
                    else:
                        run = 0
                if most > best_reps:
                    best_n, best_reps = n, most
            run_n[t] = best_n
            run_reps[t] = best_reps

            opener[t] = False
            if we - ws >= opener_words:
                for s in range(turn_starts[d], t):
                    ss = word_starts[s]
                    if word_starts[s + 1] - ss < opener_words:
                        continue
                    same = True
                    for k in range(opener_words):
                        if hashes[ss + k] != hashes[ws + k]:
                            same = False
                            break
                    if same:
                        opener[t] = True
                        break


@compile_kernel
def max_word_ratios(hashes, word_starts, turn_starts, first_scored, cutoff, d_lo, d_hi, out):
    """out[t] = max over earlier turns s of dialogue d of fuzz.ratio(words_t, words_s),
    for turns t >= first_scored[d] of dialogues [d_lo, d_hi) (0 with no earlier turn).

    With `cutoff` > 0 a pair whose length bound 200 * min / (l_t + l_s) is below it is
    skipped and a max below it reads 0. Either way a pair that cannot beat the max so
    far is skipped, so the max is exact."""
    bits = table_bits(word_starts, turn_starts, d_lo, d_hi)
    keys = np.zeros(1 << bits, dtype=np.uint64)
    stamp = np.full(1 << bits, -1, dtype=np.int64)
    code = np.zeros(1 << bits, dtype=np.int64)
    most_words, most_turn = 1, 1
    for d in range(d_lo, d_hi):
        most_words = max(most_words, word_starts[turn_starts[d + 1]] - word_starts[turn_starts[d]])
        for t in range(turn_starts[d], turn_starts[d + 1]):
            most_turn = max(most_turn, word_starts[t + 1] - word_starts[t])
    ids = np.zeros(most_words, dtype=np.int64)
    pm = np.zeros(most_words * ((most_turn + 63) // 64), dtype=np.uint64)
    s = np.zeros((most_turn + 63) // 64, dtype=np.uint64)
    for d in range(d_lo, d_hi):
        t_lo, t_hi = turn_starts[d], turn_starts[d + 1]
        base = word_starts[t_lo]
        n_ids = 0
        for i in range(base, word_starts[t_hi]):
            j = slot(keys, stamp, hashes[i], d, bits)
            if stamp[j] != d:
                stamp[j] = d
                keys[j] = hashes[i]
                code[j] = n_ids
                n_ids += 1
            ids[i - base] = code[j]
        for t in range(max(first_scored[d], t_lo), t_hi):
            a_lo, a_hi = word_starts[t] - base, word_starts[t + 1] - base
            len_a = a_hi - a_lo
            blocks = (len_a + 63) // 64
            for i in range(a_lo, a_hi):
                p = i - a_lo
                pm[(p // 64) * n_ids + ids[i]] |= _U64(1) << _U64(p % 64)
            best = 0.0
            for u in range(t_lo, t):
                b_lo, b_hi = word_starts[u] - base, word_starts[u + 1] - base
                len_b = b_hi - b_lo
                total = len_a + len_b
                bound = 200.0 * min(len_a, len_b) / total if total else 0.0
                # margin: the bound and the ratio are rounded differently
                if bound < cutoff or bound < best - 1e-9:
                    continue
                if total == 0:
                    ratio = 100.0
                elif len_a == 0 or len_b == 0:
                    ratio = 0.0
                else:
                    lcs = lcs_length(pm, n_ids, blocks, len_a, ids, b_lo, b_hi, s)
                    # rapidfuzz's arithmetic: 1 - normalized Indel distance, times 100
                    ratio = (1.0 - (total - 2 * lcs) / total) * 100.0
                best = max(best, ratio)
            out[t] = best if best >= cutoff else 0.0
            for i in range(a_lo, a_hi):
                pm[((i - a_lo) // 64) * n_ids + ids[i]] = _U64(0)


@compile_kernel
def partial_ratio_bounds(codes, lengths, pattern, out):
    """out[k] >= fuzz.partial_ratio(pattern, text k) for texts concatenated in `codes`
    with `lengths` (code points, as `pattern`).

    partial_ratio is the best `ratio` of the shorter string (length a) against a
    substring w of the longer with |w| <= a, so with L = LCS(pattern, text) it is at
    most 100 * 2 * min(L, |w|) / (a + |w|) <= 200 * L / (a + L)."""
    m = len(pattern)
    blocks = max((m + 63) // 64, 1)
    # symbol 0: not in the pattern; dense symbols for code points < 256, a sorted
    # table for the rest
    wide = np.unique(pattern[pattern >= 256])
    low = np.zeros(256, dtype=np.int64)
    n_syms = 1
    for c in pattern:
        if c < 256 and low[c] == 0:
            low[c] = n_syms
            n_syms += 1
    pm = np.zeros(blocks * (n_syms + len(wide)), dtype=np.uint64)
    stride = n_syms + len(wide)
    for p in range(m):
        c = pattern[p]
        sym = low[c] if c < 256 else n_syms + np.searchsorted(wide, c)
        pm[(p // 64) * stride + sym] |= _U64(1) << _U64(p % 64)
    syms = np.zeros(max(lengths.max(), 1) if len(lengths) else 1, dtype=np.int64)
    s = np.zeros(blocks, dtype=np.uint64)
    pos = 0
    for k in range(len(lengths)):
        n = lengths[k]
        for i in range(n):
            c = codes[pos + i]
            if c < 256:
                syms[i] = low[c]
            else:
                j = np.searchsorted(wide, c)
                syms[i] = n_syms + j if j < len(wide) and wide[j] == c else 0
        pos += n
        a = min(m, n)
        if a == 0:
            out[k] = 100.0 if m == n else 0.0
            continue
        lcs = lcs_length(pm, stride, blocks, m, syms, 0, n, s)
        out[k] = 200.0 * lcs / (a + lcs)


# ------------------------------------------------------------------ from Python


def codes(text: str) -> np.ndarray:
    """The code points of `text`: 1 byte each where it fits Latin-1, else 4."""
    try:
        return np.frombuffer(text.encode("latin-1"), dtype=np.uint8)
    except UnicodeEncodeError:
        return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


CHUNK_CHARS = 1 << 24  # texts are hashed in chunks of about this many characters


def hash_texts(processed: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(word hashes, word_starts) of `utils.default_process`ed texts, without a Python
    object per word: each chunk of texts goes to the kernel as one code-point array
    (1 byte per character when it fits Latin-1, else 4)."""
    lengths = np.fromiter(map(len, processed), dtype=np.int64, count=len(processed))
    bounds = np.searchsorted(np.cumsum(lengths), np.arange(CHUNK_CHARS, lengths.sum(), CHUNK_CHARS))
    hashes, counts = [], []
    for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), len(processed)]):
        h, c = word_hashes(codes("".join(processed[lo:hi])), lengths[lo:hi])
        hashes.append(h)
        counts.append(c)
    starts = np.zeros(len(processed) + 1, dtype=np.int64)
    if processed:
        np.cumsum(np.concatenate(counts), out=starts[1:])
    return (np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)), starts
