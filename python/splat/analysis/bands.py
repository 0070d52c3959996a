"""Affine interval bands: unions and intersections of analytic patterns over row ranges.

Most analytic patterns (window, causal, causal window, blocked, documents, prefix-LM, chunked
causal, global tokens, ...) are a few *bands*: rows ``[r0, r1)`` holding the cells
``[la*i + lb, ha*i + hb)``.  ``|`` and ``&`` of two such masks are bands again, and they can be
computed on row *ranges*: cut the rows wherever two endpoint lines of one range cross (at most
twice per pair: where their difference turns zero and where it turns positive); in each piece
between cuts every comparison the interval algebra makes has one outcome on all rows, so one row
tells which line bounds each output interval (:func:`combine`).

The analysis of the result (:func:`acsr_from_bands`) lists the runs of a few rows only: the first
two and last three of every range where the bands and their order are constant (and whole the
few ranges where isolated cells chain differently from row to row: :func:`kept_rows`).  That is
the contract of the vertical compression of a dense mask (:mod:`.compress`: every left-out row
lies with two rows above it and three below inside one stretch where every run is affine), so
the pieces are those of the analysis of every row (tests/unit/test_bands.py checks that they
are identical).  No step is O(rows) but the final ``Lq``-bool row marks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .acsr import ACSR
from .intervals import Intervals, arange_each
from .pieces import acsr_from_intervals, acsr_from_runs
from .runs import runs_from_intervals
from .words import I64

MAX_PAIRS = 1 << 18  # endpoint-line pairs beyond which a combination is left to the rows (~20 ms)
_FIELDS = ("r0", "r1", "la", "lb", "ha", "hb")


@dataclass(frozen=True)
class Bands:
    """An ``Lq x Lk`` mask as bands: band ``j`` holds, on each row ``r0[j] <= i < r1[j]``, the
    cells ``[la[j]*i + lb[j], ha[j]*i + hb[j])`` (possibly empty on some rows).  The bands of one
    row are disjoint; those made by :func:`combine` are also maximal (never touch) and non-empty
    on every row."""

    Lq: int
    Lk: int
    r0: np.ndarray
    r1: np.ndarray
    la: np.ndarray
    lb: np.ndarray
    ha: np.ndarray
    hb: np.ndarray

    @property
    def n(self) -> int:
        return int(self.r0.size)

    def to_mask(self) -> np.ndarray:
        """Dense mask (tests and small sizes only)."""
        return intervals_from_bands(self).to_mask()


def bands_from_acsr(a: ACSR, most: int = 1024) -> Bands | None:
    """The bands of an ACSR whose pieces lie on consecutive rows (row step 1, or one row):
    interval pieces (stride 1, or at most one cell a row) are one band each, the cells of a
    strided piece (equally spaced global columns) and of the remainder (small corners) one band
    per column or per row interval, up to ``most`` of them (thousands, as for the stride part of
    a strided pattern, cost more than the rows); None otherwise."""
    t = a.table
    r0, step, stride, oa, ob, ca, cb, T = (t[:, k] for k in (0, 2, 3, 4, 5, 6, 7, 8))
    if not ((step == 1) | (T == 1)).all():
        return None
    widest = np.maximum(cb, cb + ca * (T - 1))
    wide = (stride > 1) & (widest > 1)
    cells = _remainder_intervals(a) if a.remainder is not None else None
    if int(widest[wide].sum()) + (0 if cells is None else cells[0].size) > most:
        return None
    # an interval piece: [off, off + cnt) on each row, whatever the stride when cnt <= 1
    la, lb = oa[~wide], ob[~wide] - oa[~wide] * r0[~wide]
    parts = [(r0[~wide], r0[~wide] + T[~wide], la, lb, la + ca[~wide], lb + cb[~wide] - ca[~wide] * r0[~wide])]
    if wide.any():
        parts.append(_strided_cells(*(x[wide] for x in (r0, T, stride, oa, ob, ca, cb, widest))))
    if cells is not None:
        parts.append(cells)
    return Bands(a.Lq, a.Lk, *(np.concatenate([p[k] for p in parts]) for k in range(6)))


def _strided_cells(r0, T, s, oa, ob, ca, cb, widest):
    """Cell ``j`` of strided pieces as one-cell bands: column ``oa*t + ob + s*j`` on the rows
    ``t`` where the count ``ca*t + cb`` exceeds ``j`` (an interval of t: the count is affine)."""
    p = np.repeat(np.arange(r0.size), widest)
    j = arange_each(widest)
    a, b, n = ca[p], cb[p] - j, T[p]  # cell j exists where a*t + b >= 1
    up = a > 0
    safe = np.where(a == 0, 1, np.abs(a))
    t0 = np.where(up, -((b - 1) // safe), 0)  # a > 0: t >= ceil((1 - b) / a)
    t1 = np.where(a < 0, (b - 1) // safe + 1, n)  # a < 0: t <= floor((b - 1) / -a)
    t0, t1 = np.clip(t0, 0, n), np.clip(np.where((a == 0) & (b < 1), 0, t1), 0, n)
    live = t0 < t1
    p, j, t0, t1 = p[live], j[live], t0[live], t1[live]
    la = oa[p]
    lb = ob[p] + s[p] * j - la * r0[p]
    return r0[p] + t0, r0[p] + t1, la, lb, la, lb + 1


def _remainder_intervals(a: ACSR):
    """The remainder's cells as one-row bands, one per run of consecutive columns of a row."""
    rows, cols = a.remainder.coordinates()
    new = np.ones(rows.size, dtype=bool)
    new[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1] + 1)
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, rows.size - 1)
    z = np.zeros(first.size, dtype=I64)
    return rows[first], rows[first] + 1, z, cols[first], z, cols[last] + 1


def combine(x: Bands | None, y: Bands | None, op: str) -> Bands | None:
    """``x | y`` (op ``"|"``) or ``x & y`` (op ``"&"``) as maximal bands; None when an operand
    is None or the endpoint lines would make too many pairs to compare."""
    if x is None or y is None:
        return None
    Lq, Lk = x.Lq, x.Lk
    f = {k: np.concatenate([getattr(x, k), getattr(y, k)]) for k in _FIELDS}
    side = np.repeat(np.array([0, 1], dtype=np.int8), [x.n, y.n])
    if side.size == 0:
        return _empty(Lq, Lk)
    # elementary row ranges: the set of live bands is constant in each
    E = np.unique(np.concatenate([f["r0"], f["r1"]]))
    band, seg = _cover(E, f["r0"], f["r1"])
    cuts = _crossings(np.concatenate([seg, seg]), E, np.concatenate([f["la"][band], f["ha"][band]]),
                      np.concatenate([f["lb"][band], f["hb"][band]]))
    if cuts is None:
        return None
    U = np.unique(np.concatenate([E, cuts])) if cuts.size else E
    # every band on every piece between cuts, evaluated on the piece's first row
    u0, u1 = U.searchsorted(E[seg]), U.searchsorted(E[seg + 1])
    k = u1 - u0
    band = np.repeat(band, k)
    sub = np.repeat(u0, k) + arange_each(k)
    row = U[sub]
    lo = f["la"][band] * row + f["lb"][band]
    hi = f["ha"][band] * row + f["hb"][band]
    live = lo < hi
    band, sub, lo, hi = band[live], sub[live], lo[live], hi[live]
    K = Lk + 1
    if U.size * K * max(band.size, 1) >= 1 << 62:  # the flat keys of _merge would overflow
        return None
    if op == "&":
        sub, lo, hi, lo_id, hi_id = _overlaps(sub, lo, hi, band, side[band], K)
    else:
        lo_id = hi_id = band
    sub, lo_id, hi_id = _merge(sub, lo, hi, lo_id, hi_id, K)
    return _joined(Lq, Lk, U[sub], U[sub + 1], f["la"][lo_id], f["lb"][lo_id], f["ha"][hi_id], f["hb"][hi_id])


def _empty(Lq: int, Lk: int) -> Bands:
    z = np.zeros(0, dtype=I64)
    return Bands(Lq, Lk, z, z, z, z, z, z)


def _cover(E: np.ndarray, r0: np.ndarray, r1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(band, range) for every elementary range ``[E[j], E[j+1])`` inside each band's rows
    (``E`` holds every r0 and r1)."""
    j0, j1 = E.searchsorted(r0), E.searchsorted(r1)
    k = j1 - j0
    return np.repeat(np.arange(r0.size), k), np.repeat(j0, k) + arange_each(k)


def _crossings(s, E, a, b) -> np.ndarray | None:
    """The rows strictly inside the range ``[E[s], E[s+1])`` of two lines ``a*i + b`` of that
    range where the sign of their difference changes (it turns >= 0, and turns > 0): cutting
    there gives every comparison of two such lines one outcome per piece.  None past
    :data:`MAX_PAIRS`."""
    o = np.lexsort((b, a, s))
    s, a, b = s[o], a[o], b[o]
    distinct = np.ones(s.size, dtype=bool)  # equal lines never cross: keep one of each
    distinct[1:] = (s[1:] != s[:-1]) | (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    s, a, b = s[distinct], a[distinct], b[distinct]
    m = s.size
    k = s.searchsorted(s, side="right") - np.arange(m) - 1  # later lines of the same range
    if int(k.sum()) > MAX_PAIRS:
        return None
    p = np.repeat(np.arange(m), k)
    q = p + 1 + arange_each(k)
    da, db = a[p] - a[q], b[p] - b[q]
    cross = da != 0
    p, da, db = p[cross], da[cross], db[cross]
    neg = da < 0  # write the difference with a positive slope
    da, db = np.where(neg, -da, da), np.where(neg, -db, db)
    cuts = np.concatenate([-(db // da), (-db) // da + 1])  # first row >= 0, first row > 0
    sp = np.concatenate([s[p], s[p]])
    return cuts[(cuts > E[sp]) & (cuts < E[sp + 1])]


def _overlaps(sub, lo, hi, band, side, K):
    """The pairwise overlaps of the intervals of side 0 and side 1 on each piece (each side's
    intervals are disjoint): (piece, lo, hi, band of the lower end, band of the upper end)."""
    key0, key1 = sub * K + lo, sub * K + hi
    a, b = np.flatnonzero(side == 0), np.flatnonzero(side == 1)
    a, b = a[np.argsort(key0[a], kind="stable")], b[np.argsort(key0[b], kind="stable")]
    first = key1[b].searchsorted(key0[a], side="right")  # first b ending after a starts
    stop = key0[b].searchsorted(key1[a], side="left")    # first b starting at or after a's end
    k = np.maximum(stop - first, 0)
    ia = np.repeat(a, k)
    ib = b[np.repeat(first, k) + arange_each(k)]
    lo_b, hi_b = lo[ib] > lo[ia], hi[ib] < hi[ia]
    return (sub[ia], np.where(lo_b, lo[ib], lo[ia]), np.where(hi_b, hi[ib], hi[ia]),
            np.where(lo_b, band[ib], band[ia]), np.where(hi_b, band[ib], band[ia]))


def _merge(sub, lo, hi, lo_id, hi_id, K):
    """The maximal intervals of the union of intervals on each piece: (piece, band of the lower
    end, band of the upper end).  Sorted by start, an interval opens where its start passes
    every end before it; the end is the furthest one, found with its index by one running max
    of ``end * n + index``."""
    s, e = sub * K + lo, sub * K + hi
    o = np.argsort(s, kind="stable")
    s, e = s[o], e[o]
    n = s.size
    if n == 0:
        return sub, lo_id, hi_id
    reach = np.maximum.accumulate(e * n + np.arange(n))
    opens = np.empty(n, dtype=bool)
    opens[0] = True
    opens[1:] = s[1:] > reach[:-1] // n  # touching intervals join
    first = np.flatnonzero(opens)
    last = np.append(first[1:] - 1, n - 1)
    return sub[o[first]], lo_id[o[first]], hi_id[o[reach[last] % n]]


def _joined(Lq, Lk, r0, r1, la, lb, ha, hb) -> Bands:
    """Bands with the same lines on consecutive rows joined (in a row equal lines are one
    interval, so they are one band)."""
    if r0.size == 0:
        return _empty(Lq, Lk)
    o = np.lexsort((r0, hb, ha, lb, la))
    r0, r1, la, lb, ha, hb = r0[o], r1[o], la[o], lb[o], ha[o], hb[o]
    head = np.ones(r0.size, dtype=bool)
    head[1:] = ((r0[1:] != r1[:-1]) | (la[1:] != la[:-1]) | (lb[1:] != lb[:-1])
                | (ha[1:] != ha[:-1]) | (hb[1:] != hb[:-1]))
    first = np.flatnonzero(head)
    last = np.append(first[1:] - 1, r0.size - 1)
    return Bands(Lq, Lk, r0[first], r1[last], la[first], lb[first], ha[first], hb[first])


def intervals_from_bands(bd: Bands, rows: np.ndarray | None = None) -> Intervals:
    """The intervals of the bands on every row, or on the sorted ``rows`` only (the other rows
    then hold no intervals)."""
    if rows is None:
        k = bd.r1 - bd.r0
        band = np.repeat(np.arange(bd.n), k)
        row = np.repeat(bd.r0, k) + arange_each(k)
    else:
        j0 = rows.searchsorted(bd.r0)
        k = rows.searchsorted(bd.r1) - j0
        band = np.repeat(np.arange(bd.n), k)
        row = rows[np.repeat(j0, k) + arange_each(k)]
    start = bd.la[band] * row + bd.lb[band]
    stop = bd.ha[band] * row + bd.hb[band]
    live = start < stop
    row, start, stop = row[live], start[live], stop[live]
    o = np.argsort(row * (bd.Lk + 1) + start, kind="stable")
    return Intervals(bd.Lq, bd.Lk, row[o], start[o], stop[o])


def kept_rows(bd: Bands, min_piece_nnz: int = 8) -> np.ndarray | None:
    """The rows the analysis of ``bd`` lists (sorted), so that every row left out lies with two
    rows above and three below inside one range where each run is affine and keeps its rank in
    the row: the first two and last three rows of every range between band starts, band ends
    and rows where the starts of two bands cross (the runs change order).  Kept whole, with three
    rows around: rows where a band narrows or widens through one cell, ranges holding one-cell
    bands that move at different rates (isolated cells chain into strided runs by their gaps,
    which then change from row to row), and bands that move more than 4 columns a row at both
    ends (the track alignment calls such rows odd and tries other pairings).  Ranges of at most
    ``min_piece_nnz`` rows are kept whole, so that every piece with rows left out has at least
    that many cells and stays a piece (the remainder needs every cell).  None past
    :data:`MAX_PAIRS`."""
    Lq = bd.Lq
    E = np.unique(np.concatenate([[0, Lq], bd.r0, bd.r1]))
    band, seg = _cover(E, bd.r0, bd.r1)
    cuts = _crossings(seg, E, bd.la[band], bd.lb[band])
    if cuts is None:
        return None
    b = np.unique(np.concatenate([E, cuts]))
    s, e = b[:-1], b[1:]
    keep = np.zeros(Lq, dtype=bool)
    keep[np.concatenate([s, np.minimum(s + 1, e - 1), np.maximum(e - 3, s), np.maximum(e - 2, s), e - 1])] = True
    lo, hi = _one_cell_rows(bd, b)
    short = e - s <= min_piece_nnz
    lo, hi = np.concatenate([lo, s[short] + 3]), np.concatenate([hi, e[short] - 2])
    if lo.size:
        d = np.zeros(Lq + 1, dtype=I64)
        np.add.at(d, np.clip(lo - 3, 0, Lq), 1)
        np.add.at(d, np.clip(hi + 2, 0, Lq), -1)
        keep |= np.cumsum(d[:-1]) > 0
    return np.flatnonzero(keep)


def _one_cell_rows(bd: Bands, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row ranges ``[lo, hi)`` listed whole (see :func:`kept_rows`); ``b`` are the range
    bounds."""
    dw, cw = bd.ha - bd.la, bd.hb - bd.lb  # width (ha - la) * i + (hb - lb)
    ramp = (dw != 0) & ((1 - cw) % np.where(dw == 0, 1, dw) == 0)
    at = (1 - cw[ramp]) // dw[ramp]  # the row where a ramp is one cell wide
    inside = (at >= bd.r0[ramp]) & (at < bd.r1[ramp])
    steep = (np.abs(bd.la) > 4) & (np.abs(bd.ha) > 4)
    lo, hi = [at[inside], bd.r0[steep]], [at[inside] + 1, bd.r1[steep]]
    one = np.flatnonzero((dw == 0) & (cw == 1))
    if one.size:
        band, rng = _cover(b, bd.r0[one], bd.r1[one])
        slope = bd.la[one][band]
        least = np.full(b.size - 1, np.iinfo(I64).max)
        most = np.full(b.size - 1, np.iinfo(I64).min)
        np.minimum.at(least, rng, slope)
        np.maximum.at(most, rng, slope)
        mixed = np.flatnonzero(most > least)  # (ranges without one-cell bands: least > most)
        lo.append(b[mixed]), hi.append(b[mixed + 1])
    return np.concatenate(lo), np.concatenate(hi)


def acsr_from_bands(bd: Bands, *, block: int = 64, min_piece_nnz: int = 8) -> ACSR:
    """Exact ACSR of maximal bands (made by :func:`combine`), the same as the analysis of their
    intervals on every row, from the runs of :func:`kept_rows` alone."""
    rows = kept_rows(bd, min_piece_nnz)
    if rows is not None and rows.size < bd.Lq:
        r = runs_from_intervals(intervals_from_bands(bd, rows))
        r.crow = rows.searchsorted(r.row)  # kept rows numbered consecutively, empty ones too
        prev = r.row - 1
        r.gap = (prev >= 0) & (rows[np.maximum(r.crow - 1, 0)] != prev)
        result = acsr_from_runs(bd.Lq, bd.Lk, r, block=block, min_piece_nnz=min_piece_nnz)
        if result is not None:
            return result
        # a piece with left-out rows goes to the remainder, which needs its every cell
    return acsr_from_intervals(intervals_from_bands(bd), block=block, min_piece_nnz=min_piece_nnz)
