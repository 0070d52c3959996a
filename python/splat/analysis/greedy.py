"""Greedy left-to-right grouping ("extend while consistent, then start anew"), vectorised.

The greedy steps of the analysis (chaining isolated cells into runs, cutting tracks into pieces)
are sequential by nature; they are evaluated for all elements at once by pointer doubling over
the "next group start" map, restricted to the elements that can start a group.
"""

from __future__ import annotations

import numpy as np

from .words import I64


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


def greedy_groups(link: np.ndarray, same: np.ndarray) -> np.ndarray:
    """Greedy left-to-right grouping of a sequence.  ``link[p]``: p and p+1 may share a group;
    ``same[q]``: a group holding q-1 and q may take q+1 too.  Returns the group start indices.
    A group starting at p is p .. f with f the first q > p where ``same[q]`` fails, except that
    p stays alone when it cannot link, or when p+1 .. p+3 would fit one group and p does not
    fit with them (one look-ahead step, so that an odd row before a long stretch does not
    capture the stretch's first row).  The next group starts after the group's end."""
    n = link.size
    if n == 0:
        return np.zeros(0, dtype=I64)
    link = link.copy()
    link[-1] = False
    same = same & np.concatenate([[False], link[:-1]]) & link
    idx = np.arange(n, dtype=I64)
    # f[p]: the first q > p where same[q] fails (same[n-1] does, as link[n-1] does): a running
    # minimum from the right, O(n) where a binary search per element was the costliest step
    next_fail = np.where(same, n, idx)
    next_fail = np.minimum.accumulate(next_fail[::-1])[::-1]
    f = next_fail[np.minimum(idx + 1, n - 1)]
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
    rank = np.cumsum(cand) - 1  # position in S of each candidate
    t = nxt[S]
    nxt_S = np.where(t < n, rank[np.minimum(t, n - 1)], S.size)  # nxt[S] is in S, or n (-> len(S))
    return S[_reachable(nxt_S, roots[S])]
