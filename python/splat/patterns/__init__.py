"""Attention patterns: a vectorised predicate plus, for the named families, an analytic ACSR.

A :class:`Pattern` is an ``Lq x Lk`` mask given by ``contains(q_idx, k_idx)`` (broadcasting
numpy index arrays -> bool).  The named families build their ACSR in O(pieces) without looking at
the mask.  General unions and intersections (``a | b``, ``a & b``) have no analytic form; they
combine their operands' *bands* when both are made of intervals with affine ends (worked out on
row ranges, :mod:`splat.analysis.bands`), else their *intervals* (see :mod:`splat.analysis`),
and go through the general analysis, so no ``Lq x Lk`` array is built for them either.  A union
of global tokens with a strided or dilated family is built from its parts instead
(``Pattern.cross_parts``, :mod:`splat.analysis.cross`): the global rows and columns, plus the
other operands minus them.
``longformer`` and ``bigbird`` are such unions with an analytic ACSR of their own
(``_union_acsr``).

For the single families the analytic pieces are cut exactly where the general analysis cuts
(greedy maximal affine stretches), so ``pattern.acsr() == analyze(pattern.mask())`` as ACSR
content, not only as masks; tests/unit/test_patterns.py checks it.  ``longformer`` / ``bigbird``
are exact and valid (equal as masks, checked on random parameters) but cut their own way: window
pieces where the window edges cross the constant columns, one rectangle per constant column run
(no more pieces than the analysis on the tested cases; 178 against 219 for the bigbird at 4K).
"""

from __future__ import annotations

import bisect
import functools
import operator
from typing import Callable

import numpy as np

from .. import analysis
from ..analysis.acsr import ACSR, Piece
from ..analysis.intervals import consecutive_runs

__all__ = ["Pattern", "window", "causal", "causal_window", "dilated", "strided", "fixed", "blocked",
           "global_tokens", "random_blocks", "longformer", "bigbird", "documents", "prefix_lm",
           "chunked_causal", "from_mask", "from_mask_fn"]

_CHUNK_CELLS = 1 << 22  # cells per predicate evaluation chunk
_new, _set = object.__new__, object.__setattr__  # fast Piece construction (as acsr.pieces_from_table)


# ---------------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------------

def _int(name: str, value, minimum: int | None = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _sizes(Lq, Lk) -> tuple[int, int]:
    Lq = _int("Lq", Lq)
    Lk = Lq if Lk is None else _int("Lk", Lk)
    return Lq, Lk


# ---------------------------------------------------------------------------------------------
# Pattern
# ---------------------------------------------------------------------------------------------

class Pattern:
    """An ``Lq x Lk`` attention mask.

    ``contains(q_idx, k_idx)`` evaluates the mask on broadcasting index arrays.  ``acsr()`` is the
    analytic ACSR when the family has one, else the general analysis.  Build instances with the
    module functions (``window``, ``causal``, ..., ``from_mask``, ``from_mask_fn``)."""

    def __init__(self, Lq: int, Lk: int, contains: Callable, *, name: str,
                 analytic: Callable[[], ACSR] | None = None,
                 intervals: Callable[[], "analysis.Intervals"] | None = None,
                 bands: Callable[[], "analysis.Bands | None"] | None = None):
        self.Lq, self.Lk = _sizes(Lq, Lk)
        self._contains = contains
        self.name = name
        self._analytic = analytic
        self._intervals = intervals
        self._bands = bands
        self._union_of: tuple[Pattern, Pattern] | None = None  # the operands of a ``|``
        self._cross: tuple[np.ndarray, np.ndarray] | None = None  # global tokens: (rows, cols)
        self._acsr_cache: ACSR | None = None

    # -- predicate and materialisation ---------------------------------------------------------
    def contains(self, q_idx, k_idx) -> np.ndarray:
        q = np.asarray(q_idx, dtype=np.int64)
        k = np.asarray(k_idx, dtype=np.int64)
        return np.asarray(self._contains(q, k), dtype=bool)

    def mask_rows(self, i0: int, i1: int) -> np.ndarray:
        """``bool [i1-i0, Lk]``: rows ``i0 .. i1-1``."""
        if not 0 <= i0 <= i1 <= self.Lq:
            raise ValueError(f"row range {i0}:{i1} outside 0:{self.Lq}")
        q = np.arange(i0, i1, dtype=np.int64)[:, None]
        k = np.arange(self.Lk, dtype=np.int64)[None, :]
        return np.broadcast_to(self.contains(q, k), (i1 - i0, self.Lk))

    def iter_rows(self):
        """Yield ``(i0, mask[i0:i1])`` in chunks of about 4M cells."""
        step = max(1, _CHUNK_CELLS // self.Lk)
        for i0 in range(0, self.Lq, step):
            yield i0, self.mask_rows(i0, min(self.Lq, i0 + step))

    def mask(self) -> np.ndarray:
        out = np.empty((self.Lq, self.Lk), dtype=bool)
        for i0, rows in self.iter_rows():
            out[i0:i0 + rows.shape[0]] = rows
        return out

    # -- ACSR ----------------------------------------------------------------------------------
    @property
    def analytic(self) -> bool:
        return self._analytic is not None

    def analytic_acsr(self) -> ACSR | None:
        """The analytic ACSR, or None for patterns without one."""
        if self._analytic is None:
            return None
        if self._acsr_cache is None:
            self._acsr_cache = self._analytic()
        return self._acsr_cache

    def acsr(self, *, block: int = 64) -> ACSR:
        """Analytic ACSR when known, else ``analysis.analyze(self, block=block)``."""
        a = self.analytic_acsr()
        return a if a is not None else analysis.analyze(self, block=block)

    def cross_parts(self) -> "tuple[Pattern, np.ndarray, np.ndarray] | None":
        """``(other, rows, cols)`` when the pattern is a union (of any nesting) of global tokens
        (the rows ``rows`` and the columns ``cols``) and ``other``, the union of the remaining
        operands; the analysis then builds it as the global rows and columns plus ``other``
        minus them (:func:`splat.analysis.cross.union_with_cross`).  Only where an operand has
        strided rows (strided, dilated, ...), whose cells the general analysis and the band
        algebra would chain with the global columns into pieces cut every few rows; None for
        other patterns (interval families stay with ``bands()``, which unites them with the
        global tokens on row ranges in fewer pieces)."""
        if self._union_of is None:
            return None
        operands = self._union_operands()
        cross = [p._cross for p in operands if p._cross is not None]
        rest = [p for p in operands if p._cross is None]
        if not cross or not any(map(_strided_rows, rest)):
            return None
        rows, cols = (np.unique(np.concatenate(x)) for x in zip(*cross))
        return functools.reduce(operator.or_, rest), rows, cols

    def _union_operands(self) -> list["Pattern"]:
        """The operands of a tree of ``|`` (the pattern itself when it is no union)."""
        if self._union_of is None:
            return [self]
        return [p for q in self._union_of for p in q._union_operands()]

    def intervals(self) -> "analysis.Intervals":
        """Maximal row intervals of the mask, without an ``Lq x Lk`` array."""
        if self._intervals is not None:
            bd = self._bands() if self._bands is not None else None
            return self._intervals() if bd is None else analysis.intervals_from_bands(bd)
        a = self.analytic_acsr()
        if a is not None:
            return analysis.intervals_from_acsr(a)
        parts = [analysis.intervals_from_mask(np.ascontiguousarray(rows), row0=i0, Lq=self.Lq)
                 for i0, rows in self.iter_rows()]
        return analysis.Intervals.concat(self.Lq, self.Lk, parts)

    def bands(self) -> "analysis.Bands | None":
        """The mask as affine interval bands (:mod:`splat.analysis.bands`): an analytic ACSR of
        interval pieces, or ``|`` / ``&`` of such patterns; None for the others (strided or
        dilated rows, predicates, explicit masks)."""
        a = self.analytic_acsr()
        if a is not None:
            return analysis.bands_from_acsr(a)
        return self._bands() if self._bands is not None else None

    # -- algebra -------------------------------------------------------------------------------
    def _combine(self, other, op: str) -> "Pattern":
        if not isinstance(other, Pattern):
            return NotImplemented
        if (self.Lq, self.Lk) != (other.Lq, other.Lk):
            raise ValueError(f"cannot combine patterns of shapes {self.Lq}x{self.Lk} and "
                             f"{other.Lq}x{other.Lk}")
        a, b = self, other
        if op == "|":
            fn = lambda q, k: a.contains(q, k) | b.contains(q, k)  # noqa: E731
            iv = lambda: _unite(a, b)  # noqa: E731
        else:
            fn = lambda q, k: a.contains(q, k) & b.contains(q, k)  # noqa: E731
            iv = lambda: _intersect(a, b)  # noqa: E731
        p = Pattern(self.Lq, self.Lk, fn, name=f"({a.name} {op} {b.name})", intervals=iv,
                    bands=lambda: analysis.combine_bands(a.bands(), b.bands(), op))
        if op == "|":
            p._union_of = (a, b)
        return p

    def _union_cells(self) -> list:
        """Intervals covering the mask, not necessarily maximal, for one merge over a whole tree
        of unions (the operands' pieces are merged once, not once per ``|``)."""
        cells = []
        for p in self._union_operands():
            a = p.analytic_acsr()
            cells.append(p.intervals() if a is None else analysis.cells_of_acsr(a))
        return cells

    def __or__(self, other):
        return self._combine(other, "|")

    def __and__(self, other):
        return self._combine(other, "&")

    def describe(self) -> str:
        kind = "analytic" if self.analytic else "analysed"
        return f"{self.name} [{self.Lq}x{self.Lk}, {kind}]"

    def __repr__(self) -> str:
        return f"<Pattern {self.describe()}>"


def _strided_rows(p: Pattern) -> bool:
    """Whether ``p``'s analytic ACSR has rows of several cells a stride > 1 apart."""
    a = p.analytic_acsr()
    if a is None:
        return False
    t = a.table
    widest = np.maximum(t[:, 7], t[:, 7] + t[:, 6] * (t[:, 8] - 1))
    return bool(((t[:, 3] > 1) & (widest > 1)).any())


_MANY, _FEW = 8, 4  # cells a row listed by a strided / dilated side, intervals a row of a band


def _unite(a: Pattern, b: Pattern) -> "analysis.Intervals":
    """The intervals of ``a | b``: one merge of both sides' cells (of all operands of nested
    unions).  When an analytic side lists many cells a row (strided, dilated) and the other is
    an analytic band of a few intervals a row, only its cells outside those intervals are listed
    (a dilated band mostly inside a causal window)."""
    for x, y in ((a, b), (b, a)):
        ax, ay = x.analytic_acsr(), y.analytic_acsr()
        if (ax is not None and ay is not None and analysis.listed_cells(ax) > _MANY * a.Lq
                and analysis.listed_cells(ay) <= _FEW * a.Lq):
            iy = analysis.intervals_from_acsr(ay)
            return analysis.union_of(a.Lq, a.Lk, [iy, analysis.cells_of_acsr_in(ax, analysis.complement(iy))])
    return analysis.union_of(a.Lq, a.Lk, a._union_cells() + b._union_cells())


def _intersect(a: Pattern, b: Pattern) -> "analysis.Intervals":
    """The intervals of ``a & b``.  An analytic side that lists many cells a row (strided,
    dilated) is clipped row by row to the other side's intervals, so that its cells outside them
    are never listed (of two such sides, the one listing more); otherwise the maximal intervals
    of both sides meet."""
    x, y = a.analytic_acsr(), b.analytic_acsr()
    nx = -1 if x is None else analysis.listed_cells(x)
    ny = -1 if y is None else analysis.listed_cells(y)
    if max(nx, ny) > _MANY * a.Lq:
        return analysis.intersect_acsr(x, b.intervals()) if nx >= ny else analysis.intersect_acsr(y, a.intervals())
    return analysis.intersection(a.intervals(), b.intervals())


# ---------------------------------------------------------------------------------------------
# Analytic construction helpers
# ---------------------------------------------------------------------------------------------

def _ge(a: int, b: int, c: int, T: int) -> tuple[int, int]:
    """The t-interval [lo, hi) within [0, T) where a*t + b >= c (affine, so an interval)."""
    if a == 0:
        return (0, T) if b >= c else (0, 0)
    if a > 0:
        return min(T, max(0, -(-(c - b) // a))), T
    return 0, max(0, min(T, (c - b) // a + 1))


def _band(Lk: int, r0: int, r1: int, step: int, stride: int,
          lo: tuple[int, int], hi: tuple[int, int]) -> list[Piece]:
    """Pieces of the rows ``i = r0 + step*t < r1`` holding the columns ``lo(i), lo(i) + stride,
    ... <= hi(i)`` clipped to ``[0, Lk)``; ``lo``/``hi`` are ``(a, b)`` for ``a*i + b``.

    Clipping is exact when the column residue ``lo(i) mod stride`` is the same on every row
    (always for stride 1; for stride > 1 the caller passes one residue class, ``step = stride``)
    or when no row is clipped.  The result is one track, cut greedily like the analysis cuts."""
    T = -(-(r1 - r0) // step)
    if T <= 0:
        return []
    la, lb = lo[0] * step, lo[0] * r0 + lo[1]
    ha, hb = hi[0] * step, hi[0] * r0 + hi[1]
    if la % stride == 0:  # one column residue on every row: clip to that residue's ends
        c0 = lb % stride
        c1 = Lk - 1 - (Lk - 1 - lb) % stride
    else:  # residue changes from row to row: the caller guarantees that nothing is clipped
        c0, c1 = 0, Lk - 1
    cuts = {0, T}
    for a, b, c in ((la, lb, c0), (-ha, -hb, -c1)):  # lo >= c0 ; hi <= c1
        cuts.update(_ge(a, b, c, T))
    cuts = sorted(cuts)
    regimes = []  # (t0, t1, off_a, off_b, cnt_a, cnt_b) in the track's t
    for ta, tb in zip(cuts, cuts[1:]):
        if ta >= tb:
            continue
        oa, ob = (la, lb) if la * ta + lb >= c0 else (0, c0)
        ua, ub = (ha, hb) if ha * ta + hb <= c1 else (0, c1)
        # count = (upper - lower) / stride + 1; upper and lower share the residue
        ca, cb = (ua - oa) // stride, (ub - ob) // stride + 1
        t0, t1 = _ge(ca, cb, 1, T)
        t0, t1 = max(t0, ta), min(t1, tb)
        if t0 < t1:
            regimes.append((t0, t1, oa, ob, ca, cb))
    return _greedy_track(regimes, r0, step, stride)


def _greedy_track(regimes, r0: int, step: int, stride: int) -> list[Piece]:
    """Re-cut a track given as affine regimes into the greedy maximal affine stretches the
    analysis finds: a stretch starts at row u, takes row u+1, then every following row on the
    line through them.  Regimes not touching (a gap in t) are separate tracks.  O(regimes)."""
    pieces: list[Piece] = []
    run: list[tuple] = []
    for reg in regimes + [None]:
        if reg is not None and run and reg[0] == run[-1][1]:
            run.append(reg)
            continue
        if run:
            pieces += _greedy_run(run, r0, step, stride)
        run = [reg] if reg is not None else []
    return pieces


def _greedy_run(regs, r0, step, stride) -> list[Piece]:
    starts = [r[0] for r in regs]
    end = regs[-1][1]

    def val(t):
        r = regs[bisect.bisect_right(starts, t) - 1]
        return r[2] * t + r[3], r[4] * t + r[5]

    out = []
    u = regs[0][0]
    while u < end:
        o0, c0 = val(u)
        if u + 1 == end:
            out.append(_piece(r0, step, stride, u, 1, 0, o0, 0, c0))
            break
        o1, c1 = val(u + 1)
        so, sc = o1 - o0, c1 - c0
        if u + 3 < end and _collinear(val, u + 1) and not _collinear(val, u):
            # the analysis' look-ahead: a row that breaks the line of the next three stays alone
            out.append(_piece(r0, step, stride, u, 1, 0, o0, 0, c0))
            u += 1
            continue
        e = u + 1
        while e + 1 < end:
            ri = bisect.bisect_right(starts, e + 1) - 1
            r = regs[ri]
            on_line = val(e + 1) == (o0 + so * (e + 1 - u), c0 + sc * (e + 1 - u))
            if not on_line:
                break
            # The whole regime lies on the line when it has the line's slopes.
            e = r[1] - 1 if (r[2], r[4]) == (so, sc) else e + 1
        out.append(_piece(r0, step, stride, u, e - u + 1, so, o0, sc, c0))
        u = e + 1
    return out


def _collinear(val, u) -> bool:
    """Rows u, u+1, u+2 have affine (offset, count)."""
    (a0, b0), (a1, b1), (a2, b2) = val(u), val(u + 1), val(u + 2)
    return a2 - a1 == a1 - a0 and b2 - b1 == b1 - b0


def _piece(r0, step, stride, t0, T, off_a, off_b, cnt_a, cnt_b) -> Piece:
    """The piece of T rows from track row t0 (global row r0 + step*t0), in canonical form."""
    first = r0 + step * t0
    if T == 1:
        step, off_a, cnt_a = 1, 0, 0
    if max(cnt_b, cnt_b + cnt_a * (T - 1)) <= 1:
        stride = 1
    p = _new(Piece)  # the fields are plain ints in canonical form: skip the dataclass __init__
    _set(p, "__dict__", {"r0": int(first), "r1": int(first + step * (T - 1) + 1), "row_step": int(step),
                         "stride": int(stride), "off_a": int(off_a), "off_b": int(off_b),
                         "cnt_a": int(cnt_a), "cnt_b": int(cnt_b)})
    return p


def _acsr(Lq, Lk, pieces) -> ACSR:
    """ACSR of pieces built here (Lq, Lk checked ints, every piece a Piece): no re-checks."""
    return ACSR._trusted(Lq, Lk, tuple(pieces))


# ---------------------------------------------------------------------------------------------
# Fast construction of many pieces, and the analytic union of window / globals / random blocks
# ---------------------------------------------------------------------------------------------


def _rect_table(r0, r1, c0, c1) -> np.ndarray:
    """Canonical table rows of the rectangles rows [r0, r1) x cols [c0, c1) (arrays of one
    length, or scalars for the columns)."""
    t = np.empty((np.size(r0), 8), np.int64)
    t[:, 0] = r0
    t[:, 1] = r1
    t[:, 2:5] = (1, 1, 0)
    t[:, 5] = c0
    t[:, 6] = 0
    np.subtract(c1, c0, out=t[:, 7])
    return t


def _stable_order(key: np.ndarray, bound: int) -> np.ndarray:
    """``np.argsort(key, kind="stable")`` for keys in ``[0, bound)``: when it fits in int64,
    one value sort of ``key * n + position`` (SIMD, ~3x faster than argsort at ~1000 items)."""
    n = key.size
    if n and bound * n < (1 << 62):
        v = key * n
        v += np.arange(n, dtype=np.int64)
        v.sort()
        v %= n
        return v
    return np.argsort(key, kind="stable")


def _unique(x: np.ndarray) -> np.ndarray:
    """``np.unique`` of a 1-d int array, without its overhead (a sort and one compare); sorts
    ``x`` in place (callers pass a fresh temporary)."""
    x.sort()
    if x.size > 1:
        keep = np.empty(x.size, dtype=bool)
        keep[0] = True
        np.not_equal(x[1:], x[:-1], out=keep[1:])
        x = x[keep]
    return x


def _block_runs(idx: np.ndarray, B: int, Lk: int):
    """(row block, col0, col1) of the runs of chosen column blocks, row-block major; ``idx`` is
    ``[nrb, r]``, each row the sorted chosen column blocks of a row block."""
    r = idx.shape[1]
    flat = idx.reshape(-1).astype(np.int64, copy=False)
    st = np.empty(flat.size, dtype=bool)  # run starts: a row block's first, or a gap before
    np.not_equal(flat[1:], flat[:-1] + 1, out=st[1:])
    st[::r] = True
    s = st.nonzero()[0]
    e = np.empty_like(s)
    e[:-1] = s[1:] - 1
    e[-1] = flat.size - 1
    c0 = flat[s] * B
    c1 = flat[e] + 1
    c1 *= B
    np.minimum(c1, Lk, out=c1)
    return s // r, c0, c1


def _tiny_to_remainder(Lq: int, Lk: int, tab: np.ndarray, block: int = 64, min_nnz: int = 8) -> ACSR:
    """ACSR of stride-1, row_step-1 pieces ``tab``; pieces with fewer than ``min_nnz`` cells go to
    the block remainder (as ``analyze`` does with its default ``min_piece_nnz``)."""
    T = tab[:, 1] - tab[:, 0]
    nnz = tab[:, 6] * T * (T - 1) // 2 + tab[:, 7] * T
    tiny = nnz < min_nnz
    remainder = None
    if tiny.any():
        tab_t, tab = tab[tiny], tab[~tiny]
        rows, cols = [], []
        for r0, r1, _, _, oa, ob, ca, cb in tab_t.tolist():
            for t in range(r1 - r0):
                n = ca * t + cb
                if n > 0:
                    rows.append(np.full(n, r0 + t, np.int64))
                    cols.append(oa * t + ob + np.arange(n, dtype=np.int64))
        if rows:
            remainder = analysis.remainder_from_cells(Lq, Lk, np.concatenate(rows), np.concatenate(cols), block)
    return ACSR._from_table(Lq, Lk, tab, remainder, check=False)


def _union_acsr(Lq: int, Lk: int, w: int, g: np.ndarray, B: int | None, chosen: np.ndarray | None) -> ACSR:
    """Analytic ACSR of ``|q - k| <= w`` or ``q in g`` or ``k in g`` or ``k // B in chosen[q // B]``.

    Global rows are full-row pieces (one per run of global rows).  The other rows are cut into
    segments (row block x run of non-global rows); in a segment the constant column set
    ``K`` = global columns + the row block's random blocks is a few maximal runs ``[c0, c1)``.
    A run touches the window ``[lo(i), hi(i)) = [max(0, i-w), min(Lk, i+w+1))`` on the rows
    ``c0 - w - 1 <= i <= c1 + w``; the touching runs and the window merge into one interval
    ``[min(lo, c0 of the first), max(hi, c1 of the last))``.  Cutting each segment at the rows
    where any of these choices changes (``c0 - w - 1``, ``c1 + w + 1``, ``c0 + w + 1``,
    ``c1 - w - 1`` per run; ``w + 1``, ``Lk - w - 1``, ``Lk + w`` for the clipping) makes every
    endpoint affine (slope 0 or 1) inside a sub-segment.  Per sub-segment: one merged window
    piece, and one rectangle per run not touching the window.  Window sub-pieces with the same
    formula in consecutive rows join, and so do equal rectangles in consecutive rows.  Pieces
    are disjoint (the intervals of a row are), the union is exact.  O(pieces) numpy, written
    with few passes over small arrays (numpy call overhead dominates at these sizes)."""
    I64 = np.int64
    if g.size and g[-1] < min(Lq, Lk):  # g is sorted: nothing to drop
        gr0, gr1 = gc0, gc1 = consecutive_runs(g)
    else:
        gr0, gr1 = consecutive_runs(g[g < Lq])
        gc0, gc1 = consecutive_runs(g[g < Lk])
    if chosen is None:  # chosen: [nrb, r] sorted random column blocks per row block
        B, nrb = Lq, 1
    else:
        nrb = chosen.shape[0]
    # constant column runs per row block, merged where they touch
    ng = gc0.size
    rb = np.arange(nrb, dtype=I64).repeat(ng)
    c0, c1 = np.empty((nrb, ng), I64), np.empty((nrb, ng), I64)
    c0[:] = gc0
    c1[:] = gc1
    c0, c1 = c0.reshape(-1), c1.reshape(-1)
    if chosen is not None:
        rb_r, c0_r, c1_r = _block_runs(chosen, B, Lk)
        rb, c0, c1 = np.concatenate((rb, rb_r)), np.concatenate((c0, c0_r)), np.concatenate((c1, c1_r))
    if rb.size:
        K1 = Lk + 2
        rbK = rb * K1
        k0 = rbK + c0
        o = _stable_order(k0, nrb * K1)  # by (rb, c0): c0 < K1
        k1 = (rbK + c1)[o]
        k0 = k0[o]
        mx = np.maximum.accumulate(k1)
        new = np.empty(rb.size, dtype=bool)
        new[0] = True
        np.greater(k0[1:], mx[:-1], out=new[1:])
        st = new.nonzero()[0]
        st_o = o[st]
        rb, c0, c1 = rb[st_o], c0[st_o], np.maximum.reduceat(c1[o], st)
    # segments: row blocks x non-global row ranges
    edges = np.minimum(np.arange(0, Lq + B, B, dtype=I64), Lq)  # block starts and Lq
    if gr0.size:
        edges = _unique(np.concatenate((edges, gr0, gr1)))
        e0, e1 = edges[:-1], edges[1:]
        gi = gr0.searchsorted(e0, side="right") - 1
        not_g = (gi < 0) | (e0 >= gr1[np.maximum(gi, 0)])
        s0, s1 = e0[not_g], e1[not_g]
    else:
        s0, s1 = edges[:-1], edges[1:]
    srb = s0 // B
    tabs = [_rect_table(gr0, gr1, 0, Lk)]
    if s0.size:
        # cut rows inside the segments
        m = rb.size
        X = np.empty((4, m), I64)
        a, b = X[0], X[1]
        np.subtract(c0, w + 1, out=a)
        np.add(c1, w + 1, out=b)
        np.add(c0, w + 1, out=X[2])
        np.subtract(c1, w + 1, out=X[3])
        lo = rb * B
        near = (X > lo) & (X < lo + B)  # inside its row block
        cand = np.concatenate((X[near], (w + 1, Lk - w - 1, Lk + w)))
        cand_rb = cand // B  # (a candidate inside its row block has that row block)
        seg = s0.searchsorted(cand, side="right") - 1
        segc = np.maximum(seg, 0)
        ok = (seg >= 0) & (cand > s0[segc]) & (cand < s1[segc]) & (srb[segc] == cand_rb)
        u0 = _unique(np.concatenate((s0, cand[ok])))
        useg = s0.searchsorted(u0, side="right") - 1
        n = u0.size
        u1 = np.empty(n, I64)
        u1[:-1] = u0[1:]
        u1[-1] = Lq
        np.minimum(u1, s1[useg], out=u1)
        urb = srb[useg]
        # touching runs j1 .. j2 of the row block (runs sorted by (rb, c0): a, b increase)
        K = Lq + Lk + 2 * w + 4
        rbK = rb * K
        q = urb * K + u0
        j1 = (rbK + b).searchsorted(q, side="right")
        j2 = (rbK + a).searchsorted(q, side="right") - 1
        touch = j1 <= j2
        # window formula (slope, intercept) in the global row i
        la = ((u0 > w) & (u0 < Lk + w)).astype(I64)
        lb = np.where(u0 <= w, 0, np.where(u0 >= Lk + w, Lk, -w))
        hc = u0 >= Lk - w - 1
        ha = (~hc).astype(I64)
        hb = np.where(hc, Lk, w + 1)
        if m:
            j1c, j2c = np.minimum(j1, m - 1), np.maximum(j2, 0)
            c0j, c1j = c0[j1c], c1[j2c]
            use_c0 = touch & (u0 >= c0j + w + 1)
            use_c1 = touch & (u0 < c1j - w - 1)
            la[use_c0] = 0
            lb = np.where(use_c0, c0j, lb)
            ha[use_c1] = 0
            hb = np.where(use_c1, c1j, hb)
        dA = ha - la
        dB = hb - lb
        live = (dA * u0 + dB > 0) | (dA * (u1 - 1) + dB > 0)
        join = np.empty(n, dtype=bool)
        join[0] = False
        join[1:] = ((u0[1:] == u1[:-1]) & live[1:] & live[:-1] & (la[1:] == la[:-1]) & (lb[1:] == lb[:-1])
                    & (ha[1:] == ha[:-1]) & (hb[1:] == hb[:-1]))
        heads = (~join).nonzero()[0]  # first sub-segment of each group
        ends = np.empty(heads.size, I64)  # last sub-segment of each group
        ends[:-1] = heads[1:] - 1
        ends[-1] = n - 1
        lv = live[heads]
        gs, ge = heads[lv], ends[lv]
        r0, r1 = u0[gs], u1[ge]
        A, Bb, Ha, Hb = la[gs], lb[gs], ha[gs], hb[gs]
        one = (r1 - r0) == 1
        wt = np.empty((gs.size, 8), I64)
        wt[:, 0] = r0
        wt[:, 1] = r1
        wt[:, 2:4] = 1
        off_b = A * r0 + Bb
        wt[:, 4] = np.where(one, 0, A)
        wt[:, 5] = off_b
        wt[:, 6] = np.where(one, 0, Ha - A)
        wt[:, 7] = Ha * r0 + Hb - off_b
        tabs.append(wt)
        # rectangles: the runs of the row block not touching the window (for a sub-segment
        # that touches none, j1 > j2 and every run is kept)
        if m:
            rs = rb.searchsorted(urb, side="left")
            cnt = rb.searchsorted(urb, side="right") - rs
            sub = np.arange(n).repeat(cnt)
            j = np.arange(sub.size) + (rs + cnt - cnt.cumsum())[sub]
            keep = (j < j1[sub]) | (j > j2[sub])
            sub, j = sub[keep], j[keep]
            if j.size:
                cc0, cc1 = c0[j], c1[j]
                # by (c0, c1, row): sub (hence the row) already ascends, so a stable sort by
                # the column run alone
                o = _stable_order(cc0 * (Lk + 1) + cc1, (Lk + 1) * (Lk + 1))
                sub, cc0, cc1 = sub[o], cc0[o], cc1[o]
                rr0, rr1 = u0[sub], u1[sub]
                jn = np.empty(j.size, dtype=bool)
                jn[0] = False
                jn[1:] = (cc0[1:] == cc0[:-1]) & (cc1[1:] == cc1[:-1]) & (rr0[1:] == rr1[:-1])
                st = (~jn).nonzero()[0]
                en = np.empty(st.size, I64)
                en[:-1] = st[1:] - 1
                en[-1] = j.size - 1
                tabs.append(_rect_table(rr0[st], rr1[en], cc0[st], cc1[st]))
    return _tiny_to_remainder(Lq, Lk, np.concatenate(tabs))  # every range above is non-empty


# ---------------------------------------------------------------------------------------------
# Named families
# ---------------------------------------------------------------------------------------------

def window(w: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Sliding window: ``|q - k| <= w``."""
    w = _int("w", w)
    Lq, Lk = _sizes(Lq, Lk)
    return Pattern(Lq, Lk, lambda q, k: np.abs(q - k) <= w, name=f"window(w={w})",
                   analytic=lambda: _acsr(Lq, Lk, _band(Lk, 0, Lq, 1, 1, (1, -w), (1, w))))


def causal(Lq: int, Lk: int | None = None) -> Pattern:
    """Causal: ``k <= q``."""
    Lq, Lk = _sizes(Lq, Lk)
    return Pattern(Lq, Lk, lambda q, k: k <= q, name="causal",
                   analytic=lambda: _acsr(Lq, Lk, _band(Lk, 0, Lq, 1, 1, (0, 0), (1, 0))))


def causal_window(w: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Causal sliding window: ``0 <= q - k <= w``."""
    w = _int("w", w)
    Lq, Lk = _sizes(Lq, Lk)
    return Pattern(Lq, Lk, lambda q, k: (q - k >= 0) & (q - k <= w), name=f"causal_window(w={w})",
                   analytic=lambda: _acsr(Lq, Lk, _band(Lk, 0, Lq, 1, 1, (1, -w), (1, 0))))


def dilated(w: int, stride: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Dilated window: ``|q - k| <= w*stride`` and ``(q - k) % stride == 0``."""
    w, s = _int("w", w), _int("stride", stride)
    Lq, Lk = _sizes(Lq, Lk)
    reach = w * s

    def build():
        if s == 1:
            return _acsr(Lq, Lk, _band(Lk, 0, Lq, 1, 1, (1, -reach), (1, reach)))
        # Body: rows never clipped, one row_step-1 piece; the ramps above and below it are
        # affine per residue class of the row.  When w <= s the ramps are cut into stretches of
        # s rows instead (fewer pieces), as the analysis does.
        b0, b1 = reach, min(Lq, Lk - reach)
        if b0 >= b1:
            b0 = b1 = min(reach, Lq)
        pieces = _band(Lk, b0, b1, 1, s, (1, -reach), (1, reach)) if b0 < b1 else []
        if w <= s and Lq == Lk and Lk >= 2 * reach:
            # Unclipped square case in closed form: top-ramp stretch j (rows js .. js+s-1)
            # holds columns i mod s, +s, ... (count w+1+j); bottom-ramp stretch j starts at
            # row Lk - reach + js, columns from i - reach (count 2w - j).
            top = [(j * s, j * s + s, 1, -j * s, 0, w + 1 + j) for j in range(w)]
            bottom = [(b1 + j * s, b1 + j * s + s, 1, -reach, 0, 2 * w - j) for j in range(w)]
            return _acsr(Lq, Lk, pieces + _greedy_track(top, 0, 1, s) + _greedy_track(bottom, 0, 1, s))
        for lo_row, hi_row in ((0, b0), (b1, Lq)):
            pieces += _dilated_ramp(Lk, lo_row, hi_row, w, s)
        return _acsr(Lq, Lk, pieces)

    return Pattern(Lq, Lk, lambda q, k: (np.abs(q - k) <= reach) & ((q - k) % s == 0),
                   name=f"dilated(w={w}, stride={s})", analytic=build)


def _dilated_ramp(Lk, r0, r1, w, s) -> list[Piece]:
    if r0 >= r1:
        return []
    per_residue = [p for rho in range(r0, min(r1, r0 + s))
                   for p in _band(Lk, rho, r1, s, s, (1, -w * s), (1, w * s))]
    if w > s:
        return per_residue
    # Stretches of s consecutive rows: exact only where the analysis would see one track of
    # row_step 1, which needs the residue-wise clipping to be affine inside each stretch; take
    # them when they are valid and fewer.
    blocks = _dilated_blocks(Lk, r0, r1, w, s)
    return blocks if blocks is not None and len(blocks) <= len(per_residue) else per_residue


def _dilated_blocks(Lk, r0, r1, w, s) -> list[Piece] | None:
    """Row_step-1 cut of a clipped dilated ramp (Lq != Lk or L < 2*w*s).  Builds (offset, count)
    row by row over the ramp and lets the greedy cutter group them; ramps over 8192 rows fall back
    to residue pieces (exact too, maybe more of them than the analysis finds)."""
    if r1 - r0 > 8192:  # keep the per-row form affordable; per-residue pieces are exact too
        return None
    i = np.arange(r0, r1, dtype=np.int64)
    lo = np.where(i - w * s >= 0, i - w * s, i % s)
    hi_raw = np.minimum(i + w * s, Lk - 1)
    hi = hi_raw - (hi_raw - i) % s
    cnt = np.where(hi >= lo, (hi - lo) // s + 1, 0)
    if (cnt <= 0).any():
        return None
    regimes = [(t, t + 1, 0, int(lo[t]), 0, int(cnt[t])) for t in range(i.size)]
    pieces = _greedy_track(regimes, r0, 1, s)
    return pieces


def strided(local: int, stride: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Sparse Transformer "strided": causal, and ``q - k < local`` or ``(q - k) % stride == 0``."""
    l, s = _int("local", local), _int("stride", stride)
    Lq, Lk = _sizes(Lq, Lk)

    def build():
        if s == 1:
            return causal(Lq, Lk).analytic_acsr()
        # When stride divides local, the stride element k = q - local touches the local window
        # and joins it (the analysis sees one interval), otherwise the stride part stops below.
        merged = l % s == 0
        width = l if merged else l - 1
        top = l + s if merged else s * -(-l // s)  # distance of the highest separate element
        if l == 1:  # the local window is the diagonal alone: it chains with the stride part
            width, top = -1, 0
        pieces = _band(Lk, 0, Lq, 1, 1, (1, -width), (1, 0)) if width >= 0 else []
        return _acsr(Lq, Lk, pieces + _strided_part(Lq, Lk, s, top))

    return Pattern(Lq, Lk, lambda q, k: (q >= k) & ((q - k < l) | ((q - k) % s == 0)),
                   name=f"strided(local={l}, stride={s})", analytic=build)


def _strided_part(Lq, Lk, s, top) -> list[Piece]:
    """Columns ``k = q - top - m*s >= 0`` (``top`` a multiple of s): one piece per residue class
    of the row (offset = residue, count grows by one per class row), or one per aligned block of
    s rows (offset grows by one per row, count constant) - whichever is fewer, as the analysis
    chooses.  The block form needs the columns unclipped by Lk."""
    def residue():
        return [p for rho in range(min(s, Lq))
                for p in _band(Lk, rho, Lq, s, s, (1, -(Lq + Lk) * s), (1, -top))]

    # Unclipped, each residue class with rows past `top` is one piece and each block is one.
    if Lq - top > Lk or top >= Lq or -(-(Lq - top) // s) > min(s, Lq - top):
        return residue()
    regimes = [(j * s, min(Lq, j * s + s), 1, -j * s, 0, j - top // s + 1)
               for j in range(top // s, -(-Lq // s))]
    if s >= 3:
        # Every block but the last has >= 3 rows on one line, and the next block's first row is
        # never on it (the offset drops back by s - 1): the greedy cut is one piece per block.
        return [_piece(0, 1, s, t0, t1 - t0, oa, oa * t0 + ob, ca, ca * t0 + cb)
                for t0, t1, oa, ob, ca, cb in regimes]
    return _greedy_track(regimes, 0, 1, s)


def fixed(block: int, summary: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Sparse Transformer "fixed": causal, and same block or ``k % block >= block - summary``."""
    B, c = _int("block", block), _int("summary", summary)
    if c > B:
        raise ValueError(f"summary must be <= block ({B}), got {c}")
    Lq, Lk = _sizes(Lq, Lk)

    def build():
        if c == B:
            return causal(Lq, Lk).analytic_acsr()
        nb = -(-Lq // B)
        if Lq <= Lk:  # no triangle is clipped: the whole table at once, O(L / B) numpy
            return ACSR._from_table(Lq, Lk, _fixed_table(B, c, Lq, Lk), check=False)
        pieces = []
        for b in range(nb):
            # own block, joined with the summary columns of the block before (they touch)
            lo = 0 if b == 0 else b * B - c
            r1 = min(Lq, b * B + B)
            if r1 <= Lk:  # unclipped: one triangle, written directly (this loop is O(L / B))
                pieces.append(_piece(b * B, 1, 1, 0, r1 - b * B, 0, lo, 1, b * B - lo + 1))
            else:
                pieces += _band(Lk, b * B, r1, 1, 1, (0, lo), (1, 0))
        if c == 1:
            # one summary column per block: the analysis chains them into a stride-B run per
            # row block (count = summary columns left of the block before, clipped to Lk)
            n_cols = 0 if Lk < B else (Lk - B) // B + 1
            for b in range(2, nb):
                n = min(b - 1, n_cols)
                if n > 0:
                    pieces.append(_piece(b * B, 1, B, 0, min(Lq, b * B + B) - b * B, 0, B - 1, 0, n))
            return _acsr(Lq, Lk, pieces)
        for j in range(nb - 2):
            # summary of block j, seen by every row two blocks on
            c0, c1 = j * B + B - c, min(j * B + B, Lk)
            if c0 < c1:
                pieces.append(Piece((j + 2) * B, Lq, 1, 1, 0, c0, 0, c1 - c0))
        return _acsr(Lq, Lk, pieces)

    return Pattern(Lq, Lk, lambda q, k: (q >= k) & ((q // B == k // B) | (k % B >= B - c)),
                   name=f"fixed(block={B}, summary={c})", analytic=build)


def _fixed_table(B: int, c: int, Lq: int, Lk: int) -> np.ndarray:
    """Canonical piece table of ``fixed(B, c < B)`` with ``Lq <= Lk``: the loops of ``fixed``'s
    general construction, vectorised (same pieces, same order)."""
    I64 = np.int64
    nb = -(-Lq // B)
    b = np.arange(nb, dtype=I64)
    r0 = b * B
    T = np.minimum(Lq, r0 + B) - r0
    lo = np.where(b == 0, 0, r0 - c)
    tri = np.stack([r0, r0 + T, np.ones(nb, I64), np.ones(nb, I64), np.zeros(nb, I64), lo,
                    (T > 1).astype(I64), r0 - lo + 1], axis=1)
    if c == 1:  # one stride-B run per row block of the summary columns left of the block before
        n_cols = 0 if Lk < B else (Lk - B) // B + 1
        bb = b[2:]
        n = np.minimum(bb - 1, n_cols)
        bb, n = bb[n > 0], n[n > 0]
        m = bb.size
        Ts = np.minimum(Lq, bb * B + B) - bb * B
        summ = np.stack([bb * B, bb * B + Ts, np.ones(m, I64), np.where(n > 1, B, 1), np.zeros(m, I64),
                         np.full(m, B - 1, I64), np.zeros(m, I64), n], axis=1)
    else:  # summary of block j, seen by every row two blocks on
        j = b[:max(nb - 2, 0)]
        c0, c1 = j * B + B - c, np.minimum(j * B + B, Lk)
        j, c0, c1 = j[c0 < c1], c0[c0 < c1], c1[c0 < c1]
        m = j.size
        summ = np.stack([(j + 2) * B, np.full(m, Lq, I64), np.ones(m, I64), np.ones(m, I64),
                         np.zeros(m, I64), c0, np.zeros(m, I64), c1 - c0], axis=1)
    return np.concatenate([tri, summ.reshape(-1, 8)])


def blocked(block: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Block diagonal: ``q // block == k // block``."""
    B = _int("block", block)
    Lq, Lk = _sizes(Lq, Lk)

    def build():
        pieces = []
        for b in range(-(-min(Lq, Lk) // B)):
            r0, r1, c1 = b * B, min(Lq, b * B + B), min(Lk, b * B + B)
            pieces.append(_piece(r0, 1, 1, 0, r1 - r0, 0, r0, 0, c1 - r0))
        return _acsr(Lq, Lk, pieces)

    return Pattern(Lq, Lk, lambda q, k: q // B == k // B, name=f"blocked(block={B})", analytic=build)


def documents(lengths, Lq: int | None = None, Lk: int | None = None, *,
              causal: bool = False) -> Pattern:
    """Packed documents: a query sees the keys of its own document (``causal``: only those not
    after it). ``lengths`` are the documents' lengths in order; they must sum to at most
    ``min(Lq, Lk)`` (default: their sum); rows and keys past the last document see nothing.
    One piece per document, built in O(documents): a new layout every training step costs
    no mask evaluation."""
    lens = np.asarray(lengths)
    if lens.ndim != 1 or lens.size == 0 or not np.issubdtype(lens.dtype, np.integer):
        raise ValueError(f"lengths must be a non-empty 1-D sequence of ints, got {lengths!r:.80}")
    if (lens < 1).any():
        raise ValueError("lengths must all be >= 1")
    total = int(lens.sum())
    Lq, Lk = _sizes(total if Lq is None else Lq, Lk)
    if total > min(Lq, Lk):
        raise ValueError(f"lengths sum to {total}, more than min(Lq, Lk) = {min(Lq, Lk)}")
    ends = np.cumsum(lens.astype(np.int64))
    starts = ends - lens

    def document(x):  # document of each position, -1 past the last (no table of L entries)
        return np.where(x < total, np.searchsorted(ends, x, side="right"), -1)

    def contains(q, k):
        dq, dk = document(q), document(k)
        same = (dq == dk) & (dq >= 0)
        return same & (k <= q) if causal else same

    def build():
        pieces = [_piece(r0, 1, 1, 0, r1 - r0, 0, r0, 1 if causal else 0, 1 if causal else r1 - r0)
                  for r0, r1 in zip(starts.tolist(), ends.tolist())]
        return _acsr(Lq, Lk, pieces)

    kind = "causal_documents" if causal else "documents"
    return Pattern(Lq, Lk, contains, name=f"{kind}(n={lens.size}, total={total})", analytic=build)


def prefix_lm(prefix: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Prefix LM: every query sees the first ``prefix`` keys; past them, attention is causal
    (``k < prefix or k <= q``)."""
    P = _int("prefix", prefix, minimum=0)
    Lq, Lk = _sizes(Lq, Lk)

    def build():
        # rows below the prefix see [0, prefix); the others [0, max(prefix, q + 1))
        head = _band(Lk, 0, min(P, Lq), 1, 1, (0, 0), (0, P - 1)) if P else []
        tail = _band(Lk, min(P, Lq), Lq, 1, 1, (0, 0), (1, 0))
        return _acsr(Lq, Lk, head + tail)

    return Pattern(Lq, Lk, lambda q, k: (k < P) | (k <= q), name=f"prefix_lm(prefix={P})",
                   analytic=build)


def chunked_causal(chunk: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Chunked causal attention: causal within chunks of ``chunk`` tokens
    (``q // chunk == k // chunk and k <= q``), one piece per chunk."""
    C = _int("chunk", chunk)
    Lq, Lk = _sizes(Lq, Lk)

    def build():
        pieces = []
        for r0 in range(0, min(Lq, Lk), C):
            pieces += _band(Lk, r0, min(Lq, r0 + C), 1, 1, (0, r0), (1, 0))
        return _acsr(Lq, Lk, pieces)

    return Pattern(Lq, Lk, lambda q, k: (q // C == k // C) & (k <= q),
                   name=f"chunked_causal(chunk={C})", analytic=build)


def _index_set(name: str, idx, limit: int) -> np.ndarray:
    arr = np.asarray(idx)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise TypeError(f"{name} must be a 1-D sequence of ints, got {arr.dtype} shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= limit):
        raise ValueError(f"{name} must lie in [0, {limit}), got min {arr.min()} max {arr.max()}")
    return np.unique(arr.astype(np.int64))


def _runs_of(sorted_idx: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of consecutive integers as [start, stop) pairs."""
    if sorted_idx.size == 0:
        return []
    brk = np.flatnonzero(np.diff(sorted_idx) != 1) + 1
    starts = np.concatenate([[0], brk])
    stops = np.concatenate([brk, [sorted_idx.size]])
    return [(int(sorted_idx[a]), int(sorted_idx[b - 1]) + 1) for a, b in zip(starts, stops)]


def global_tokens(idx, Lq: int, Lk: int | None = None) -> Pattern:
    """Global tokens: rows in ``idx`` attend every key and every row attends the columns ``idx``
    (indices beyond Lq or Lk only act on the side where they exist)."""
    Lq, Lk = _sizes(Lq, Lk)
    g = _index_set("idx", idx, max(Lq, Lk))
    rows, cols = g[g < Lq], g[g < Lk]
    is_row = np.zeros(Lq, dtype=bool)
    is_row[rows] = True
    is_col = np.zeros(Lk, dtype=bool)
    is_col[cols] = True

    def build():
        # full rows, and per range of the other rows the column runs as the analysis splits a
        # row (intervals, equal-gap singletons chained into strided runs)
        return ACSR._from_table(Lq, Lk, analysis.cross_table(Lq, Lk, rows, cols), check=False)

    p = Pattern(Lq, Lk, lambda q, k: is_row[q] | is_col[k],
                name=f"global_tokens({_short(g)})", analytic=build)
    p._cross = (rows, cols)
    return p


def _short(g: np.ndarray) -> str:
    runs = _runs_of(g)
    return ",".join(f"{a}" if b == a + 1 else f"{a}:{b}" for a, b in runs[:4]) + (",..." if len(runs) > 4 else "")


def random_blocks(block: int, per_row: int, seed: int, Lq: int, Lk: int | None = None) -> Pattern:
    """Each row block attends ``per_row`` distinct random column blocks (numpy
    ``default_rng(seed)``; reproducible)."""
    B, r = _int("block", block), _int("per_row", per_row)
    seed = _int("seed", seed, minimum=0)
    Lq, Lk = _sizes(Lq, Lk)
    nrb, ncb = -(-Lq // B), -(-Lk // B)
    rng = np.random.default_rng(seed)
    chosen = np.zeros((nrb, ncb), dtype=bool)
    idx = np.empty((nrb, min(r, ncb)), dtype=np.int64)
    for rb in range(nrb):
        idx[rb] = rng.choice(ncb, size=min(r, ncb), replace=False)
    idx.sort(axis=1)
    chosen[np.arange(nrb)[:, None], idx] = True

    def build():
        # Column runs of each row block; a run continues the piece above it when the analysis
        # would link it there (left/right alignment by least movement, as in
        # analysis.tracks.order_by_track) and it is the same run.  Only row blocks holding a run
        # equal to one of the block above can continue anything, so the alignment runs on those
        # few pairs only.
        rb, c0, c1 = _block_runs(idx, B, Lk)
        n = rb.size
        K = (Lk + 1) * (Lk + 1)
        key = rb * K + c0 * (Lk + 1) + c1  # ascending: row-block major, runs left to right
        q = key - K
        pos = np.minimum(np.searchsorted(key, q), n - 1)
        hit = np.flatnonzero((rb > 0) & (key[pos] == q))
        head = np.arange(n)
        if hit.size:
            first = np.searchsorted(rb, np.arange(nrb + 1))
            runs = list(zip(c0.tolist(), c1.tolist()))
            for b in np.unique(rb[hit]).tolist():
                prev, cur = runs[first[b - 1]:first[b]], runs[first[b]:first[b + 1]]
                shift = _align(prev, cur)
                for k, run in enumerate(cur):
                    j = k - shift
                    if 0 <= j < len(prev) and prev[j] == run:
                        head[first[b] + k] = head[first[b - 1] + j]
        last = rb.copy()
        np.maximum.at(last, head, rb)
        h = np.flatnonzero(head == np.arange(n))
        tab = _rect_table(rb[h] * B, np.minimum(Lq, last[h] * B + B), c0[h], c1[h])
        return ACSR._from_table(Lq, Lk, tab, check=False)

    p = Pattern(Lq, Lk, lambda q, k: chosen[q // B, k // B],
                name=f"random_blocks(block={B}, per_row={r}, seed={seed})", analytic=build)
    p._chosen_idx = idx
    return p


def _align(prev: list[tuple[int, int]], cur: list[tuple[int, int]]) -> int:
    """The shift with which the analysis pairs run k of ``cur`` with run k - shift of ``prev``
    (runs are [start, stop) intervals; mirrors analysis.tracks.order_by_track)."""
    d = len(cur) - len(prev)

    def stats(sh):  # (#pairs that moved little, total movement)
        good = move = 0
        for k in range(len(cur)):
            if 0 <= k - sh < len(prev):
                do, dl = abs(cur[k][0] - prev[k - sh][0]), abs(cur[k][1] - prev[k - sh][1])
                good += do <= 4 or dl <= 4  # stride-1 runs: "near" is 2 + 2*stride
                move += do + dl
        return good, move

    shift = d if d and stats(d)[1] < stats(0)[1] else 0
    best = stats(shift)
    if best[0] < min(len(prev), len(cur)):
        for c in (d, -1, 1, d - 1, d + 1):
            g, m = stats(c)
            if g > best[0] or (g == best[0] and m < best[1]):
                shift, best = c, (g, m)
    return shift


def longformer(w: int, globals, Lq: int, Lk: int | None = None) -> Pattern:
    """Longformer: sliding window ``w`` plus global tokens (analytic ACSR: ``_union_acsr``)."""
    p = window(w, Lq, Lk) | global_tokens(globals, Lq, Lk)
    g = _index_set("globals", globals, max(p.Lq, p.Lk))
    p.name = f"longformer(w={w}, globals={_short(g)})"
    p._analytic = lambda: _union_acsr(p.Lq, p.Lk, int(w), g, None, None)
    p._intervals = None  # intervals come from the analytic ACSR
    return p


def bigbird(w: int, globals, random: int, block: int, seed: int, Lq: int, Lk: int | None = None) -> Pattern:
    """BigBird: sliding window ``w``, global tokens and ``random`` random blocks per row block
    (analytic ACSR: ``_union_acsr``)."""
    rbp = random_blocks(block, random, seed, Lq, Lk)
    p = window(w, Lq, Lk) | global_tokens(globals, Lq, Lk) | rbp
    g = _index_set("globals", globals, max(p.Lq, p.Lk))
    chosen = rbp._chosen_idx
    p.name = f"bigbird(w={w}, random={random}, block={block}, seed={seed})"
    p._analytic = lambda: _union_acsr(p.Lq, p.Lk, int(w), g, int(block), chosen)
    p._intervals = None
    return p


# ---------------------------------------------------------------------------------------------
# Arbitrary masks
# ---------------------------------------------------------------------------------------------

def from_mask(mask) -> Pattern:
    """A pattern from an explicit bool ``(Lq, Lk)`` ndarray (copied)."""
    m = analysis.check_mask(mask).copy()
    m.setflags(write=False)
    Lq, Lk = m.shape
    p = Pattern(Lq, Lk, lambda q, k: m[q, k], name=f"mask({Lq}x{Lk})",
                intervals=lambda: analysis.intervals_from_mask(m))
    p.mask_rows = lambda i0, i1: m[i0:i1]  # rows are already there
    return p


def from_mask_fn(fn: Callable, Lq: int, Lk: int | None = None, *, name: str | None = None) -> Pattern:
    """A pattern from a vectorised predicate ``fn(q_idx, k_idx) -> bool array``; it is called on
    row chunks with ``q_idx`` of shape ``(rows, 1)`` and ``k_idx`` of shape ``(1, Lk)`` and must
    return a bool array of shape ``(rows, Lk)``."""
    if not callable(fn):
        raise TypeError(f"fn must be callable fn(q_idx, k_idx) -> bool array, got {type(fn).__name__}")
    Lq, Lk = _sizes(Lq, Lk)

    def checked(q, k):
        out = fn(q, k)
        shape = np.broadcast_shapes(np.shape(q), np.shape(k))
        if not isinstance(out, np.ndarray) or out.dtype != np.bool_:
            raise TypeError(f"mask fn must return a bool ndarray, got "
                            f"{getattr(out, 'dtype', type(out).__name__)}")
        if out.shape != shape:
            raise ValueError(f"mask fn returned shape {out.shape}, expected {shape} "
                             f"(the broadcast of q_idx {np.shape(q)} and k_idx {np.shape(k)})")
        return out

    return Pattern(Lq, Lk, checked, name=name or getattr(fn, "__name__", "mask_fn"))
