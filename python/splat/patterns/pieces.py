"""Analytic ACSR construction for the named families: affine pieces cut where the general
analysis cuts them (greedy maximal stretches), many pieces built fast from tables, and the
analytic union of a window with global tokens and random blocks (``longformer``,
``bigbird``)."""

from __future__ import annotations

import bisect

import numpy as np

from .. import analysis
from ..analysis.acsr import ACSR, Piece
from ..analysis.intervals import consecutive_runs
from .pattern import _new, _set

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
