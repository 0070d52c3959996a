"""The :class:`Pattern`: an ``Lq x Lk`` mask as a vectorised predicate, its ACSR (analytic for
the named families, analysed otherwise), and ``|`` / ``&`` of patterns (package docstring)."""

from __future__ import annotations

import functools
import operator
from typing import Callable

import numpy as np

from .. import analysis
from ..analysis.acsr import ACSR

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
