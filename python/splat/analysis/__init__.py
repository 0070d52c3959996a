"""Exact regularity analysis: any boolean mask (or Pattern) -> ACSR.

Pipeline (all numpy-vectorised; no per-row or per-element Python loops), one module per step:

1. **Intervals** (:mod:`.intervals`, on packed words: :mod:`.words`).  The mask is reduced to its
   maximal intervals ``(row, start, stop)`` per row.  Patterns that know their ACSR, masks built
   from a predicate (in row chunks) and unions/intersections (one merge; analytic sides clipped
   row by row) all meet here, so an ``Lq x Lk`` array is never needed.  Unions and intersections
   of patterns made of intervals with affine ends (window, causal, blocked, documents, prefix-LM,
   chunked causal, global tokens, ...) skip the rows: :mod:`.bands` works them out on row ranges
   and lists the runs of a few rows per range, as vertical compression does (same pieces).
   Unions of global tokens with a strided / dilated side are built from the parts, without
   cells: the global rows and columns plus the other side minus them (:mod:`.cross`).
2. **Runs** (:mod:`.runs`).  Each row is split into maximal arithmetic runs: intervals of length
   >= 2 are stride-1 runs; consecutive singletons with equal gaps chain (greedily, left to right)
   into stride-``s`` runs (dilated and strided patterns).
   From a dense mask (``analyze(mask)``) steps 1-2 are one scan of the packed words
   (:mod:`.scan`): row chunks on one thread per CPU, each cropped to the columns it touches, and
   *vertical compression* (:mod:`.compress`) leaves out rows that continue the rows around them
   affinely; steps 3-4 then work on the kept rows, with the row numbers telling how far apart
   they are.  The pieces are exactly those without compression (tests/unit/test_analysis.py).
3. **Tracks** (:mod:`.tracks`).  Run ``k`` of row ``i+1`` is linked to a run of row ``i``,
   aligning the two rows from the left or from the right, whichever moves the runs less; rows
   where that pairs distant runs (noise next to a band) try shifts by one more.
4. **Pieces** (:mod:`.pieces`).  Each track is cut greedily into maximal stretches whose stride
   is constant and whose offset and count are affine in the row (second differences zero).  Runs
   whose stretches are short compared with their stride are regrouped by residue class
   (``row_step = stride``) when that gives fewer pieces: the ramps of dilated / strided patterns.
   Tracks whose stretches stay short because offset or count is quasi-affine,
   ``floor((a*i + b) / c)`` (cross attention with Lq != Lk, pooled memories, block edges that a
   dilated band touches every ``c`` rows), are regrouped by residue class of the row with the
   period of their differences as ``row_step`` (:mod:`.quasi`): O(c) pieces instead of O(L).
5. **Remainder** (:mod:`.pieces`).  Pieces with fewer than ``min_piece_nnz`` elements (irregular
   fragments) go to the block remainder.  The result is exact by construction; ``SPLAT_DEBUG=1``
   re-checks it.

The greedy steps ("extend while consistent, then start anew") are sequential by nature; they are
evaluated for all rows at once by pointer doubling over the "next group start" map
(:mod:`.greedy`).

Piece counts on the named families, through ``analyze(mask)`` and identical to the families'
analytic ACSRs (Lq = Lk = L, parameters small against L; docs/acsr.md; asserted in
tests/unit/test_patterns.py and test_analysis.py)::

    window(w)                  3        top ramp, band, bottom ramp
    causal                     1
    causal_window(w)           2        ramp, band
    dilated(w, s)              1 + 2*min(w, s)            band + ramps per residue (or per s rows)
    strided(local, s)          2 + min(s, ceil((L - top) / s))
                               (top = local + s if s | local, else s * ceil(local / s))
    fixed(B, c < B)            2*nb - 2 (nb = ceil(L / B))  triangles + summary stripes
    blocked(B)                 nb
    global_tokens(0:g)         2
    longformer(w, 0:g)         5
    random_blocks(B, r)        <= nb * r (repeated / adjacent blocks merge)

The remainder is empty for all of them.  Pieces with fewer than ``min_piece_nnz`` (8) elements
go to the remainder, so tiny corner ramps (window w <= 2, ...) are remainder blocks.
"""

from __future__ import annotations

import os

import numpy as np

from .acsr import ACSR
from .bands import Bands, acsr_from_bands, bands_from_acsr, intervals_from_bands
from .bands import combine as combine_bands
from .cross import cross_table, minus_cross, union_with_cross
from .intervals import (CHUNK_CELLS, Intervals, cells_of_acsr, cells_of_acsr_in, complement, intersect_acsr,
                        intersection, intervals_from_acsr, intervals_from_mask, listed_cells, union, union_of)
from .pieces import acsr_from_intervals, acsr_from_runs, remainder_from_cells
from .runs import Runs, runs_from_intervals
from .scan import runs_from_mask, scan_threads

__all__ = ["analyze", "acsr_from_mask", "check_mask", "Intervals", "intervals_from_mask", "intervals_from_acsr",
           "cells_of_acsr", "cells_of_acsr_in", "listed_cells", "union", "union_of", "intersection",
           "intersect_acsr", "complement", "Runs", "runs_from_intervals", "runs_from_mask", "acsr_from_intervals",
           "acsr_from_runs", "remainder_from_cells", "scan_threads", "Bands", "bands_from_acsr", "combine_bands",
           "intervals_from_bands", "acsr_from_bands", "cross_table", "minus_cross", "union_with_cross"]


def check_mask(mask) -> np.ndarray:
    """``mask`` as a C-contiguous bool ``(Lq, Lk)`` array, ``Lq, Lk >= 1``; TypeError /
    ValueError naming what is wrong otherwise."""
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a numpy bool ndarray of shape (Lq, Lk), got {type(mask).__name__}")
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must have dtype bool, got {mask.dtype}")
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (Lq, Lk), got shape {mask.shape}")
    if mask.shape[0] < 1 or mask.shape[1] < 1:
        raise ValueError(f"mask must have Lq >= 1 and Lk >= 1, got shape {mask.shape}")
    return np.ascontiguousarray(mask)


def acsr_from_mask(mask: np.ndarray, *, block: int = 64, min_piece_nnz: int = 8, compress: bool = True,
                   chunk_cells: int = CHUNK_CELLS) -> ACSR:
    """Exact ACSR of a checked bool mask (:func:`check_mask`): ``analyze(mask)`` without the
    argument checks and ``SPLAT_DEBUG``.  ``compress``: vertical compression (the pieces are the
    same either way; off, every row is scanned); ``chunk_cells``: cells per scanned row chunk."""
    Lq, Lk = mask.shape
    if compress:
        result = acsr_from_runs(Lq, Lk, runs_from_mask(mask, compress=True, chunk_cells=chunk_cells),
                                block=block, min_piece_nnz=min_piece_nnz)
        if result is not None:
            return result
        # a piece with left-out rows goes to the remainder, which needs its every cell
    return acsr_from_runs(Lq, Lk, runs_from_mask(mask, chunk_cells=chunk_cells), block=block,
                          min_piece_nnz=min_piece_nnz)


def analyze(pattern_or_mask, *, block: int = 64, min_piece_nnz: int = 8) -> ACSR:
    """Exact ACSR of a bool mask or a Pattern.

    A Pattern that knows its ACSR analytically returns it directly; otherwise its intervals (from
    its mask, its predicate evaluated in row chunks, or the interval algebra of a union /
    intersection) go through the general analysis.  ``block`` is the remainder block size;
    pieces with fewer than ``min_piece_nnz`` elements go to the remainder.
    """
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise ValueError(f"block must be a positive int, got {block!r}")
    if isinstance(pattern_or_mask, np.ndarray):
        mask = check_mask(pattern_or_mask)
        result = acsr_from_mask(mask, block=block, min_piece_nnz=min_piece_nnz)
        if os.environ.get("SPLAT_DEBUG") == "1":
            _assert_exact(result, mask)
        return result
    intervals = getattr(pattern_or_mask, "intervals", None)
    if intervals is None:
        raise TypeError("analyze() takes a bool ndarray mask or a splat.patterns.Pattern, "
                        f"got {type(pattern_or_mask).__name__}")
    analytic = pattern_or_mask.analytic_acsr()
    if analytic is not None:
        return analytic
    result = _analyze_pattern(pattern_or_mask, block, min_piece_nnz)
    if os.environ.get("SPLAT_DEBUG") == "1":
        _assert_exact_chunks(result, pattern_or_mask)
    return result


def _analyze_pattern(pattern, block: int, min_piece_nnz: int) -> ACSR:
    """:func:`analyze` of a Pattern without an analytic ACSR."""
    result = _cross_union(pattern, block, min_piece_nnz)
    if result is not None:
        return result
    bands = pattern.bands() if hasattr(pattern, "bands") else None
    if bands is not None:
        # unions / intersections of interval patterns: worked out on row ranges
        return acsr_from_bands(bands, block=block, min_piece_nnz=min_piece_nnz)
    if getattr(pattern, "_intervals", None) is None:
        # a predicate: its row chunks go straight to runs (no interval per isolated cell)
        parts = [runs_from_mask(np.ascontiguousarray(rows), row0=i0) for i0, rows in pattern.iter_rows()]
        return acsr_from_runs(pattern.Lq, pattern.Lk, Runs.concat(parts), block=block, min_piece_nnz=min_piece_nnz)
    return acsr_from_intervals(pattern.intervals(), block=block, min_piece_nnz=min_piece_nnz)


def _cross_union(pattern, block: int, min_piece_nnz: int) -> ACSR | None:
    """A union with global tokens as the global rows and columns plus the other operands minus
    them (:mod:`.cross`), or None for other patterns (and where the band algebra gives up)."""
    parts = pattern.cross_parts() if hasattr(pattern, "cross_parts") else None
    if parts is None:
        return None
    other, rows, cols = parts
    a = other.analytic_acsr()
    if a is None:
        a = analyze(other, block=block, min_piece_nnz=min_piece_nnz)
    return union_with_cross(a, rows, cols, block=block, min_piece_nnz=min_piece_nnz)


def _assert_exact(a: ACSR, mask: np.ndarray) -> None:
    a.validate()
    if not np.array_equal(a.to_mask(), mask):
        raise AssertionError("SPLAT_DEBUG: analysis is not exact")


def _assert_exact_chunks(a: ACSR, pattern) -> None:
    a.validate()
    for i0, rows in a.iter_mask_chunks():
        if not np.array_equal(rows, pattern.mask_rows(i0, i0 + rows.shape[0])):
            raise AssertionError(f"SPLAT_DEBUG: analysis is not exact in rows from {i0}")
