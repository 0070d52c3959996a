"""Step 4b of the analysis: quasi-affine stretches regrouped by residue class of the row.

A track whose offset or count is ``floor((a*i + b) / c)`` (a cross-attention window whose centre
moves at the rate ``Lk / Lq``, a pooled memory, a block edge that a dilated band touches every
``c`` rows) is not affine in the row, so the greedy cut of step 4 gives it one piece every few
rows.  It *is* affine on every residue class ``i = c*t + r``: ``floor((a*(c*t + r) + b)/c) =
a*t + floor((a*r + b)/c)``.  So:

1. *Fragments.*  Maximal runs of at least ``_MIN_GROUPS`` consecutive short pass-1 stretches
   (fewer than ``_SHORT`` rows each) on one linked sequence (one track, one stride) are the
   candidates; long stretches stay as they are.
2. *Period.*  The first differences ``(d_off, d_cnt)`` of a quasi-affine sequence repeat with
   period ``c``.  For every candidate period ``P`` (``2 .. _MAX_PERIOD``, and ``Lq / gcd(Lq,
   Lk)``, the period of a centre ``floor(q*Lk/Lq)``) the differences that do not repeat ``P``
   rows later are counted per fragment; ``P + mismatches`` estimates the pieces that ``P``
   residue classes give, and the fragment takes the ``P`` with the lowest estimate below its
   pass-1 stretch count (only periods under that count and under a third of the fragment's rows
   are tried).  The fragments of the residue pass of step 4 (stride-``s`` stretches no longer
   than ``s``) are candidates too; what this step does not take, that pass still regroups.
3. *Residue classes.*  The fragment's entries are ordered by (fragment, row mod ``P``, row) and
   cut greedily as in step 4, now with row step ``P``.  A fragment keeps the residue groups only
   when they are fewer than its pass-1 stretches.

Everything is vectorised over all fragments at once; each candidate period is one pass over the
fragments' entries.  The groups are exact by construction (each entry, one run of one row, lands
in exactly one group, and every group is affine in its local row index).
"""

from __future__ import annotations

import numpy as np

from .words import I64, lex_order

_SHORT = 64        # a pass-1 stretch shorter than this (rows) may be part of a fragment
_MIN_GROUPS = 4    # consecutive short stretches that make a fragment
_MAX_PERIOD = 32   # candidate periods 2 .. _MAX_PERIOD (plus the hints, see residue_groups())


def fragments(g: np.ndarray, size: np.ndarray, span: np.ndarray, seq: np.ndarray,
              exclude: np.ndarray) -> np.ndarray:
    """Fragment id per pass-1 group (``-1``: none).  ``seq[k]``: the linked sequence of group
    ``k`` (groups of one sequence are consecutive); ``exclude[k]``: groups left to other passes."""
    ng = g.size
    short = (span < _SHORT) & ~exclude
    if ng < _MIN_GROUPS or int(short.sum()) < _MIN_GROUPS:
        return np.full(ng, -1, dtype=I64)
    # runs of consecutive short groups inside one sequence
    start = short.copy()
    start[1:] &= ~(short[:-1] & (seq[1:] == seq[:-1]))
    rid = np.cumsum(start) - 1
    rid = np.where(short, rid, -1)
    cnt = np.bincount(rid[short], minlength=int(rid.max()) + 1 if short.any() else 0)
    ok = np.zeros(cnt.size + 1, dtype=bool)
    ok[:-1] = cnt >= _MIN_GROUPS
    keep = short & ok[rid]
    out = np.full(ng, -1, dtype=I64)
    if keep.any():
        _, out[keep] = np.unique(rid[keep], return_inverse=True)
    return out


def residue_groups(row, off, cnt, frag_of_entry, frag_of_group, nfrag: int, periods=()):
    """Residue-class regrouping of the fragments' entries (entries in track order; every row of
    a fragment present; ``frag_of_group``: the fragment of each pass-1 group in a fragment;
    ``periods``: extra candidate periods).  Returns ``(idx, link, step,
    frag, est)`` or None when no fragment has a period: ``idx`` are the entries of fragments
    with a period, in residue order (fragment, row mod P, row); ``link[k]``: ``idx[k]`` and
    ``idx[k+1]`` are rows ``P`` apart in one residue class; ``step``: the fragment's ``P`` per
    entry; ``frag``: the fragment per entry; ``est``: per fragment, the estimated pieces."""
    e = np.flatnonzero(frag_of_entry >= 0)
    if e.size < 4:
        return None
    fr = frag_of_entry[e]
    r, o, c = row[e], off[e], cnt[e]
    n = e.size
    # differences to the next entry of the same fragment (rows are consecutive in a fragment),
    # as one code per entry: equal codes <=> equal (d_off, d_cnt)
    same = np.zeros(n, dtype=bool)
    same[:-1] = (fr[1:] == fr[:-1]) & (r[1:] == r[:-1] + 1)
    code = np.zeros(n, dtype=I64)
    do, dc = o[1:] - o[:-1], c[1:] - c[:-1]
    span = int(np.abs(dc).max(initial=0)) * 2 + 1
    code[:-1] = do * span + dc
    nrows = np.bincount(fr, minlength=nfrag)
    ngroups = np.bincount(frag_of_group, minlength=nfrag)
    # a period P can only win where P < pass-1 groups and P <= rows / 3
    top = int(np.minimum(ngroups - 1, nrows // 3).max(initial=0))
    cands = [p for p in sorted(set(range(2, _MAX_PERIOD + 1)) | {int(p) for p in periods}) if 2 <= p <= top]
    best_est = ngroups.astype(I64)  # to beat: the pass-1 stretches
    best_p = np.zeros(nfrag, dtype=I64)
    # D_j (to the next row) and D_(j+P) both exist iff the P + 1 links j .. j+P all hold
    cs = np.concatenate([[0], np.cumsum(same)])
    for P in cands:
        if P + 1 >= n:
            break
        mis = (code[:n - P] != code[P:]) & (cs[P + 1:] - cs[:n - P] == P + 1)
        est = P + np.bincount(fr[:n - P][mis], minlength=nfrag)
        better = (nrows >= 3 * P) & (est < best_est)
        best_est = np.where(better, est, best_est)
        best_p = np.where(better, P, best_p)
    has = best_p > 0
    if not has.any():
        return None
    sel = has[fr]
    e, fr, r = e[sel], fr[sel], r[sel]
    P = best_p[fr]
    key_res = r % P
    order = lex_order((r, key_res, fr))
    e, fr, r, P, key_res = e[order], fr[order], r[order], P[order], key_res[order]
    link = np.zeros(e.size, dtype=bool)
    link[:-1] = (fr[1:] == fr[:-1]) & (key_res[1:] == key_res[:-1]) & (r[1:] == r[:-1] + P[:-1])
    return e, link, P, fr, best_est
