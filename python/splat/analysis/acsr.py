"""ACSR: an attention mask as a disjoint union of affine pieces plus a block remainder.

This module is the data model of docs/design.md section 1, implemented exactly:

* ``Piece(r0, r1, row_step, stride, off_a, off_b, cnt_a, cnt_b)`` covers the rows
  ``i = r0 + row_step*t`` (``t = 0 .. T-1``, ``T = ceil((r1-r0)/row_step)``); row ``t`` holds
  the columns ``off_a*t + off_b + stride*j`` for ``0 <= j < cnt_a*t + cnt_b``.
* ``BlockRemainder(block, blocks, masks)`` holds what no piece covers, as sorted unique
  ``(row_block, col_block)`` pairs with a ``bool[block, block]`` mask each.
* ``ACSR(Lq, Lk, pieces, remainder)`` is the whole mask.

Everything here is plain numpy; nothing imports MLIR.  Materialisation (``to_mask``,
``mask_rows``) works in row chunks so that the temporaries stay small even at L = 32K.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from functools import cached_property
from itertools import repeat
from struct import iter_unpack
from typing import Iterator

import numpy as np

__all__ = ["Piece", "BlockRemainder", "ACSR"]

# Rows per materialisation chunk are chosen so that a chunk has about this many cells.
_CHUNK_CELLS = 1 << 23

_PIECE_FIELDS = ("r0", "r1", "row_step", "stride", "off_a", "off_b", "cnt_a", "cnt_b")


def _as_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return int(value)


@dataclass(frozen=True)
class Piece:
    """One affine piece.  Only the structural invariants that need no matrix size are checked
    here (``0 <= r0 < r1``, ``row_step >= 1``, ``stride >= 1``); bounds against ``Lq x Lk``,
    non-negative counts and disjointness are checked by :meth:`ACSR.validate`."""

    r0: int
    r1: int
    row_step: int
    stride: int
    off_a: int
    off_b: int
    cnt_a: int
    cnt_b: int

    def __post_init__(self):
        values = (self.r0, self.r1, self.row_step, self.stride, self.off_a, self.off_b, self.cnt_a, self.cnt_b)
        if not all(type(v) is int for v in values):  # fast path: plain ints need no conversion
            for name in _PIECE_FIELDS:
                object.__setattr__(self, name, _as_int(name, getattr(self, name)))
        if not 0 <= self.r0 < self.r1:
            raise ValueError(f"piece rows need 0 <= r0 < r1, got r0={self.r0} r1={self.r1}")
        if self.row_step < 1:
            raise ValueError(f"piece row_step must be >= 1, got {self.row_step}")
        if self.stride < 1:
            raise ValueError(f"piece stride must be >= 1, got {self.stride}")

    # -- shape -------------------------------------------------------------------------------
    @property
    def T(self) -> int:
        """Number of rows of the piece."""
        return -(-(self.r1 - self.r0) // self.row_step)

    @property
    def last_row(self) -> int:
        return self.r0 + self.row_step * (self.T - 1)

    def rows(self) -> np.ndarray:
        return self.r0 + self.row_step * np.arange(self.T, dtype=np.int64)

    def offsets(self) -> np.ndarray:
        return self.off_a * np.arange(self.T, dtype=np.int64) + self.off_b

    def counts(self) -> np.ndarray:
        return self.cnt_a * np.arange(self.T, dtype=np.int64) + self.cnt_b

    def offset(self, t: int) -> int:
        return self.off_a * t + self.off_b

    def count(self, t: int) -> int:
        return self.cnt_a * t + self.cnt_b

    def columns(self, t: int) -> np.ndarray:
        """Columns of local row ``t`` (ascending)."""
        if not 0 <= t < self.T:
            raise IndexError(f"local row t={t} outside 0..{self.T - 1}")
        return self.offset(t) + self.stride * np.arange(max(self.count(t), 0), dtype=np.int64)

    @property
    def nnz(self) -> int:
        T = self.T
        return self.cnt_a * T * (T - 1) // 2 + self.cnt_b * T

    def local_row(self, i: int) -> int | None:
        """Local index ``t`` of global row ``i``, or None when the piece does not cover it."""
        d = i - self.r0
        if d < 0 or i >= self.r1 or d % self.row_step:
            return None
        return d // self.row_step

    # -- canonical form ----------------------------------------------------------------------
    def normalized(self) -> "Piece":
        """The same set of (row, col) with the free parameters fixed: ``r1 = last row + 1``,
        coefficients that no row can observe set to 0 (``off_a``, ``cnt_a`` of one-row pieces,
        ``row_step`` of one-row pieces = 1, ``stride`` of pieces whose rows hold <= 1 column = 1)."""
        T = self.T
        row_step, off_a, cnt_a = self.row_step, self.off_a, self.cnt_a
        if T == 1:
            row_step, off_a, cnt_a = 1, 0, 0
        stride = self.stride
        if max(self.cnt_b, self.cnt_a * (T - 1) + self.cnt_b) <= 1:
            stride = 1
        return Piece(self.r0, self.r0 + row_step * (T - 1) + 1, row_step, stride,
                     off_a, self.off_b, cnt_a, self.cnt_b)

    def as_tuple(self) -> tuple[int, ...]:
        return tuple(getattr(self, n) for n in _PIECE_FIELDS)

    def to_text(self) -> str:
        return (f"piece rows={self.r0}:{self.r1}:{self.row_step} stride={self.stride} "
                f"offset={self.off_a}*t{self.off_b:+d} count={self.cnt_a}*t{self.cnt_b:+d}")

    def __str__(self) -> str:
        return self.to_text()


def _structural(tab: np.ndarray) -> bool:
    """Every row of an int ``[n, 8]`` piece table has ``0 <= r0 < r1``, ``row_step, stride >= 1``
    (what ``Piece()`` checks)."""
    return bool(((tab[:, 0] >= 0) & (tab[:, 1] > tab[:, 0]) & (tab[:, 2] >= 1) & (tab[:, 3] >= 1)).all())


def pieces_from_table(tab: np.ndarray, *, check: bool = True) -> list[Piece]:
    """Pieces from an int ``[n, 8]`` table of the fields in order.  The structural invariants
    that ``Piece()`` checks one by one (``0 <= r0 < r1``, ``row_step, stride >= 1``) are checked
    on the whole table (``check=False``: the caller built the table so, as the analytic
    constructors do); then the dataclass ``__init__`` (about 2 us a piece, most of an analytic
    constructor's time at 16K) is skipped.  The fields are the same plain ints, so equality,
    hashing and ``validate()`` see ordinary Pieces.  A table that breaks an invariant goes
    through ``Piece()``, which names the bad field."""
    tab = np.ascontiguousarray(tab, dtype=np.int64)
    if check and not _structural(tab):
        return [Piece(*t) for t in tab.tolist()]
    # object.__new__ for all pieces in one C-level map, then the fields written straight into
    # each instance's (key-sharing) __dict__, in field order: ~0.5 us a piece.  The rows come
    # as tuples from struct (native int64, as numpy's): a little cheaper than tolist()'s lists.
    out = list(map(object.__new__, repeat(Piece, tab.shape[0])))
    for p, (r0, r1, rs, s, oa, ob, ca, cb) in zip(out, iter_unpack("8q", tab.tobytes())):
        d = p.__dict__
        d["r0"] = r0; d["r1"] = r1; d["row_step"] = rs; d["stride"] = s  # noqa: E702
        d["off_a"] = oa; d["off_b"] = ob; d["cnt_a"] = ca; d["cnt_b"] = cb  # noqa: E702
    return out


@dataclass(frozen=True, eq=False)
class BlockRemainder:
    """Irregular leftovers: ``masks[n]`` is the ``block x block`` mask of block ``blocks[n]``
    (``(row_block, col_block)``, sorted and unique)."""

    block: int
    blocks: np.ndarray
    masks: np.ndarray

    def __post_init__(self):
        block = _as_int("block", self.block)
        if block < 1:
            raise ValueError(f"remainder block must be >= 1, got {block}")
        blocks = np.asarray(self.blocks)
        masks = np.asarray(self.masks)
        if blocks.size == 0:
            blocks = blocks.reshape(0, 2)
        if blocks.ndim != 2 or blocks.shape[1] != 2 or (blocks.size and blocks.dtype.kind not in "iu"):
            raise ValueError(f"remainder blocks must be an int array [n, 2], got shape {blocks.shape}")
        if masks.dtype != np.bool_ or masks.shape != (blocks.shape[0], block, block):
            raise ValueError(f"remainder masks must be bool [n={blocks.shape[0]}, {block}, {block}], "
                             f"got {masks.dtype} {masks.shape}")
        blocks = np.ascontiguousarray(blocks, dtype=np.int32)
        blocks.setflags(write=False)
        masks = np.ascontiguousarray(masks)
        masks.setflags(write=False)
        object.__setattr__(self, "block", block)
        object.__setattr__(self, "blocks", blocks)
        object.__setattr__(self, "masks", masks)

    @property
    def n(self) -> int:
        return int(self.blocks.shape[0])

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.masks))

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) int64 of every remainder element, sorted by row then column."""
        n, r, c = np.nonzero(self.masks)
        rows = self.blocks[n, 0].astype(np.int64) * self.block + r
        cols = self.blocks[n, 1].astype(np.int64) * self.block + c
        order = np.lexsort((cols, rows))
        return rows[order], cols[order]

    def __eq__(self, other) -> bool:
        if not isinstance(other, BlockRemainder):
            return NotImplemented
        return (self.block == other.block and np.array_equal(self.blocks, other.blocks)
                and np.array_equal(self.masks, other.masks))

    __hash__ = None  # arrays inside: equality by content, not hashable


@dataclass(frozen=True, eq=False)
class ACSR:
    """An ``Lq x Lk`` mask as disjoint affine pieces plus an optional block remainder."""

    Lq: int
    Lk: int
    pieces: tuple[Piece, ...] = ()
    remainder: BlockRemainder | None = None

    def __post_init__(self):
        Lq, Lk = _as_int("Lq", self.Lq), _as_int("Lk", self.Lk)
        if Lq < 1 or Lk < 1:
            raise ValueError(f"ACSR needs Lq >= 1 and Lk >= 1, got Lq={Lq} Lk={Lk}")
        pieces = tuple(self.pieces)
        for n, p in enumerate(pieces):
            if not isinstance(p, Piece):
                raise TypeError(f"pieces[{n}] must be a Piece, got {type(p).__name__}")
        if self.remainder is not None and not isinstance(self.remainder, BlockRemainder):
            raise TypeError(f"remainder must be a BlockRemainder or None, got {type(self.remainder).__name__}")
        if self.remainder is not None and self.remainder.n == 0:
            object.__setattr__(self, "remainder", None)  # an empty remainder is spelled None
        object.__setattr__(self, "Lq", Lq)
        object.__setattr__(self, "Lk", Lk)
        object.__setattr__(self, "pieces", pieces)

    @classmethod
    def _trusted(cls, Lq: int, Lk: int, pieces: tuple, remainder: BlockRemainder | None = None) -> "ACSR":
        """Internal construction without the ``__post_init__`` checks, for callers that built
        every argument themselves: ``Lq, Lk >= 1`` plain ints, ``pieces`` a tuple of
        :class:`Piece`, ``remainder`` a :class:`BlockRemainder` or None.  The result is the
        same object the public constructor would give (an empty remainder becomes None)."""
        return cls._bare(Lq, Lk, remainder, pieces=pieces)

    @classmethod
    def _bare(cls, Lq: int, Lk: int, remainder: BlockRemainder | None, **fields) -> "ACSR":
        """An instance with its ``__dict__`` written directly: no ``__init__`` checks."""
        self = object.__new__(cls)
        d = self.__dict__
        d["Lq"] = Lq; d["Lk"] = Lk  # noqa: E702
        d.update(fields)
        d["remainder"] = remainder if remainder is not None and remainder.n else None
        return self

    @classmethod
    def _from_table(cls, Lq: int, Lk: int, tab: np.ndarray, remainder: BlockRemainder | None = None,
                    *, check: bool = True) -> "ACSR":
        """Internal construction from an int ``[P, 8]`` table of canonical piece fields (as
        :meth:`_trusted`; ``check`` as in :func:`pieces_from_table`).  The :class:`Piece`
        objects (about 1 us each, most of a constructor's time for hundreds of pieces) are made
        on the first use of ``pieces``; :attr:`table` is ready at once."""
        tab = np.ascontiguousarray(tab, dtype=np.int64).reshape(-1, len(_PIECE_FIELDS))
        if check and not _structural(tab):
            return cls._trusted(Lq, Lk, tuple(Piece(*t) for t in tab.tolist()), remainder)  # raises
        t = np.empty((tab.shape[0], 9), dtype=np.int64)
        t[:, :8] = tab
        t[:, 8] = -(-(tab[:, 1] - tab[:, 0]) // tab[:, 2])
        t.setflags(write=False)
        return cls._bare(Lq, Lk, remainder, table=t)

    # -- vectorised piece table --------------------------------------------------------------
    @cached_property
    def table(self) -> np.ndarray:
        """``int64 [P, 9]``: the 8 piece fields followed by T, one row per piece."""
        if not self.pieces:
            return np.zeros((0, 9), dtype=np.int64)
        t = np.array([p.as_tuple() + (p.T,) for p in self.pieces], dtype=np.int64)
        t.setflags(write=False)
        return t

    # -- sizes -------------------------------------------------------------------------------
    @property
    def nnz(self) -> int:
        n = sum(p.nnz for p in self.pieces)
        return n + (self.remainder.nnz if self.remainder is not None else 0)

    @property
    def density(self) -> float:
        return self.nnz / (self.Lq * self.Lk)

    def row_nnz(self) -> np.ndarray:
        """``int64 [Lq]``: number of allowed keys of each query row."""
        out = np.zeros(self.Lq, dtype=np.int64)
        for p in self.pieces:
            out[p.r0:p.r1:p.row_step] += p.counts()
        rem = self.remainder
        if rem is not None:
            B = rem.block
            per_row = rem.masks.sum(axis=2)  # [n, B]
            rows = rem.blocks[:, 0:1].astype(np.int64) * B + np.arange(B)
            keep = rows < self.Lq
            np.add.at(out, rows[keep], per_row[keep])
        return out

    @property
    def max_row_nnz(self) -> int:
        return int(self.row_nnz().max(initial=0))

    # -- materialisation ---------------------------------------------------------------------
    def _chunk_rows(self) -> int:
        rows = max(1, _CHUNK_CELLS // self.Lk)
        if self.remainder is not None:  # keep remainder blocks whole inside a chunk
            B = self.remainder.block
            rows = max(B, rows // B * B)
        return rows

    def iter_mask_chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(i0, mask[i0:i1])`` over row chunks of bounded size."""
        step = self._chunk_rows()
        for i0 in range(0, self.Lq, step):
            yield i0, self.mask_rows(i0, min(i0 + step, self.Lq))

    def to_mask(self) -> np.ndarray:
        out = np.zeros((self.Lq, self.Lk), dtype=bool)
        step = self._chunk_rows()
        for i0 in range(0, self.Lq, step):
            i1 = min(i0 + step, self.Lq)
            self._fill_rows(out[i0:i1], i0, i1)
        return out

    def mask_rows(self, i0: int, i1: int) -> np.ndarray:
        """``bool [i1-i0, Lk]``: rows ``i0 .. i1-1`` of the mask."""
        if not 0 <= i0 <= i1 <= self.Lq:
            raise ValueError(f"row range {i0}:{i1} outside 0:{self.Lq}")
        out = np.zeros((i1 - i0, self.Lk), dtype=bool)
        self._fill_rows(out, i0, i1)
        return out

    def _fill_rows(self, out: np.ndarray, i0: int, i1: int) -> None:
        nrows = i1 - i0
        # Dense pieces go through a difference array per stride (one cumsum per stride, cost
        # O(rows*Lk)); sparse ones are scattered directly (cost O(nnz)).
        diffs: dict[int, np.ndarray] = {}
        for p in self.pieces:
            t_lo = max(0, -(-(i0 - p.r0) // p.row_step))
            t_hi = min(p.T, -(-(i1 - p.r0) // p.row_step))
            if t_lo >= t_hi:
                continue
            t = np.arange(t_lo, t_hi, dtype=np.int64)
            rows = p.r0 + p.row_step * t - i0
            offs = p.off_a * t + p.off_b
            cnts = np.maximum(p.cnt_a * t + p.cnt_b, 0)
            total = int(cnts.sum())
            if total == 0:
                continue
            if total * 8 < nrows * self.Lk:
                starts = np.cumsum(cnts) - cnts
                j = np.arange(total, dtype=np.int64) - np.repeat(starts, cnts)
                out[np.repeat(rows, cnts), np.repeat(offs, cnts) + p.stride * j] = True
            else:
                s = p.stride
                d = diffs.get(s)
                if d is None:
                    width = -(-(self.Lk + 1) // s) * s + s
                    d = diffs[s] = np.zeros((nrows, width), dtype=np.int8)
                keep = cnts > 0
                d[rows[keep], offs[keep]] += 1
                d[rows[keep], offs[keep] + s * cnts[keep]] -= 1
        for s, d in diffs.items():
            # Column c is covered iff the running sum over c, c-s, c-2s, ... is positive:
            # a cumsum along the block axis of the (rows, width/s, s) view.
            acc = np.cumsum(d.reshape(nrows, -1, s), axis=1, dtype=np.int8).reshape(nrows, -1)
            out |= acc[:, :self.Lk] > 0
        if self.remainder is not None:
            self._fill_remainder(out, i0, i1)

    def _fill_remainder(self, out: np.ndarray, i0: int, i1: int) -> None:
        rem = self.remainder
        B = rem.block
        rb0, rb1 = i0 // B, -(-i1 // B)
        sel = (rem.blocks[:, 0] >= rb0) & (rem.blocks[:, 0] < rb1)
        if not sel.any():
            return
        ncb = -(-self.Lk // B)
        pad = np.zeros((rb1 - rb0, B, ncb, B), dtype=bool)
        pad[rem.blocks[sel, 0] - rb0, :, rem.blocks[sel, 1], :] = rem.masks[sel]
        pad = pad.reshape((rb1 - rb0) * B, ncb * B)
        out |= pad[i0 - rb0 * B:i1 - rb0 * B, :self.Lk]

    def row_columns(self, i: int) -> np.ndarray:
        """Sorted columns of row ``i``."""
        if not 0 <= i < self.Lq:
            raise IndexError(f"row {i} outside 0..{self.Lq - 1}")
        parts = []
        for p in self.pieces:
            t = p.local_row(i)
            if t is not None:
                parts.append(p.columns(t))
        rem = self.remainder
        if rem is not None:
            B = rem.block
            for n in np.flatnonzero(rem.blocks[:, 0] == i // B):
                cols = rem.blocks[n, 1] * B + np.flatnonzero(rem.masks[n, i % B])
                parts.append(cols.astype(np.int64))
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate(parts))

    # -- validation --------------------------------------------------------------------------
    def validate(self) -> "ACSR":
        """Check bounds, counts and disjointness; raise ValueError naming the offending piece.
        Returns self so that it chains."""
        for n, p in enumerate(self.pieces):
            self._validate_piece(n, p)
        for a, b, where in _overlapping_pairs(self.pieces):
            raise ValueError(f"pieces {a} and {b} overlap at (row, col) = {where}: "
                             f"[{a}] {self.pieces[a]} / [{b}] {self.pieces[b]}")
        if self.remainder is not None:
            self._validate_remainder()
        return self

    def _validate_piece(self, n: int, p: Piece) -> None:
        where = f"piece {n} ({p})"
        if p.r1 > self.Lq:
            raise ValueError(f"{where}: rows end at r1={p.r1} > Lq={self.Lq}")
        T = p.T
        if p.count(0) < 0 or p.count(T - 1) < 0:
            raise ValueError(f"{where}: negative count (count(0)={p.count(0)}, count({T - 1})={p.count(T - 1)})")
        # count is affine and >= 0 at both ends, so the rows that hold columns are an interval
        # [t0, t1]; the first and last columns are affine in t, so checking the ends suffices.
        t0, t1 = _positive_interval(p.cnt_a, p.cnt_b, T)
        for t in (t0, t1):
            if t is None:
                continue
            first, last = p.offset(t), p.offset(t) + p.stride * (p.count(t) - 1)
            if first < 0 or last >= self.Lk:
                raise ValueError(f"{where}: row {p.r0 + p.row_step * t} has columns "
                                 f"{first}..{last} outside [0, {self.Lk})")

    def _validate_remainder(self) -> None:
        rem = self.remainder
        B = rem.block
        b = rem.blocks.astype(np.int64)
        key = b[:, 0] * (self.Lk // B + 2) + b[:, 1]
        if rem.n > 1 and not np.all(np.diff(key) > 0):
            raise ValueError("remainder blocks must be sorted and unique (row_block, col_block)")
        if (b < 0).any() or (b[:, 0] * B >= self.Lq).any() or (b[:, 1] * B >= self.Lk).any():
            raise ValueError(f"remainder block index outside the {self.Lq}x{self.Lk} matrix")
        rows = b[:, 0:1] * B + np.arange(B)  # [n, B]
        cols = b[:, 1:2] * B + np.arange(B)
        outside = (rows[:, :, None] >= self.Lq) | (cols[:, None, :] >= self.Lk)
        if (rem.masks & outside).any():
            raise ValueError("remainder masks set elements outside the matrix (edge blocks must be clipped)")
        # The remainder must not repeat what a piece covers.
        pieces_only = ACSR(self.Lq, self.Lk, self.pieces)
        for n in range(rem.n):
            r0, c0 = int(b[n, 0]) * B, int(b[n, 1]) * B
            r1, c1 = min(r0 + B, self.Lq), min(c0 + B, self.Lk)
            covered = pieces_only.mask_rows(r0, r1)[:, c0:c1]
            both = covered & rem.masks[n, :r1 - r0, :c1 - c0]
            if both.any():
                r, c = np.argwhere(both)[0]
                raise ValueError(f"remainder block {tuple(b[n])} overlaps a piece at "
                                 f"(row, col) = ({r0 + r}, {c0 + c})")

    # -- canonical form and equality ---------------------------------------------------------
    def normalized(self) -> "ACSR":
        """Pieces in canonical form, sorted by (r0, first column, ...)."""
        pieces = sorted((p.normalized() for p in self.pieces),
                        key=lambda p: (p.r0, p.off_b, p.row_step, p.as_tuple()))
        return ACSR(self.Lq, self.Lk, tuple(pieces), self.remainder)

    def __eq__(self, other) -> bool:
        """Equal content: same sizes, the same pieces (as a set, each in canonical form) and the
        same remainder.  Two different decompositions of one mask are *not* equal; compare
        ``to_mask()`` for that."""
        if not isinstance(other, ACSR):
            return NotImplemented
        if (self.Lq, self.Lk) != (other.Lq, other.Lk) or len(self.pieces) != len(other.pieces):
            return False
        if self.normalized().pieces != other.normalized().pieces:
            return False
        return self.remainder == other.remainder

    __hash__ = None

    # -- text form ---------------------------------------------------------------------------
    def to_text(self) -> str:
        """Compact text: a header line, one line per piece, then the remainder blocks (mask bits
        packed row-major and base64-encoded)."""
        rem = self.remainder
        lines = [f"acsr Lq={self.Lq} Lk={self.Lk} pieces={len(self.pieces)} "
                 f"remainder={rem.n if rem is not None else 0}"
                 + (f" block={rem.block}" if rem is not None else "")]
        lines += [p.to_text() for p in self.pieces]
        if rem is not None:
            for (rb, cb), m in zip(rem.blocks, rem.masks):
                bits = base64.b64encode(np.packbits(m).tobytes()).decode("ascii")
                lines.append(f"block {rb} {cb} {bits}")
        return "\n".join(lines)

    @classmethod
    def from_text(cls, text: str) -> "ACSR":
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        if not lines or not lines[0].startswith("acsr "):
            raise ValueError("ACSR text must start with an 'acsr Lq=.. Lk=..' header line")
        head = dict(kv.split("=", 1) for kv in lines[0].split()[1:])
        try:
            Lq, Lk, npieces, nblocks = (int(head[k]) for k in ("Lq", "Lk", "pieces", "remainder"))
        except (KeyError, ValueError) as e:
            raise ValueError(f"bad ACSR header {lines[0]!r}") from e
        if len(lines) != 1 + npieces + nblocks:
            raise ValueError(f"ACSR text has {len(lines) - 1} body lines, header says "
                             f"{npieces} pieces + {nblocks} blocks")
        pieces = tuple(_parse_piece(ln) for ln in lines[1:1 + npieces])
        remainder = None
        if nblocks:
            B = int(head["block"])
            blocks, masks = [], []
            for ln in lines[1 + npieces:]:
                tag, rb, cb, bits = ln.split()
                if tag != "block":
                    raise ValueError(f"expected a 'block rb cb bits' line, got {ln!r}")
                raw = np.frombuffer(base64.b64decode(bits), dtype=np.uint8)
                masks.append(np.unpackbits(raw, count=B * B).astype(bool).reshape(B, B))
                blocks.append((int(rb), int(cb)))
            remainder = BlockRemainder(B, np.array(blocks, dtype=np.int32), np.array(masks))
        return cls(Lq, Lk, pieces, remainder)

    # -- plain dict form ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain ints and lists (JSON-ready).  ``pieces`` rows are the 8 piece fields in design
        order; remainder ``masks`` is a nested 0/1 list of shape ``[n, block, block]``."""
        rem = self.remainder
        return {
            "Lq": self.Lq,
            "Lk": self.Lk,
            "pieces": [list(p.as_tuple()) for p in self.pieces],
            "remainder": None if rem is None else {
                "block": rem.block,
                "blocks": rem.blocks.tolist(),
                "masks": rem.masks.astype(np.uint8).tolist(),
            },
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ACSR":
        pieces = tuple(Piece(*row) for row in d["pieces"])
        rem = d.get("remainder")
        remainder = None
        if rem is not None:
            B = int(rem["block"])
            blocks = np.array(rem["blocks"], dtype=np.int32).reshape(-1, 2)
            masks = np.array(rem["masks"], dtype=np.uint8).astype(bool).reshape(-1, B, B)
            remainder = BlockRemainder(B, blocks, masks)
        return cls(int(d["Lq"]), int(d["Lk"]), pieces, remainder)

    def summary(self) -> str:
        rem = self.remainder
        return (f"ACSR {self.Lq}x{self.Lk}: {len(self.pieces)} pieces, "
                f"{rem.n if rem is not None else 0} remainder blocks, nnz={self.nnz} "
                f"(density {self.density:.4f})")

    def __repr__(self) -> str:
        return f"<{self.summary()}>"


# -- helpers -----------------------------------------------------------------------------------

def _parse_piece(line: str) -> Piece:
    try:
        tag, rows, stride, offset, count = line.split()
        if tag != "piece":
            raise ValueError
        r0, r1, step = (int(x) for x in rows.removeprefix("rows=").split(":"))
        s = int(stride.removeprefix("stride="))
        oa, ob = _parse_affine(offset.removeprefix("offset="))
        ca, cb = _parse_affine(count.removeprefix("count="))
    except ValueError as e:
        raise ValueError(f"bad piece line {line!r}; expected "
                         f"'piece rows=r0:r1:step stride=s offset=a*t+b count=a*t+b'") from e
    return Piece(r0, r1, step, s, oa, ob, ca, cb)


def _parse_affine(text: str) -> tuple[int, int]:
    a, b = text.split("*t", 1)
    return int(a), int(b)  # b keeps its sign: "+5" or "-3"


def _positive_interval(a: int, b: int, T: int) -> tuple[int | None, int | None]:
    """The first and last t in [0, T) with a*t + b > 0 (an interval, since the map is affine);
    (None, None) when there is none."""
    if a == 0:
        return (0, T - 1) if b > 0 else (None, None)
    if a > 0:  # a*t + b > 0  <=>  t > -b/a  <=>  t >= floor(-b/a) + 1
        t0 = max(0, (-b) // a + 1)
        return (t0, T - 1) if t0 <= T - 1 else (None, None)
    t1 = min(T - 1, (b - 1) // -a)  # a*t + b > 0  <=>  t < b/|a|  <=>  t <= floor((b-1)/|a|)
    return (0, t1) if t1 >= 0 else (None, None)


def _bbox(p: Piece) -> tuple[int, int, int, int] | None:
    """(first row, last row, min col, max col) over the rows that hold columns."""
    t0, t1 = _positive_interval(p.cnt_a, p.cnt_b, p.T)
    if t0 is None:
        return None
    lo = min(p.offset(t0), p.offset(t1))
    hi = max(p.offset(t) + p.stride * (p.count(t) - 1) for t in (t0, t1))
    return p.r0 + p.row_step * t0, p.r0 + p.row_step * t1, lo, hi


class _PiecesFromTable:
    """``ACSR.pieces`` of an ACSR made by ``ACSR._from_table``: built from its table on first
    use and then kept in the instance (whose own ``pieces`` shadows this class attribute, as for
    every ACSR made by the constructor)."""

    def __get__(self, obj, cls=None):
        if obj is None:
            return ()
        pieces = tuple(pieces_from_table(obj.table[:, :8], check=False))
        obj.__dict__["pieces"] = pieces
        return pieces


ACSR.pieces = _PiecesFromTable()  # after @dataclass: __init__ keeps its own default ()


def _overlapping_pairs(pieces: tuple[Piece, ...]):
    """Yield (a, b, (row, col)) for the first overlapping pair found.  Pairs are rejected by
    bounding box first (vectorised); survivors are checked exactly on their shared rows."""
    boxes = [(n, _bbox(p)) for n, p in enumerate(pieces)]
    boxes = [(n, b) for n, b in boxes if b is not None]
    if len(boxes) < 2:
        return
    idx = np.array([n for n, _ in boxes])
    bb = np.array([b for _, b in boxes], dtype=np.int64)
    order = np.argsort(bb[:, 0], kind="stable")
    idx, bb = idx[order], bb[order]
    for k in range(len(idx) - 1):
        # Candidates: later pieces (by first row) whose row and column ranges meet this one's.
        rest = slice(k + 1, len(idx))
        hit = ((bb[rest, 0] <= bb[k, 1]) & (bb[rest, 2] <= bb[k, 3]) & (bb[rest, 3] >= bb[k, 2]))
        for m in np.flatnonzero(hit) + k + 1:
            a, b = int(idx[k]), int(idx[m])
            where = _first_overlap(pieces[a], pieces[b])
            if where is not None:
                yield min(a, b), max(a, b), where
                return


def _first_overlap(p: Piece, q: Piece) -> tuple[int, int] | None:
    """First (row, col) covered by both pieces, or None.  Exact, vectorised over shared rows."""
    lo, hi = max(p.r0, q.r0), min(p.r1, q.r1)
    if lo >= hi:
        return None
    rows = np.arange(lo, hi, dtype=np.int64)
    rows = rows[((rows - p.r0) % p.row_step == 0) & ((rows - q.r0) % q.row_step == 0)]
    if rows.size == 0:
        return None
    tp, tq = (rows - p.r0) // p.row_step, (rows - q.r0) // q.row_step
    op, cp = p.off_a * tp + p.off_b, p.cnt_a * tp + p.cnt_b
    oq, cq = q.off_a * tq + q.off_b, q.cnt_a * tq + q.cnt_b
    # Column interval shared by both rows, then walk p's columns inside it.  p's columns modulo
    # q.stride repeat with period q.stride/gcd, so at most that many candidates per row matter.
    c_lo = np.maximum(op, oq)
    c_hi = np.minimum(op + p.stride * (cp - 1), oq + q.stride * (cq - 1))
    live = (cp > 0) & (cq > 0) & (c_lo <= c_hi)
    if not live.any():
        return None
    rows, op, oq, c_lo, c_hi = rows[live], op[live], oq[live], c_lo[live], c_hi[live]
    j0 = -(-(c_lo - op) // p.stride)  # first j with op + s*j >= c_lo
    first = op + p.stride * j0
    n_in = np.maximum((c_hi - first) // p.stride + 1, 0)
    period = q.stride // math.gcd(p.stride, q.stride)
    n = np.minimum(n_in, period)
    total = int(n.sum())
    if total == 0:
        return None
    starts = np.cumsum(n) - n
    j = np.arange(total, dtype=np.int64) - np.repeat(starts, n)
    cols = np.repeat(first, n) + p.stride * j
    hits = (cols - np.repeat(oq, n)) % q.stride == 0
    if not hits.any():
        return None
    k = int(np.argmax(hits))
    return int(np.repeat(rows, n)[k]), int(cols[k])
