"""Step 1 of the analysis: a mask as its maximal row intervals, and the interval algebra.

Every input meets here: a dense mask through its packed words (:mod:`.words`), a pattern with an
analytic ACSR through :func:`intervals_from_acsr`, a predicate through its row chunks, and
unions / intersections, so no ``Lq x Lk`` array is needed on these paths.  A union is one merge
of its operands' cells (:func:`union_of`, however many ``|``); an intersection with an analytic
side clips that side's piece rows to the other side's intervals (:func:`intersect_acsr`), so the
cells outside are never listed.  (Unions and intersections of interval patterns skip the rows
altogether: :mod:`.bands`.)
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


def consecutive_runs(sorted_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximal runs of consecutive integers of a sorted unique array: (starts, stops)."""
    x = sorted_idx
    if x.size == 0:
        z = np.zeros(0, I64)
        return z, z
    brk = (x[1:] != x[:-1] + 1).nonzero()[0]
    starts = np.empty(brk.size + 1, I64)
    stops = np.empty(brk.size + 1, I64)
    starts[0] = x[0]
    starts[1:] = x[brk + 1]
    stops[:-1] = x[brk] + 1
    stops[-1] = x[-1] + 1
    return starts, stops


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


def _unflat(Lq: int, Lk: int, row, s, e) -> Intervals:
    """Intervals from flattened ends ``s, e`` whose row is known (no division)."""
    row = row.astype(I64, copy=False)
    base = row * (Lk + 1)
    return Intervals(Lq, Lk, row, s - base, e - base)


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
    first = np.flatnonzero(opens)
    last = np.append(first[1:] - 1, s.size - 1)
    return _unflat(Lq, Lk, row[order[first]], s[first], reach[last])


def union(a: Intervals, b: Intervals) -> Intervals:
    """The cells in ``a`` or ``b``."""
    return union_of(a.Lq, a.Lk, [a, b])


def union_of(Lq: int, Lk: int, parts: list) -> Intervals:
    """The maximal intervals of the cells of ``parts``: Intervals or ``(row, start, stop)``
    arrays of any intervals, in any order (one merge for all, however many unions)."""
    f = [(p.row, p.start, p.stop) if isinstance(p, Intervals) else p for p in parts]
    return _merge(Lq, Lk, *(np.concatenate([x[k] for x in f]) for k in range(3)))


def intersection(a: Intervals, b: Intervals) -> Intervals:
    """The cells in both ``a`` and ``b``: each interval of the smaller side meets the run of the
    other side's intervals that overlap it (two binary searches). Both sides are maximal, so the
    pieces come out sorted, disjoint and maximal."""
    if a.n > b.n:  # the same pairs in the same order, with fewer searches
        a, b = b, a
    a0, a1 = _flat(a.Lk, a.row, a.start), _flat(a.Lk, a.row, a.stop)
    b0, b1 = _flat(b.Lk, b.row, b.start), _flat(b.Lk, b.row, b.stop)
    lo = np.searchsorted(b1, a0, side="right")  # first b ending after a starts
    hi = np.searchsorted(b0, a1, side="left")   # first b starting at or after a's end
    count = np.maximum(hi - lo, 0)
    ia = np.repeat(np.arange(a0.size), count)
    ib = np.repeat(lo, count) + arange_each(count)
    return _unflat(a.Lq, a.Lk, a.row[ia], np.maximum(a0[ia], b0[ib]), np.minimum(a1[ia], b1[ib]))


def complement(iv: Intervals) -> Intervals:
    """The maximal intervals of the cells not in ``iv`` (maximal): the gaps before each interval
    and after the last one of its row, and every row without intervals whole."""
    same = np.zeros(iv.n, dtype=bool)
    same[1:] = iv.row[1:] == iv.row[:-1]
    last = np.ones(iv.n, dtype=bool)
    last[:-1] = ~same[1:]
    empty = np.ones(iv.Lq, dtype=bool)
    empty[iv.row] = False
    bare = np.flatnonzero(empty)
    row = np.concatenate([iv.row, iv.row[last], bare])
    start = np.concatenate([np.where(same, np.roll(iv.stop, 1), 0), iv.stop[last], np.zeros(bare.size, I64)])
    stop = np.concatenate([iv.start, np.full(int(last.sum()) + bare.size, iv.Lk, I64)])
    keep = start < stop
    row, start, stop = row[keep], start[keep], stop[keep]
    o = np.argsort(_flat(iv.Lk, row, start), kind="stable")
    return Intervals(iv.Lq, iv.Lk, row[o].astype(I64), start[o], stop[o])


def intersect_acsr(a: ACSR, b: Intervals) -> Intervals:
    """The cells of ``a`` that lie in ``b`` (:func:`cells_of_acsr_in`, merged)."""
    return _merge(a.Lq, a.Lk, *cells_of_acsr_in(a, b))


def cells_of_acsr_in(a: ACSR, b: Intervals) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`cells_of_acsr` for the cells of ``a`` in ``b`` only, without listing the others:
    each row of each piece (an arithmetic run) is clipped to the intervals of ``b`` it meets
    (two binary searches and two divisions).  A strided pattern & a window lists its cells near
    the window, not in every row."""
    row, off, cnt, stride = _piece_rows(a)
    K = a.Lk + 1
    b0, b1 = _flat(b.Lk, b.row, b.start), _flat(b.Lk, b.row, b.stop)
    base = row * K
    lo = np.searchsorted(b1, base + off, side="right")  # first b ending after the run starts
    hi = np.searchsorted(b0, base + off + stride * (cnt - 1) + 1, side="left")
    k = np.maximum(hi - lo, 0)
    ia = np.repeat(np.arange(row.size), k)
    ib = np.repeat(lo, k) + arange_each(k)
    row, off, cnt, stride = row[ia], off[ia], cnt[ia], stride[ia]
    j0 = np.maximum(-((off - b.start[ib]) // stride), 0)  # first element >= the interval start
    j1 = np.minimum((b.stop[ib] - 1 - off) // stride, cnt - 1)  # last element < its stop
    keep = j0 <= j1
    return _run_cells(row[keep], (off + stride * j0)[keep], (j1 - j0 + 1)[keep], stride[keep])


def _piece_rows(a: ACSR):
    """``(row, off, cnt, stride)`` of every row of every piece with cells, and of every
    remainder cell."""
    t = a.table
    T = t[:, 8]
    p = np.repeat(np.arange(T.size), T)
    j = arange_each(T)
    r0, step, stride, oa, ob, ca, cb = (t[p, k] for k in (0, 2, 3, 4, 5, 6, 7))
    row, off, cnt = r0 + step * j, oa * j + ob, ca * j + cb
    if a.remainder is not None:
        rr, rc = a.remainder.coordinates()
        one = np.ones(rr.size, dtype=I64)
        row, off, cnt, stride = (np.concatenate(x) for x in ((row, rr), (off, rc), (cnt, one), (stride, one)))
    keep = cnt > 0
    return row[keep], off[keep], cnt[keep], stride[keep]


def _run_cells(row, off, cnt, stride):
    """``(row, start, stop)`` of arithmetic runs: stride-1 runs as one interval, the others
    one interval per cell."""
    one = stride == 1
    s = ~one
    rows, col = cells_of_runs(row[s], off[s], cnt[s], stride[s])
    return (np.concatenate([row[one], rows]), np.concatenate([off[one], col]),
            np.concatenate([off[one] + cnt[one], col + 1]))


def cells_of_runs(row, off, cnt, stride) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)`` of every cell of the arithmetic runs ``off + stride*j``, ``j < cnt``
    (``cnt >= 0``), run by run."""
    return np.repeat(row, cnt), np.repeat(off, cnt) + np.repeat(stride, cnt) * arange_each(cnt)


def intervals_from_acsr(a: ACSR) -> Intervals:
    """Maximal intervals of an ACSR without materialising the mask (:func:`cells_of_acsr`,
    merged)."""
    return _merge(a.Lq, a.Lk, *cells_of_acsr(a))


def cells_of_acsr(a: ACSR) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(row, start, stop)`` of disjoint intervals covering an ACSR, unsorted: stride-1 rows
    are one interval each, strided rows and the remainder single cells."""
    return _run_cells(*_piece_rows(a))


def listed_cells(a: ACSR) -> int:
    """How many intervals :func:`cells_of_acsr` lists (a row of a stride-1 piece is one)."""
    t = a.table
    T, stride, ca, cb = t[:, 8], t[:, 3], t[:, 6], t[:, 7]
    nnz = ca * T * (T - 1) // 2 + cb * T
    rem = a.remainder.nnz if a.remainder is not None else 0
    return int(np.where(stride == 1, T, nnz).sum()) + rem
