"""The cut DP's tile costs for *band* layouts, vectorised (schedule.py, step 3).

A band layout has no remainder and only pieces of row step 1 and stride 1: each row's keys are
one contiguous run whose ends are affine in the row (packed documents, causal or not,
prefix-LM, chunked causal, windows, blocks, and their unions and intersections).  Its row step
is 1 everywhere, and the cut DP prices thousands of candidate tiles ``[lo, lo + nrows)``; the
general path builds each tile's chains and runs the merging passes on them, ~10 us a tile in
Python, which is most of the constructor-to-tables time at 16K.

In a tile of such a layout every piece gives at most one chain, and for most tiles the merging
passes change nothing: stacking needs three chains of one shape, transposing never applies to
stride 1, and coalescing needs a chain that continues another on the next row, which only a
one-row chain or two chains on one line can.  A one-row chain is mostly a piece that ends or
starts one row into the tile, beside the piece that continues its line (window and document
bands cut by the tile grid): that merge, the only one such a tile can make, is made here too
(:func:`_one_row_merges`).  For those tiles :func:`band_tile_costs` computes the affine plan's
cost with numpy, with the very float operations of ``_Builder._plan_cost`` in the same order
(the segments in the order ``_coalesce`` emits them), and the blocks plan's cost from per-block
counts where "auto" would price it, so the DP sees the same numbers and makes the same cuts.
Every other tile -- one the merging passes could change otherwise, one with more chains than
the fragmented-tile limit -- is flagged, and the builder prices it the general way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cost_model import WEIGHTS as COST

__all__ = ["BandCosts", "BandPieces", "PlanRules", "band_segments_at", "band_tile_costs",
           "band_tile_segments"]

_CELLS_PER_CHUNK = 1 << 22  # (tile, piece) pairs per numpy pass: bounds its arrays


class BandPieces:
    """The pieces of a band layout as arrays: piece ``k`` holds rows ``r0 + t``,
    ``t in [ta, tb)`` (its live rows), keys ``oa*t + ob + j``, ``j < ca*t + cb``; and the
    ``BLOCK_M x BLOCK_N`` tile shape, whose costs decide the merges ``_coalesce`` makes."""

    def __init__(self, pieces, block_m: int, block_n: int):
        def col(name):
            return np.array([getattr(pc, name) for pc in pieces], dtype=np.int64)

        self.r0, self.ta, self.tb = col("r0"), col("ta"), col("tb")
        self.oa, self.ob, self.ca, self.cb = col("oa"), col("ob"), col("ca"), col("cb")
        self.block_m, self.block_n = block_m, block_n
        # the pieces' first and last live rows (+1); where both are sorted (the pieces of most
        # band layouts, one after another down the rows) a tile's pieces are a range of k
        self.first, self.end = self.r0 + self.ta, self.r0 + self.tb
        self.ranges = bool((np.diff(self.first) >= 0).all() and (np.diff(self.end) >= 0).all())


def _cdiv(a, b):
    return -(-a // b)


@dataclass(frozen=True)
class PlanRules:
    """The builder's plan rules that :func:`band_tile_costs` reproduces (schedule.py's
    ``_PLAN_MIN_ITEMS``, ``_PLAN_MIN_MASKED``, ``_COALESCE_MAX_CHAINS``, ``_BLOCKS_MARGIN``;
    ``auto``: whether the blocks plan is priced at all)."""

    auto: bool
    min_items: int
    min_masked: int
    max_chains_per_row: int
    blocks_margin: float


@dataclass
class BandCosts:
    """What :func:`band_tile_costs` found for each tile: ``general`` where it does not price
    the tile (the other fields are 0 there); else the planned ``cost``, the ``plan`` (0 affine,
    1 blocks, as schedule.py's PLAN_*), the affine plan's cost ``affine`` and, for the blocks
    plan, whether it has mask tiles (``masks``: ``_Builder.blocks_adds_masks``)."""

    general: np.ndarray
    cost: np.ndarray
    plan: np.ndarray
    affine: np.ndarray
    masks: np.ndarray
    # the merged chains ``(tile, alpha, beta, gamma, delta, rho_lo, rho_hi)`` of all the tiles
    # (tile: position), from which :func:`band_segments_at` builds the segments of priced ones
    chains: tuple | None = None


def band_tile_costs(pcs: BandPieces, lo: np.ndarray, nrows: np.ndarray, block_m: int,
                    block_n: int, Lk: int, rules: PlanRules) -> BandCosts:
    """The planned costs of the tiles ``[lo, lo + nrows)`` (row step 1), except the tiles this
    function leaves to the general path: one the merging passes might change, one with more
    chains than the fragmented-tile limit, one whose blocks plan "auto" would have to build
    (its lower bound does not rule it out)."""
    step = max(1, _CELLS_PER_CHUNK // max(1, pcs.r0.size))
    parts = [_chunk_costs(pcs, lo[s:s + step], nrows[s:s + step], block_m, block_n, Lk, rules)
             for s in range(0, lo.size, step)]
    out = BandCosts(*(np.concatenate([getattr(c, f) for c in parts]) if parts else np.zeros(0)
                      for f in ("general", "cost", "plan", "affine", "masks")))
    if len(parts) == 1:
        out.chains = parts[0].chains
    elif parts:
        offset = np.arange(0, lo.size, step)
        out.chains = tuple(np.concatenate([c.chains[f] + (offset[k] if f == 0 else 0)
                                           for k, c in enumerate(parts)]) for f in range(7))
    return out


def band_segments_at(bc: BandCosts, at: np.ndarray) -> list[list[tuple]]:
    """:func:`band_tile_segments` of the priced (not general) tiles at positions ``at``
    (distinct) of ``bc``, from the chains band_tile_costs merged: the merges of a priced tile
    are those band_tile_segments makes (:func:`_one_row_merges` only skips general tiles)."""
    tile, al, be, ga, de, rl, rh = bc.chains
    slot = np.full(bc.general.size, -1)
    slot[at] = np.arange(at.size)
    k = slot[tile]
    keep = k >= 0
    tile, al, be, ga, de, rl, rh = (x[keep] for x in (k, al, be, ga, de, rl, rh))
    return _tile_rows(tile, al, be, ga, de, rl, rh, at.size)


def band_tile_segments(pcs: BandPieces, lo: np.ndarray, nrows: np.ndarray) -> list[list[tuple]]:
    """The affine plan's segments of each tile that :func:`band_tile_costs` priced: one per
    chain (after the one merge :func:`_one_row_merges` makes), in the order ``_coalesce``
    emits them."""
    # (the tiles are priced ones, so which others are general does not matter: not checked)
    ch = _chains(pcs, lo, nrows)
    (tile, al, be, ga, de, rl, rh), _ = _one_row_merges(ch, np.zeros(lo.size, dtype=bool), nrows,
                                                        pcs.block_m, pcs.block_n)
    return _tile_rows(tile, al, be, ga, de, rl, rh, lo.size)


def _tile_rows(tile, al, be, ga, de, rl, rh, ntiles) -> list[list[tuple]]:
    """The segments of merged chains, per tile ``0 .. ntiles - 1``, in ``_coalesce``'s order."""
    ncols, rl, rh, lo_a, lo_b, hi_a, hi_b = _segments(al, be, ga, de, rl, rh)
    col0 = be - lo_b
    order = np.lexsort((al * rl + be, rl, tile))
    rows = list(map(tuple, np.stack([col0, np.ones_like(col0), ncols, rl, rh, lo_a, lo_b, hi_a,
                                     hi_b], axis=1)[order].tolist()))
    ends = np.cumsum(np.bincount(tile, minlength=ntiles)).tolist()  # sorted by tile
    return [rows[a:b] for a, b in zip([0] + ends[:-1], ends)]


def _chains(pcs, lo, nrows):
    """``(tile, alpha, beta, gamma, delta, rho_lo, rho_hi)``: one chain per (tile, piece) with
    live rows in the tile (``_piece_chains`` at row step 1), tiles in order."""
    if getattr(pcs, "ranges", False):
        # the pieces with first < lo + nrows and end > lo: k in [k0, k1), by tile, then k
        k0 = np.searchsorted(pcs.end, lo, side="right")
        k1 = np.searchsorted(pcs.first, lo + nrows, side="left")
        cnt = np.maximum(k1 - k0, 0)
        tile = np.repeat(np.arange(lo.size), cnt)
        k = k0[tile] + np.arange(tile.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    else:
        tile, k = np.nonzero((pcs.r0[None, :] + pcs.ta < (lo + nrows)[:, None])
                             & (pcs.r0[None, :] + pcs.tb > lo[:, None]))
    t0 = lo[tile] - pcs.r0[k]
    rl = np.maximum(0, pcs.ta[k] - t0)
    rh = np.minimum(nrows[tile], pcs.tb[k] - t0)
    return (tile, pcs.oa[k], pcs.oa[k] * t0 + pcs.ob[k], pcs.ca[k], pcs.ca[k] * t0 + pcs.cb[k],
            rl, rh)


def _chunk_costs(pcs, lo, nrows, BM, BN, Lk, rules) -> BandCosts:
    ch, general, nchains = _merged_chains(pcs, lo, nrows, BM, BN)
    tile, al, be, ga, de, rl, rh = ch
    n = nrows[tile]
    seg = _segments(al, be, ga, de, rl, rh)
    walked, full = _key_tiles(seg, n, BM, BN)
    seg_cost = (COST.W_SEG + walked) + COST.W_MASKED * (walked - full)

    nch = np.bincount(tile, minlength=lo.size)  # segments, after the merges
    total = COST.W_TILE + _ordered_sum(seg_cost, tile, al * rl + be, rl, nch)
    # _affine_plan leaves a tile of too many chains (before merging) unmerged, priced otherwise
    general |= nchains > rules.max_chains_per_row * nrows
    cost, plan, masks = total, np.zeros(lo.size, dtype=np.int8), np.zeros(lo.size, dtype=bool)
    if rules.auto:
        # _Builder._choose_plan: the blocks plan is priced where _priced says so and its lower
        # bound leaves it a chance, and taken at blocks_margin of the affine cost or less
        priced = (nch >= rules.min_items) | _priced(seg, tile, n, BN, lo.size, rules.min_masked)
        bound = _blocks_bound(seg, al * rl + be, tile, nrows, BN, Lk)
        weigh = priced & ~(bound > rules.blocks_margin * total) & ~general
        if weigh.any():
            bcost, bmasks = _blocks_cost(weigh, tile, al, be, ga, de, rl, rh, nrows, BM, BN, Lk)
            take = weigh & ~(bcost > rules.blocks_margin * total)
            cost, plan, masks = np.where(take, bcost, total), take.astype(np.int8), take & bmasks
    return BandCosts(general, *(np.where(general, 0, x) for x in (cost, plan, total, masks)),
                     chains=ch)


def _blocks_cost(weigh, tile, al, be, ga, de, rl, rh, nrows, BM, BN, Lk):
    """The blocks plan's cost (``_Builder._choose_plan``: ``block_counts``, ``dense_runs``,
    ``_plan_cost``) of the tiles where ``weigh`` is set (0 elsewhere), and whether it has mask
    tiles.  Row ``rho`` of a chain
    holds keys ``[a, b)``, ``a = al*rho + be``, ``b = a + ga*rho + de``; its count in each
    aligned block comes from its two partial end blocks and a range of whole ones (a
    difference array).  Each tile's counts cover only the blocks from its first to its last
    occupied one, plus one empty slot that keeps runs of dense blocks inside their tile: the
    tiles lie side by side in one flat array (a tile spans a few of the 256-512 blocks of 16K
    keys, and ``Lk / BLOCK_N`` slots per tile were most of the work)."""
    ids = np.flatnonzero(weigh)
    slot = np.full(weigh.size, -1)
    slot[ids] = np.arange(ids.size)
    keep = slot[tile] >= 0
    tile, al, be, ga, de, rl, rh = (x[keep] for x in (tile, al, be, ga, de, rl, rh))
    nr = rh - rl  # the chains' rows, expanded
    ch = np.repeat(np.arange(tile.size), nr)
    rho = rl[ch] + np.arange(ch.size) - np.repeat(np.cumsum(nr) - nr, nr)
    a = al[ch] * rho + be[ch]
    b = a + ga[ch] * rho + de[ch]
    live = b > a
    a, b, t = a[live], b[live], slot[tile[ch]][live]
    ba, bb = a // BN, (b - 1) // BN  # first and last block of each run
    first = np.full(ids.size, np.iinfo(np.int64).max)
    np.minimum.at(first, t, ba)
    last = np.zeros(ids.size, dtype=np.int64)
    np.maximum.at(last, t, bb)
    first = np.minimum(first, last + 1)  # a tile without elements: its empty slot only
    span = last - first + 2  # the tile's blocks and its empty slot
    base = np.cumsum(span) - span - first  # flat index of block 0 of each tile
    two = ba != bb
    # the end blocks' partial counts, and +-BN at the whole blocks' ends (a difference array
    # whose steps cancel inside each tile, so one cumsum serves all)
    at_a, at_b = base[t] + ba, base[t] + bb
    cells = np.concatenate([at_a, at_b[two]])
    part = np.concatenate([np.where(two, (ba + 1) * BN, b) - a, (b - bb * BN)[two]])
    ends = np.concatenate([(at_a + 1)[two], at_b[two]])
    whole = np.repeat([BN, -BN], np.count_nonzero(two))
    size = int(span.sum())
    counts = (np.bincount(cells, weights=part, minlength=size)
              + np.cumsum(np.bincount(ends, weights=whole, minlength=size))).astype(np.int64)
    owner = np.repeat(np.arange(ids.size), span)
    block = np.arange(size) - base[owner]
    return _blocks_plan_cost(counts, owner, block, ids, weigh.size, nrows[ids], BM, BN, Lk)


def _blocks_plan_cost(counts, owner, block, ids, ntiles, nrows, BM, BN, Lk):
    """``_plan_cost(dense_runs(counts), mask tiles)`` per tile: runs of dense blocks are
    segments ``(col0, 1, ncols, 0, nrows, 0, 0, 0, ncols)``, every other occupied block a mask
    tile; and whether there are any.  ``counts``: the tiles' block counts side by side, slot by
    slot of tile ``owner`` and key block ``block``, each tile's slots ending in an empty one."""
    # (counts > 0: an empty slot past the last key block has width 0, and is not dense)
    dense = (counts == nrows[owner] * np.minimum(BN, Lk - block * BN)) & (counts > 0)
    # runs of dense blocks: starts where the previous slot is not dense (a tile's first slot
    # follows the empty last slot of the tile before)
    prev = np.zeros_like(dense)
    prev[1:] = dense[:-1]
    nxt = np.zeros_like(dense)
    nxt[:-1] = dense[1:]
    starts = np.flatnonzero(dense & ~prev)   # by tile, then column
    rt, rs = owner[starts], block[starts]
    re = block[np.flatnonzero(dense & ~nxt)]
    ncols = np.minimum((re + 1) * BN, Lk) - rs * BN
    nkt = _cdiv(ncols, BN)
    full = np.where(nrows[rt] == BM, np.maximum(0, (ncols - BN) // BN + 1), 0)
    seg_cost = (COST.W_SEG + nkt) + COST.W_MASKED * (nkt - full)
    nseg = np.bincount(rt, minlength=ids.size)
    total = _ordered_sum(seg_cost, rt, rs, np.zeros_like(rs), nseg)
    runs_tiles = np.bincount(rt, weights=nkt, minlength=ids.size).astype(np.int64)
    n_mask = np.bincount(owner[counts != 0], minlength=ids.size) - runs_tiles
    out, masks = np.zeros(ntiles), np.zeros(ntiles, dtype=bool)
    out[ids] = (COST.W_TILE + total) + n_mask * (1 + COST.W_MASKED + COST.W_BITS)
    masks[ids] = n_mask > 0
    return out, masks


def _ordered_sum(seg_cost, tile, first_col, rl, nch):
    """Per tile, the Python sum of its segment costs in ``_coalesce``'s order (row, then first
    column), one position of every tile at a time: the same additions in the same order."""
    order = np.lexsort((first_col, rl, tile))
    pos = np.arange(tile.size) - (np.cumsum(nch) - nch)[tile[order]]
    table = np.zeros((nch.size, int(nch.max()) if tile.size else 0))
    table[tile[order], pos] = seg_cost[order]
    total = np.zeros(nch.size)
    for p in range(table.shape[1]):
        total = total + table[:, p]  # + 0.0 past a tile's last segment changes nothing
    return total


def _blocks_bound(seg, first_col, tile, nrows, BN, Lk):
    """``_Builder._blocks_bound(segs, [], nrows)`` of every tile: one key tile per distinct
    block of a segment's ``col0``, the blocks that cannot be dense priced as mask tiles."""
    ncols, rl, rh, la, lb, ha, hb = seg
    col0 = first_col - la * rl + np.minimum(la * rl, la * (rh - 1))  # min over the end rows
    ntiles = nrows.size
    blocks = np.sort(tile * (_cdiv(Lk, BN) + 1) + col0 // BN)
    distinct = np.ones(blocks.size, dtype=bool)  # (np.unique, by a sort: a few times faster)
    distinct[1:] = blocks[1:] != blocks[:-1]
    n = np.bincount(blocks[distinct] // (_cdiv(Lk, BN) + 1), minlength=ntiles)
    nnz = np.bincount(tile, weights=((ha - la) * (rl + rh - 1) * (rh - rl)) // 2
                      + (hb - lb) * (rh - rl), minlength=ntiles).astype(np.int64)
    narrow = min(BN, Lk - (_cdiv(Lk, BN) - 1) * BN)
    masked = np.maximum(0, n - nnz // (nrows * narrow))
    return (COST.W_TILE + n) + masked * (COST.W_MASKED + COST.W_BITS)


def _segments(al, be, ga, de, rl, rh):
    """``_chain_segment`` of stride-1 chains: (ncols, rl, rh, lo_a, lo_b, hi_a, hi_b)."""
    col0 = np.minimum(al * rl + be, al * (rh - 1) + be)
    lo_b = be - col0
    hi_a, hi_b = al + ga, lo_b + de
    ncols = np.maximum(hi_a * rl + hi_b, hi_a * (rh - 1) + hi_b)
    return ncols, rl, rh, al, lo_b, hi_a, hi_b


def _full_key_tiles(seg, BN):
    """``_seg_key_tiles``' count of full key tiles, before its row conditions."""
    ncols, rl, rh, la, lb, ha, hb = seg
    last = rh - 1
    lo = np.maximum(lb, la * last + lb)
    hi = np.minimum(np.minimum(ncols, hb), ha * last + hb)
    return np.maximum(0, (hi - BN) // BN - _cdiv(np.maximum(lo, 0), BN) + 1)


def _key_tiles(seg, nrows, BM, BN):
    """``_seg_key_tiles`` of every chain: (walked, full)."""
    ncols, rl, rh = seg[:3]
    spans = (rl == 0) & (rh == nrows)
    return _cdiv(ncols, BN), np.where(spans & (nrows == BM), _full_key_tiles(seg, BN), 0)


def _priced(seg, tile, nrows, BN, ntiles, min_masked):
    """``_Builder._priced``'s second rule (its first, the item count, is the caller's): key
    tiles counted with ``block_m = nrows``."""
    ncols, rl, rh = seg[:3]
    walked = np.bincount(tile, weights=_cdiv(ncols, BN), minlength=ntiles)
    spans = (rl == 0) & (rh == nrows)
    full = np.bincount(tile, weights=np.where(spans, _full_key_tiles(seg, BN), 0), minlength=ntiles)
    return (walked - full >= min_masked) & (2 * full <= walked)


def _merged_chains(pcs, lo, nrows, BM, BN):
    """``(chains, general, nchains)``: the tiles' chains (:func:`_chains`) after the merges
    ``_coalesce`` makes where they are reproduced here (:func:`_one_row_merges`), the tiles
    whose merging passes are not (``general``), and each tile's chains before merging."""
    ch = _chains(pcs, lo, nrows)
    nchains = np.bincount(ch[0], minlength=lo.size)
    general = _may_stack_or_line(*ch, lo.size)
    ch, general = _one_row_merges(ch, general, nrows, BM, BN)
    return ch, general, nchains


def _one_row_merges(ch, general, nrows, BM, BN):
    """A one-row chain in a taller tile (a piece that ends or starts one row into the tile)
    may continue the line of its neighbour: ``_coalesce`` then merges the two when the merged
    segment costs no more than both (``_try_merge``, delta <= 1e-9).  Reproduced here for a
    tile whose only one-row chain is its first or last row and that has exactly one chain it
    can merge with (the one starting on the next row, or ending on the row before), so that
    no choice between candidates and no further merge arises; the merged chain takes the
    place of the earlier one, where ``_coalesce`` puts it.  Other tiles with one-row chains
    are left to the general path.  Returns the chains and ``general``."""
    tile, al, be, ga, de, rl, rh = ch
    ntiles = nrows.size
    n = nrows[tile]
    one = (rh - rl == 1) & (n > 1)
    if not one.any():
        return ch, general
    general = general.copy()
    n_one = np.bincount(tile[one], minlength=ntiles)
    o = np.flatnonzero(one & (n_one[tile] == 1) & ~general[tile])  # the tiles' one-row chain
    general[n_one > 1] = True
    t = tile[o]
    top, bottom = rl[o] == 0, rl[o] == nrows[t] - 1
    # candidates: chains starting on row 1 (for a first row), ending on the last row but one
    after = rl == 1
    before = rh == n - 1
    n_after = np.bincount(tile[after], minlength=ntiles)
    n_before = np.bincount(tile[before], minlength=ntiles)
    count = np.where(top, n_after[t], np.where(bottom, n_before[t], 2))
    general[t[count > 1]] = True  # a middle row, or several candidates
    sel = count == 1
    o, t, top = o[sel], t[sel], top[sel]
    if not o.size:
        return ch, general
    first_after = np.full(ntiles, -1)
    first_after[tile[after]] = np.flatnonzero(after)
    first_before = np.full(ntiles, -1)
    first_before[tile[before]] = np.flatnonzero(before)
    p = np.where(top, first_after[t], first_before[t])
    A, B = np.where(top, o, p), np.where(top, p, o)  # in _coalesce's order
    line, row = np.where(top, B, A), rl[o]  # the multi-row chain, the one-row chain's row
    fits = ((al[line] * row + be[line] == al[o] * row + be[o])
            & (ga[line] * row + de[line] == ga[o] * row + de[o]))
    m = (al[line], be[line], ga[line], de[line], rl[A], rh[B])

    def cost(al_, be_, ga_, de_, rl_, rh_):  # _Builder._chain_cost
        walked, full = _key_tiles(_segments(al_, be_, ga_, de_, rl_, rh_), nrows[t], BM, BN)
        return (COST.W_SEG + walked) + COST.W_MASKED * (walked - full)

    c_a, c_b = (cost(*(x[k] for x in (al, be, ga, de, rl, rh))) for k in (A, B))
    merge = fits & (cost(*m) - c_a - c_b <= 1e-9)
    if not merge.any():
        return ch, general
    A, B = A[merge], B[merge]
    out = [x.copy() for x in (tile, al, be, ga, de, rl, rh)]
    for x, v in zip(out[1:], m):
        x[A] = v[merge]
    keep = np.ones(tile.size, dtype=bool)
    keep[B] = False
    return tuple(x[keep] for x in out), general


def _may_stack_or_line(tile, al, be, ga, de, rl, rh, ntiles):
    """Tiles whose stacking pass might change their chains (three chains of one shape), or
    whose coalescing might merge two multi-row chains (one line, one ending where the other
    starts); one-row chains are :func:`_one_row_merges`' part.  Only tiles of two chains or
    more are sorted (most band tiles hold one piece)."""
    out = np.zeros(ntiles, dtype=bool)
    many = np.bincount(tile, minlength=ntiles)[tile] >= 2
    tile, al, be, ga, de, rl, rh = (x[many] for x in (tile, al, be, ga, de, rl, rh))
    # stacking groups chains by (alpha, gamma, delta, rows)
    o = np.lexsort((rh, rl, de, ga, al, tile))
    same = np.zeros(o.size, dtype=bool)  # same[m]: sorted chain m has the shape of m - 1
    if o.size > 1:
        same[1:] = True
        for x in (tile, al, ga, de, rl, rh):
            same[1:] &= x[o][1:] == x[o][:-1]
    third = same[1:] & same[:-1]  # two equal neighbours in a row: a group of three
    out[tile[o][1:][third]] = True
    # coalescing two multi-row chains needs one line: the same (alpha, beta, gamma, delta)
    o = np.lexsort((rl, de, ga, be, al, tile))
    line = np.ones(max(o.size - 1, 0), dtype=bool)
    for x in (tile, al, be, ga, de):
        line &= x[o][1:] == x[o][:-1]
    line &= rh[o][:-1] == rl[o][1:]
    out[tile[o][1:][line]] = True
    return out
