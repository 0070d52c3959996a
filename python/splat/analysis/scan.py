"""Steps 1-2 on a dense mask: the runs straight from the packed words, in row chunks scanned on
one thread per CPU.

:func:`runs_from_mask` gives the runs of :func:`splat.analysis.runs.runs_from_intervals` of the
mask's intervals, identical, without making an interval of every isolated cell.  Per row chunk:

* the words are cropped to the columns where the chunk has any cell (a band's chunk touches a
  few dozen of the row's words): every later pass runs on the crop only;
* the isolated cells ``S`` are found on the words; a row whose isolated cells form one
  arithmetic progression (checked by shifting the packed row by the candidate stride) with no
  longer interval inside its span becomes one run directly, so a dilated row or the stride part
  of a strided row costs O(words), not O(cells).  Other rows' isolated cells go through the usual
  greedy chaining;
* with ``compress``, rows that continue the rows around them are left out (:mod:`.compress`).

Each thread scans a contiguous span of chunks with its own :class:`ScanWorkspace`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .compress import compressed, continuing_rows, copy_or_shift_rows
from .intervals import CHUNK_CELLS, Intervals
from .runs import Runs, runs_from_intervals
from .words import (I64, bit_positions, flips_into, high_bit, intervals_of, low_bit, pack_rows,
                    shift_left_into, without_predecessor_into, word_count)

_MAX_STRIDES = 16  # distinct candidate strides verified per chunk; rows with others fall back
_POOL: list = [None, 0]  # the scan's thread pool and its size


def scan_threads() -> int:
    """Threads scanning a dense mask: ``SPLAT_ANALYSIS_THREADS`` or the CPUs this process may
    use, at most 8.  Reading the mask is memory-bound (packing 256 MiB is ~20 ms on one core of
    the CI machine) and numpy releases the GIL in the large word operations, so row chunks scan
    in parallel."""
    env = os.environ.get("SPLAT_ANALYSIS_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"SPLAT_ANALYSIS_THREADS must be a positive int, got {env!r}") from None
        if n < 1:
            raise ValueError(f"SPLAT_ANALYSIS_THREADS must be a positive int, got {env!r}")
        return n
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cpus))


def _pool(n: int):
    """A process-wide thread pool with at least ``n`` workers (grown on demand)."""
    if _POOL[1] < n:
        from concurrent.futures import ThreadPoolExecutor
        _POOL[:] = [ThreadPoolExecutor(max_workers=n, thread_name_prefix="splat-scan"), n]
    return _POOL[0]


# ---------------------------------------------------------------------------------------------
# Workspace
# ---------------------------------------------------------------------------------------------

@dataclass(slots=True)
class WordBuffer:
    """A flat uint64 buffer holding [R, W] word arrays of any shape that fits."""

    flat: np.ndarray

    @staticmethod
    def of_size(n: int) -> "WordBuffer":
        return WordBuffer(np.empty(n, dtype=np.uint64))

    def grid(self, R: int, W: int) -> np.ndarray:
        """A contiguous [R, W] view of the buffer's start."""
        return self.flat[:R * W].reshape(R, W)


@dataclass
class ScanBuffers:
    """Scratch of one thread, sized for its largest chunk and reused from chunk to chunk: a fresh
    temporary per operation costs a page fault per 4 KiB on first touch, which was most of the
    scan's time.  Named for what each holds in the end; most serve as scratch before that."""

    packed: np.ndarray     # [rows, 8W] uint8, packbits target where C % 64 != 0 (padding stays 0)
    crop: WordBuffer       # the chunk's words, cropped to the columns it touches
    flips: WordBuffer      # flips of the words (then shifted isolated cells)
    wide: WordBuffer       # cells of intervals of length >= 2
    isolated: WordBuffer   # isolated cells (a flip before and after)
    wide_crop: WordBuffer  # `wide` on the rows and words that hold such cells
    scratch: WordBuffer
    changes: WordBuffer | None  # compression: the flips that change from the row above
    kept: WordBuffer | None     # compression: the words of the rows kept

    @staticmethod
    def for_chunks(rows: int, W: int, compress: bool) -> "ScanBuffers":
        """Buffers for chunks of up to ``rows`` rows of ``W`` words."""
        words = lambda: WordBuffer.of_size(rows * W)  # noqa: E731
        return ScanBuffers(packed=np.zeros((rows, 8 * W), dtype=np.uint8), crop=words(),
                           flips=words(), wide=words(), isolated=words(), wide_crop=words(),
                           scratch=words(), changes=words() if compress else None,
                           kept=words() if compress else None)


@dataclass
class LeftOutRows:
    """The rows vertical compression left out (mask row numbers), one array per chunk."""

    continuing: list[np.ndarray] = field(default_factory=list)  # flip test: verified afterwards
    exact: list[np.ndarray] = field(default_factory=list)       # copies and one-column shifts


@dataclass
class ScanWorkspace:
    """One thread's state across the chunks of its span."""

    buffers: ScanBuffers
    compress: bool  # leave rows out (vertical compression)
    # The usual stride of the isolated cells (0: none), carried to the next chunk while most
    # rows have it.
    stride: int = 0
    left_out: LeftOutRows = field(default_factory=LeftOutRows)

    @staticmethod
    def for_chunks(rows: int, W: int, compress: bool) -> "ScanWorkspace":
        return ScanWorkspace(ScanBuffers.for_chunks(rows, W, compress), compress)


# ---------------------------------------------------------------------------------------------
# Chunks and threads
# ---------------------------------------------------------------------------------------------

def runs_from_mask(mask: np.ndarray, row0: int = 0, compress: bool = False,
                   chunk_cells: int = CHUNK_CELLS) -> Runs:
    """The runs of bool mask rows ``mask`` (numbered from ``row0``), identical to
    ``runs_from_intervals(intervals_from_mask(mask))``.  Rows are scanned in chunks of about
    ``chunk_cells`` cells.  With ``compress`` rows that continue the rows around them are left
    out and the runs carry compressed row numbers (``Runs.crow``, ``Runs.gap``)."""
    R, C = mask.shape
    step = min(R, max(1, chunk_cells // max(C, 1)))
    W = word_count(C)
    chunks = list(range(0, R, step))
    nw = min(scan_threads(), len(chunks))
    # Contiguous spans of chunks, one per worker: each keeps its own workspace (and the stride it
    # carries from chunk to chunk), and the spans' runs concatenate in row order.
    spans = [chunks[k * len(chunks) // nw:(k + 1) * len(chunks) // nw] for k in range(nw)]

    def scan_span(span):
        ws = ScanWorkspace.for_chunks(step, W, compress)
        return [_scan_chunk(mask[i:i + step], row0 + i, ws) for i in span], ws.left_out

    done = list(_pool(nw).map(scan_span, spans)) if nw > 1 else [scan_span(spans[0])]
    r = Runs.concat([p for ps, _ in done for p in ps])
    if compress:
        continuing = [d for _, lo in done for d in lo.continuing if d.size]
        exact = [d for _, lo in done for d in lo.exact if d.size]
        if continuing or exact:
            z = np.zeros(0, dtype=I64)
            return compressed(r, np.concatenate(continuing or [z]), np.concatenate(exact or [z]), R, row0,
                              lambda rows: runs_from_mask(mask[rows], chunk_cells=chunk_cells))
    return r


def _scan_chunk(mask: np.ndarray, row0: int, ws: ScanWorkspace) -> Runs:
    """Runs of a row chunk.  After packing, the words are cropped to the columns where the chunk
    has any cell.  The words left and right of the crop are zero, so no flip crosses it."""
    R, C = mask.shape
    W = word_count(C)
    x = pack_rows(mask, ws.buffers.packed)
    nzw = np.flatnonzero(np.bitwise_or.reduce(x, axis=0))
    if nzw.size == 0:
        return Runs.empty()
    wlo, whi = int(nzw[0]), int(nzw[-1])
    if 4 * (whi - wlo + 1) <= 3 * W:
        xc = ws.buffers.crop.grid(R, whi - wlo + 1)
        np.copyto(xc, x[:, wlo:whi + 1])
        r = _scan_words(xc, min(C, 64 * (whi + 1)) - 64 * wlo, row0, ws, ws.compress)
        r.off = r.off + 64 * wlo
        return r
    return _scan_words(x, C, row0, ws, ws.compress)


# ---------------------------------------------------------------------------------------------
# The word-level scan
# ---------------------------------------------------------------------------------------------

def _scan_words(x: np.ndarray, C: int, row0: int, ws: ScanWorkspace, compress: bool) -> Runs:
    """Runs of packed rows ``x`` [R, W] (C columns; bits past C are zero)."""
    R, W = x.shape
    b = ws.buffers
    if compress:
        drop = copy_or_shift_rows(x, C, b.scratch.grid(R, W), b.flips.grid(R, W))
        if drop is not None:
            # the kept rows alone, without the flip-based compression (they are not adjacent)
            kept = np.flatnonzero(~drop)
            xk = b.kept.grid(kept.size, W)
            np.take(x, kept, axis=0, out=xk)
            r = _scan_words(xk, C, 0, ws, False)
            r.row = kept[r.row] + row0
            ws.left_out.exact.append(np.flatnonzero(drop) + row0)
            return r
    f, g, s_bits = b.flips.grid(R, W), b.wide.grid(R, W), b.isolated.grid(R, W)
    flips_into(x, f, g)
    # isolated cells: set, with a flip at c and at c + 1
    np.right_shift(f, np.uint64(1), out=g)
    gg, ff = g.reshape(-1), f.reshape(-1)
    np.left_shift(ff[1:], np.uint64(63), out=s_bits.reshape(-1)[:-1])
    np.bitwise_or(gg[:-1], s_bits.reshape(-1)[:-1], out=gg[:-1])
    g[:, -1] &= ~(np.uint64(1) << np.uint64(63))  # no carry from the next row
    if C == 64 * W:  # the closing flip of a cell in the last column is at column C
        g[:, -1] |= np.uint64(1) << np.uint64(63)
    np.bitwise_and(x, f, out=s_bits)
    np.bitwise_and(s_bits, g, out=s_bits)
    srow = np.flatnonzero(np.bitwise_or.reduce(s_bits, axis=1))
    kept = None
    if compress and srow.size * 2 < R:
        noiso = np.ones(R, dtype=bool)
        noiso[srow] = False
        drop = continuing_rows(f, noiso, b.changes.grid(R, W))
        if drop.any():
            kept = np.flatnonzero(~drop)
            ws.left_out.continuing.append(np.flatnonzero(drop) + row0)
    if srow.size == 0:
        if kept is None:
            row, start, stop = intervals_of(x, f, C, row0)
        else:
            row, start, stop = intervals_of(x[kept], f[kept], C, 0)
            row = kept[row] + row0
        return Runs(row=row, off=start, stride=np.ones(row.size, I64), cnt=stop - start)
    np.bitwise_xor(x, s_bits, out=g)  # the cells of intervals of length >= 2
    # only rows that have such intervals (none in a dilated mask) and are not left out
    # the words these intervals touch first (a band), then the rows on that crop only
    gw = np.flatnonzero(np.bitwise_or.reduce(g, axis=0))
    if gw.size == 0:
        gw = np.zeros(1, dtype=I64)
    glo, ghi = int(gw[0]), int(gw[-1])
    rows_g = np.flatnonzero(np.bitwise_or.reduce(g[:, glo:ghi + 1], axis=1))
    if kept is not None:
        rows_g = rows_g[~drop[rows_g]]
    k = rows_g.size
    Wg = ghi - glo + 1
    if k == R and Wg == W:
        row, start, stop = intervals_of(g, flips_into(g, f, b.scratch.grid(R, W)), C, row0)
    else:
        gk = b.wide_crop.grid(k, Wg)
        np.copyto(gk, g[:, glo:ghi + 1] if k == R else g[rows_g, glo:ghi + 1])
        row, start, stop = intervals_of(gk, flips_into(gk, b.flips.grid(k, Wg), b.scratch.grid(k, Wg)),
                                        min(C, 64 * (ghi + 1)) - 64 * glo, 0)
        row = rows_g[row] + row0
        start += 64 * glo
        stop += 64 * glo
    S = s_bits if srow.size == R else s_bits[srow]
    nz = S != 0
    wlo = np.argmax(nz, axis=1)
    whi = W - 1 - np.argmax(nz[:, ::-1], axis=1)
    ar = np.arange(srow.size)
    lo = 64 * wlo + low_bit(S[ar, wlo])
    hi = 64 * whi + high_bit(S[ar, whi])
    cnt_t = np.uint16 if 64 * W < 1 << 16 else np.uint32 if 64 * W < 1 << 32 else I64
    ns = srow.size
    n = np.ones(ns, dtype=I64)
    s = np.zeros(ns, dtype=I64)
    ok = np.ones(ns, dtype=bool)
    rest = ar
    sv = ws.stride or (_guess_stride(S, lo) if ns >= 64 else 0)
    if sv:
        # Fused check for the chunk's usual stride sv: the cells S of a row are lo, lo + sv, ...,
        # hi iff every cell but the lowest has its predecessor at -sv, i.e. S & ~(S << sv) is
        # the lowest cell alone; then n = (hi - lo) / sv + 1 (no popcount).  Rows of one cell
        # pass too (n = 1).  The stride is kept for the next chunk while most rows pass.
        y = without_predecessor_into(S, sv, b.flips.grid(ns, W))
        lw = S[ar, wlo]
        y[ar, wlo] ^= lw & (~lw + np.uint64(1))
        fused = np.bitwise_or.reduce(y, axis=1) == 0
        if fused.all():
            n = (hi - lo) // sv + 1
            s = np.where(n >= 2, sv, 0)
            rest = ar[:0]
        else:
            n[fused] = (hi[fused] - lo[fused]) // sv + 1
            s[fused] = np.where(n[fused] >= 2, sv, 0)
            rest = np.flatnonzero(~fused)
        ws.stride = sv if 2 * rest.size < ns else 0
    if rest.size:
        Sr = S if rest.size == ns else S[rest]
        nr, sr, okr = _ap_rows(Sr, lo[rest], hi[rest], W, cnt_t, b)
        n[rest], s[rest], ok[rest] = nr, sr, okr
    # an interval of length >= 2 inside the span breaks the chain
    if row.size:
        rel = np.full(R, -1, dtype=I64)
        rel[srow] = ar
        k = rel[row - row0]
        inside = (k >= 0) & (start > lo[np.maximum(k, 0)]) & (start < hi[np.maximum(k, 0)])
        ok[k[inside]] = False
    fall = ~ok
    runs_r, runs_o, runs_s, runs_c = [row], [start], [np.ones(row.size, I64)], [stop - start]
    if fall.any():
        fr = srow[fall]
        Sf = s_bits[fr]
        fw = np.flatnonzero(Sf.reshape(-1) != 0)
        pos = bit_positions(fw, Sf.reshape(-1)[fw])
        rr, cc = np.divmod(pos, 64 * W)
        rr = fr[rr] + row0
        # merge with the intervals and chain the singletons as runs_from_intervals does
        allr = np.concatenate([row, rr])
        alls = np.concatenate([start, cc])
        alle = np.concatenate([stop, cc + 1])
        o = np.argsort(allr * (C + 1) + alls, kind="stable")
        r = runs_from_intervals(Intervals(0, C, allr[o], alls[o], alle[o]))
        runs_r, runs_o, runs_s, runs_c = [r.row], [r.off], [r.stride], [r.cnt]
    good = ok
    if good.any():
        runs_r.append(srow[good] + row0)
        runs_o.append(lo[good])
        runs_s.append(np.where(n[good] >= 2, s[good], 0))
        runs_c.append(n[good])
    allr, allo = np.concatenate(runs_r), np.concatenate(runs_o)
    o = np.argsort(allr * (C + 1) + allo, kind="stable")
    return Runs(row=allr[o], off=allo[o], stride=np.concatenate(runs_s)[o], cnt=np.concatenate(runs_c)[o])


def _guess_stride(S: np.ndarray, lo: np.ndarray) -> int:
    """The gap between the two lowest isolated cells that most of five sample rows share (0:
    none): the stride that the fused check of ``_scan_words`` tries on every row."""
    ns = S.shape[0]
    gaps = []
    for i in (ns // 10, 3 * ns // 10, ns // 2, 7 * ns // 10, 9 * ns // 10):
        row = S[i]
        w = np.flatnonzero(row)
        x = int(row[w[0]])
        x &= x - 1  # the lowest cell (lo) cleared
        if x == 0:
            if w.size < 2:
                continue
            c = 64 * int(w[1]) + (int(row[w[1]]) & -int(row[w[1]])).bit_length() - 1
        else:
            c = 64 * int(w[0]) + (x & -x).bit_length() - 1
        gaps.append(c - int(lo[i]))
    for g in gaps:
        if 2 * gaps.count(g) > 5:
            return g
    return 0


def _ap_rows(S: np.ndarray, lo: np.ndarray, hi: np.ndarray, W: int, cnt_t, b: ScanBuffers):
    """(count, stride, ok) of rows of isolated cells ``S``: ok where the cells form one
    arithmetic progression (counted by popcount, then verified by shifting by the stride)."""
    n = np.bitwise_count(S).sum(axis=1, dtype=cnt_t).astype(I64)
    span = hi - lo
    s = np.where(n >= 2, span // np.maximum(n - 1, 1), 0)
    ok = (n == 1) | (span == s * (n - 1))
    cand = np.flatnonzero(ok & (n >= 3))
    if cand.size:
        sc = s[cand]
        if (sc == sc[0]).all():  # one stride (strided, dilated): no sort
            vals, freq = sc[:1], np.array([sc.size])
        else:
            vals, freq = np.unique(sc, return_counts=True)
        if vals.size > _MAX_STRIDES:
            keep_s = vals[np.argsort(-freq, kind="stable")[:_MAX_STRIDES]]
            ok[cand[~np.isin(s[cand], keep_s)]] = False
        else:
            keep_s = vals
        y, h = b.flips.grid(S.shape[0], W), b.scratch.grid(S.shape[0], W)
        for sv in keep_s.tolist():
            j = cand[s[cand] == sv]
            # Sj is an AP of stride sv iff every cell but the lowest has its predecessor at -sv:
            # popcount(Sj & (Sj << sv)) == n - 1 (the chains down by sv all end at lo).
            Sj = S if j.size == S.shape[0] else S[j]
            yj, hj = y[:j.size], h[:j.size]
            shift_left_into(Sj, sv, yj, hj)
            np.bitwise_and(yj, Sj, out=yj)
            pairs = np.bitwise_count(yj).sum(axis=1, dtype=cnt_t).astype(I64)
            ok[j[pairs != n[j] - 1]] = False
    return n, s, ok
