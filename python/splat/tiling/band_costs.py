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

__all__ = ["BandCosts", "BandPieces", "PlanRules", "band_segments_at", "band_segment_table",
           "band_tile_costs", "band_tile_floors", "band_tile_segments"]

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


def band_tile_floors(pcs: BandPieces, lo: np.ndarray, nrows: np.ndarray, block_m: int,
                     block_n: int, Lk: int) -> np.ndarray:
    """Lower bounds of the planned costs of the tiles ``[lo, lo + nrows)`` (row step 1), any
    plan's, for far less than :func:`band_tile_costs`: ``W_TILE + K + W_MASKED * (K - F)``.
    A tile walks ``K >= ceil(|U| / BLOCK_N)`` key tiles, ``U`` the keys its rows hold (a key
    tile holds at most ``BLOCK_N`` of them, the same for all its rows); ``F`` of them at most
    are full (those hold ``BLOCK_N`` keys that all ``BLOCK_M`` rows hold, each its own: no
    more than the keys the first and the last row share, over ``BLOCK_N``); segments and mask
    bits weigh nothing more here (``W_SEG, W_BITS >= 0``)."""
    tile, al, be, ga, de, rl, rh = _chains(pcs, lo, nrows)
    ends = (rl, rh - 1)
    first_key = [al * r + be for r in ends]
    count = [ga * r + de for r in ends]
    keys = _keys_held(tile, al, first_key, count, lo.size, Lk)
    K = _cdiv(keys, block_n)
    n = nrows[tile]
    shared = _keys_shared(tile, (rl == 0, rh == n), first_key, count, lo.size)
    F = np.where(nrows == block_m, shared // block_n, 0)
    return COST.W_TILE + K + COST.W_MASKED * np.maximum(0, K - F)


def _keys_held(tile, al, first_key, count, ntiles: int, Lk: int) -> np.ndarray:
    """No more than the keys each tile's rows hold: the size of the union over its chains of
    a part of each chain's keys, the span of its end rows' keys where consecutive rows' key
    runs meet (the first key moves by ``|alpha|``, no more than the counts, affine: least at
    an end row), else the longer end row's run."""
    if not tile.size:
        return np.zeros(ntiles, dtype=np.int64)
    (a0, a1), (c0, c1) = first_key, count
    meet = np.abs(al) <= np.minimum(c0, c1)
    longer = c0 >= c1
    start = np.where(meet, np.minimum(a0, a1), np.where(longer, a0, a1))
    stop = np.where(meet, np.maximum(a0 + c0, a1 + c1), np.where(longer, a0 + c0, a1 + c1))
    # the union of each tile's runs in one pass: the tiles' keys apart by Lk + 1, runs sorted
    # by start, a run starting past the reach of those before it opening a new piece of union
    start, stop = start + tile * (Lk + 1), stop + tile * (Lk + 1)
    order = np.argsort(start, kind="stable")
    start, stop, tile = start[order], stop[order], tile[order]
    reach = np.maximum.accumulate(stop)
    opens = np.flatnonzero(np.concatenate([[True], start[1:] > reach[:-1]]))
    closes = np.append(opens[1:] - 1, start.size - 1)
    return np.bincount(tile[opens], weights=reach[closes] - start[opens],
                       minlength=ntiles).astype(np.int64)


def _keys_shared(tile, rows, first_key, count, ntiles: int) -> np.ndarray:
    """No fewer than the keys each tile's first and last rows share: the fewer of their
    counts, and the overlap of their spans (first to last key); ``rows``: which chains hold
    the first, which the last row."""
    spans, counts = [], []
    for on, a, c in zip(rows, first_key, count):
        low = np.full(ntiles, np.iinfo(np.int64).max)
        np.minimum.at(low, tile[on], a[on])
        high = np.zeros(ntiles, dtype=np.int64)
        np.maximum.at(high, tile[on], (a + c)[on])
        spans.append((low, high))
        counts.append(np.bincount(tile[on], weights=c[on], minlength=ntiles).astype(np.int64))
    overlap = np.minimum(spans[0][1], spans[1][1]) - np.maximum(spans[0][0], spans[1][0])
    return np.maximum(0, np.minimum(np.minimum(*counts), overlap))


def band_segments_at(bc: BandCosts, at: np.ndarray) -> list[list[tuple]]:
    """:func:`band_tile_segments` of the priced (not general) tiles at positions ``at``
    (distinct) of ``bc``, from the chains band_tile_costs merged: the merges of a priced tile
    are those band_tile_segments makes (:func:`_one_row_merges` only skips general tiles)."""
    return _per_tile(*band_segment_table(bc, at), at.size)


def band_segment_table(bc: BandCosts, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`band_segments_at` as one table: ``(int64 [n, 9] segments, int64 [n] tile)``,
    the tiles' segments one tile after the other (``tile``: the position in ``at``), each
    tile's in ``_coalesce``'s order."""
    tile, al, be, ga, de, rl, rh = bc.chains
    slot = np.full(bc.general.size, -1)
    slot[at] = np.arange(at.size)
    k = slot[tile]
    keep = k >= 0
    return _segment_table(*(x[keep] for x in (k, al, be, ga, de, rl, rh)))


def band_tile_segments(pcs: BandPieces, lo: np.ndarray, nrows: np.ndarray) -> list[list[tuple]]:
    """The affine plan's segments of each tile that :func:`band_tile_costs` priced: one per
    chain (after the one merge :func:`_one_row_merges` makes), in the order ``_coalesce``
    emits them."""
    # (the tiles are priced ones, so which others are general does not matter: not checked)
    ch = _chains(pcs, lo, nrows)
    merged, _ = _one_row_merges(ch, np.zeros(lo.size, dtype=bool), nrows, pcs.block_m,
                                pcs.block_n)
    return _per_tile(*_segment_table(*merged), lo.size)


def _segment_table(tile, al, be, ga, de, rl, rh) -> tuple[np.ndarray, np.ndarray]:
    """The segments of merged chains (``int64 [n, 9]``) and their tiles, by tile, each tile's
    in ``_coalesce``'s order."""
    ncols, rl, rh, lo_a, lo_b, hi_a, hi_b = _segments(al, be, ga, de, rl, rh)
    col0 = be - lo_b
    order = np.lexsort((al * rl + be, rl, tile))
    rows = np.stack([col0, np.ones_like(col0), ncols, rl, rh, lo_a, lo_b, hi_a, hi_b], axis=1)
    return rows[order], tile[order]


def _per_tile(rows: np.ndarray, tile: np.ndarray, ntiles: int) -> list[list[tuple]]:
    """The segments of :func:`_segment_table`, per tile ``0 .. ntiles - 1``, as 9-tuples."""
    rows = list(map(tuple, rows.tolist()))
    ends = np.cumsum(np.bincount(tile, minlength=ntiles)).tolist()  # sorted by tile
    return [rows[a:b] for a, b in zip([0] + ends[:-1], ends)]


def _chains(pcs, lo, nrows):
    """``(tile, alpha, beta, gamma, delta, rho_lo, rho_hi)``: one chain per (tile, piece) with
    live rows in the tile (``chains.piece_chains`` at row step 1), tiles in order."""
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
        weigh = ((nch >= rules.min_items) | _priced(seg, tile, n, BN, lo.size, rules.min_masked)
                 ) & ~general
        if weigh.any():  # (the bound over the chains of those tiles only: they are few)
            on = weigh[tile]
            bound = _blocks_bound(tuple(x[on] for x in seg), (al * rl + be)[on], tile[on],
                                  nrows, BN, Lk)
            weigh &= ~(bound > rules.blocks_margin * total)
        if weigh.any():
            bcost, bmasks = _blocks_cost(weigh, tile, al, be, ga, de, rl, rh, nrows, BM, BN, Lk)
            take = weigh & ~(bcost > rules.blocks_margin * total)
            cost, plan, masks = np.where(take, bcost, total), take.astype(np.int8), take & bmasks
    return BandCosts(general, *(np.where(general, 0, x) for x in (cost, plan, total, masks)),
                     chains=ch)


def _blocks_cost(weigh, tile, al, be, ga, de, rl, rh, nrows, BM, BN, Lk):
    """The blocks plan's cost (``_Builder._choose_plan``: ``block_counts``, ``dense_runs``,
    ``_plan_cost``) of the tiles where ``weigh`` is set (0 elsewhere), and whether it has mask
    tiles.  Row ``rho`` of a chain holds keys ``[a, b)``, ``a = al*rho + be``,
    ``b = a + ga*rho + de``, not empty on any of its rows (they are its piece's live rows); its
    count in each aligned block it reaches is the difference of its keys below the block's two
    ends, a closed form over its rows (:func:`_keys_below`), so the work goes by the chains'
    blocks, not by their rows.  Each tile's counts cover only the blocks from its first to its
    last occupied one, plus one empty slot that keeps runs of dense blocks inside their tile:
    the tiles lie side by side in one flat array (a tile spans a few of the 256-512 blocks of
    16K keys, and ``Lk / BLOCK_N`` slots per tile were most of the work)."""
    ids = np.flatnonzero(weigh)
    slot = np.full(weigh.size, -1)
    slot[ids] = np.arange(ids.size)
    keep = slot[tile] >= 0
    t, al, be, ga, de, rl, rh = (x[keep] for x in (slot[tile], al, be, ga, de, rl, rh))
    # a chain's keys run from its first row's or last row's first key to one of their ends
    ends_a = (al * rl + be, al * (rh - 1) + be)
    ends_b = tuple(a + ga * r + de for a, r in zip(ends_a, (rl, rh - 1)))
    ba = np.minimum(*ends_a) // BN
    bb = (np.maximum(*ends_b) - 1) // BN
    first = np.full(ids.size, np.iinfo(np.int64).max)
    np.minimum.at(first, t, ba)
    last = np.zeros(ids.size, dtype=np.int64)
    np.maximum.at(last, t, bb)
    first = np.minimum(first, last + 1)  # a tile without elements: its empty slot only
    span = last - first + 2  # the tile's blocks and its empty slot
    base = np.cumsum(span) - span - first  # flat index of block 0 of each tile
    # the keys of each chain below each of its blocks' ends: nb + 1 ends for nb blocks
    nb = bb - ba + 1
    ch = np.repeat(np.arange(t.size), nb + 1)
    k = ba[ch] + np.arange(ch.size) - np.repeat(np.cumsum(nb + 1) - (nb + 1), nb + 1)
    below = _keys_below(k * BN, al[ch], be[ch], ga[ch], de[ch], rl[ch], rh[ch])
    inner = np.ones(ch.size, dtype=bool)  # the blocks: ends but each chain's last
    inner[np.cumsum(nb + 1) - 1] = False
    size = int(span.sum())
    counts = np.bincount((base[t[ch]] + k)[inner], weights=(below[1:] - below[:-1])[inner[:-1]],
                         minlength=size).astype(np.int64)
    owner = np.repeat(np.arange(ids.size), span)
    block = np.arange(size) - base[owner]
    return _blocks_plan_cost(counts, owner, block, ids, weigh.size, nrows[ids], BM, BN, Lk)


def _keys_below(x, al, be, ga, de, rl, rh):
    """The elements of chains (rows ``[rl, rh)``, keys ``[a, b)`` as in :func:`_blocks_cost`,
    ``b >= a``) in key columns below ``x``: the sum over rows of ``max(x - a, 0) -
    max(x - b, 0)``."""
    return (_excess_sum(x, al, be, rl, rh)
            - _excess_sum(x, al + ga, be + de, rl, rh))


def _excess_sum(x, p, q, rl, rh):
    """``sum(max(x - (p*rho + q), 0) for rho in range(rl, rh))``, element-wise: the rows where
    ``p*rho + q < x`` are an interval ``[s, e)`` of them, over which the terms are affine."""
    step = np.where(p == 0, 1, p)
    s = np.where(p < 0, np.maximum(rl, (x - q) // step + 1), rl)
    e = np.where(p > 0, np.minimum(rh, -((q - x) // step)),
                 np.where((p < 0) | (q < x), rh, rl))
    n = np.maximum(e - s, 0)
    return n * (x - q) - p * ((s + e - 1) * n // 2)


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
    """``_Builder._blocks_bound(segs, [], nrows)`` of every tile of the chains given (the
    others: no segments): one key tile per distinct block of a segment's ``col0``, the blocks
    that cannot be dense priced as mask tiles."""
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
    """``chains.chain_segment`` of stride-1 chains: (ncols, rl, rh, lo_a, lo_b, hi_a, hi_b)."""
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
    general = _may_stack_or_line(*ch, nrows)
    ch, general = _one_row_merges(ch, general, nrows, BM, BN)
    return ch, general, nchains


def _one_row_merges(ch, general, nrows, BM, BN):
    """A one-row chain in a taller tile (a piece that ends or starts one row into the tile)
    may continue the line of its neighbour: ``_coalesce`` then merges the two when the merged
    segment costs no more than both (``chains.try_merge``, delta <= 1e-9).  Reproduced here for a
    tile whose only one-row chain is its first or last row and that has at most one chain it
    can merge with: of the chains starting on the next row (or ending on the row before), the
    one whose line the one-row chain lies on (``try_merge`` refuses the others, whatever
    their order), so that no choice between candidates and no further merge arises; the
    merged chain takes the place of the earlier one, where ``_coalesce`` puts it.  Other tiles
    with one-row chains are left to the general path.  Returns the chains and ``general``."""
    tile, al, be, ga, de, rl, rh = ch
    ntiles = nrows.size
    one = (rh - rl == 1) & (nrows[tile] > 1)
    if not one.any():
        return ch, general
    general = general.copy()
    general[np.bincount(tile[one], minlength=ntiles) > 1] = True
    o = np.flatnonzero(one & ~general[tile])  # the tiles' one-row chain
    edge = (rl[o] == 0) | (rl[o] == nrows[tile[o]] - 1)
    general[tile[o[~edge]]] = True  # a middle row
    o = o[edge]
    # the chains of its tile starting on its next row or ending on the row before, whose line
    # it lies on
    of_tile = np.full(ntiles, -1)
    of_tile[tile[o]] = o
    c = np.flatnonzero((of_tile[tile] >= 0) & ~one)
    oc = of_tile[tile[c]]
    row = rl[oc]
    fits = (((rl[c] == row + 1) | (rh[c] == row))
            & (al[c] * row + be[c] == al[oc] * row + be[oc])
            & (ga[c] * row + de[c] == ga[oc] * row + de[oc]))
    c, oc = c[fits], oc[fits]
    several = np.bincount(oc, minlength=tile.size)[oc] > 1
    general[tile[oc[several]]] = True
    c, oc = c[~several], oc[~several]
    top = rl[oc] == 0
    return _merge_lines(ch, np.where(top, oc, c), np.where(top, c, oc), c, nrows, BM, BN), general


def _merge_lines(ch, A, B, line, nrows, BM, BN):
    """The chains with each chain ``B`` merged into ``A`` (rows of ``A`` then of ``B``, on the
    line of chain ``line``, one of them) where the merged segment costs no more than the two
    (``_coalesce``: delta <= 1e-9)."""
    tile, al, be, ga, de, rl, rh = ch
    m = (al[line], be[line], ga[line], de[line], rl[A], rh[B])
    n = nrows[tile[A]]

    def cost(al_, be_, ga_, de_, rl_, rh_):  # chains.ChainCost.one
        walked, full = _key_tiles(_segments(al_, be_, ga_, de_, rl_, rh_), n, BM, BN)
        return (COST.W_SEG + walked) + COST.W_MASKED * (walked - full)

    c_a, c_b = (cost(*(x[k] for x in (al, be, ga, de, rl, rh))) for k in (A, B))
    merge = cost(*m) - c_a - c_b <= 1e-9
    if not merge.any():
        return ch
    A, B = A[merge], B[merge]
    out = [x.copy() for x in ch]
    for x, v in zip(out[1:], m):
        x[A] = v[merge]
    keep = np.ones(tile.size, dtype=bool)
    keep[B] = False
    return tuple(x[keep] for x in out)


def _may_stack_or_line(tile, al, be, ga, de, rl, rh, nrows):
    """Tiles whose stacking pass might change their chains (three chains of one shape), or
    whose coalescing might merge two multi-row chains (one line, one ending where the other
    starts); one-row chains are :func:`_one_row_merges`' part.  Only the chains that could
    take part are sorted: of tiles of three chains or more for stacking, and for lines those
    of tiles of two or more that start or end inside their tile (a chain over all of its
    tile's rows neither continues nor is continued; most band tiles hold one piece)."""
    out = np.zeros(nrows.size, dtype=bool)
    count = np.bincount(tile, minlength=nrows.size)[tile]
    chains = (tile, al, be, ga, de, rl, rh)
    _flag_stacks(out, *(x[count >= 3] for x in chains))
    inside = (rl > 0) | (rh < nrows[tile])
    _flag_lines(out, *(x[(count >= 2) & inside] for x in chains))
    return out


def _flag_stacks(out, tile, al, be, ga, de, rl, rh):
    """Flag in ``out`` the tiles with three chains of one shape: stacking groups chains by
    (alpha, gamma, delta, rows)."""
    o = np.lexsort((rh, rl, de, ga, al, tile))
    same = np.zeros(o.size, dtype=bool)  # same[m]: sorted chain m has the shape of m - 1
    if o.size > 1:
        same[1:] = True
        for x in (tile, al, ga, de, rl, rh):
            same[1:] &= x[o][1:] == x[o][:-1]
    third = same[1:] & same[:-1]  # two equal neighbours in a row: a group of three
    out[tile[o][1:][third]] = True


def _flag_lines(out, tile, al, be, ga, de, rl, rh):
    """Flag in ``out`` the tiles where a chain ends on the row before another of its line
    (the same alpha, beta, gamma, delta) starts: coalescing merges those."""
    o = np.lexsort((rl, de, ga, be, al, tile))
    line = np.ones(max(o.size - 1, 0), dtype=bool)
    for x in (tile, al, be, ga, de):
        line &= x[o][1:] == x[o][:-1]
    line &= rh[o][:-1] == rl[o][1:]
    out[tile[o][1:][line]] = True
