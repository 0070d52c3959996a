"""A tile's rows as *chains*, and the exact rewrites that make them cheaper segments
(docs/design.md section 2; schedule.py's step 4).

A chain ``(s, alpha, beta, gamma, delta, rho_lo, rho_hi)`` is the rows ``rho_lo <= rho <
rho_hi`` of a row tile where row ``rho`` holds the key columns ``alpha*rho + beta + s*j``,
``j < gamma*rho + delta`` (``alpha % s == 0``): one segment of the tile schedule
(:func:`chain_segment` gives its 9 fields). :func:`piece_chains` cuts a piece of the ACSR into
a tile's chains; three rewrites, each exact (the same elements) and each kept only where
:class:`ChainCost` prices it cheaper, turn them into fewer or cheaper segments:

* :func:`stack`: chains of one shape whose first columns step by a constant ``P`` become
  ``count`` chains of stride ``P`` (the "fixed" pattern's summary columns);
* :func:`transpose`: rows whose columns share a stride ``s`` but sit on different residues mod
  ``s`` become one diagonal chain per column index (the stride part of the "strided" pattern);
* :func:`coalesce`: chains of adjacent rows whose union is still one affine chain merge
  (:func:`try_merge`).
"""

from __future__ import annotations

import bisect
import itertools
import math

import numpy as np

from .cost_model import WEIGHTS as COST
from .tile_schedule import _cdiv

__all__ = ["LivePiece", "piece_chains", "chain_segment", "chain_segments", "try_merge",
           "ChainCost", "stack", "transpose", "coalesce"]

_W_SEG = COST.W_SEG        # read a segment, set up its loop
_W_MASKED = COST.W_MASKED  # a key tile that evaluates the element mask
# coalesce prices every open candidate up to this many, else the nearest by column
_COALESCE_SCAN = 48
_COALESCE_NEAR = 8


class LivePiece:
    """A piece, reduced to its live rows (count > 0): local rows ``t in [ta, tb)``."""
    __slots__ = ("r0", "p", "s", "oa", "ob", "ca", "cb", "ta", "tb", "first", "last", "period")

    def __init__(self, pc):
        self.r0, self.p, self.s = pc.r0, pc.row_step, pc.stride
        self.oa, self.ob, self.ca, self.cb = pc.off_a, pc.off_b, pc.cnt_a, pc.cnt_b
        T = pc.T
        a, b = self.ca, self.cb
        if a == 0:
            ta, tb = (0, T) if b > 0 else (0, 0)
        elif a > 0:
            ta, tb = max(0, (-b) // a + 1), T
        else:
            ta, tb = 0, min(T, (b - 1) // -a + 1)
        self.ta, self.tb = ta, tb
        self.first = self.r0 + self.p * ta
        self.last = self.r0 + self.p * (tb - 1)
        k = self.s // math.gcd(self.oa, self.s)
        self.period = self.p * k

    @property
    def live(self) -> bool:
        return self.ta < self.tb


def piece_chains(pc: LivePiece, row0: int, R: int, nrows: int, out: list) -> None:
    """Append the piece's rows of tile ``(row0, R, nrows)`` as chains
    ``(s, alpha, beta, gamma, delta, rho_lo, rho_hi)``: row ``rho`` holds columns
    ``alpha*rho + beta + s*j``, ``j < gamma*rho + delta``, with ``alpha % s == 0``."""
    r0, p, s = pc.r0, pc.p, pc.s
    oa, ob, ca, cb, ta, tb = pc.oa, pc.ob, pc.ca, pc.cb, pc.ta, pc.tb
    if nrows == 1:
        R = p
    if R % p == 0:
        d = row0 - r0
        if d % p:
            return
        q, t0 = R // p, d // p
        rl = max(0, _cdiv(ta - t0, q))
        rh = min(nrows, _cdiv(tb - t0, q))
        if rl >= rh:
            return
        if max(ca * (t0 + q * rl) + cb, ca * (t0 + q * (rh - 1)) + cb) <= 1:
            s = 1  # one column per row: the stride is unobservable
        al = oa * q
        if al % s == 0:
            out.append((s, al, oa * t0 + ob, ca * q, ca * t0 + cb, rl, rh))
            return
        for rho in range(rl, rh):
            t = t0 + q * rho
            c = ca * t + cb
            out.append((s if c > 1 else 1, 0, oa * t + ob, 0, c, rho, rho + 1))
        return
    # rows with row0 + R*rho = r0 (mod p): one residue class of rho mod p/g
    g = math.gcd(R, p)
    if (r0 - row0) % g:
        return
    m = p // g
    rho0 = ((r0 - row0) // g * pow(R // g, -1, m)) % m if m > 1 else 0
    for rho in range(rho0, nrows, m):
        t = (row0 + R * rho - r0) // p
        if ta <= t < tb:
            c = ca * t + cb
            out.append((s if c > 1 else 1, 0, oa * t + ob, 0, c, rho, rho + 1))


def chain_segment(ch) -> tuple:
    s, al, be, ga, de, rl, rh = ch
    f_l, f_h = al * rl + be, al * (rh - 1) + be
    col0 = min(f_l, f_h)
    lo_a, lo_b = al // s, (be - col0) // s
    hi_a, hi_b = lo_a + ga, lo_b + de
    ncols = max(hi_a * rl + hi_b, hi_a * (rh - 1) + hi_b)
    return (col0, s, ncols, rl, rh, lo_a, lo_b, hi_a, hi_b)


def chain_segments(chains: list) -> np.ndarray:
    """:func:`chain_segment` of every chain, as one ``int64 [n, 9]`` array."""
    s, al, be, ga, de, rl, rh = np.array(chains, dtype=np.int64).reshape(-1, 7).T
    col0 = np.minimum(al * rl + be, al * (rh - 1) + be)
    lo_a, lo_b = al // s, (be - col0) // s
    hi_a, hi_b = lo_a + ga, lo_b + de
    ncols = np.maximum(hi_a * rl + hi_b, hi_a * (rh - 1) + hi_b)
    return np.stack([col0, s, ncols, rl, rh, lo_a, lo_b, hi_a, hi_b], axis=1)


def try_merge(A, B):
    """Chain for rows of A followed by rows of B (``A.rho_hi == B.rho_lo``) if their union is
    one affine chain, else None."""
    s = A[0]
    if B[0] != s or (A[2] - B[2]) % s:
        return None
    if A[6] - A[5] >= 2 or B[6] - B[5] >= 2:
        line, other = (A, B) if A[6] - A[5] >= 2 else (B, A)
        al, be, ga, de = line[1:5]
        if other[6] - other[5] >= 2:
            if other[1:5] != line[1:5]:
                return None
        else:
            r = other[5]
            if al * r + be != other[1] * r + other[2] or ga * r + de != other[3] * r + other[4]:
                return None
        return (s, al, be, ga, de, A[5], B[6])
    ra, rb = A[5], B[5]
    fa, fb = A[1] * ra + A[2], B[1] * rb + B[2]
    ca, cb = A[3] * ra + A[4], B[3] * rb + B[4]
    al, ga = fb - fa, cb - ca  # rb == ra + 1
    return (s, al, fa - al * ra, ga, ca - ga * ra, ra, B[6])


class ChainCost:
    """A chain's cost as a segment of a ``block_m x block_n`` tile schedule, in units of one
    computed key tile (cost_model.WEIGHTS): what every rewrite compares."""

    __slots__ = ("block_m", "block_n")

    def __init__(self, block_m: int, block_n: int):
        self.block_m, self.block_n = block_m, block_n

    def one(self, ch, nrows) -> float:
        """The cost of segment ``chain_segment(ch)`` in a tile of ``nrows`` rows (the
        builder's ``_seg_cost``) in one step, the same arithmetic (the merging passes price
        every candidate merge: hundreds of thousands on fragmented tiles)."""
        s, al, be, ga, de, rl, rh = ch
        last = rh - 1
        # conditional expressions, not min/max: the same values, without two calls a chain
        col0 = be + (al * rl if al >= 0 else al * last)
        la, lb = al // s, (be - col0) // s
        ha, hb = la + ga, lb + de
        ncols = hb + (ha * last if ha >= 0 else ha * rl)
        BN = self.block_n
        k = -(-ncols // BN)
        f = 0
        if rl == 0 and rh == nrows == self.block_m:  # _seg_key_tiles' full key tiles
            lo = max(lb, la * last + lb)
            hi = min(ncols, hb, ha * last + hb)
            f = max(0, (hi - BN) // BN + (-max(lo, 0)) // BN + 1)
        return _W_SEG + k + _W_MASKED * (k - f)

    def total(self, chains, nrows) -> float:
        return sum(self.one(ch, nrows) for ch in chains)


def stack(chains: list, nrows: int, cost: "ChainCost") -> list:
    """Chains of one shape (stride 1, same rows, slopes and counts) whose first columns step
    by a constant ``P``: their ``e``-th columns form one key sequence of stride ``P``, so
    ``count`` chains of stride ``P`` can replace ``n`` chains (the summary columns of the
    "fixed" pattern: 16 columns of every earlier block become 16 dense problems)."""
    groups: dict[tuple, list] = {}
    out = []
    for ch in chains:
        if ch[0] == 1:
            groups.setdefault((ch[1], ch[3], ch[4], ch[5], ch[6]), []).append(ch)
        else:
            out.append(ch)
    for (al, ga, de, rl, rh), lst in groups.items():
        if len(lst) < 3:
            out.extend(lst)
            continue
        lst.sort(key=lambda c: c[2])
        i, n = 0, len(lst)
        while i < n:
            j = i + 1
            if j < n:
                P = lst[j][2] - lst[i][2]
                while j + 1 < n and lst[j + 1][2] - lst[j][2] == P:
                    j += 1
                j += 1
            run = lst[i:j]
            stacked = None
            # P = 0: chains repeated (never from disjoint pieces): nothing to stack
            if len(run) >= 3 and P > 0 and al % P == 0:
                stacked = _stacked(run, P, nrows, cost)
            out.extend(run if stacked is None else stacked)
            i = j
    return out

def _stacked(run, P, nrows, cost: "ChainCost"):
    s_, al, be, ga, de, rl, rh = run[0]
    nj = len(run)
    cmax = max(ga * rl + de, ga * (rh - 1) + de)
    res = []
    for e in range(cmax):
        # rows with count > e
        if ga == 0:
            a, b = rl, rh
        elif ga > 0:
            a, b = max(rl, (e - de) // ga + 1), rh
        else:
            a, b = rl, min(rh, (de - e - 1) // -ga + 1)
        if a < b:
            res.append((P, al, be + e, 0, nj, a, b))
    if cost.total(res, nrows) < cost.total(run, nrows):
        return res
    return None

def transpose(chains: list, nrows: int, cost: "ChainCost") -> list:
    """Rows whose columns are APs of one stride ``s`` but whose first columns step by
    ``alpha`` (not a multiple of ``s``) from row to row cannot share a key sequence.  Their
    ``j``-th columns, though, lie on lines of slope ``alpha``: emit one chain per ``j``
    (``64`` rows x ``1`` column in one key tile) instead of one per row when that is cheaper.
    This is the stride part of the strided pattern in row-contiguous tiles."""
    single: dict[int, list] = {}
    out = []
    for ch in chains:
        if ch[6] - ch[5] == 1 and ch[3] * ch[5] + ch[4] >= 2:
            single.setdefault(ch[0], []).append(ch)
        else:
            out.append(ch)
    for s, lst in single.items():
        if s == 1:  # every alpha is a multiple of 1: nothing to transpose (coalesce sorts)
            out.extend(lst)
            continue
        per_row: dict[int, int] = {}
        for ch in lst:
            per_row[ch[5]] = per_row.get(ch[5], 0) + 1
        uniq = sorted((ch for ch in lst if per_row[ch[5]] == 1), key=lambda c: c[5])
        out.extend(ch for ch in lst if per_row[ch[5]] > 1)
        first = [ch[1] * ch[5] + ch[2] for ch in uniq]
        i, n = 0, len(uniq)
        while i < n:
            j = i + 1
            al = first[j] - first[i] if j < n else 0
            if j < n and uniq[j][5] == uniq[i][5] + 1 and al % s:
                while j + 1 < n and uniq[j + 1][5] == uniq[j][5] + 1 and first[j + 1] - first[j] == al:
                    j += 1
                j += 1
                run = uniq[i:j]
                trans = _transposed(run, first[i], al, s, cost.total(run, nrows), nrows,
                                    cost)
                out.extend(run if trans is None else trans)
            else:
                out.append(uniq[i])
            i = j
    return out

def _transposed(run, f0, al, s, budget, nrows, cost: "ChainCost"):
    """Chains ``(1, al, be + s*j, 0, 1, a, b)`` for every ``j`` and every maximal run
    ``[a, b)`` of rows with more than ``j`` columns, or None when they cost ``budget`` or
    more.  Rows with count >= c are the same for all ``j`` between two distinct counts, so
    the runs are found once per distinct count."""
    r0 = run[0][5]
    cnt = [ch[3] * ch[5] + ch[4] for ch in run]
    be = f0 - al * r0
    res, total, prev = [], 0.0, 0
    for lv in sorted(set(cnt)):
        runs, start = [], None
        for k, c in enumerate(cnt):
            if c >= lv and start is None:
                start = k
            elif c < lv and start is not None:
                runs.append((start, k))
                start = None
        if start is not None:
            runs.append((start, len(cnt)))
        for a, b in runs:
            ch = (1, al, be, 0, 1, r0 + a, r0 + b)
            total += (lv - prev) * cost.one(ch, nrows)
            if total >= budget:
                return None
            res.extend((1, al, be + s * j, 0, 1, r0 + a, r0 + b) for j in range(prev, lv))
        prev = lv
    return res

def coalesce(chains: list, nrows: int, cost: "ChainCost") -> list[tuple]:
    """Merge chains of consecutive rows into longer affine chains where the merged segment
    costs no more than the two apart (greedy, rows in order, the cheapest merge first).

    A chain may merge with any open chain that ends on the row before it, has its stride
    and its column residue.  Fragmented tiles have thousands of those; past
    ``_COALESCE_SCAN`` open chains only the ones whose last first-column lies nearest, and
    the lines whose continuation is exactly this chain, are priced (kept in a sorted index),
    so the pass stays ``O(n log n)``.  The choice only affects cost, never exactness; tiles
    with fewer open chains (every named family) are priced as before."""
    if len(chains) <= 1:
        return [chain_segment(c) for c in chains]
    chains.sort(key=lambda c: (c[5], c[0], c[1] * c[5] + c[2]))
    out: list = []            # chains
    costs: list[float] = []
    open_: dict[tuple, list[int]] = {}   # (rho_hi, s, residue) -> indices into out
    # the sorted index, kept only for the keys that once had more than _COALESCE_SCAN open
    # chains (built then from open_; the rest, every named family's, never need it)
    by_col: dict[tuple, list] = {}       # key -> sorted (last row's first column, idx)
    by_next: dict[tuple, list] = {}      # (rho_hi, s, col, count): lines continued a row
    seq: dict[int, int] = {}             # when each open chain was (re)opened
    ticket = itertools.count()

    def f_last(c):
        return c[1] * (c[6] - 1) + c[2]

    def next_key(c):  # a line's continuation one row on: by_next's key (its residue's)
        return (c[6], c[0], c[1] * c[6] + c[2], c[3] * c[6] + c[4])

    def index(idx, key):
        bisect.insort(by_col[key], (f_last(out[idx]), idx))
        if out[idx][6] - out[idx][5] >= 2:
            by_next.setdefault(next_key(out[idx]), []).append(idx)

    def close(idx, key):
        open_[key].remove(idx)
        if key in by_col:
            lst = by_col[key]
            del lst[bisect.bisect_left(lst, (f_last(out[idx]), idx))]
            if out[idx][6] - out[idx][5] >= 2:
                by_next[next_key(out[idx])].remove(idx)

    def open_chain(idx):
        c = out[idx]
        key = (c[6], c[0], c[2] % c[0])
        open_.setdefault(key, []).append(idx)
        seq[idx] = next(ticket)
        if key in by_col:
            index(idx, key)

    chain_cost = cost.one
    for ch in chains:
        s = ch[0]
        key = (ch[5], s, ch[2] % s)
        cands = open_.get(key)
        best = None
        c_b = None
        if cands:
            if len(cands) > _COALESCE_SCAN:
                if key not in by_col:
                    by_col[key] = []
                    for idx in cands:
                        index(idx, key)
                f = ch[1] * ch[5] + ch[2]
                lst = by_col[key]
                i = bisect.bisect_left(lst, (f, -1))
                near = {idx for _, idx in lst[max(0, i - _COALESCE_NEAR):i + _COALESCE_NEAR]}
                near.update(by_next.get((ch[5], s, f, ch[3] * ch[5] + ch[4]), ()))
                cands = sorted(near, key=seq.__getitem__)  # the order open_ holds them in
            c_b = chain_cost(ch, nrows)
            for idx in cands:
                m = try_merge(out[idx], ch)
                if m is None:
                    continue
                c_m = chain_cost(m, nrows)
                delta = c_m - costs[idx] - c_b
                if delta <= 1e-9 and (best is None or delta < best[0]):
                    best = (delta, idx, m, c_m)
        if best is not None:
            _, idx, m, c_m = best
            close(idx, key)
            out[idx], costs[idx] = m, c_m
            open_chain(idx)
        else:
            out.append(ch)
            costs.append(chain_cost(ch, nrows) if c_b is None else c_b)
            open_chain(len(out) - 1)
    return [chain_segment(c) for c in out]
