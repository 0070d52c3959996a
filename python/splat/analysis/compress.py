"""Vertical compression: rows of a dense mask that continue the rows around them affinely are
left out of the scan, and steps 3-5 work on the kept rows, the row numbers telling how far apart
they are.  The pieces are exactly those without compression (tests/unit/test_analysis.py).

Two kinds of rows are left out, per row chunk:

* rows that copy the row above or are it moved one column right (:func:`copy_or_shift_rows`):
  their runs are those of the row above, unmoved or all moved by one, isolated cells included, so
  they need no verification;
* otherwise rows where every flip that changes from the row above moves one more column right
  (:func:`continuing_rows`), verified on the kept rows around each left-out block
  (:func:`compressed`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .intervals import arange_each
from .runs import Runs
from .words import I64, bit_positions, shift_left_into


def copy_or_shift_rows(x: np.ndarray, C: int, d: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Rows of a chunk (packed ``x`` [R, W], C columns) that vertical compression leaves out
    because the row is an exact copy of the row above (every run stays) or the row above moved
    one column right (every run moves by one; nothing falls off the last column).  Row r is left
    out when rows r-1 .. r+3 all copy, or all shift, as in :func:`continuing_rows`.  None when
    that would leave out too few rows to pay (checked first on a sample of rows).  ``d`` and
    ``y`` are [R, W] scratch."""
    R, W = x.shape
    if R < 16:
        return None
    smp = np.linspace(1, R - 1, 9).astype(I64)
    xs, xp = x[smp], x[smp - 1]
    ys = xp << np.uint64(1)
    ys[:, 1:] |= xp[:, :-1] >> np.uint64(63)
    if 2 * int(((xs == xp).all(axis=1) | (xs == ys).all(axis=1)).sum()) < smp.size:
        return None
    np.bitwise_xor(x[1:], x[:-1], out=d[1:])
    mode = np.zeros(R, dtype=np.int8)  # 1: copies the row above, 2: is it moved right by one
    mode[1:] = np.where(np.bitwise_or.reduce(d[1:], axis=1) == 0, 1, 0)
    shift_left_into(x, 1, y, d)
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


def continuing_rows(f: np.ndarray, noiso: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Rows of a chunk (flips ``f``) that vertical compression leaves out.  With
    ``E_i = F_i ^ F_(i-1)`` (the flips that change from the row above, written into ``e``), row i
    *continues* when ``E_i == E_(i-1) << 1`` (every changing flip moves one more column right).
    Then from a row P on, ``F_(P+t) = F_P ^ M ^ (M << t)`` exactly (XOR telescopes), where M are
    the flips of row P that move: the runs' offsets and ends are affine in the row (moving by 0
    or 1), which :func:`compressed` verifies on the kept rows P, P+1 and Q+2 around each left-out
    block.  Row r is left out when rows r-1 .. r+3 continue and rows r-2 .. r+3 have no isolated
    cells (``noiso``), so that every left-out row lies three rows inside an affine stretch: the
    greedy cuts never start or end a piece there, and their look-ahead sees the same values."""
    R, W = f.shape
    np.bitwise_xor(f[1:], f[:-1], out=e[1:])
    e[0] = 0
    ew = np.flatnonzero(e.reshape(-1) != 0)
    pos = bit_positions(ew, e.reshape(-1)[ew])
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


def compressed(r: Runs, continuing: np.ndarray, exact: np.ndarray, R: int, row0: int,
               rescan: Callable[[np.ndarray], Runs]) -> Runs:
    """The runs ``r`` of the kept rows of mask rows ``row0 .. row0 + R`` with the compressed row
    numbers attached.  ``continuing`` and ``exact`` are the left-out rows (mask row numbers) of
    :func:`continuing_rows` and :func:`copy_or_shift_rows`.  The blocks of ``continuing`` are
    verified against the kept runs; the rows of blocks that fail (a moving flip met a fixed one:
    runs merged or crossed) are rescanned (``rescan(rows)``: the runs of those rows, numbered
    0, 1, ...) and kept after all.  Blocks of ``exact`` need no check; a block never mixes the
    two (blocks stay inside a chunk, and a chunk uses one kind)."""
    d = np.zeros(R + 1, dtype=bool)
    d[continuing - row0] = True
    d[exact - row0] = True
    is_exact = np.zeros(R + 1, dtype=bool)
    is_exact[exact - row0] = True
    st = np.flatnonzero(d[1:] & ~d[:-1]) + 1  # block starts (rows 0, 1 are never left out)
    en = np.flatnonzero(d[:-1] & ~d[1:])       # block ends
    P, Q2 = st - 2 + row0, en + 3 + row0
    rows = np.stack([P, P + 1, Q2])
    lo = np.searchsorted(r.row, rows, "left")
    m = np.searchsorted(r.row, rows, "right") - lo
    okb = (m[0] == m[1]) & (m[0] == m[2])
    mm = np.where(okb, m[0], 0)
    j = arange_each(mm)
    blk = np.repeat(np.arange(st.size), mm)
    iP, iP1, iQ = (np.repeat(lo[k], mm) + j for k in range(3))
    bad = (r.stride[iP] != 1) | (r.stride[iP1] != 1) | (r.stride[iQ] != 1)
    t = (Q2 - P)[blk]
    for a in (r.off, r.off + r.cnt):
        da = a[iP1] - a[iP]
        bad |= ((da != 0) & (da != 1)) | (a[iQ] != a[iP] + t * da)
    okb[blk[bad]] = False
    okb |= is_exact[st]
    if not okb.all():
        fs, fe = st[~okb], en[~okb]
        redo = np.repeat(fs, fe - fs + 1) + arange_each(fe - fs + 1)  # counted from row0
        d[redo] = False
        x = rescan(redo)
        x.row = redo[x.row] + row0
        o = np.argsort(np.concatenate([r.row, x.row]), kind="stable")
        r = Runs.concat([r, x]).take(o)
        if not d.any():
            return r
    ndrop = np.cumsum(d[:-1])
    rr = r.row - row0
    r.crow = rr - ndrop[rr]
    r.gap = np.zeros(rr.size, dtype=bool)
    nz = rr > 0
    r.gap[nz] = d[rr[nz] - 1]
    return r


def fill_left_out(row, off, cnt, stride, g, size, span, fill):
    """The entries of the stretches (groups ``g``, ``size``) with those marked ``fill`` given
    one entry per row: the rows vertical compression left out are affine continuations, with
    offset and count slopes from the stretch's first two entries (``size >= 2`` where a row
    is missing).  Returns (row, off, cnt, stride, g, size) of the filled entries."""
    new_size = np.where(fill, span, size)
    gid = np.repeat(np.arange(g.size), new_size)
    j = arange_each(new_size)
    f, g0 = fill[gid], g[gid]
    g1 = np.minimum(g0 + 1, row.size - 1)
    h = np.where(f, row[g1] - row[g0], 1)
    da = np.where(f, (off[g1] - off[g0]) // np.maximum(h, 1), 0)
    dc = np.where(f, (cnt[g1] - cnt[g0]) // np.maximum(h, 1), 0)
    src = np.where(f, g0, g0 + j)
    new_g = np.concatenate([[0], np.cumsum(new_size)[:-1]]).astype(I64)
    return (np.where(f, row[g0] + j, row[src]), np.where(f, off[g0] + da * j, off[src]),
            np.where(f, cnt[g0] + dc * j, cnt[src]), stride[src], new_g, new_size)
