"""The *blocks* plan of a row tile (docs/design.md section 2, "Two plans per row tile").

The affine plan (:meth:`splat.tiling.schedule._Builder.tile`) walks one segment per piece chain
in compressed key coordinates.  When the analysis returns many small pieces (unions of families,
rational slopes with ``Lq != Lk``, random masks), a tile gets many tiny segments and each costs
at least one masked key tile.  The blocks plan walks the *uncompressed* keys instead: the key
range is cut into ``BLOCK_N`` wide blocks aligned at 0; every block holding an allowed element of
the tile's rows is walked once; runs of consecutive *dense* blocks (every tile row allows every
key of the block) become one ordinary segment ``(col0, 1, ncols, 0, nrows, 0, 0, 0, ncols)``, and
every other occupied block becomes a mask tile with its bits.  It is expressed entirely in the
section 2 tables, so the kernel and the runtime do not know which plan a tile uses.

A dense-block segment of a full tile (``nrows == BLOCK_M``) walks unmasked key tiles; on a
shorter tile it is still exact (the segment bound masks rows ``>= nrows``) and cheaper than a
mask tile (no bits to load), so it is used there too and priced by the same cost model.

The plan is computed from the affine plan's own segments and mask tiles (their exact element
set), so it needs nothing from the ACSR and covers exactly what the affine plan covers.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..abi import SEGMENT_FIELDS

_SG = len(SEGMENT_FIELDS)

__all__ = ["tile_elements", "block_counts", "dense_runs", "block_plan"]


def _seg_array(segs) -> np.ndarray:
    if isinstance(segs, np.ndarray):
        return segs.astype(np.int64, copy=False).reshape(-1, _SG)
    # fromiter over the flattened tuples: several times faster than np.asarray on a list of
    # tuples, and this runs for every candidate tile the tiler prices
    flat = np.fromiter(itertools.chain.from_iterable(segs), dtype=np.int64, count=_SG * len(segs))
    return flat.reshape(-1, _SG)


def tile_elements(segs, masks, nrows: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rho, col)`` int64 of every element of a tile's segments (9-tuples of section 2) and
    mask tiles ``(col0, ncols, bool [nrows, ncols])``, vectorised: one ``np.repeat`` expands the
    segments to (segment, row) pairs, a second expands those to elements."""
    rhos, cols = [], []
    S = _seg_array(segs)
    if S.shape[0]:
        col0, cs, _, rl, rh, la, lb, ha, hb = S.T
        nr = rh - rl
        seg = np.repeat(np.arange(S.shape[0]), nr)
        # rho of each (segment, row) pair: rl + position inside the segment's row range
        rho = rl[seg] + np.arange(seg.size) - np.repeat(np.cumsum(nr) - nr, nr)
        lo = la[seg] * rho + lb[seg]
        cnt = np.maximum(ha[seg] * rho + hb[seg] - lo, 0)
        pair = np.repeat(np.arange(seg.size), cnt)
        u = lo[pair] + np.arange(pair.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        rhos.append(rho[pair])
        cols.append(col0[seg[pair]] + cs[seg[pair]] * u)
    if masks:
        width = max(nc for _, nc, _ in masks)
        stack = np.zeros((len(masks), nrows, width), dtype=bool)
        for m, (_, nc, bits) in enumerate(masks):  # one copy per mask tile, not per element
            stack[m, :bits.shape[0], :nc] = bits[:nrows, :nc]
        m, r, u = np.nonzero(stack)
        c0 = np.array([c for c, _, _ in masks], dtype=np.int64)
        rhos.append(r.astype(np.int64))
        cols.append(c0[m] + u)
    if not rhos:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rhos), np.concatenate(cols)


def _cdiv(a, b):
    return -(-a // b)


def _ap_block_counts(first, step, cnt, block_n: int, nb: int) -> np.ndarray:
    """Per-block element counts of arithmetic progressions ``first + step*i``, ``i < cnt``
    (``step >= 0``, ``cnt >= 1``): each is expanded to the blocks it spans (``np.repeat``), and
    ``g(x)`` = its keys below ``x`` at the block's two edges gives its count there; or, where it
    has fewer elements than blocks spanned (a sparse progression: Sparse Transformer strided
    rows at 64K span ~1000 blocks with ~500 keys), to its elements, each counted in its block."""
    BN = block_n
    b0 = first // BN
    span = (first + step * (cnt - 1)) // BN - b0 + 1
    sparse = cnt < span
    out = np.zeros(nb, dtype=np.int64)
    if sparse.any():
        n = cnt[sparse]
        ap = np.repeat(np.arange(n.size), n)
        i = np.arange(ap.size) - np.repeat(np.cumsum(n) - n, n)
        out += np.bincount((first[sparse][ap] + step[sparse][ap] * i) // BN, minlength=nb)
        if sparse.all():
            return out
        first, step, cnt, b0, span = (x[~sparse] for x in (first, step, cnt, b0, span))
    ap = np.repeat(np.arange(first.size), span)
    blk = b0[ap] + np.arange(ap.size) - np.repeat(np.cumsum(span) - span, span)
    f, st, c = first[ap], step[ap], cnt[ap]
    flat = st == 0
    st1 = np.where(flat, 1, st)

    def below(x):
        return np.where(flat, np.where(x > f, c, 0), np.clip(_cdiv(x - f, st1), 0, c))

    return out + np.bincount(blk, weights=below((blk + 1) * BN) - below(blk * BN),
                             minlength=nb).astype(np.int64)


def block_counts(segs, masks, nrows: int, Lk: int, block_n: int) -> np.ndarray:
    """``int64 [ceil(Lk / BLOCK_N)]``: elements of the tile in each aligned key block, without
    expanding the elements (the blocks plan's cost needs only these counts).

    Segments become arithmetic progressions of keys: a *line* (one key per row, ``hi - lo = 1``
    on every row: the transposed and per-row diagonals of strided and dilated layouts) is one
    progression over its rows, key ``col0 + cs*(lo_a*rho + lo_b)``; any other segment gives one
    progression per row.  Mask tiles add their column sums."""
    BN = block_n
    nb = _cdiv(Lk, BN)
    out = np.zeros(nb, dtype=np.int64)
    S = _seg_array(segs)
    if S.shape[0]:
        col0, cs, _, rl, rh, la, lb, ha, hb = S.T
        line = (ha == la) & (hb - lb == 1)
        # lines: keys col0 + cs*lb + cs*la*rho, rho in [rl, rh); ascending, whatever la's sign
        a, b = col0 + cs * (la * rl + lb), col0 + cs * (la * (rh - 1) + lb)
        firsts, steps, cnts = [np.minimum(a, b)[line]], [np.abs(cs * la)[line]], [(rh - rl)[line]]
        R = S[~line]
        col0, cs, _, rl, rh, la, lb, ha, hb = R.T
        nr = rh - rl
        seg = np.repeat(np.arange(R.shape[0]), nr)
        rho = rl[seg] + np.arange(seg.size) - np.repeat(np.cumsum(nr) - nr, nr)
        lo = la[seg] * rho + lb[seg]
        cnt = ha[seg] * rho + hb[seg] - lo
        live = cnt > 0
        firsts.append((col0[seg] + cs[seg] * lo)[live])
        steps.append(cs[seg][live])
        cnts.append(cnt[live])
        out += _ap_block_counts(np.concatenate(firsts), np.concatenate(steps),
                                np.concatenate(cnts), BN, nb)
    if masks:
        cols = np.concatenate([c0 + np.arange(nc) for c0, nc, _ in masks])
        sums = np.concatenate([b[:, :nc].sum(axis=0) for _, nc, b in masks])
        out += np.bincount(cols // BN, weights=sums, minlength=nb).astype(np.int64)
    return out


def block_widths(Lk: int, block_n: int) -> np.ndarray:
    nb = _cdiv(Lk, block_n)
    return np.minimum(block_n, Lk - np.arange(nb) * block_n)


def dense_runs(counts: np.ndarray, nrows: int, Lk: int, block_n: int) -> list[tuple]:
    """The segments of the runs of consecutive dense blocks (every tile row allows every key
    of the block: the count is ``nrows`` times its width, the elements being disjoint)."""
    d = np.flatnonzero(counts == nrows * block_widths(Lk, block_n))
    if not d.size:
        return []
    brk = np.flatnonzero(np.diff(d) != 1) + 1
    firsts = d[np.concatenate(([0], brk))] * block_n
    stops = np.minimum((d[np.concatenate((brk - 1, [d.size - 1]))] + 1) * block_n, Lk)
    return [(c0, 1, nc, 0, nrows, 0, 0, 0, nc)
            for c0, nc in zip(firsts.tolist(), (stops - firsts).tolist())]


def _touching(segs, masks, blocks: np.ndarray, block_n: int) -> tuple:
    """The segments and mask tiles whose key range ``[first key, last key]`` meets a block
    where ``blocks`` is set: only their elements can fall in those blocks (a fragmented tile
    has ~10^4 elements in its dense blocks, which the mask tiles do not need expanded)."""
    S = _seg_array(segs)
    before = np.concatenate(([0], np.cumsum(blocks)))  # set blocks below each block
    col0, cs, ncols = S[:, 0], S[:, 1], S[:, 2]
    b0, b1 = col0 // block_n, (col0 + cs * (ncols - 1)) // block_n
    keep_segs = S[before[b1 + 1] > before[b0]]
    keep_masks = [m for m in masks
                  if before[(m[0] + m[1] - 1) // block_n + 1] > before[m[0] // block_n]]
    return keep_segs, keep_masks


def block_plan(segs, masks, nrows: int, Lk: int, block_n: int,
               counts: np.ndarray | None = None) -> tuple[list, list]:
    """``(segments, mask tiles)`` of the blocks plan covering exactly the elements of ``segs``
    and ``masks`` (the affine plan of a tile with ``nrows`` rows, disjoint by construction).

    Runs of consecutive dense blocks become one segment each (:func:`dense_runs`); every other
    occupied block a mask tile ``(col0, ncols, bool [nrows, ncols])`` whose ``ncols`` stops at
    its last occupied key.  ``counts``: :func:`block_counts`, if the caller has them."""
    BN = block_n
    if counts is None:
        counts = block_counts(segs, masks, nrows, Lk, BN)
    out_segs = dense_runs(counts, nrows, Lk, BN)
    partial = (counts > 0) & (counts < nrows * block_widths(Lk, BN))
    mb = np.flatnonzero(partial)
    if not mb.size:
        return out_segs, []
    rho, col = tile_elements(*_touching(segs, masks, partial, BN), nrows)
    blk = col // BN
    slot = np.full(counts.size, -1, dtype=np.int64)
    slot[mb] = np.arange(mb.size)
    sel = slot[blk] >= 0
    bits = np.zeros((mb.size, nrows, BN), dtype=bool)
    bits[slot[blk[sel]], rho[sel], col[sel] - blk[sel] * BN] = True
    last = BN - np.argmax(bits.any(axis=1)[:, ::-1], axis=1)  # last occupied key + 1
    return out_segs, [(b * BN, int(n), bits[k, :, :n])
                      for k, (b, n) in enumerate(zip(mb.tolist(), last.tolist()))]
