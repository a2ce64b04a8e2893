"""The parts the compiled text kernels (`_textkernels.py`) are built from: compiling a
kernel (`compile_kernel`: numba `njit` with an on-disk cache where one can be kept),
the open-addressing table of word hashes that maps a dialogue's words to slots
(`table_bits`, `slot`), and Hyyro's bit-parallel LCS over small integer symbols
(`lcs_length`, one 64-bit block per 64 pattern symbols).

Non-goals: anything that reads a text or a batch's layout (that is `_textkernels.py`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)


def compile_kernel(fn):
    """`njit` with an on-disk cache; without one where no cache folder is writable (an
    installed package with a read-only __pycache__ and no user cache dir)."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return njit(nogil=True)(fn)


@compile_kernel
def table_bits(word_starts, turn_starts, d_lo, d_hi):
    """log2 of a hash table size that holds any one dialogue's words at load <= 1/2."""
    most = 1
    for d in range(d_lo, d_hi):
        most = max(most, word_starts[turn_starts[d + 1]] - word_starts[turn_starts[d]])
    bits = 4
    while (1 << bits) < 2 * most:
        bits += 1
    return bits


@compile_kernel
def slot(keys, stamp, key, owner, bits):
    """Slot of `key` in an open-addressing table whose live entries carry `stamp ==
    owner` (so the table is never cleared between dialogues); a free slot if absent."""
    mask = (1 << bits) - 1
    i = np.int64((key * _GOLDEN) >> _U64(64 - bits))
    while stamp[i] == owner and keys[i] != key:
        i = (i + 1) & mask
    return i


@compile_kernel
def _popcount(x):
    x = x - ((x >> _U64(1)) & _U64(0x5555555555555555))
    x = (x & _U64(0x3333333333333333)) + ((x >> _U64(2)) & _U64(0x3333333333333333))
    x = (x + (x >> _U64(4))) & _U64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * _U64(0x0101010101010101)) >> _U64(56))


@compile_kernel
def _low_bits(n):
    return ~_U64(0) if n >= 64 else (_U64(1) << _U64(n)) - _U64(1)


@compile_kernel
def lcs_length(pm, stride, blocks, len_a, syms, lo, hi, s):
    """LCS length of a pattern of `len_a` symbols and `syms[lo:hi]`. Bit i of
    `pm[w * stride + c]` is set where position 64 * w + i of the pattern holds symbol c
    (Hyyro's bit-parallel LCS; one and two blocks in registers, more in `s`)."""
    ones = ~_U64(0)
    if blocks == 1:
        v = ones
        for j in range(lo, hi):
            u = v & pm[syms[j]]
            v = (v + u) | (v - u)
        return _popcount(~v & _low_bits(len_a))
    if blocks == 2:
        v0, v1 = ones, ones
        for j in range(lo, hi):
            c = syms[j]
            u0 = v0 & pm[c]
            x0 = v0 + u0
            carry = _U64(1) if x0 < v0 else _U64(0)
            v0 = x0 | (v0 - u0)
            u1 = v1 & pm[stride + c]
            v1 = (v1 + u1 + carry) | (v1 - u1)
        return _popcount(~v0) + _popcount(~v1 & _low_bits(len_a - 64))
    for w in range(blocks):
        s[w] = ones
    for j in range(lo, hi):
        c = syms[j]
        carry = _U64(0)
        for w in range(blocks):
            v = s[w]
            u = v & pm[w * stride + c]
            x = v + u
            c1 = _U64(1) if x < v else _U64(0)
            x2 = x + carry
            c2 = _U64(1) if x2 < x else _U64(0)
            s[w] = x2 | (v - u)
            carry = c1 | c2
    lcs = 0
    for w in range(blocks):
        lcs += _popcount(~s[w] & _low_bits(len_a - 64 * w))
    return lcs
