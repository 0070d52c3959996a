"""Step 1 of the analysis: a mask as its maximal row intervals, and the interval algebra.

Every input meets here: a dense mask through its packed words (:mod:`.words`), a pattern with an
analytic ACSR through :func:`intervals_from_acsr`, a predicate through its row chunks, and
unions / intersections through an event sweep, so no ``Lq x Lk`` array is needed on these paths.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .acsr import ACSR
from .words import I64, flips_into, intervals_of, pack_rows

CHUNK_CELLS = 1 << 24  # cells per row chunk of a dense mask (measured best at 16K-32K, 2 threads)


@dataclass(frozen=True)
class Intervals:
    """The maximal intervals ``[start, stop)`` of an ``Lq x Lk`` mask, sorted by (row, start);
    intervals of one row never touch."""

    Lq: int
    Lk: int
    row: np.ndarray
    start: np.ndarray
    stop: np.ndarray

    @property
    def n(self) -> int:
        return int(self.row.size)

    @property
    def nnz(self) -> int:
        return int((self.stop - self.start).sum())

    def to_mask(self) -> np.ndarray:
        """Dense mask (tests and small sizes only)."""
        d = np.zeros((self.Lq, self.Lk + 1), dtype=np.int8)
        np.add.at(d, (self.row, self.start), 1)
        np.add.at(d, (self.row, self.stop), -1)
        return np.cumsum(d, axis=1, dtype=np.int8)[:, :self.Lk] > 0

    @staticmethod
    def empty(Lq: int, Lk: int) -> "Intervals":
        z = np.zeros(0, dtype=I64)
        return Intervals(Lq, Lk, z, z, z)

    @staticmethod
    def concat(Lq: int, Lk: int, parts: list["Intervals"]) -> "Intervals":
        """Concatenate interval sets of disjoint, increasing row ranges."""
        if not parts:
            return Intervals.empty(Lq, Lk)
        return Intervals(Lq, Lk, *(np.concatenate([getattr(p, f) for p in parts])
                                   for f in ("row", "start", "stop")))


def arange_each(counts: np.ndarray) -> np.ndarray:
    """``arange(c)`` for every ``c`` in ``counts``, concatenated: the position of each element
    inside its block when blocks of these sizes are laid end to end."""
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    return np.arange(total, dtype=I64) - np.repeat(starts, counts)


def intervals_from_mask(mask: np.ndarray, row0: int = 0, Lq: int | None = None) -> Intervals:
    """Maximal intervals of a bool ``[rows, Lk]`` mask; rows are numbered from ``row0``.
    Works in row chunks of about :data:`CHUNK_CELLS` cells, which keeps the packed words in
    cache."""
    R, C = mask.shape
    Lq = R if Lq is None else Lq
    step = max(1, CHUNK_CELLS // max(C, 1))
    if R > step:
        return Intervals.concat(Lq, C, [_chunk_intervals(mask[i:i + step], row0 + i, Lq)
                                        for i in range(0, R, step)])
    return _chunk_intervals(mask, row0, Lq)


def _chunk_intervals(mask: np.ndarray, row0: int, Lq: int) -> Intervals:
    R, C = mask.shape
    if R == 0 or C == 0:
        return Intervals.empty(Lq, C)
    x = pack_rows(mask)
    f = flips_into(x, np.empty_like(x), np.empty_like(x))
    return Intervals(Lq, C, *intervals_of(x, f, C, row0))


def _flat(Lk: int, row, col):
    """Flattened position ``row * (Lk + 1) + col``: the spare column keeps rows apart."""
    return row.astype(I64) * (Lk + 1) + col


def _unflat(Lq: int, Lk: int, s, e) -> Intervals:
    r, c0 = np.divmod(s, Lk + 1)
    return Intervals(Lq, Lk, r, c0, e - r * (Lk + 1))


def _merge(Lq: int, Lk: int, row, start, stop) -> Intervals:
    """The maximal intervals of the union of any intervals: sorted by start, a new one opens
    where a start passes every end before it (one sort key per interval, no sweep events)."""
    if row.size == 0:
        return Intervals.empty(Lq, Lk)
    s, e = _flat(Lk, row, start), _flat(Lk, row, stop)
    order = np.argsort(s, kind="stable")  # inputs are a few sorted runs: a linear merge
    s, reach = s[order], np.maximum.accumulate(e[order])
    opens = np.empty(s.size, dtype=bool)
    opens[0] = True
    opens[1:] = s[1:] > reach[:-1]  # touching intervals join (>, not >=)
    last = np.flatnonzero(np.append(opens[1:], True))
    return _unflat(Lq, Lk, s[opens], reach[last])


def union(a: Intervals, b: Intervals) -> Intervals:
    """The cells in ``a`` or ``b``."""
    return _merge(a.Lq, a.Lk, np.concatenate([a.row, b.row]),
                  np.concatenate([a.start, b.start]), np.concatenate([a.stop, b.stop]))


def intersection(a: Intervals, b: Intervals) -> Intervals:
    """The cells in both ``a`` and ``b``: each interval of ``a`` meets the run of ``b``'s
    intervals that overlap it (two binary searches). Both sides are maximal, so the pieces come
    out sorted, disjoint and maximal."""
    a0, a1 = _flat(a.Lk, a.row, a.start), _flat(a.Lk, a.row, a.stop)
    b0, b1 = _flat(b.Lk, b.row, b.start), _flat(b.Lk, b.row, b.stop)
    lo = np.searchsorted(b1, a0, side="right")  # first b ending after a starts
    hi = np.searchsorted(b0, a1, side="left")   # first b starting at or after a's end
    count = np.maximum(hi - lo, 0)
    ia = np.repeat(np.arange(a0.size), count)
    ib = np.repeat(lo, count) + arange_each(count)
    return _unflat(a.Lq, a.Lk, np.maximum(a0[ia], b0[ib]), np.minimum(a1[ia], b1[ib]))


def intervals_from_acsr(a: ACSR) -> Intervals:
    """Maximal intervals of an ACSR without materialising the mask: stride-1 rows become one
    interval each, strided rows and the remainder become single cells, then everything merges."""
    rows, starts, stops = [], [], []
    for p in a.pieces:
        t = np.arange(p.T, dtype=I64)
        r, off, cnt = p.r0 + p.row_step * t, p.off_a * t + p.off_b, p.cnt_a * t + p.cnt_b
        keep = cnt > 0
        r, off, cnt = r[keep], off[keep], cnt[keep]
        if p.stride == 1:
            rows.append(r), starts.append(off), stops.append(off + cnt)
        else:
            col = np.repeat(off, cnt) + p.stride * arange_each(cnt)
            rows.append(np.repeat(r, cnt)), starts.append(col), stops.append(col + 1)
    rem = a.remainder
    if rem is not None:
        n, i, j = np.nonzero(rem.masks)
        r = rem.blocks[n, 0].astype(I64) * rem.block + i
        c = rem.blocks[n, 1].astype(I64) * rem.block + j
        rows.append(r), starts.append(c), stops.append(c + 1)
    if not rows:
        return Intervals.empty(a.Lq, a.Lk)
    return _merge(a.Lq, a.Lk, np.concatenate(rows), np.concatenate(starts), np.concatenate(stops))
