"""Step 3 of the analysis: runs linked from row to row into tracks.

Run ``k`` of row ``i+1`` is linked to a run of row ``i``, aligning the two rows from the left or
from the right, whichever moves the runs less (so a run appearing on the left, like the strided
pattern's stride part, does not shift the others); rows where that pairs distant runs (noise next
to a band) try shifts by one more.  ``splat.patterns`` mirrors this alignment where its analytic
constructions must cut where the analysis cuts.
"""

from __future__ import annotations

import numpy as np

from .runs import Runs
from .words import I64


def order_by_track(r: Runs) -> tuple[np.ndarray, np.ndarray]:
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

    shift = np.zeros(ng, dtype=I64)
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
        tried = []
        for c in cands:  # first candidate wins ties: keep the plain alignment when it is as good
            new = odd.copy()  # a shift already tried on a row cannot do better there: skip it
            for t in tried:
                new &= c != t
            tried.append(c)
            jc = j[new[row_of[j]]]
            good, move = pairs(jc, c[row_of[jc]])
            better = new & ((good > best_good) | ((good == best_good) & (move < best_move)))
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


def resolve_wildcards(stride: np.ndarray, chain_start: np.ndarray) -> np.ndarray:
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
