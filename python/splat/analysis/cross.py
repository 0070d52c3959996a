"""Unions with global tokens: the global rows and columns, plus the rest of the mask minus them.

``global_tokens`` is a *cross*: the rows ``R`` attend every key and every row attends the
columns ``C``.  United with a mask whose cells move from row to row (strided, dilated), the
general analysis links the isolated global-column cells with the moving cells beside them and
cuts a piece wherever a moving cell passes a global column, so the pieces grow with the rows:
``strided | 32 global tokens`` at 12K (corpus ``c09``) gave 10454 pieces and 9569 remainder
blocks.  :func:`union_with_cross` builds the union as two disjoint parts instead:

* the cross (:func:`cross_table`): one full-row piece per run of ``R``, and per range of the
  other rows one piece per column run of ``C`` (equally spaced single columns chained into one
  strided piece, as the analysis chains them);
* the other mask minus the cross (:func:`minus_cross`): every piece with the rows of ``R`` cut
  out (split around them), then the columns of ``C`` cut out.  Where a piece's rows keep their
  column residue (stride 1, or an offset that moves by multiples of the stride) a column lies
  in every row or in none of a stretch of rows, and cutting it out leaves the cells left and
  right of it: affine pieces again, a few per column.  A piece whose residue moves from row to
  row holds a column only every ``period = stride / gcd(off_a, stride)`` rows.  It is either
  split by residue class of the row first (``period`` pieces, each cut once per column: a
  dilated band, which holds a column on ``2w`` of its class rows), or kept whole, leaving
  *holes* in the cross's column at the rows it holds it (each hole one more piece of the
  column: the blocks of ``s`` rows of a strided pattern, which hold a column on one row each),
  whichever makes fewer pieces.  Kept whole, the strided blocks stay row step 1, which the
  tiler's row tiles of consecutive rows see as one segment each, where its residue classes
  would be ``s`` segments (c09 compiles faster so, with more pieces: docs/acsr.md).

The pieces therefore number O(pieces of the other mask + global row runs x global column runs
+ cuts and holes), whatever the rows.  Everything is vectorised over the pieces; the cuts are
the band algebra (:func:`.bands.combine`) run in the pieces' own coordinates.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .acsr import ACSR
from .bands import Bands, combine
from .intervals import Intervals, arange_each, cells_of_runs, consecutive_runs
from .pieces import remainder_from_cells
from .runs import runs_from_intervals
from .words import I64

__all__ = ["cross_table", "minus_cross", "union_with_cross", "Rest"]

# piece table columns (ACSR.table: the 8 fields, then T)
R0, R1, STEP, STRIDE, OA, OB, CA, CB, T = range(9)


def cross_table(Lq: int, Lk: int, rows: np.ndarray, cols: np.ndarray,
                holes: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Canonical ``[n, 8]`` piece table of the rows ``rows`` (full) and the columns ``cols`` on
    the other rows (``rows`` sorted unique in ``[0, Lq)``, ``cols`` in ``[0, Lk)``), without the
    cells ``holes = (rows, cols)`` (in ``cols``, outside ``rows``): the full-row pieces first,
    then per column run the pieces of the other row ranges, then per column with holes one
    piece per run of the rows it keeps."""
    r0, r1 = consecutive_runs(rows)
    full = _rows_table(r0, r1, np.zeros_like(r0), Lk, 1)
    holed = np.zeros(0, I64) if holes is None else np.unique(holes[1])
    whole = cols[~_member(cols, holed)]
    bounds = np.concatenate([[0], np.column_stack([r0, r1]).reshape(-1), [Lq]])
    a, b = bounds[0::2], bounds[1::2]
    a, b = a[a < b], b[a < b]
    c0, c1 = consecutive_runs(whole)
    one_row = Intervals(1, Lk, np.zeros(c0.size, I64), c0, c1)
    runs = runs_from_intervals(one_row)  # equal gaps chain into strided runs
    n = runs.off.size
    other = _rows_table(np.tile(a, n), np.tile(b, n), np.repeat(runs.off, a.size), np.repeat(runs.cnt, a.size),
                        np.repeat(np.maximum(runs.stride, 1), a.size))
    if holed.size == 0:
        return np.concatenate([full, other])
    return np.concatenate([full, other, _holed_columns(Lq, rows, holed, *holes)])


def _holed_columns(Lq: int, rows: np.ndarray, holed: np.ndarray, hole_rows: np.ndarray,
                   hole_cols: np.ndarray) -> np.ndarray:
    """One-column pieces of the columns ``holed`` (sorted unique): per column, the runs of rows
    between the cross rows ``rows`` and its holes."""
    k = holed.size
    col = np.concatenate([np.repeat(np.arange(k), rows.size + 2), holed.searchsorted(hole_cols)])
    row = np.concatenate([np.tile(np.concatenate([[-1], rows, [Lq]]), k), hole_rows])
    W = Lq + 2
    key = np.unique(col * W + row + 1)  # by column, then row (the sentinels -1 and Lq included)
    col, row = key // W, key % W - 1
    same = col[1:] == col[:-1]
    start, stop, c = row[:-1][same] + 1, row[1:][same], holed[col[:-1][same]]
    keep = start < stop
    return _rows_table(start[keep], stop[keep], c[keep], 1, 1)


def _rows_table(r0, r1, off, cnt, stride) -> np.ndarray:
    """Canonical table of pieces holding the same run ``off, off + stride, ...`` (``cnt``
    columns) on every row of ``[r0, r1)``."""
    t = np.zeros((np.size(r0), 8), I64)
    t[:, R0], t[:, R1], t[:, STEP], t[:, OB], t[:, CB] = r0, r1, 1, off, cnt
    t[:, STRIDE] = np.where(np.asarray(cnt) > 1, stride, 1)
    return t


class Rest(NamedTuple):
    """What :func:`minus_cross` leaves of a mask: the pieces (canonical ``[n, 8]`` table), the
    cells of its remainder, and the *holes*: cells in the cross columns that pieces kept whole
    hold, which the cross's columns must leave out."""

    table: np.ndarray
    cell_rows: np.ndarray
    cell_cols: np.ndarray
    hole_rows: np.ndarray
    hole_cols: np.ndarray


def minus_cross(a: ACSR, rows: np.ndarray, cols: np.ndarray) -> Rest | None:
    """The cells of ``a`` outside the rows ``rows`` and the columns ``cols`` (sorted unique),
    except the holes (:class:`Rest`).  None when the band algebra gives up (more endpoint-line
    pairs than :data:`.bands.MAX_PAIRS`)."""
    t = _without_rows(a.table, rows)
    cut = _without_columns(t, cols, a.Lk)
    if cut is None:
        return None
    t, hole_rows, hole_cols = cut
    cr = cc = np.zeros(0, I64)
    if a.remainder is not None:
        cr, cc = a.remainder.coordinates()
        keep = ~(_member(cr, rows) | _member(cc, cols))
        cr, cc = cr[keep], cc[keep]
    return Rest(_canonical(t), cr, cc, hole_rows, hole_cols)


def union_with_cross(a: ACSR, rows: np.ndarray, cols: np.ndarray, *, block: int = 64,
                     min_piece_nnz: int = 8) -> ACSR | None:
    """Exact ACSR of ``a`` united with the rows ``rows`` (every key) and the columns ``cols``
    (every query): :func:`cross_table` without the holes and :func:`minus_cross`, disjoint by
    construction.  As in the analysis, pieces with fewer than ``min_piece_nnz`` cells go to the
    ``block`` remainder, with what is left of ``a``'s.  None where :func:`minus_cross` gives
    up."""
    rest = minus_cross(a, rows, cols)
    if rest is None:
        return None
    tab = np.concatenate([cross_table(a.Lq, a.Lk, rows, cols, (rest.hole_rows, rest.hole_cols)), rest.table])
    Tn = _rows_of(tab)
    nnz = tab[:, CA] * Tn * (Tn - 1) // 2 + tab[:, CB] * Tn
    tiny = nnz < min_piece_nnz
    remainder = None
    if tiny.any() or rest.cell_rows.size:
        pr, pc = _cells(tab[tiny & (nnz > 0)])
        remainder = remainder_from_cells(a.Lq, a.Lk, np.concatenate([rest.cell_rows, pr]),
                                         np.concatenate([rest.cell_cols, pc]), block)
    return ACSR._from_table(a.Lq, a.Lk, tab[~tiny], remainder, check=False)


# ---------------------------------------------------------------------------------------------
# rows
# ---------------------------------------------------------------------------------------------

def _without_rows(t: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The pieces of table ``t`` ([n, 9]) with the rows ``rows`` taken out: each piece is cut
    into the stretches of its local rows between the rows it loses."""
    n = t.shape[0]
    last = t[:, R0] + t[:, STEP] * (t[:, T] - 1)
    lo, hi = rows.searchsorted(t[:, R0]), rows.searchsorted(last, side="right")
    k = hi - lo
    p = np.repeat(np.arange(n), k)
    d = rows[np.repeat(lo, k) + arange_each(k)] - t[p, R0]
    on = d % t[p, STEP] == 0
    if not on.any():
        return t
    p, lost = p[on], d[on] // t[p[on], STEP]
    # Per piece the stretches start at 0 and after each lost row, and end at each lost row and
    # at T; sorted by (piece, row) the i-th start and the i-th end bound one stretch.
    idx = np.arange(n)
    sp, s = np.concatenate([idx, p]), np.concatenate([np.zeros(n, I64), lost + 1])
    ep, e = np.concatenate([p, idx]), np.concatenate([lost, t[:, T]])
    o, oe = np.lexsort((s, sp)), np.lexsort((e, ep))
    piece, s, e = sp[o], s[o], e[oe]
    keep = s < e
    return _stretches(t, piece[keep], s[keep], e[keep])


def _stretches(t: np.ndarray, p: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """Rows (table [m, 9]) of the local rows ``[t0, t1)`` of the pieces ``p`` of ``t``."""
    out = t[p].copy()
    out[:, R0] += out[:, STEP] * t0
    out[:, OB] += out[:, OA] * t0
    out[:, CB] += out[:, CA] * t0
    out[:, T] = t1 - t0
    out[:, R1] = out[:, R0] + out[:, STEP] * (out[:, T] - 1) + 1
    return out


# ---------------------------------------------------------------------------------------------
# columns
# ---------------------------------------------------------------------------------------------

def _without_columns(t: np.ndarray, cols: np.ndarray, Lk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The pieces of ``t`` ([n, 9]) with the columns ``cols`` taken out, and the holes
    ``(rows, cols)`` (None: see :func:`minus_cross`).

    A column hits a piece whose residue moves every few rows (``stride / gcd(off_a, stride)``,
    the period).  Split by residue class of the row, the piece is cut once per column, at the
    price of a piece per class; kept whole, it leaves a hole in the column at every row it
    holds the column, each one more piece of the column.  Each piece takes the cheaper: a
    dilated band (period ``s``, a column every ``s`` rows of ``2w*s``) is split, the blocks of
    ``s`` rows of a strided pattern (period ``s``, one row a block for each column) stay whole,
    so that the pieces keep row step 1 (a row tile of consecutive rows sees one segment of a
    block, and one of each residue class)."""
    p, c = _hits(t, cols)
    moving = t[p, OA] % t[p, STRIDE] != 0
    hp, hc, hrow = _moving_hits(t, p[moving], c[moving])
    holes = np.bincount(hp, minlength=t.shape[0])
    period = t[:, STRIDE] // np.gcd(t[:, OA], t[:, STRIDE])
    split = (holes > 0) & (np.minimum(period, t[:, T]) < holes)
    kept = ~split[hp]
    hole_rows, hole_cols = hrow[kept], hc[kept]
    t = np.concatenate([t[~split], _residue_classes(t[split])])
    p, c = _hits(t, cols)
    stays = t[p, OA] % t[p, STRIDE] == 0  # the moving pieces left are kept whole
    p, c = p[stays], c[stays]
    if p.size == 0:
        return t, hole_rows, hole_cols
    cut = np.zeros(t.shape[0], dtype=bool)
    cut[p] = True
    rest = _cut(t[cut], np.cumsum(cut)[p] - 1, c, Lk)
    return None if rest is None else (np.concatenate([t[~cut], rest]), hole_rows, hole_cols)


def _moving_hits(t: np.ndarray, p: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(piece, column, row)`` of every cell that the pieces ``p`` (residue moving) hold in the
    columns ``c``: the local rows ``t`` where ``off_a*t + off_b = c (mod stride)``, every
    period-th row from a solution of the congruence, inside the rows where ``c`` lies between
    the first and the last column."""
    s, oa, ob = t[p, STRIDE], t[p, OA], t[p, OB]
    g = np.gcd(oa, s)
    period = s // g
    t_c = (c - ob) // g * _inverse(oa // g % period, period) % period
    last = c - ob - s * (t[p, CB] - 1)  # c <= off(t) + s*(cnt(t) - 1)
    lo0, hi0 = _at_least(-oa, c - ob, t[p, T])  # off(t) <= c
    lo1, hi1 = _at_least(oa + s * t[p, CA], -last, t[p, T])
    lo, hi = np.maximum(lo0, lo1), np.minimum(hi0, hi1)
    first = lo + (t_c - lo) % period
    k = np.maximum(-(-(hi - first) // period), 0)
    i = np.repeat(np.arange(p.size), k)
    local = first[i] + period[i] * arange_each(k)
    return p[i], c[i], t[p[i], R0] + t[p[i], STEP] * local


def _at_least(a: np.ndarray, b: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The interval ``[lo, hi)`` of the ``t`` in ``[0, n)`` where ``a*t + b >= 0`` (affine, so
    an interval; empty as ``lo >= hi``)."""
    safe = np.where(a == 0, 1, a)
    lo = np.where(a > 0, -(b // safe), 0)  # a > 0: t >= ceil(-b / a)
    hi = np.where(a < 0, b // -safe + 1, np.where(b >= 0, n, 0))  # a < 0: t <= floor(b / -a)
    hi = np.where(a > 0, n, hi)
    return np.maximum(lo, 0), np.minimum(hi, n)


def _inverse(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``x^-1 mod m`` elementwise (``gcd(x, m) = 1``), one ``pow`` per distinct pair."""
    pairs, inv = np.unique(np.stack([x, m], axis=1), axis=0, return_inverse=True)
    out = np.array([pow(int(a), -1, int(b)) if b > 1 else 0 for a, b in pairs.tolist()], dtype=I64)
    return out[inv.reshape(-1)] if out.size else np.zeros(x.size, I64)


def _hits(t: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(piece, column)`` pairs, sorted by piece then column, of the columns that lie in some
    row of the piece: inside its column range, and in the column residue of one of its rows
    (any residue class of ``gcd(off_a, stride)`` for a piece whose residue moves)."""
    t0, t1 = np.zeros(t.shape[0], I64), t[:, T] - 1
    first = [t[:, OA] * x + t[:, OB] for x in (t0, t1)]
    last = [f + t[:, STRIDE] * (t[:, CA] * x + t[:, CB] - 1) for f, x in zip(first, (t0, t1))]
    lo = cols.searchsorted(np.minimum(*first))
    hi = cols.searchsorted(np.maximum(*last), side="right")
    k = np.maximum(hi - lo, 0)
    p = np.repeat(np.arange(t.shape[0]), k)
    c = cols[np.repeat(lo, k) + arange_each(k)]
    g = np.gcd(t[p, OA], t[p, STRIDE])
    on = (c - t[p, OB]) % g == 0
    return p[on], c[on]


def _residue_classes(t: np.ndarray) -> np.ndarray:
    """The pieces of ``t`` split by residue class of the local row modulo the period of their
    column residue (``stride / gcd(off_a, stride)``): in each class the offset moves by a
    multiple of the stride."""
    period = t[:, STRIDE] // np.gcd(t[:, OA], t[:, STRIDE])
    k = np.minimum(period, t[:, T])
    p = np.repeat(np.arange(t.shape[0]), k)
    rho = arange_each(k)
    out = _stretches(t, p, rho, t[p, T])  # local rows rho, rho + 1, ...: re-stepped below
    P = period[p]
    out[:, T] = -(-(t[p, T] - rho) // P)
    out[:, STEP] *= P
    out[:, OA] *= P
    out[:, CA] *= P
    out[:, R1] = out[:, R0] + out[:, STEP] * (out[:, T] - 1) + 1
    return out


def _cut(t: np.ndarray, p: np.ndarray, c: np.ndarray, Lk: int) -> np.ndarray | None:
    """The pieces ``t`` (each keeps its column residue) without the columns ``c`` of the hits
    ``(p, c)``, sorted by piece then column.

    In a piece's own coordinates, local row ``t`` and column index ``j = (col - residue) /
    stride``, the piece is a band ``[j0(t), j0(t) + count(t))`` with affine ends, and the cut
    columns are constant ``j``: the cells left are the band intersected with the gaps between
    them, which :func:`.bands.combine` works out for all pieces at once, each piece on its own
    range of virtual rows (one empty row between pieces, so that no band spans two)."""
    n = t.shape[0]
    s = t[:, STRIDE]
    rho = t[:, OB] % s
    base = np.cumsum(t[:, T] + 1) - (t[:, T] + 1)
    V = int(base[-1] + t[-1, T])
    la = t[:, OA] // s
    lb = (t[:, OB] - rho) // s - la * base
    piece = Bands(V, Lk, base, base + t[:, T], la, lb, la + t[:, CA], lb + t[:, CB] - t[:, CA] * base)
    # gaps between the cut columns of each piece: [0, j1), [j1 + 1, j2), ..., [jk + 1, Lk)
    j = (c - rho[p]) // s[p]
    gp = np.concatenate([p, np.arange(n)])
    g0 = np.concatenate([j + 1, np.zeros(n, I64)])
    g1 = np.concatenate([j, np.full(n, Lk, I64)])
    o0, o1 = np.lexsort((g0, gp)), np.lexsort((g1, gp))
    gp, g0, g1 = gp[o0], g0[o0], g1[o1]
    zero = np.zeros(gp.size, I64)
    gaps = Bands(V, Lk, base[gp], base[gp] + t[gp, T], zero, g0, zero, g1)
    left = combine(piece, gaps, "&")
    if left is None:
        return None
    q = base.searchsorted(left.r0, side="right") - 1
    t0 = left.r0 - base[q]
    out = t[q].copy()
    out[:, R0] += out[:, STEP] * t0
    out[:, T] = left.r1 - left.r0
    out[:, R1] = out[:, R0] + out[:, STEP] * (out[:, T] - 1) + 1
    v0 = left.r0  # j(v) = la*v + lb on virtual row v = v0 + local row
    out[:, OA] = s[q] * left.la
    out[:, OB] = rho[q] + s[q] * (left.la * v0 + left.lb)
    out[:, CA] = left.ha - left.la
    out[:, CB] = (left.ha - left.la) * v0 + left.hb - left.lb
    return out


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _member(x: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """``x in sorted_set``, elementwise."""
    if sorted_set.size == 0:
        return np.zeros(x.shape, dtype=bool)
    i = np.minimum(sorted_set.searchsorted(x), sorted_set.size - 1)
    return sorted_set[i] == x


def _rows_of(tab: np.ndarray) -> np.ndarray:
    """T (rows) of each piece of a table."""
    return -(-(tab[:, R1] - tab[:, R0]) // tab[:, STEP])


def _canonical(t: np.ndarray) -> np.ndarray:
    """The canonical ``[n, 8]`` table of the pieces ``t`` ([n, 9]) that hold a cell: one-row
    pieces have row step 1 and no slopes, pieces of at most one column a row stride 1 (as
    :meth:`.acsr.Piece.normalized`)."""
    Tn = t[:, T]
    nnz = t[:, CA] * Tn * (Tn - 1) // 2 + t[:, CB] * Tn
    t = t[nnz > 0]
    out = t[:, :8].copy()
    one = t[:, T] == 1
    out[one, STEP] = 1
    out[one, OA] = 0
    out[one, CA] = 0
    out[:, R1] = out[:, R0] + out[:, STEP] * (t[:, T] - 1) + 1
    widest = np.maximum(out[:, CB], out[:, CB] + out[:, CA] * (t[:, T] - 1))
    out[widest <= 1, STRIDE] = 1
    return out


def _cells(tab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)`` of every cell of the pieces of a canonical table."""
    Tn = _rows_of(tab)
    p = np.repeat(np.arange(tab.shape[0]), Tn)
    j = arange_each(Tn)
    cnt = np.maximum(tab[p, CA] * j + tab[p, CB], 0)
    return cells_of_runs(tab[p, R0] + tab[p, STEP] * j, tab[p, OA] * j + tab[p, OB], cnt, tab[p, STRIDE])
