"""Exact regularity analysis: any boolean mask (or Pattern) -> ACSR.

Pipeline (all numpy-vectorised; no per-row or per-element Python loops):

1. **Intervals.**  The mask is reduced to its maximal intervals ``(row, start, stop)`` per row.
   From a dense mask this goes through bit-packed 64-bit words: ``x ^ (x << 1)`` (with the
   carry from the word on the left) marks every column where the mask changes, and only the set
   bits of those few words are read out.  Patterns that know their ACSR, masks built
   from a predicate (in row chunks) and unions/intersections (an event sweep) all meet here, so
   an ``Lq x Lk`` array is never needed.
   From a dense mask (``analyze(mask)``) row chunks are scanned on one thread per CPU, each
   chunk's words are first cropped to the columns the chunk touches, and *vertical compression*
   leaves out rows that continue the rows around them affinely: rows that copy the row above or
   are it moved one column right (exact as they are, ``_shift_copy_rows``), else rows where
   every flip that changes from the row above moves one more column right
   (``E_i == E_(i-1) << 1`` with ``E_i = F_i ^ F_(i-1)``, verified on the kept rows);
   steps 3-4 then work on the kept rows, with the row numbers telling how far apart they are.
   The pieces are exactly those without compression (tests/unit/test_analysis.py).
2. **Runs.**  Each row is split into maximal arithmetic runs: intervals of length >= 2 are
   stride-1 runs; consecutive singletons with equal gaps chain (greedily, left to right) into
   stride-``s`` runs (dilated and strided patterns).
3. **Tracks.**  Run ``k`` of row ``i+1`` is linked to a run of row ``i``, aligning the two rows
   from the left or from the right, whichever moves the runs less (so a run appearing on the left,
   like the strided pattern's stride part, does not shift the others); rows where that pairs
   distant runs (noise next to a band) try shifts by one more.
4. **Pieces.**  Each track is cut greedily into maximal stretches whose stride is constant and
   whose offset and count are affine in the row (second differences zero).  Runs whose
   stretches are short compared with their stride are regrouped by residue class
   (``row_step = stride``) when that gives fewer pieces: the ramps of dilated / strided patterns.
5. **Remainder.**  Pieces with fewer than ``min_piece_nnz`` elements (irregular fragments) go to
   the block remainder.  The result is exact by construction; ``SPLAT_DEBUG=1`` re-checks it.

The greedy steps ("extend while consistent, then start anew") are sequential by nature; they are
evaluated for all rows at once by pointer doubling over the "next group start" map.

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
from dataclasses import dataclass

import numpy as np

from .acsr import ACSR, BlockRemainder

__all__ = ["analyze", "Intervals", "intervals_from_mask", "intervals_from_acsr", "acsr_from_intervals",
           "union", "intersection"]

_I64 = np.int64
_SCAN_CELLS = 1 << 24  # cells per chunk when scanning a dense mask (measured best at 16K-32K, 2 threads)


# ---------------------------------------------------------------------------------------------
# 1. Intervals
# ---------------------------------------------------------------------------------------------

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
    def concat(Lq: int, Lk: int, parts: list["Intervals"]) -> "Intervals":
        """Concatenate interval sets of disjoint, increasing row ranges."""
        if not parts:
            return _empty(Lq, Lk)
        return Intervals(Lq, Lk, *(np.concatenate([getattr(p, f) for p in parts])
                                   for f in ("row", "start", "stop")))


def _empty(Lq: int, Lk: int) -> Intervals:
    z = np.zeros(0, dtype=_I64)
    return Intervals(Lq, Lk, z, z, z)


def _bit_positions(word_idx: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Global bit positions (64 * word index + bit) of the set bits of the given nonzero words,
    ascending.  Peels the lowest set bit of every word per round: its index is
    ``popcount(x ^ (x - 1)) - 1`` (exact, no float conversion).  Round k writes each word's k-th
    bit to its slot, so the output comes out sorted.  The first round runs on all words without
    gathering; later rounds only on the words with bits left.  Cost O(set bits + rounds * words
    left)."""
    x = np.array(words, dtype=np.uint64)  # a copy: peeled in place
    if x.size == 0:
        return np.zeros(0, dtype=_I64)
    one = np.uint64(1)
    base = word_idx.astype(_I64) << 6
    xm1 = x - one
    first = base + np.bitwise_count(x ^ xm1)  # + (index + 1)
    first -= 1
    np.bitwise_and(x, xm1, out=x)
    more = np.flatnonzero(x != 0)
    if more.size == 0:  # one set bit per word (the common case): already sorted
        return first
    cnt = np.bitwise_count(words).astype(_I64)
    slot = np.cumsum(cnt)
    out = np.empty(int(slot[-1]), dtype=_I64)
    slot -= cnt
    out[slot] = first
    x, slot, base = x[more], slot[more] + 1, base[more]
    while x.size:
        np.subtract(x, one, out=xm1[:x.size])
        xm = xm1[:x.size]
        out[slot] = base + np.bitwise_count(x ^ xm) - 1
        np.bitwise_and(x, xm, out=x)
        keep = x != 0
        if not keep.all():
            x, slot, base = x[keep], slot[keep], base[keep]
        slot += 1
    return out


def intervals_from_mask(mask: np.ndarray, row0: int = 0, Lq: int | None = None) -> Intervals:
    """Maximal intervals of a bool ``[rows, Lk]`` mask; rows are numbered from ``row0``.
    Works in row chunks of about 2^24 cells, which keeps the packed words in cache."""
    R, C = mask.shape
    Lq = R if Lq is None else Lq
    step = max(1, _SCAN_CELLS // max(C, 1))
    if R > step:
        return Intervals.concat(Lq, C, [_scan(mask[i:i + step], row0 + i, Lq)
                                        for i in range(0, R, step)])
    return _scan(mask, row0, Lq)


def _scan(mask: np.ndarray, row0: int, Lq: int) -> Intervals:
    R, C = mask.shape
    if R == 0 or C == 0:
        return _empty(Lq, C)
    packed = np.packbits(mask, axis=1, bitorder="little")  # bit j of byte b = column 8b + j
    W = -(-packed.shape[1] // 8)
    if packed.shape[1] != 8 * W:
        packed = np.concatenate([packed, np.zeros((R, 8 * W - packed.shape[1]), np.uint8)], axis=1)
    x = packed.view("<u8")  # [R, W]; bit j of word w = column 64w + j
    # Bit c of `flips` is set where column c differs from column c-1 (column -1 counts as
    # unset): the top bit of each word carries into the next word of the row.
    flips = x << 1
    flips[:, 1:] |= x[:, :-1] >> 63
    flips ^= x
    fw = np.flatnonzero(flips.reshape(-1) != 0)
    pos = _bit_positions(fw, flips.reshape(-1)[fw])  # row * 64W + column, ascending
    # A run reaching the last column has its closing flip in the padding, unless the row
    # width is a multiple of 64: add those closing flips at column C.
    if C == 64 * W:
        full_end = np.flatnonzero(mask[:, -1])
        if full_end.size:
            pos = np.sort(np.concatenate([pos, full_end * (64 * W) + C]))
    # Every row starts unset and ends unset, so flips alternate start, stop, start, stop, ...
    row, start = np.divmod(pos[0::2], 64 * W)
    stop = pos[1::2] - row * (64 * W)
    return Intervals(Lq, C, row + row0, start, stop)


def _normalize(Lq: int, Lk: int, row, start, stop, need: int = 1, count=None) -> Intervals:
    """Intervals covered by at least ``need`` of the given ones (``count[i]`` copies each),
    merged into maximal intervals.  An event sweep over the flattened position
    ``row * (Lk + 1) + col``; the spare column keeps rows apart."""
    if row.size == 0:
        return _empty(Lq, Lk)
    base = row.astype(_I64) * (Lk + 1)
    w = np.ones(row.size, dtype=_I64) if count is None else count
    pos = np.concatenate([base + start, base + stop])
    delta = np.concatenate([w, -w])
    order = np.argsort(pos, kind="stable")
    pos, delta = pos[order], delta[order]
    first = np.ones(pos.size, dtype=bool)
    first[1:] = pos[1:] != pos[:-1]
    upos = pos[first]
    cover = np.cumsum(np.add.reduceat(delta, np.flatnonzero(first)))  # on [upos[j], upos[j+1])
    sel = cover >= need
    prev = np.concatenate([[False], sel[:-1]])
    nxt = np.concatenate([sel[1:], [False]])
    g0 = upos[sel & ~prev]
    g1 = upos[1:][(sel & ~nxt)[:-1]] if upos.size > 1 else upos[:0]
    r, c0 = np.divmod(g0, Lk + 1)
    return Intervals(Lq, Lk, r, c0, g1 - r * (Lk + 1))


def union(a: Intervals, b: Intervals) -> Intervals:
    return _normalize(a.Lq, a.Lk, np.concatenate([a.row, b.row]),
                      np.concatenate([a.start, b.start]), np.concatenate([a.stop, b.stop]), 1)


def intersection(a: Intervals, b: Intervals) -> Intervals:
    # Each operand is already disjoint, so coverage 2 means "in both".
    return _normalize(a.Lq, a.Lk, np.concatenate([a.row, b.row]),
                      np.concatenate([a.start, b.start]), np.concatenate([a.stop, b.stop]), 2)


def _expand(reps: np.ndarray) -> np.ndarray:
    """For counts ``reps``: the position ``j`` inside each repeat block, concatenated."""
    total = int(reps.sum())
    starts = np.cumsum(reps) - reps
    return np.arange(total, dtype=_I64) - np.repeat(starts, reps)


def intervals_from_acsr(a: ACSR) -> Intervals:
    """Maximal intervals of an ACSR without materialising the mask: stride-1 rows become one
    interval each, strided rows and the remainder become single cells, then everything merges."""
    rows, starts, stops = [], [], []
    for p in a.pieces:
        t = np.arange(p.T, dtype=_I64)
        r, off, cnt = p.r0 + p.row_step * t, p.off_a * t + p.off_b, p.cnt_a * t + p.cnt_b
        keep = cnt > 0
        r, off, cnt = r[keep], off[keep], cnt[keep]
        if p.stride == 1:
            rows.append(r), starts.append(off), stops.append(off + cnt)
        else:
            j = _expand(cnt)
            col = np.repeat(off, cnt) + p.stride * j
            rows.append(np.repeat(r, cnt)), starts.append(col), stops.append(col + 1)
    rem = a.remainder
    if rem is not None:
        n, i, j = np.nonzero(rem.masks)
        r = rem.blocks[n, 0].astype(_I64) * rem.block + i
        c = rem.blocks[n, 1].astype(_I64) * rem.block + j
        rows.append(r), starts.append(c), stops.append(c + 1)
    if not rows:
        return _empty(a.Lq, a.Lk)
    return _normalize(a.Lq, a.Lk, np.concatenate(rows), np.concatenate(starts), np.concatenate(stops))


# ---------------------------------------------------------------------------------------------
# Greedy segmentation, vectorised
# ---------------------------------------------------------------------------------------------

def _reachable(nxt: np.ndarray, roots: np.ndarray) -> np.ndarray:
    """Bool mask of the nodes reachable from the ``roots`` mask following ``nxt`` (``nxt[i] > i``;
    values ``>= n`` end a chain).  Pointer doubling: after step k every node within 2^k - 1 hops
    of a root is marked, and the loop stops once no marked node has a 2^k-hop successor."""
    n = nxt.size
    jump = np.minimum(nxt, n)
    lands = np.flatnonzero(jump < n)
    jump[lands[roots[jump[lands]]]] = n  # a chain may stop at a root: it is marked anyway
    jump = np.append(jump, n)
    mark = np.append(roots, False)
    while True:
        live = mark[:n] & (jump[:n] < n)
        if not live.any():
            return mark[:n]
        mark[jump[:n][live]] = True
        jump = jump[jump]


def _greedy_groups(link: np.ndarray, same: np.ndarray) -> np.ndarray:
    """Greedy left-to-right grouping of a sequence.  ``link[p]``: p and p+1 may share a group;
    ``same[q]``: a group holding q-1 and q may take q+1 too.  Returns the group start indices.
    A group starting at p is p .. f with f the first q > p where ``same[q]`` fails, except that
    p stays alone when it cannot link, or when p+1 .. p+3 would fit one group and p does not
    fit with them (one look-ahead step, so that an odd row before a long stretch does not
    capture the stretch's first row).  The next group starts after the group's end."""
    n = link.size
    if n == 0:
        return np.zeros(0, dtype=_I64)
    link = link.copy()
    link[-1] = False
    same = same & np.concatenate([[False], link[:-1]]) & link
    fails = np.flatnonzero(~same)  # same[n-1] is False (link[n-1] is), so every search lands
    idx = np.arange(n, dtype=_I64)
    f = fails[np.searchsorted(fails, np.minimum(idx + 1, n - 1))]
    same_next = np.concatenate([same[1:], [False]])
    same_next2 = np.concatenate([same[2:], [False, False]])
    grows = link & ~(~same_next & same_next2)
    nxt = np.where(grows, f, idx) + 1
    roots = np.ones(n, dtype=bool)
    roots[1:] = ~link[:-1]
    # Only roots and targets of `nxt` can start a group; on regular data they are few, so the
    # pointer doubling runs on that subset only.
    cand = roots.copy()
    cand[nxt[nxt < n]] = True
    S = np.flatnonzero(cand)
    nxt_S = np.searchsorted(S, nxt[S])  # nxt[S] is in S, or n (-> len(S))
    return S[_reachable(nxt_S, roots[S])]


# ---------------------------------------------------------------------------------------------
# 2. Runs
# ---------------------------------------------------------------------------------------------

@dataclass
class _Runs:
    row: np.ndarray
    off: np.ndarray
    stride: np.ndarray  # 0 for runs of one element (any stride fits)
    cnt: np.ndarray
    # Vertical compression (runs_from_mask(compress=True)): rows left out are affine
    # continuations of the rows around them.  ``crow`` numbers the rows that are kept (empty
    # ones included) consecutively; ``gap`` marks runs whose row follows left-out rows.
    crow: np.ndarray | None = None
    gap: np.ndarray | None = None


def _runs(iv: Intervals) -> _Runs:
    """Intervals of length >= 2 are runs of stride 1; singletons next to each other in a row
    chain greedily into runs of equal gaps."""
    length = iv.stop - iv.start
    single = length == 1
    stride = np.where(single, 0, 1)
    cnt = length.copy()
    is_start = ~single
    si = np.flatnonzero(single)
    if si.size:
        gap = np.zeros(si.size, dtype=_I64)
        if si.size > 1:
            ok = (si[1:] == si[:-1] + 1) & (iv.row[si[1:]] == iv.row[si[:-1]])
            gap[:-1] = np.where(ok, iv.start[si[1:]] - iv.start[si[:-1]], 0)
        link = gap > 0
        same = np.zeros(si.size, dtype=bool)
        same[1:] = link[1:] & (gap[1:] == gap[:-1])
        g = _greedy_groups(link, same)
        size = np.diff(np.append(g, si.size))
        heads = si[g]
        is_start[heads] = True
        cnt[heads] = size
        stride[heads] = np.where(size > 1, gap[g], 0)
    j = np.flatnonzero(is_start)
    return _Runs(row=iv.row[j], off=iv.start[j], stride=stride[j], cnt=cnt[j])


# ---------------------------------------------------------------------------------------------
# 1'. Runs straight from a dense mask
# ---------------------------------------------------------------------------------------------

_COMPRESS = True  # vertical compression in analyze(mask) (runs_from_mask(compress=True))
_POOL: list = [None, 0]  # the scan's thread pool and its size


def _scan_threads() -> int:
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


_MAX_STRIDES = 16  # distinct candidate strides verified per chunk; rows with others fall back


def runs_from_mask(mask: np.ndarray, row0: int = 0, compress: bool = False) -> "_Runs":
    """The runs of step 2 (``_runs(intervals_from_mask(mask))``, identical), without making an
    interval of every isolated cell.  Per row chunk, the isolated cells ``S`` are found on the
    packed words; a row whose isolated cells form one arithmetic progression (checked by shifting
    the packed row by the candidate stride) with no longer interval inside its span becomes one
    run directly, so a dilated row or the stride part of a strided row costs O(words), not
    O(cells).  Other rows' isolated cells go through the usual greedy chaining.

    The chunk's word arrays live in buffers reused from chunk to chunk: a fresh temporary per
    operation costs a page fault per 4 KiB on first touch, which was most of the scan's time."""
    R, C = mask.shape
    step = min(R, max(1, _SCAN_CELLS // max(C, 1)))
    W = -(-C // 64)
    chunks = list(range(0, R, step))
    nw = min(_scan_threads(), len(chunks))
    # Contiguous spans of chunks, one per worker: each keeps its own buffers (and the stride it
    # carries from chunk to chunk), and the spans' runs concatenate in row order.
    spans = [chunks[k * len(chunks) // nw:(k + 1) * len(chunks) // nw] for k in range(nw)]

    def scan_span(span):
        ws = {k: np.empty(step * W, dtype=np.uint64) for k in ("f", "g", "h", "s", "x", "c")}
        ws["bytes"] = np.zeros((step, 8 * W), dtype=np.uint8)
        if compress:
            ws["e"] = np.empty(step * W, dtype=np.uint64)
            ws["k"] = np.empty(step * W, dtype=np.uint64)
            ws["drop"], ws["drop_exact"] = [], []
        runs = [_scan_runs(mask[i:i + step], row0 + i, ws) for i in span]
        return runs, ws.get("drop", []), ws.get("drop_exact", [])

    done = list(_pool(nw).map(scan_span, spans)) if nw > 1 else [scan_span(spans[0])]
    parts = [p for ps, _, _ in done for p in ps]
    if len(parts) == 1:
        r = parts[0]
    else:
        r = _Runs(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("row", "off", "stride", "cnt")))
    if compress:
        drops = [d for _, ds, _ in done for d in ds if d.size]
        exact = [d for _, _, ds in done for d in ds if d.size]
        if drops or exact:
            z = np.zeros(0, dtype=_I64)
            return _compressed(r, np.concatenate(drops or [z]), np.concatenate(exact or [z]), mask, row0)
    return r


def _shift_copy_rows(x: np.ndarray, C: int, ws: dict) -> np.ndarray | None:
    """Rows of a chunk (packed ``x`` [R, W], C columns) that vertical compression leaves out
    because the row is an exact copy of the row above (every run stays) or the row above moved
    one column right (every run moves by one; nothing falls off the last column).  Such rows
    need no verification, isolated cells included (dilated and strided rows).  Row r is left
    out when rows r-1 .. r+3 all copy, or all shift, as in ``_drop_rows``.  None when that would
    leave out too few rows to pay (checked first on a sample of rows)."""
    R, W = x.shape
    if R < 16:
        return None
    smp = np.linspace(1, R - 1, 9).astype(_I64)
    xs, xp = x[smp], x[smp - 1]
    ys = xp << np.uint64(1)
    ys[:, 1:] |= xp[:, :-1] >> np.uint64(63)
    if 2 * int(((xs == xp).all(axis=1) | (xs == ys).all(axis=1)).sum()) < smp.size:
        return None
    d, y = _buf(ws, "h", R, W), _buf(ws, "f", R, W)
    np.bitwise_xor(x[1:], x[:-1], out=d[1:])
    mode = np.zeros(R, dtype=np.int8)
    mode[1:] = np.where(np.bitwise_or.reduce(d[1:], axis=1) == 0, 1, 0)
    _shift_left_into(x, 1, y, d)
    np.bitwise_xor(y[:-1], x[1:], out=d[1:])
    sh = np.bitwise_or.reduce(d[1:], axis=1) == 0
    if C == 64 * W:  # a cell in the last column would move out of the row
        sh &= (x[:-1, -1] >> np.uint64(63)) == 0
    mode[1:][(mode[1:] == 0) & sh] = 2
    r = np.arange(2, R - 3)
    keep = mode[r - 1] != 0
    for k in range(5):
        keep &= mode[r - 1 + k] == mode[r - 1]
    if 4 * int(keep.sum()) < R:
        return None
    drop = np.zeros(R, dtype=bool)
    drop[2:R - 3] = keep
    return drop


def _drop_rows(f: np.ndarray, noiso: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Rows of a chunk (flips ``f``) that vertical compression leaves out.  With
    ``E_i = F_i ^ F_(i-1)`` (the flips that change from the row above), row i *continues* when
    ``E_i == E_(i-1) << 1`` (every changing flip moves one more column right).  Then from a row
    P on, ``F_(P+t) = F_P ^ M ^ (M << t)`` exactly (XOR telescopes), where M are the flips of
    row P that move: the runs' offsets and ends are affine in the row (moving by 0 or 1), which
    ``_compressed`` verifies on the kept rows P, P+1 and Q+2 around each left-out block.  Row r
    is left out when rows r-1 .. r+3 continue and rows r-2 .. r+3 have no isolated cells, so
    that every left-out row lies three rows inside an affine stretch: the greedy cuts never
    start or end a piece there, and their look-ahead sees the same values."""
    R, W = f.shape
    np.bitwise_xor(f[1:], f[:-1], out=e[1:])
    e[0] = 0
    ew = np.flatnonzero(e.reshape(-1) != 0)
    pos = _bit_positions(ew, e.reshape(-1)[ew])
    rw = 64 * W
    er = pos // rw
    nE = np.bincount(er, minlength=R)
    good = np.zeros(R, dtype=bool)
    good[1:] = nE[1:] == nE[:-1]
    el = np.flatnonzero(good[er])
    bad = el[pos[el] != pos[el - nE[er[el]]] + (rw + 1)]
    good[er[bad]] = False
    good[:2] = False  # E of the chunk's first row is unknown
    good &= noiso
    # drop[r] = good[r-1 .. r+3] all, and noiso[r-2]
    nb = np.concatenate([[0], np.cumsum(~good)])
    drop = np.zeros(R, dtype=bool)
    if R >= 6:
        r = np.arange(2, R - 3)
        drop[2:R - 3] = (nb[r + 4] - nb[r - 1] == 0) & noiso[r - 2]
    return drop


def _compressed(r: "_Runs", drop_rows: np.ndarray, exact_rows: np.ndarray, mask: np.ndarray,
                row0: int) -> "_Runs":
    """Verify the left-out blocks of ``drop_rows`` (flip-based, ``_drop_rows``) against the kept
    runs, extract the rows of blocks that fail (a moving flip met a fixed one: runs merged or
    crossed), and attach the compressed row numbers.  Blocks of ``exact_rows`` (copies and
    shifts, ``_shift_copy_rows``) need no check; a block never mixes the two (blocks stay inside
    a chunk, and a chunk uses one kind)."""
    R = mask.shape[0]
    d = np.zeros(R + 1, dtype=bool)
    d[drop_rows - row0] = True
    d[exact_rows - row0] = True
    exact = np.zeros(R + 1, dtype=bool)
    exact[exact_rows - row0] = True
    st = np.flatnonzero(d[1:] & ~d[:-1]) + 1  # block starts (rows 0, 1 are never left out)
    en = np.flatnonzero(d[:-1] & ~d[1:])       # block ends
    P, Q2 = st - 2 + row0, en + 3 + row0
    rows = np.stack([P, P + 1, Q2])
    lo = np.searchsorted(r.row, rows, "left")
    m = np.searchsorted(r.row, rows, "right") - lo
    okb = (m[0] == m[1]) & (m[0] == m[2])
    mm = np.where(okb, m[0], 0)
    j = _expand(mm)
    blk = np.repeat(np.arange(st.size), mm)
    iP, iP1, iQ = (np.repeat(lo[k], mm) + j for k in range(3))
    bad = (r.stride[iP] != 1) | (r.stride[iP1] != 1) | (r.stride[iQ] != 1)
    t = (Q2 - P)[blk]
    for a in (r.off, r.off + r.cnt):
        da = a[iP1] - a[iP]
        bad |= ((da != 0) & (da != 1)) | (a[iQ] != a[iP] + t * da)
    okb[blk[bad]] = False
    okb |= exact[st]
    if not okb.all():
        fs, fe = st[~okb], en[~okb]
        redo = np.repeat(fs, fe - fs + 1) + _expand(fe - fs + 1)  # rows of `mask`
        d[redo] = False
        x = runs_from_mask(mask[redo])
        x.row = redo[x.row] + row0
        o = np.argsort(np.concatenate([r.row, x.row]), kind="stable")
        r = _Runs(*(np.concatenate([getattr(r, f), getattr(x, f)])[o]
                    for f in ("row", "off", "stride", "cnt")))
        if not d.any():
            return r
    ndrop = np.cumsum(d[:-1])
    rr = r.row - row0
    r.crow = rr - ndrop[rr]
    r.gap = np.zeros(rr.size, dtype=bool)
    nz = rr > 0
    r.gap[nz] = d[rr[nz] - 1]
    return r


def _flips_into(x: np.ndarray, f: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Bit c of the result is set where column c differs from column c - 1 (column -1 unset);
    written into ``f`` (``g`` is scratch), all [R, W] uint64."""
    np.left_shift(x, np.uint64(1), out=f)
    ff, gg = f.reshape(-1), g.reshape(-1)
    np.right_shift(x.reshape(-1)[:-1], np.uint64(63), out=gg[:-1])
    np.bitwise_or(ff[1:], gg[:-1], out=ff[1:])  # carry from the word on the left ...
    f[:, 0] &= ~np.uint64(1)                      # ... but not from the row above
    np.bitwise_xor(f, x, out=f)
    return f


def _intervals_of(x: np.ndarray, f: np.ndarray, C: int, row0: int):
    """(row, start, stop) of the maximal intervals of packed rows ``x`` with flips ``f``."""
    W = x.shape[1]
    fw = np.flatnonzero(f.reshape(-1) != 0)  # 4x faster than on uint64
    pos = _bit_positions(fw, f.reshape(-1)[fw])
    if C == 64 * W:  # closing flips of runs that reach the last column
        full_end = np.flatnonzero(x[:, -1] >> np.uint64(63))
        if full_end.size:
            pos = np.sort(np.concatenate([pos, full_end * (64 * W) + C]))
    row, start = np.divmod(pos[0::2], 64 * W)
    stop = pos[1::2] - row * (64 * W)
    return row + row0, start, stop


def _high_bit(w: np.ndarray) -> np.ndarray:
    """Index of the highest set bit of nonzero uint64 words."""
    hb = np.log2(w.astype(np.float64)).astype(_I64)  # may round up near powers of two
    hb -= (w >> np.minimum(hb, 63).astype(np.uint64)) == 0
    return np.minimum(hb, 63)


def _low_bit(w: np.ndarray) -> np.ndarray:
    return np.log2((w & (~w + np.uint64(1))).astype(np.float64)).astype(_I64)


def _buf(ws: dict, k: str, R: int, W: int) -> np.ndarray:
    """A contiguous [R, W] uint64 view of the reused flat buffer ``ws[k]``."""
    return ws[k][:R * W].reshape(R, W)


def _scan_runs(mask: np.ndarray, row0: int, ws: dict) -> "_Runs":
    """Runs of a row chunk.  After packing, the words are cropped to the columns where the chunk
    has any cell (a band's chunk touches a few dozen of the row's words): every later pass runs
    on the crop only.  The words left and right of the crop are zero, so no flip crosses it."""
    R, C = mask.shape
    W = -(-C // 64)
    nbytes = -(-C // 8)
    if nbytes == 8 * W:  # no padding: the packed bytes are the words (saves a copy)
        by = np.packbits(mask, axis=1, bitorder="little")
    else:
        by = ws["bytes"][:R]
        by[:, :nbytes] = np.packbits(mask, axis=1, bitorder="little")
    x = by.view("<u8")  # [R, W]; bit j of word w = column 64w + j
    nzw = np.flatnonzero(np.bitwise_or.reduce(x, axis=0))
    if nzw.size == 0:
        z = np.zeros(0, dtype=_I64)
        return _Runs(z, z, z, z)
    wlo, whi = int(nzw[0]), int(nzw[-1])
    if 4 * (whi - wlo + 1) <= 3 * W:
        xc = _buf(ws, "x", R, whi - wlo + 1)
        np.copyto(xc, x[:, wlo:whi + 1])
        r = _scan_words(xc, min(C, 64 * (whi + 1)) - 64 * wlo, row0, ws)
        r.off = r.off + 64 * wlo
        return r
    return _scan_words(x, C, row0, ws)


def _shift_left_into(S: np.ndarray, sv: int, y: np.ndarray, h: np.ndarray) -> None:
    """``y = S << sv`` per row (bits carried across the words of a row, not across rows); all
    contiguous [n, W].  Shifted as one flat array (contiguous passes, several times faster than
    row slices); the first words of each row, which took bits of the row above, are redone."""
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


def _isolated_ap_rows(S: np.ndarray, sv: int, y: np.ndarray) -> np.ndarray:
    """``y = S & ~(S << sv)`` per row (contiguous [n, W]): the cells without a predecessor at
    -sv.  Two flat passes (``S ^ (S & (S << sv))``); the first words of each row are redone."""
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


def _ap_rows(S: np.ndarray, lo: np.ndarray, hi: np.ndarray, W: int, cnt_t, ws: dict):
    """(count, stride, ok) of rows of isolated cells ``S``: ok where the cells form one
    arithmetic progression (counted by popcount, then verified by shifting by the stride)."""
    n = np.bitwise_count(S).sum(axis=1, dtype=cnt_t).astype(_I64)
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
        y, h = _buf(ws, "f", S.shape[0], W), _buf(ws, "h", S.shape[0], W)
        for sv in keep_s.tolist():
            j = cand[s[cand] == sv]
            # Sj is an AP of stride sv iff every cell but the lowest has its predecessor at -sv:
            # popcount(Sj & (Sj << sv)) == n - 1 (the chains down by sv all end at lo).
            Sj = S if j.size == S.shape[0] else S[j]
            yj, hj = y[:j.size], h[:j.size]
            _shift_left_into(Sj, sv, yj, hj)
            np.bitwise_and(yj, Sj, out=yj)
            pairs = np.bitwise_count(yj).sum(axis=1, dtype=cnt_t).astype(_I64)
            ok[j[pairs != n[j] - 1]] = False
    return n, s, ok


def _scan_words(x: np.ndarray, C: int, row0: int, ws: dict) -> "_Runs":
    """Runs of packed rows ``x`` [R, W] (C columns; bits past C are zero)."""
    R, W = x.shape
    if "k" in ws:
        drop = _shift_copy_rows(x, C, ws)
        if drop is not None:
            # the kept rows alone, without the flip-based compression (they are not adjacent)
            kept = np.flatnonzero(~drop)
            xk = _buf(ws, "k", kept.size, W)
            np.take(x, kept, axis=0, out=xk)
            sub = {k: v for k, v in ws.items() if k not in ("e", "k")}
            r = _scan_words(xk, C, 0, sub)
            ws["sv"] = sub.get("sv", 0)
            r.row = kept[r.row] + row0
            ws["drop_exact"].append(np.flatnonzero(drop) + row0)
            return r
    f, g, s_bits = _buf(ws, "f", R, W), _buf(ws, "g", R, W), _buf(ws, "s", R, W)
    _flips_into(x, f, g)
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
    if "e" in ws and srow.size * 2 < R:
        noiso = np.ones(R, dtype=bool)
        noiso[srow] = False
        drop = _drop_rows(f, noiso, _buf(ws, "e", R, W))
        if drop.any():
            kept = np.flatnonzero(~drop)
            ws["drop"].append(np.flatnonzero(drop) + row0)
    if srow.size == 0:
        if kept is None:
            row, start, stop = _intervals_of(x, f, C, row0)
        else:
            row, start, stop = _intervals_of(x[kept], f[kept], C, 0)
            row = kept[row] + row0
        return _Runs(row=row, off=start, stride=np.ones(row.size, _I64), cnt=stop - start)
    np.bitwise_xor(x, s_bits, out=g)  # the cells of intervals of length >= 2
    # only rows that have such intervals (none in a dilated mask) and are not left out
    # the words these intervals touch first (a band), then the rows on that crop only
    gw = np.flatnonzero(np.bitwise_or.reduce(g, axis=0))
    if gw.size == 0:
        gw = np.zeros(1, dtype=_I64)
    glo, ghi = int(gw[0]), int(gw[-1])
    rows_g = np.flatnonzero(np.bitwise_or.reduce(g[:, glo:ghi + 1], axis=1))
    if kept is not None:
        rows_g = rows_g[~drop[rows_g]]
    k = rows_g.size
    Wg = ghi - glo + 1
    if k == R and Wg == W:
        row, start, stop = _intervals_of(g, _flips_into(g, f, _buf(ws, "h", R, W)), C, row0)
    else:
        gk = _buf(ws, "c", k, Wg)
        np.copyto(gk, g[:, glo:ghi + 1] if k == R else g[rows_g, glo:ghi + 1])
        row, start, stop = _intervals_of(gk, _flips_into(gk, _buf(ws, "f", k, Wg), _buf(ws, "h", k, Wg)),
                                         min(C, 64 * (ghi + 1)) - 64 * glo, 0)
        row = rows_g[row] + row0
        start += 64 * glo
        stop += 64 * glo
    S = s_bits if srow.size == R else s_bits[srow]
    nz = S != 0
    wlo = np.argmax(nz, axis=1)
    whi = W - 1 - np.argmax(nz[:, ::-1], axis=1)
    ar = np.arange(srow.size)
    lo = 64 * wlo + _low_bit(S[ar, wlo])
    hi = 64 * whi + _high_bit(S[ar, whi])
    cnt_t = np.uint16 if 64 * W < 1 << 16 else np.uint32 if 64 * W < 1 << 32 else _I64
    ns = srow.size
    n = np.ones(ns, dtype=_I64)
    s = np.zeros(ns, dtype=_I64)
    ok = np.ones(ns, dtype=bool)
    rest = ar
    sv = ws.get("sv", 0) or (_guess_stride(S, lo) if ns >= 64 else 0)
    if sv:
        # Fused check for the chunk's usual stride sv: the cells S of a row are lo, lo + sv, ...,
        # hi iff every cell but the lowest has its predecessor at -sv, i.e. S & ~(S << sv) is
        # the lowest cell alone; then n = (hi - lo) / sv + 1 (no popcount).  Rows of one cell
        # pass too (n = 1).  The stride is kept for the next chunk while most rows pass.
        y = _isolated_ap_rows(S, sv, _buf(ws, "f", ns, W))
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
        ws["sv"] = sv if 2 * rest.size < ns else 0
    if rest.size:
        Sr = S if rest.size == ns else S[rest]
        nr, sr, okr = _ap_rows(Sr, lo[rest], hi[rest], W, cnt_t, ws)
        n[rest], s[rest], ok[rest] = nr, sr, okr
    # an interval of length >= 2 inside the span breaks the chain
    if row.size:
        rel = np.full(R, -1, dtype=_I64)
        rel[srow] = ar
        k = rel[row - row0]
        inside = (k >= 0) & (start > lo[np.maximum(k, 0)]) & (start < hi[np.maximum(k, 0)])
        ok[k[inside]] = False
    fall = ~ok
    runs_r, runs_o, runs_s, runs_c = [row], [start], [np.ones(row.size, _I64)], [stop - start]
    if fall.any():
        fr = srow[fall]
        Sf = s_bits[fr]
        fw = np.flatnonzero(Sf.reshape(-1) != 0)
        pos = _bit_positions(fw, Sf.reshape(-1)[fw])
        rr, cc = np.divmod(pos, 64 * W)
        rr = fr[rr] + row0
        # merge with the intervals and chain the singletons as _runs does
        allr = np.concatenate([row, rr])
        alls = np.concatenate([start, cc])
        alle = np.concatenate([stop, cc + 1])
        o = np.argsort(allr * (C + 1) + alls, kind="stable")
        r = _runs(Intervals(0, C, allr[o], alls[o], alle[o]))
        runs_r, runs_o, runs_s, runs_c = [r.row], [r.off], [r.stride], [r.cnt]
    good = ok
    if good.any():
        runs_r.append(srow[good] + row0)
        runs_o.append(lo[good])
        runs_s.append(np.where(n[good] >= 2, s[good], 0))
        runs_c.append(n[good])
    allr, allo = np.concatenate(runs_r), np.concatenate(runs_o)
    o = np.argsort(allr * (C + 1) + allo, kind="stable")
    return _Runs(row=allr[o], off=allo[o], stride=np.concatenate(runs_s)[o], cnt=np.concatenate(runs_c)[o])


# ---------------------------------------------------------------------------------------------
# 3. Tracks
# ---------------------------------------------------------------------------------------------

def _tracks(r: _Runs) -> tuple[np.ndarray, np.ndarray]:
    """Order the runs by track.  Returns (order, chain_start): ``order`` lists run indices track
    by track, rows ascending; ``chain_start[p]`` marks where a new track begins.

    Run k of a row continues run ``k - shift`` of the row above.  The shift is 0 (align from
    the left) or ``d`` = the change in the number of runs (align from the right), whichever
    moves the runs less.  Where that leaves a pair of runs that are not near each other (an
    extra run on one side and a missing one on the other, e.g. noise next to a band), shifts
    ``-1, +1, d-1, d+1`` are tried too and the one pairing the most nearby runs wins.  With
    ``C`` the running sum of the shifts, ``u = k - C`` is constant along a track, so (block of
    consecutive rows, u) names it."""
    n = r.row.size
    crow = r.row if r.crow is None else r.crow  # left-out rows do not count
    first = np.flatnonzero(np.concatenate([[True], r.row[1:] != r.row[:-1]]))
    ng = first.size
    nruns = np.diff(np.append(first, n))
    row_of = np.repeat(np.arange(ng), nruns)
    k = np.arange(n) - first[row_of]
    has_prev = np.zeros(ng, dtype=bool)
    has_prev[1:] = crow[first[1:]] == crow[first[:-1]] + 1
    n0 = np.concatenate([[0], nruns[:-1]])
    d_all = nruns - n0
    last = r.off + np.maximum(r.stride, 1) * (r.cnt - 1)
    near = 2 + 2 * np.maximum(r.stride, 1)  # how far a run may move and still be "the same"

    def pairs(j, sh):
        """For runs j of rows g paired with run k - sh above: per-row (#near pairs, movement)."""
        g = row_of[j]
        kp = k[j] - sh
        ok = has_prev[g] & (kp >= 0) & (kp < n0[g])
        p = np.where(ok, first[np.maximum(g - 1, 0)] + kp, 0)
        do, dl = np.abs(r.off[j] - r.off[p]), np.abs(last[j] - last[p])
        good = ok & ((do <= near[j]) | (dl <= near[j]))
        return (np.bincount(g, weights=good, minlength=ng),
                np.bincount(g, weights=np.where(ok, do + dl, 0), minlength=ng))

    shift = np.zeros(ng, dtype=_I64)
    differ = has_prev & (d_all != 0)
    if differ.any():
        j = np.flatnonzero(differ[row_of])
        right = pairs(j, d_all[row_of[j]])[1] < pairs(j, 0)[1]
        shift = np.where(right & differ, d_all, 0)
    # A row is odd when fewer than min(n0, nruns) of its pairs are near.  With shift 0 or d every
    # row with a row above has exactly min(n0, nruns) pairs, so "odd" is "some pair is not near":
    # one pass over the runs, no per-row sums (this was one of the costliest passes on 1M runs).
    kp = k - shift[row_of]
    ok = has_prev[row_of] & (kp >= 0) & (kp < n0[row_of])
    jo = np.flatnonzero(ok)
    p = first[row_of[jo] - 1] + kp[jo]
    far = ((np.abs(r.off[jo] - r.off[p]) > near[jo]) & (np.abs(last[jo] - last[p]) > near[jo]))
    odd = np.zeros(ng, dtype=bool)
    odd[row_of[jo[far]]] = True
    if r.gap is not None:
        odd[r.gap[first]] = False  # the row below left-out rows continues them: shift 0
    if odd.any():
        j = np.flatnonzero(odd[row_of])
        cands = [shift, d_all, np.full(ng, -1), np.full(ng, 1), d_all - 1, d_all + 1]
        best_good = np.full(ng, -1.0)
        best_move = np.zeros(ng)
        best = shift.copy()
        for c in cands:  # first candidate wins ties: keep the plain alignment when it is as good
            good, move = pairs(j, c[row_of[j]])
            better = odd & ((good > best_good) | ((good == best_good) & (move < best_move)))
            best = np.where(better, c, best)
            best_good = np.where(better, good, best_good)
            best_move = np.where(better, move, best_move)
        shift = best
    block = np.cumsum(~has_prev)
    u = k - np.cumsum(shift)[row_of]
    # One int64 key (block, u); a stable sort keeps rows ascending inside a track.
    ub = u - u.min()
    key = block[row_of] * (int(ub.max()) + 1) + ub
    kmax = int(key.max())
    # a stable sort of small keys is a radix sort in numpy (O(n), several times faster)
    kt = np.uint8 if kmax < 1 << 8 else np.uint16 if kmax < 1 << 16 else np.uint32 if kmax < 1 << 32 else None
    order = np.argsort(key if kt is None else key.astype(kt), kind="stable")
    ou, ob, orow = u[order], block[row_of][order], crow[order]
    chain_start = np.ones(n, dtype=bool)
    chain_start[1:] = (ou[1:] != ou[:-1]) | (ob[1:] != ob[:-1]) | (orow[1:] != orow[:-1] + 1)
    return order, chain_start


def _resolve_wildcards(stride: np.ndarray, chain_start: np.ndarray) -> np.ndarray:
    """Runs of one element (stride 0) take the stride of the nearest earlier run of their track,
    else of the nearest later one, else 1.  Arrays are in track order; chain_start marks the
    first run of each track."""
    n = stride.size
    idx = np.arange(n)
    known = stride > 0
    # forward fill inside tracks
    last_known = np.where(known | chain_start, idx, 0)
    np.maximum.accumulate(last_known, out=last_known)
    fwd = np.where(known[last_known], stride[last_known], 0)
    # backward fill inside tracks
    chain_end = np.append(chain_start[1:], True)
    nxt_known = np.where(known | chain_end, idx, n - 1)
    nxt_known = np.minimum.accumulate(nxt_known[::-1])[::-1]
    bwd = np.where(known[nxt_known], stride[nxt_known], 0)
    out = np.where(known, stride, np.where(fwd > 0, fwd, np.where(bwd > 0, bwd, 1)))
    return out


def _segment(off, cnt, link, row=None) -> np.ndarray:
    """Greedy affine segmentation of sequences in track order; returns group starts.  With
    ``row`` (vertical compression: linked entries may be rows apart) offset and count must be
    affine in the row, which is "second differences zero" where the rows are equally spaced."""
    n = off.size
    same = np.zeros(n, dtype=bool)
    if n > 2 and row is not None:
        h0, h1 = row[1:-1] - row[:-2], row[2:] - row[1:-1]
        same[1:-1] = (((off[2:] - off[1:-1]) * h0 == (off[1:-1] - off[:-2]) * h1)
                      & ((cnt[2:] - cnt[1:-1]) * h0 == (cnt[1:-1] - cnt[:-2]) * h1))
    elif n > 2:
        dd_off = off[2:] - 2 * off[1:-1] + off[:-2]
        dd_cnt = cnt[2:] - 2 * cnt[1:-1] + cnt[:-2]
        same[1:-1] = (dd_off == 0) & (dd_cnt == 0)
    return _greedy_groups(link, same)


# ---------------------------------------------------------------------------------------------
# 4./5. Pieces and remainder
# ---------------------------------------------------------------------------------------------

def acsr_from_intervals(iv: Intervals, *, block: int = 64, min_piece_nnz: int = 8,
                        prefer_residue: bool = False) -> ACSR:
    return acsr_from_runs(iv.Lq, iv.Lk, _runs(iv), block=block, min_piece_nnz=min_piece_nnz,
                          prefer_residue=prefer_residue)


def acsr_from_runs(Lq: int, Lk: int, r: "_Runs", *, block: int = 64, min_piece_nnz: int = 8,
                   prefer_residue: bool = False) -> ACSR | None:
    """Steps 3-5 on the runs of step 2 (sorted by row, then offset).  ``None`` only for
    compressed runs (``r.crow``) where a piece with left-out rows would go to the remainder.
    ``prefer_residue``: regroup short stride-``s`` stretches by residue class even when that
    does not give fewer pieces (the form a residue-class row tile runs as one segment)."""
    n = r.row.size
    if n == 0:
        return ACSR(Lq, Lk)
    order, chain_start = _tracks(r)
    row, off, cnt = r.row[order], r.off[order], r.cnt[order]
    stride = _resolve_wildcards(r.stride[order], chain_start)
    link = np.zeros(n, dtype=bool)
    link[:-1] = ~chain_start[1:] & (stride[1:] == stride[:-1])
    comp = r.crow is not None
    g = _segment(off, cnt, link, row if comp else None)
    size = np.diff(np.append(g, n))

    # Residue pass: runs of short stretches with stride s >= 2 regrouped with row_step = s.
    # "Short" counts rows, left-out ones included; the residue classes need every row, so the
    # left-out rows of such stretches get their entries back first.
    span = row[g + size - 1] - row[g] + 1
    if comp:
        fill = (stride[g] >= 2) & (span <= stride[g]) & (span > size)
        if fill.any():
            row, off, cnt, stride, g, size = _fill_left_out(row, off, cnt, stride, g, size, span, fill)
            n = row.size
    grp = np.repeat(np.arange(g.size), size)
    cand = (stride >= 2) & (span[grp] <= stride)
    groups = [(g, size, np.ones(g.size, dtype=_I64))]
    if cand.any():
        ci = np.flatnonzero(cand)
        c_row, c_s = row[ci], stride[ci]
        # rank among the row's candidates of the same stride (left to right by offset)
        o = np.lexsort((off[ci], c_s, c_row))
        ci, c_row, c_s = ci[o], c_row[o], c_s[o]
        newkey = np.ones(ci.size, dtype=bool)
        newkey[1:] = (c_row[1:] != c_row[:-1]) | (c_s[1:] != c_s[:-1])
        starts = np.flatnonzero(newkey)
        rank = np.arange(ci.size) - np.repeat(starts, np.diff(np.append(starts, ci.size)))
        o2 = np.lexsort((c_row, rank, c_row % c_s, c_s))
        ci2 = ci[o2]
        k_s, k_res, k_rank, k_row = c_s[o2], (c_row % c_s)[o2], rank[o2], c_row[o2]
        link2 = np.zeros(ci2.size, dtype=bool)
        link2[:-1] = ((k_s[1:] == k_s[:-1]) & (k_res[1:] == k_res[:-1]) & (k_rank[1:] == k_rank[:-1])
                      & (k_row[1:] == k_row[:-1] + k_s[:-1]))
        g2 = _segment(off[ci2], cnt[ci2], link2, row[ci2] if comp else None)
        n_pass1 = int(np.count_nonzero(np.bincount(grp[ci])))  # pass-1 groups of the candidates
        if g2.size < n_pass1 or prefer_residue:
            # Keep the pass-1 groups of the other runs; the residue groups index copies of the
            # candidate runs appended in residue order.
            other = ~cand[g]
            groups = [(g[other], size[other], np.ones(int(other.sum()), dtype=_I64)),
                      (g2 + n, np.diff(np.append(g2, ci2.size)), k_s[g2])]
            row, off, cnt, stride = (np.concatenate([x, x[ci2]]) for x in (row, off, cnt, stride))
    return _build(Lq, Lk, row, off, cnt, stride, groups, block, min_piece_nnz)


def _fill_left_out(row, off, cnt, stride, g, size, span, fill):
    """The entries of the stretches (groups ``g``, ``size``) with those marked ``fill`` given
    one entry per row: the rows vertical compression left out are affine continuations, with
    offset and count slopes from the stretch's first two entries (``size >= 2`` where a row
    is missing)."""
    new_size = np.where(fill, span, size)
    gid = np.repeat(np.arange(g.size), new_size)
    j = _expand(new_size)
    f, g0 = fill[gid], g[gid]
    g1 = np.minimum(g0 + 1, row.size - 1)
    h = np.where(f, row[g1] - row[g0], 1)
    da = np.where(f, (off[g1] - off[g0]) // np.maximum(h, 1), 0)
    dc = np.where(f, (cnt[g1] - cnt[g0]) // np.maximum(h, 1), 0)
    src = np.where(f, g0, g0 + j)
    new_g = np.concatenate([[0], np.cumsum(new_size)[:-1]]).astype(_I64)
    return (np.where(f, row[g0] + j, row[src]), np.where(f, off[g0] + da * j, off[src]),
            np.where(f, cnt[g0] + dc * j, cnt[src]), stride[src], new_g, new_size)


def _build(Lq, Lk, row, off, cnt, stride, groups, block, min_piece_nnz) -> ACSR:
    g = np.concatenate([x[0] for x in groups])
    size = np.concatenate([x[1] for x in groups])
    rstep = np.concatenate([x[2] for x in groups])
    two = size >= 2
    g1 = np.where(two, g + 1, g)
    # T: rows of the piece; more than its runs where vertical compression left rows out
    T = (row[g + size - 1] - row[g]) // rstep + 1
    steps = np.where(two, (row[g1] - row[g]) // rstep, 1)
    off_a = np.where(two, (off[g1] - off[g]) // steps, 0)
    cnt_a = np.where(two, (cnt[g1] - cnt[g]) // steps, 0)
    nnz = cnt_a * T * (T - 1) // 2 + cnt[g] * T
    keep = nnz >= min_piece_nnz
    if (T[~keep] != size[~keep]).any():
        return None
    st = stride[g]
    st = np.where(np.maximum(cnt[g], cnt[g] + cnt_a * (T - 1)) <= 1, 1, st)
    r0 = row[g]
    r1 = r0 + rstep * (T - 1) + 1
    table = np.stack([r0, r1, np.where(T > 1, rstep, 1), st, off_a, off[g], cnt_a, cnt[g]], axis=1)[keep]
    remainder = None
    if not keep.all():
        drop_g, drop_size = g[~keep], size[~keep]
        members = np.repeat(drop_g, drop_size) + _expand(drop_size)
        rr, oo, cc, ss = row[members], off[members], cnt[members], np.maximum(stride[members], 1)
        j = _expand(cc)
        cells_r = np.repeat(rr, cc)
        cells_c = np.repeat(oo, cc) + np.repeat(ss, cc) * j
        remainder = _remainder(Lq, Lk, cells_r, cells_c, block)
    return ACSR._from_table(int(Lq), int(Lk), table, remainder)


def _remainder(Lq, Lk, rows, cols, block) -> BlockRemainder:
    nrb, ncb = -(-Lq // block), -(-Lk // block)
    key = (rows // block) * ncb + cols // block
    if nrb * ncb <= 4 * key.size + (1 << 20):  # a block occupancy table beats sorting
        present = np.bincount(key, minlength=nrb * ncb) > 0
        ukey = np.flatnonzero(present)
        inv = (np.cumsum(present) - 1)[key]
    else:
        ukey, inv = np.unique(key, return_inverse=True)
    masks = np.zeros((ukey.size, block, block), dtype=bool)
    masks[inv, rows % block, cols % block] = True
    blocks = np.stack(np.divmod(ukey, ncb), axis=1).astype(np.int32)
    return BlockRemainder(block, blocks, masks)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------

def _check_mask(mask) -> np.ndarray:
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a numpy bool ndarray of shape (Lq, Lk), got {type(mask).__name__}")
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must have dtype bool, got {mask.dtype}")
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (Lq, Lk), got shape {mask.shape}")
    if mask.shape[0] < 1 or mask.shape[1] < 1:
        raise ValueError(f"mask must have Lq >= 1 and Lk >= 1, got shape {mask.shape}")
    return np.ascontiguousarray(mask)


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
        mask = _check_mask(pattern_or_mask)
        result = None
        if _COMPRESS:
            result = acsr_from_runs(mask.shape[0], mask.shape[1], runs_from_mask(mask, compress=True),
                                    block=block, min_piece_nnz=min_piece_nnz)
        if result is None:  # compression off, or a piece with left-out rows is a remainder
            result = acsr_from_runs(mask.shape[0], mask.shape[1], runs_from_mask(mask),
                                    block=block, min_piece_nnz=min_piece_nnz)
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
    if getattr(pattern_or_mask, "_intervals", None) is None:
        # a predicate: its row chunks go straight to runs (no interval per isolated cell)
        parts = [runs_from_mask(np.ascontiguousarray(rows), row0=i0)
                 for i0, rows in pattern_or_mask.iter_rows()]
        runs = _Runs(*(np.concatenate([getattr(p, f) for p in parts])
                       for f in ("row", "off", "stride", "cnt")))
        result = acsr_from_runs(pattern_or_mask.Lq, pattern_or_mask.Lk, runs, block=block,
                                min_piece_nnz=min_piece_nnz)
    else:
        result = acsr_from_intervals(intervals(), block=block, min_piece_nnz=min_piece_nnz)
    if os.environ.get("SPLAT_DEBUG") == "1":
        _assert_exact_chunks(result, pattern_or_mask)
    return result


def _assert_exact(a: ACSR, mask: np.ndarray) -> None:
    a.validate()
    if not np.array_equal(a.to_mask(), mask):
        raise AssertionError("SPLAT_DEBUG: analysis is not exact")


def _assert_exact_chunks(a: ACSR, pattern) -> None:
    a.validate()
    for i0, rows in a.iter_mask_chunks():
        if not np.array_equal(rows, pattern.mask_rows(i0, i0 + rows.shape[0])):
            raise AssertionError(f"SPLAT_DEBUG: analysis is not exact in rows from {i0}")
