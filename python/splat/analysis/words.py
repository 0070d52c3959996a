"""Bit-packed mask rows: a row of ``C`` columns is ``W = ceil(C / 64)`` uint64 words, bit ``j`` of
word ``w`` being column ``64 w + j`` (``np.packbits(..., bitorder="little")`` viewed as ``<u8``).

The word operations the scans are made of.  Those that write into caller-given buffers take
contiguous ``[R, W]`` arrays and work on them as one flat array: contiguous passes are several
times faster than row slices, and only the first words of each row, which took bits of the row
above, are redone.
"""

from __future__ import annotations

import numpy as np

I64 = np.int64
_ONE = np.uint64(1)
_TOP = np.uint64(63)


def word_count(C: int) -> int:
    """Words per packed row of ``C`` columns."""
    return -(-C // 64)


def pack_rows(mask: np.ndarray, pad: np.ndarray | None = None) -> np.ndarray:
    """The packed words [R, W] of bool rows ``mask`` [R, C].  Where ``C`` is not a multiple of 64
    the bytes are packed into a zeroed [R, 8W] uint8 array, ``pad`` when given (reused from chunk
    to chunk; its bytes past column ``C`` must be zero and stay so)."""
    R, C = mask.shape
    W = word_count(C)
    nbytes = -(-C // 8)
    if C % 8 == 0 and mask.flags.c_contiguous:
        # Rows end on a byte: packing the flat array gives the same bytes, and numpy's flat
        # loop is about twice as fast as its per-row (axis=1) one on a chunk in cache (0.9 vs
        # 1.9 ms per 16M cells); from memory both run at the speed of reading the mask.
        flat = np.packbits(mask.reshape(-1), bitorder="little").reshape(R, nbytes)
    else:
        flat = np.packbits(mask, axis=1, bitorder="little")
    if nbytes == 8 * W:  # no padding: the packed bytes are the words (saves a copy)
        by = flat
    else:
        by = np.zeros((R, 8 * W), dtype=np.uint8) if pad is None else pad[:R]
        by[:, :nbytes] = flat
    return by.view("<u8")


def bit_positions(word_idx: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Global bit positions (64 * word index + bit) of the set bits of the given nonzero words,
    ascending.  Peels the lowest set bit of every word per round: its index is
    ``popcount(x ^ (x - 1)) - 1`` (exact, no float conversion).  Round k writes each word's k-th
    bit to its slot, so the output comes out sorted.  The first round runs on all words without
    gathering; later rounds only on the words with bits left.  Cost O(set bits + rounds * words
    left)."""
    x = np.array(words, dtype=np.uint64)  # a copy: peeled in place
    if x.size == 0:
        return np.zeros(0, dtype=I64)
    base = word_idx.astype(I64) << 6
    xm1 = x - _ONE
    first = base + np.bitwise_count(x ^ xm1)  # + (index + 1)
    first -= 1
    np.bitwise_and(x, xm1, out=x)
    more = np.flatnonzero(x != 0)
    if more.size == 0:  # one set bit per word (the common case): already sorted
        return first
    cnt = np.bitwise_count(words).astype(I64)
    slot = np.cumsum(cnt)
    out = np.empty(int(slot[-1]), dtype=I64)
    slot -= cnt
    out[slot] = first
    x, slot, base = x[more], slot[more] + 1, base[more]
    while x.size:
        np.subtract(x, _ONE, out=xm1[:x.size])
        xm = xm1[:x.size]
        out[slot] = base + np.bitwise_count(x ^ xm) - 1
        np.bitwise_and(x, xm, out=x)
        keep = x != 0
        if not keep.all():
            x, slot, base = x[keep], slot[keep], base[keep]
        slot += 1
    return out


def flips_into(x: np.ndarray, f: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Bit c of the result is set where column c differs from column c - 1 (column -1 unset);
    written into ``f`` (``g`` is scratch), all [R, W] uint64."""
    np.left_shift(x, _ONE, out=f)
    ff, gg = f.reshape(-1), g.reshape(-1)
    np.right_shift(x.reshape(-1)[:-1], _TOP, out=gg[:-1])
    np.bitwise_or(ff[1:], gg[:-1], out=ff[1:])  # carry from the word on the left ...
    f[:, 0] &= ~_ONE                              # ... but not from the row above
    np.bitwise_xor(f, x, out=f)
    return f


def intervals_of(x: np.ndarray, f: np.ndarray, C: int, row0: int):
    """(row, start, stop) of the maximal intervals of packed rows ``x`` with flips ``f``
    (:func:`flips_into`), rows numbered from ``row0``, sorted by (row, start)."""
    W = x.shape[1]
    fw = np.flatnonzero(f.reshape(-1) != 0)  # 4x faster than on uint64
    pos = bit_positions(fw, f.reshape(-1)[fw])
    # A run reaching the last column has its closing flip in the padding, unless the row
    # width is a multiple of 64: add those closing flips at column C.
    if C == 64 * W:
        full_end = np.flatnonzero(x[:, -1] >> _TOP)
        if full_end.size:
            pos = np.sort(np.concatenate([pos, full_end * (64 * W) + C]))
    # Every row starts unset and ends unset, so flips alternate start, stop, start, stop, ...
    row, start = np.divmod(pos[0::2], 64 * W)
    stop = pos[1::2] - row * (64 * W)
    return row + row0, start, stop


def high_bit(w: np.ndarray) -> np.ndarray:
    """Index of the highest set bit of nonzero uint64 words."""
    hb = np.log2(w.astype(np.float64)).astype(I64)  # may round up near powers of two
    hb -= (w >> np.minimum(hb, 63).astype(np.uint64)) == 0
    return np.minimum(hb, 63)


def low_bit(w: np.ndarray) -> np.ndarray:
    """Index of the lowest set bit of nonzero uint64 words (a power of two converts exactly)."""
    return np.log2((w & (~w + _ONE)).astype(np.float64)).astype(I64)


def shift_left_into(S: np.ndarray, sv: int, y: np.ndarray, h: np.ndarray) -> None:
    """``y = S << sv`` per row (bits carried across the words of a row, not across rows); all
    contiguous [n, W], ``h`` scratch."""
    W = S.shape[1]
    q, b = divmod(sv, 64)
    if q >= W:
        y[:] = 0
        return
    Sf, yf, hf = S.reshape(-1), y.reshape(-1), h.reshape(-1)
    if b == 0:
        np.copyto(yf[q:], Sf[:Sf.size - q])
    else:
        np.left_shift(Sf[:Sf.size - q], np.uint64(b), out=yf[q:])
        if q + 1 < W:
            np.right_shift(Sf[:Sf.size - q - 1], np.uint64(64 - b), out=hf[q + 1:])
            np.bitwise_or(yf[q + 1:], hf[q + 1:], out=yf[q + 1:])
        y[:, q] = S[:, 0] << np.uint64(b)
    y[:, :q] = 0


def without_predecessor_into(S: np.ndarray, sv: int, y: np.ndarray) -> np.ndarray:
    """``y = S & ~(S << sv)`` per row (contiguous [n, W]): the cells without a predecessor at
    -sv.  Two flat passes (``S ^ (S & (S << sv))``)."""
    W = S.shape[1]
    q, b = divmod(sv, 64)
    Sf, yf = S.reshape(-1), y.reshape(-1)
    if q >= W:
        np.copyto(y, S)
        return y
    if b == 0:
        np.bitwise_and(Sf[q:], Sf[:Sf.size - q], out=yf[q:])
        y[:, :q] = 0
    else:
        np.left_shift(Sf[:Sf.size - q], np.uint64(b), out=yf[q:])  # y = S << sv first
        if q + 1 < W:
            np.bitwise_or(yf[q + 1:], Sf[:Sf.size - q - 1] >> np.uint64(64 - b), out=yf[q + 1:])
        y[:, q] = S[:, 0] << np.uint64(b)
        y[:, :q] = 0
        np.bitwise_and(yf, Sf, out=yf)
    np.bitwise_xor(yf, Sf, out=yf)
    return y


def lex_order(keys: tuple[np.ndarray, ...]) -> np.ndarray:
    """``np.lexsort(keys)`` (last key primary) for non-negative int keys: one stable argsort of
    a mixed-radix int64 key when the key ranges allow it (several times faster than lexsort on
    10^5..10^6 items, and fast on the nearly sorted orders of the analysis)."""
    key = np.zeros(keys[0].size, dtype=I64)
    span = 1
    for k in reversed(keys):  # primary key first
        top = int(k.max()) + 1 if k.size else 1
        span *= top
        if span >= 1 << 62:
            return np.lexsort(keys)
        key *= top
        key += k
    return np.argsort(key, kind="stable")
