"""Steps 4-5 of the analysis: tracks cut into pieces, and the remainder.

Each track is cut greedily into maximal stretches whose stride is constant and whose offset and
count are affine in the row (second differences zero).  Runs whose stretches are short compared
with their stride are regrouped by residue class (``row_step = stride``) when that gives fewer
pieces: the ramps of dilated / strided patterns.  Before that, runs of short stretches whose
offset or count is quasi-affine (``floor((a*i + b)/c)``) are regrouped by residue class of the
row, ``row_step`` = the period (:mod:`.quasi`).  Pieces with fewer than ``min_piece_nnz``
elements (irregular fragments) go to the block remainder.
"""

from __future__ import annotations

import os

import numpy as np

from .acsr import ACSR, BlockRemainder
from .compress import fill_left_out
from .greedy import greedy_groups
from .intervals import Intervals, arange_each, cells_of_runs
from .quasi import fragments, residue_groups
from .runs import Runs, runs_from_intervals
from .tracks import order_by_track, resolve_wildcards
from .words import I64, lex_order


def acsr_from_intervals(iv: Intervals, *, block: int = 64, min_piece_nnz: int = 8,
                        prefer_residue: bool = False, quasi: bool | None = None) -> ACSR:
    """Steps 2-5 on the maximal intervals of a mask (arguments as in :func:`acsr_from_runs`)."""
    return acsr_from_runs(iv.Lq, iv.Lk, runs_from_intervals(iv), block=block, min_piece_nnz=min_piece_nnz,
                          prefer_residue=prefer_residue, quasi=quasi)


def acsr_from_runs(Lq: int, Lk: int, r: Runs, *, block: int = 64, min_piece_nnz: int = 8,
                   prefer_residue: bool = False, quasi: bool | None = None) -> ACSR | None:
    """Steps 3-5 on the runs of step 2 (sorted by row, then offset).  ``None`` only for
    compressed runs (``r.crow``) where a piece with left-out rows would go to the remainder.
    ``prefer_residue``: regroup short stride-``s`` stretches by residue class even when that
    does not give fewer pieces (the form a residue-class row tile runs as one segment).
    ``quasi``: step 4b, quasi-affine fragments by residue class (:mod:`.quasi`); ``None`` means
    on unless ``SPLAT_ANALYSIS_QUASI=0`` (for comparisons: the pieces of the analysis without
    it)."""
    if quasi is None:
        quasi = os.environ.get("SPLAT_ANALYSIS_QUASI", "1") != "0"
    n = r.row.size
    if n == 0:
        return ACSR(Lq, Lk)
    order, chain_start = order_by_track(r)
    row, off, cnt = r.row[order], r.off[order], r.cnt[order]
    stride = resolve_wildcards(r.stride[order], chain_start)
    link = np.zeros(n, dtype=bool)
    link[:-1] = ~chain_start[1:] & (stride[1:] == stride[:-1])
    comp = r.crow is not None
    g = _segment(off, cnt, link, row if comp else None)
    size = np.diff(np.append(g, n))
    span = row[g + size - 1] - row[g] + 1

    # Quasi-affine fragments (step 4b, :mod:`.quasi`): runs of short stretches on one linked
    # sequence, regrouped by residue class of the row where that gives fewer pieces.  They go
    # first; the residue pass below takes the candidates they leave.
    res_cand = (stride[g] >= 2) & (span <= stride[g])
    seq_start = np.ones(n, dtype=bool)
    seq_start[1:] = ~link[:-1]
    frag = fragments(g, size, span, np.cumsum(seq_start)[g], np.full(g.size, not quasi))

    # Residue pass: runs of short stretches with stride s >= 2 regrouped with row_step = s.
    # "Short" counts rows, left-out ones included; the residue classes need every row, so the
    # left-out rows of such stretches (and of the quasi-affine fragments) get their entries back
    # first.
    if comp:
        fill = (res_cand | (frag >= 0)) & (span > size)
        if fill.any():
            row, off, cnt, stride, g, size = fill_left_out(row, off, cnt, stride, g, size, span, fill)
            n = row.size
    grp = np.repeat(np.arange(g.size), size)
    keep_g = np.ones(g.size, dtype=bool)  # pass-1 groups kept as they are
    extra = []  # (entry indices copied to the end, group starts into them, row step per group)
    q = _quasi_groups(Lq, Lk, row, off, cnt, frag, grp) if (frag >= 0).any() else None
    if q is not None:
        won, idx, gq, sq = q
        keep_g &= ~won
        extra.append((idx, gq, sq))
    cand = (stride >= 2) & (span[grp] <= stride) & keep_g[grp]
    if cand.any():
        ci = np.flatnonzero(cand)
        c_row, c_s = row[ci], stride[ci]
        # rank among the row's candidates of the same stride (left to right by offset)
        o = lex_order((off[ci], c_s, c_row))
        ci, c_row, c_s = ci[o], c_row[o], c_s[o]
        newkey = np.ones(ci.size, dtype=bool)
        newkey[1:] = (c_row[1:] != c_row[:-1]) | (c_s[1:] != c_s[:-1])
        starts = np.flatnonzero(newkey)
        rank = np.arange(ci.size) - np.repeat(starts, np.diff(np.append(starts, ci.size)))
        o2 = lex_order((c_row, rank, c_row % c_s, c_s))
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
            keep_g &= ~cand[g]
            extra.append((ci2, g2, k_s[g2]))
    groups = [(g[keep_g], size[keep_g], np.ones(int(keep_g.sum()), dtype=I64))]
    if extra:
        base = n
        for idx, gx, sx in extra:
            groups.append((gx + base, np.diff(np.append(gx, idx.size)), sx))
            base += idx.size
        cat = np.concatenate([x[0] for x in extra])
        row, off, cnt, stride = (np.concatenate([x, x[cat]]) for x in (row, off, cnt, stride))
    return _piece_table(Lq, Lk, row, off, cnt, stride, groups, block, min_piece_nnz)


def _quasi_groups(Lq, Lk, row, off, cnt, frag, grp):
    """The residue groups of the quasi-affine fragments that they make smaller: ``(won,
    idx, starts, step)`` with ``won[k]`` for the pass-1 groups replaced, ``idx`` the entries of
    the new groups in their order, ``starts`` the group starts into ``idx`` and ``step`` the row
    step of each; None when no fragment gains."""
    nfrag = int(frag.max()) + 1
    gcd = np.gcd(Lq, Lk)
    n_p1 = np.bincount(frag[frag >= 0], minlength=nfrag)
    res = residue_groups(row, off, cnt, frag[grp], frag[frag >= 0], nfrag, periods=(Lq // gcd,))
    if res is None:
        return None
    idx, link, step, fr, _ = res
    gq = _segment(off[idx], cnt[idx], link, row[idx])
    n_res = np.bincount(fr[gq], minlength=nfrag)
    win = (n_res > 0) & (n_res < n_p1)
    if not win.any():
        return None
    ke = win[fr]
    kg = ke[gq]
    # group starts re-indexed into the kept entries (whole fragments are kept or dropped)
    before = np.cumsum(~ke) - ~ke
    starts = gq[kg] - before[gq[kg]]
    won = np.zeros(frag.size, dtype=bool)
    won[frag >= 0] = win[frag[frag >= 0]]
    return won, idx[ke], starts, step[gq[kg]]


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
    return greedy_groups(link, same)


def _piece_table(Lq, Lk, row, off, cnt, stride, groups, block, min_piece_nnz) -> ACSR | None:
    """The ACSR of the stretches ``groups`` [(start, size, row_step) arrays] of the entries
    (row, off, cnt, stride); stretches under ``min_piece_nnz`` cells go to the remainder.  None
    where such a stretch has left-out rows (its cells are not all listed)."""
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
        members = np.repeat(drop_g, drop_size) + arange_each(drop_size)
        cells_r, cells_c = cells_of_runs(row[members], off[members], cnt[members], np.maximum(stride[members], 1))
        remainder = remainder_from_cells(Lq, Lk, cells_r, cells_c, block)
    return ACSR._from_table(int(Lq), int(Lk), table, remainder)


def remainder_from_cells(Lq: int, Lk: int, rows: np.ndarray, cols: np.ndarray, block: int) -> BlockRemainder:
    """The ``block`` x ``block`` remainder holding exactly the cells (rows, cols) of an
    ``Lq x Lk`` mask (cells may repeat)."""
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
