"""ACSR -> tile schedule (docs/design.md section 2).

A :class:`TileSchedule` is what the fused kernel walks: one CTA per *row tile* (query rows
``row0 + row_step*rho``, ``rho < nrows <= BLOCK_M``), and inside it a list of *segments*, dense
problems in compressed key coordinates ``u`` (key column ``col0 + col_step*u``) whose
``[lo, hi)`` bounds are affine in ``rho``.  The irregular remainder of the ACSR is scheduled as
*mask tiles*: per row tile, a CSR list of ``(col0, ncols)`` key tiles (``col_step = 1``,
``ncols <= BLOCK_N``) each with an explicit ``BLOCK_M x BLOCK_N`` bit mask.  Regular pieces
never produce mask tiles, so a schedule of an ACSR without remainder has empty mask tables and
the regular kernel contract is unchanged.

How :func:`build_schedule` works
--------------------------------
1. *Regions.*  ``[0, Lq)`` is cut at every row where the set of live pieces (rows that hold
   columns) or remainder row blocks changes.
2. *Row step.*  Each region picks the tile row step ``R`` that minimises a cost model (key tiles
   computed, masked key tiles, segments, tiles) among ``1``, the pieces' row steps, their
   *periods* ``P = row_step * s/gcd(off_a, s)`` (the row step that keeps a strided piece on
   one residue class of key columns, so that one key sequence ``col0 + s*u`` serves a tile) and
   the lcm of the periods.  ``R > 1`` splits the region into ``R`` residue classes of rows.
3. *Cuts.*  Consecutive regions with the same ``R`` form a band; every residue class of a band
   is cut into tiles of at most ``BLOCK_M`` rows by a small dynamic programme over candidate cut
   points (region boundaries and ``BLOCK_M`` grids from them), again minimising the cost model:
   it decides whether a tile breaks at a region boundary or straddles it.
4. *Segments.*  For a tile and a piece, the tile rows inside the piece are a contiguous ``rho``
   range; when ``R`` is a multiple of the piece's period they form one segment (exact affine
   bounds), otherwise one segment per row.  Three exact rewrites follow, each taken only when
   the cost model says it is cheaper:

   * *stacking*: rectangles/bands of one shape whose first columns step by a constant ``P``
     become ``count`` segments of ``col_step = P`` (the "fixed" pattern's summary columns);
   * *transposing*: rows whose columns share a stride ``s`` but sit on different residues
     mod ``s`` (first column moving by ``alpha`` per row) become one diagonal segment per
     column index ``j`` (the stride part of the "strided" pattern);
   * *coalescing*: segments on adjacent rows whose union is still exactly affine merge (this
     repairs decompositions that split one line into several pieces, or into rows).

   (The chains and the three rewrites: :mod:`splat.tiling.chains`.)
5. *Remainder.*  The remainder elements of a tile's rows are covered greedily by ``BLOCK_N``
   wide key windows.  A window that is one contiguous run per row with affine ends is a plain
   segment; any other becomes a mask tile with its bits.
6. *Plan.*  Steps 4-5 are the tile's *affine* plan.  When it is fragmented (many segments and
   mask tiles), the tile's *blocks* plan (:mod:`splat.tiling.block_plan`: aligned ``BLOCK_N``
   key blocks, dense runs as segments, the other occupied blocks as mask tiles) is priced too
   and replaces it when it costs at most ``_BLOCKS_MARGIN`` of the affine cost.  The choice is
   made inside the tile cost, so steps 2-3 see it.  If that brings mask tiles into a layout
   without remainder (which switches the launch to the ``_masked`` kernel), the schedule is kept
   only when its total costs at most ``_NEW_MASKS_MARGIN`` of the all-affine schedule's.
   ``TileSchedule.plans`` records the plan of each row tile.

Steps 2-3 price thousands of candidate tiles.  Three shortcuts (``FAST_PATHS``) keep that cheap
without changing any schedule (tests/unit/test_tiling_fast_paths.py compares them with planning
every tile from scratch): tiles that are column translates of each other by whole key blocks
are planned once (:meth:`_Builder._tile_shape`); the DP of a *band* layout (row step and stride
1, no remainder: documents, prefix-LM, chunked causal, windows and their combinations) prices
its tiles vectorised with the same float operations (:mod:`splat.tiling.band_costs`), once for
the "auto" and "affine" builders of one ACSR (:meth:`_Builder._band_costs`); and the
forced blocks plan is priced from the unmerged chains (:meth:`_Builder._blocks_tile`).  The
tiles a band layout's DP keeps are read off its band costs as a whole (no tile caches:
:meth:`_Builder.band_path`), and their tables assembled in bulk (:func:`_assemble_path`).

:func:`plan_tiles` runs in steps (:func:`tile_builder`, :func:`cut_tiles`,
:func:`plan_tiles_rest`) so that a caller pricing several tile shapes (the kernel variants,
:mod:`splat.tiling.variants`) can stop a shape early: :func:`relaxed_tiles_floor` and
:func:`first_tiles_floor` bound the cost of the tiles the steps still to run will keep.
"""

from __future__ import annotations

import bisect
import itertools
import math

import numpy as np

from ..abi import MASK_TILE_FIELDS, MAX_LENGTH, ROW_TILE_FIELDS, SEGMENT_FIELDS
from ..analysis.acsr import ACSR
from .band_costs import (BandCosts, BandPieces, PlanRules, band_segment_table, band_segments_at,
                         band_tile_costs, band_tile_floors)
from .block_plan import block_counts, block_plan, dense_runs
from .chains import (ChainCost, LivePiece, chain_segments, coalesce, piece_chains, stack,
                     transpose)
from .cost_model import WEIGHTS as COST
from .tile_schedule import (_MT, _SG, PLAN_AFFINE, PLAN_BLOCKS, TileSchedule, _cdiv,
                            _seg_key_tiles, _segments_key_tiles, key_tile_full)

__all__ = ["TileSchedule", "build_schedule", "key_tile_full",
           "ROW_TILE_FIELDS", "SEGMENT_FIELDS", "MASK_TILE_FIELDS"]

# Cost model, in units of one computed BLOCK_M x BLOCK_N key tile: weights measured on the GPU
# by benchmarks/calibrate_cost.py (splat.tiling.cost_model says how).
_W_TILE = COST.W_TILE      # a CTA: load Q, write O and lse
_W_SEG = COST.W_SEG        # read a segment, set up its loop
_W_MASKED = COST.W_MASKED  # a key tile that evaluates the element mask
_W_BITS = COST.W_BITS      # a remainder mask tile loads its bits on top of that

# build_schedule's ``plan`` option (a row tile's plan: tile_schedule.PLAN_AFFINE / PLAN_BLOCKS)
PLANS = ("auto", "affine", "blocks")
# A tile switches to the blocks plan when the model says it costs at most this fraction of the
# affine plan: the fit's median error is 3-5 % (max ~30 %), so a switch must save more than that.
_BLOCKS_MARGIN = 0.9
# A schedule whose blocks plans bring mask tiles into a layout without remainder pays the mask
# kernel's extra on every key tile (W_MASK_KERNEL) and must then cost at most this fraction of
# the all-affine schedule, which split-KV may still improve (build_schedule says why).
_NEW_MASKS_MARGIN = 0.75
# Segments + mask tiles of an affine plan below which "auto" does not price the blocks plan (a
# speed guard, not the choice).  Fragmented tiles (unions of families, rational slopes, masks
# with holes) have tens to thousands; the named families' tiles have at most ~9 (Longformer and
# BigBird tiles that straddle a region boundary, where the blocks plan would save a few % of
# their key tiles, then lose it to the whole-schedule check in build_schedule): pricing them
# made BigBird at 16K 5x slower to tile for no change.
_PLAN_MIN_ITEMS = 12
# ... or at least this many masked key tiles, at least half of the tile's (see _priced)
_PLAN_MIN_MASKED = 3

# chains per tile row past which a tile's affine plan is left unmerged (affine_tile says why)
_COALESCE_MAX_CHAINS = 4
# the tiler's peak memory per row tile (build_schedule checks it up front; _check_memory)
_BYTES_PER_ROW_TILE = 1536
_MAX_DP_BOUNDARIES = 48  # per residue class; beyond, tiles are plain BLOCK_M chunks
# The tiler's shortcuts -- tiles planned once per shape (_Builder._tile_shape), band layouts'
# DP costs vectorised (band_costs), the blocks plan priced from unmerged chains
# (_Builder._blocks_tile) -- give the same schedules as planning every tile from scratch;
# False turns them off (the tests compare both).
FAST_PATHS = True
# pieces up to which a band layout's DP tile costs are vectorised (band_costs: its arrays are
# tiles x pieces; past this, packed documents of a few rows each, the general path's pieces per
# tile are far fewer)
_BAND_MAX_PIECES = 1024
# regions x (row step, period) pairs up to which the live pairs are tabulated (_piece_arrays)
_MAX_PAIR_CELLS = 1 << 24
# tiles looked up by shape before the hit rate decides whether lookups go on (_shapes_pay)
_SHAPE_TRIAL = 64
_SHAPE_MIN_RATE = 8


# -----------------------------------------------------------------------------------------------
# The builder
# -----------------------------------------------------------------------------------------------

def _shift_segments(segs, shift: int):
    """Segments (9-tuples or an ``int64 [n, 9]`` array) moved ``shift`` key columns right."""
    if isinstance(segs, np.ndarray):
        out = segs.copy()
        out[:, 0] += shift
        return out
    return [(sg[0] + shift,) + tuple(sg[1:]) for sg in segs]


def _segments_cost(S: np.ndarray, nrows: int, block_m: int, block_n: int) -> float:
    """Sum of the segment costs (``_Builder._seg_cost``) of the rows of ``S``."""
    k, f = _segments_key_tiles(S, nrows, block_m, block_n)
    return float((_W_SEG + k + _W_MASKED * (k - f)).sum())


def _remainder_coordinates(rem) -> tuple[np.ndarray, np.ndarray]:
    """``rem.coordinates()`` (rows, cols of every remainder element, by row then column),
    found through the 8-byte words of the masks that hold any element: fragmented layouts
    have 10^4 blocks of 64 x 64 cells, a few % of them set, where ``np.nonzero`` of the whole
    bool array took 0.1 s."""
    flat = rem.masks.reshape(-1)
    if flat.size % 8 == 0:
        words = np.flatnonzero(flat.view(np.uint64))
        cand = (words[:, None] * 8 + np.arange(8)).reshape(-1)
        idx = cand[flat[cand]]
    else:
        idx = np.flatnonzero(flat)
    B = rem.block
    n, cell = np.divmod(idx, B * B)
    r, c = np.divmod(cell, B)
    rows = rem.blocks[n, 0].astype(np.int64) * B + r
    cols = rem.blocks[n, 1].astype(np.int64) * B + c
    order = np.lexsort((cols, rows))
    return rows[order], cols[order]


class _Builder:
    def __init__(self, acsr: ACSR, block_m: int, block_n: int, plan: str = "auto",
                 like: "_Builder | None" = None, index: "_Builder | None" = None):
        """``like``: a builder of the same ACSR and tile shape (another ``plan``), whose index
        of the ACSR (pieces, remainder rows, regions) and affine plans this one reuses: the
        affine plans are the same, only the plan choice and the cuts differ.  ``index``: a
        builder of the same ACSR for any tile shape, whose index of the ACSR only this one
        reuses (the kernel variants' builders)."""
        source = like or index
        if source is None:
            self.acsr = acsr
            self.Lq, self.Lk = acsr.Lq, acsr.Lk
            self.pieces = [q for q in (LivePiece(p) for p in acsr.pieces) if q.live]
            self.step_period = [(q.p, q.period) for q in self.pieces]
            self._remainder_rows()
            self._regions()
            self.layout = dict(self.__dict__)  # all of the above depends on the ACSR only
        else:
            assert source.acsr is acsr
            assert like is None or (like.BM, like.BN) == (block_m, block_n)
            self.__dict__.update(source.layout)
            self.layout = source.layout
        self.BM, self.BN = block_m, block_n
        self.chain_cost = ChainCost(block_m, block_n)  # what the chain rewrites compare
        self.plan = plan
        self.cache: dict[tuple[int, int, int], tuple] = {}         # planned tiles
        self.affine_cache: dict[tuple[int, int, int], tuple] = {}  # their affine plans
        # the same plans by tile *shape* (_tile_shape): tiles that are column translates of
        # each other (the interior tiles of a window, a dilated or a blocked band) are planned
        # once; shapes_of maps a tile to its shape and the translation
        self.shape_cache: dict[tuple, tuple] = {}       # shape -> (affine segs, cost)
        self.shapes_of: dict[tuple[int, int, int], tuple] = {}
        self.counts_cache: dict[tuple[int, int, int], np.ndarray] = {}  # _block_counts
        self.grid_cache: dict[tuple, _CutGrid] = {}  # _cut_grid
        self.band_masks: dict[tuple[int, int, int], bool] = {}  # blocks_adds_masks, by band_costs
        # tiles band_costs priced whose affine segments are not built yet (key -> affine cost):
        # built, vectorised, only for the tiles of the schedule kept (_resolve), or on demand
        # (affine_tile); their planned entries in ``cache`` hold None for the segments
        self.pending: dict[tuple[int, int, int], float] = {}
        # what build() found: the tiles its band layouts' cut DPs kept, not yet entered into
        # the caches ((first row, (class index, nrows) tiles, BandCosts, positions), in the
        # DP's order, last row first: _enter_band_picks); the tiles of its other classes cut
        # without pricing; and the cost of the tiles the DPs kept
        self.band_picks: list[tuple] = []
        self.unpriced: list[tuple[int, int, int]] = []
        self.path_cost = 0.0
        self.path: tuple | None = None  # (built, BandCosts, positions): built_from_path
        if like is not None:
            self.affine_cache, self.shape_cache = like.affine_cache, like.shape_cache
            self.shapes_of, self.counts_cache = like.shapes_of, like.counts_cache
            self.grid_cache, self.band_masks = like.grid_cache, like.band_masks
            self.pending = like.pending
        self.plan_by_shape: dict[tuple, tuple] = {}     # shape -> (cost, plan), this builder's
        self.use_shapes = FAST_PATHS
        self.shape_lookups = self.shape_hits = 0
        # a band layout's cut DP prices its tiles vectorised (band_costs; None: it does not)
        self.bands = None
        if FAST_PATHS and self._is_band_layout():
            self.bands = (like.bands if like is not None and like.bands
                          else BandPieces(self.pieces, block_m, block_n))

    def _is_band_layout(self) -> bool:
        """No remainder, and pieces of row step and stride 1 only, not too many of them
        (:mod:`splat.tiling.band_costs`); the forced blocks plan does not price affine plans."""
        return (self.plan != "blocks" and self.rem_ptr is None
                and 0 < len(self.pieces) <= _BAND_MAX_PIECES
                and all(pc.p == 1 and pc.s == 1 for pc in self.pieces))

    # -- remainder as CSR rows ---------------------------------------------------------------
    def _remainder_rows(self):
        rem = self.acsr.remainder
        self.rem_ptr = None
        self.rem_blocks = []
        if rem is None:
            return
        rows, cols = _remainder_coordinates(rem)
        if rows.size == 0:
            return
        B = rem.block
        self.rem_cols = cols
        self.rem_ptr = np.searchsorted(rows, np.arange(self.Lq + 1))
        self.rem_block = B
        self.rem_blocks = np.unique(rows // B).tolist()

    def _rem_cols(self, rows: np.ndarray) -> list[np.ndarray]:
        p = self.rem_ptr
        return [self.rem_cols[p[r]:p[r + 1]] for r in rows.tolist()]

    def _mask_cover(self, rows: np.ndarray) -> list[tuple[int, int]]:
        """Greedy cover of the tile rows' remainder columns by BLOCK_N-wide key windows."""
        if self.rem_ptr is None:
            return []
        parts = self._rem_cols(rows)
        if not any(len(x) for x in parts):
            return []
        return self._cover(np.unique(np.concatenate(parts)))

    def _cover(self, u: np.ndarray) -> list[tuple[int, int]]:
        """:meth:`_mask_cover` of the sorted distinct columns ``u``."""
        out, i, n = [], 0, len(u)
        while i < n:
            c = int(u[i])
            j = int(np.searchsorted(u, c + self.BN))
            out.append((c, int(u[j - 1]) - c + 1))
            i = j
        return out

    def _remainder_tile(self, rows: np.ndarray, chains: list) -> list[tuple[int, int, np.ndarray]]:
        """Mask tiles ``(col0, ncols, bool [nrows, ncols])`` for the tile rows' remainder.  A
        window whose rows are one contiguous run each, with affine ends over a contiguous range
        of rows, is exact as a segment instead: it is appended to ``chains``.  The windows'
        bits are set and checked all at once (fragmented layouts have ~40 windows a tile)."""
        if self.rem_ptr is None:
            return []
        lens = self.rem_ptr[rows + 1] - self.rem_ptr[rows]
        if not lens.any():  # most tiles of a layout with a few remainder blocks
            return []
        rho_all = np.repeat(np.arange(len(rows)), lens)
        col_all = np.concatenate(self._rem_cols(rows))
        windows = self._cover(np.unique(col_all))
        starts = np.array([c for c, _ in windows], dtype=np.int64)
        win = np.searchsorted(starts, col_all, side="right") - 1  # each column's window
        bits = np.zeros((len(windows), len(rows), self.BN), dtype=bool)
        bits[win, rho_all, col_all - starts[win]] = True
        out = []
        for k, ((c, nc), ch) in enumerate(zip(windows, _affine_runs(bits, starts))):
            if ch is None:
                out.append((c, nc, bits[k, :, :nc]))
            else:
                chains.append(ch)
        return out

    # -- regions -----------------------------------------------------------------------------
    def _regions(self):
        bps = {0, self.Lq}
        for pc in self.pieces:
            bps.add(pc.first)
            bps.add(pc.last + 1)
        if self.rem_ptr is not None:
            B = self.rem_block
            for rb in self.rem_blocks:
                bps.add(rb * B)
                bps.add(min(rb * B + B, self.Lq))
        self.bounds = sorted(bps)
        self._piece_arrays()

    def _piece_arrays(self):
        """The pieces as arrays, for the region queries: per-region lists of pieces would cost
        (pieces x regions) appends where both number thousands (strided | global)."""
        def col(f):
            return np.array([f(pc) for pc in self.pieces], dtype=np.int64)

        bounds = np.array(self.bounds, dtype=np.int64)
        # the regions [reg_lo, reg_hi) each piece is live in
        self.reg_lo = np.searchsorted(bounds, col(lambda pc: pc.first))
        self.reg_hi = np.searchsorted(bounds, col(lambda pc: pc.last + 1))
        self.piece_r0, self.piece_p = col(lambda pc: pc.r0), col(lambda pc: pc.p)
        self.piece_ta, self.piece_tb = col(lambda pc: pc.ta), col(lambda pc: pc.tb)
        self.pairs = sorted(set(self.step_period))  # the distinct (row step, period)
        index = {sp: k for k, sp in enumerate(self.pairs)}
        self.piece_pair = np.array([index[sp] for sp in self.step_period], dtype=np.int64)
        self.unit_steps = bool((self.piece_p == 1).all())  # no piece skips rows
        self.live_pieces: dict[tuple[int, int], np.ndarray] = {}  # _pieces_in by regions
        # which (row step, period) pairs are live in each region: a difference array per pair
        nreg = len(self.bounds) - 1
        self.pairs_live = None
        if len(self.pairs) * nreg <= _MAX_PAIR_CELLS:
            diff = np.zeros((len(self.pairs), nreg + 1), dtype=np.int64)
            np.add.at(diff, (self.piece_pair, self.reg_lo), 1)
            np.add.at(diff, (self.piece_pair, self.reg_hi), -1)
            self.pairs_live = (np.cumsum(diff, axis=1)[:, :nreg] > 0).T

    def _live_in(self, i0: int, i1: int) -> np.ndarray:
        """Whether each piece is live in some region ``i0 .. i1``."""
        return (self.reg_lo <= i1) & (self.reg_hi > i0)

    def _region_steps(self, i: int) -> list[tuple[int, int]]:
        """The distinct (row step, period) pairs of the pieces live in region ``i``."""
        if self.pairs_live is not None:
            return [sp for sp, live in zip(self.pairs, self.pairs_live[i].tolist()) if live]
        return [self.pairs[k] for k in np.unique(self.piece_pair[self._live_in(i, i)]).tolist()]

    def _pieces_in(self, lo: int, hi: int, R: int = 0, nrows: int = 0) -> list[int]:
        """Pieces live somewhere in rows [lo, hi], ascending; with the tile's ``R`` and
        ``nrows``, less those whose rows miss the tile's rows ``lo + R*rho`` by residue (they
        give no chains: :func:`chains.piece_chains` returns at once for them)."""
        i0 = bisect.bisect_right(self.bounds, lo) - 1
        i1 = bisect.bisect_right(self.bounds, hi) - 1
        live = self.live_pieces.get((i0, i1))
        if live is None:  # the DP prices many tiles of one span of regions
            live = self.live_pieces[(i0, i1)] = np.flatnonzero(self._live_in(i0, i1))
        if not R or self.unit_steps:
            return live.tolist()
        # a piece of row step p > 1 may have no row in [lo, hi] (t0 > t1 below), or none on
        # the tile's rows: piece_chains takes R = p for a one-row tile, and rows meet the
        # piece's iff (lo - r0) is a multiple of gcd(R, p)
        p, r0 = self.piece_p[live], self.piece_r0[live]
        t0 = np.maximum(self.piece_ta[live], -((r0 - lo) // p))
        t1 = np.minimum(self.piece_tb[live] - 1, (hi - r0) // p)
        step = p if nrows == 1 else np.gcd(R, p)
        return live[(t0 <= t1) & ((lo - r0) % step == 0)].tolist()

    # -- one tile ----------------------------------------------------------------------------
    def _seg_cost(self, seg, nrows) -> float:
        k, f = _seg_key_tiles(seg, nrows, self.BM, self.BN)
        return _W_SEG + k + _W_MASKED * (k - f)

    def tile(self, row0: int, R: int, nrows: int):
        """(segments, mask tiles, cost, plan) of the tile ``row0 + R*rho``, ``rho < nrows``:
        its affine plan, and the cost and plan chosen by :meth:`_choose_plan`."""
        if nrows == 1:
            R = 1
        if self.band_picks:
            self._enter_band_picks()
        key = (row0, R, nrows)
        hit = self.cache.get(key)
        if hit is not None:
            if hit[0] is None:  # priced by band_costs, segments not built yet
                hit = self.cache[key] = (self.affine_tile(*key)[0],) + hit[1:]
            return hit
        if (FAST_PATHS and self.plan == "blocks" and key not in self.affine_cache
                and key not in self.pending):
            hit = self.cache[key] = self._blocks_tile(row0, R, nrows)
            return hit
        segs, masks, cost = self.affine_tile(row0, R, nrows)
        shape = self.shapes_of.get(key)
        if shape is None:
            hit = self._choose_plan(key, segs, masks, cost)
        else:
            # the plan choice depends on the block counts, which a translation by whole
            # BLOCK_N blocks only moves (_tile_shape)
            planned = self.plan_by_shape.get(shape[0])
            if planned is None:
                planned = self.plan_by_shape[shape[0]] = self._choose_plan(
                    key, segs, masks, cost)[2:]
            hit = (segs, masks) + planned
        self.cache[key] = hit
        return hit

    def affine_tile(self, row0: int, R: int, nrows: int):
        """(segments, mask tiles, cost) of the affine plan of the tile (steps 4-5)."""
        if nrows == 1:
            R = 1
        key = (row0, R, nrows)
        hit = self.affine_cache.get(key)
        if hit is not None:
            return hit
        if key in self.pending:
            self._build_pending([key])
            return self.affine_cache[key]
        pieces = self._pieces_in(row0, row0 + R * (nrows - 1), R, nrows)
        shape = (self._tile_shape(row0, R, nrows, pieces)
                 if self._shapes_pay(len(pieces), nrows) else None)
        if shape is not None:
            self.shapes_of[key] = shape
            self.shape_lookups += 1
            norm = self.shape_cache.get(shape[0])
            if norm is not None:
                self.shape_hits += 1
                res = self.affine_cache[key] = (_shift_segments(norm[0], shape[1]), [], norm[1])
                return res
        res = self._affine_plan(*self._tile_chains(row0, R, nrows, pieces), nrows)
        self.affine_cache[key] = res
        if shape is not None:
            self.shape_cache[shape[0]] = (_shift_segments(res[0], -shape[1]), res[2])
        return res

    def _tile_chains(self, row0: int, R: int, nrows: int, pieces: list[int]):
        """(chains, mask tiles) of the tile: its pieces' chains, its remainder's mask tiles
        (and the remainder windows that are exact segments, as chains)."""
        chains: list = []
        for j in pieces:
            piece_chains(self.pieces[j], row0, R, nrows, chains)
        masks = []
        if self.rem_ptr is not None:
            masks = self._remainder_tile(row0 + R * np.arange(nrows, dtype=np.int64), chains)
        return chains, masks

    def _blocks_tile(self, row0: int, R: int, nrows: int):
        """:meth:`tile` under the forced blocks plan, for a tile whose affine plan is not at
        hand: the blocks plan is a function of the tile's elements only (block_counts,
        block_plan), so the unmerged chains, the same elements, price and build it as well as
        the affine plan's segments, without the merging passes."""
        pieces = self._pieces_in(row0, row0 + R * (nrows - 1), R, nrows)
        chains, masks = self._tile_chains(row0, R, nrows, pieces)
        segs = chain_segments(chains) if chains else []
        # an empty tile keeps the affine plan, whose cost is the tile's own
        return self._choose_plan((row0, R, nrows), segs, masks,
                                 self._plan_cost([], masks, nrows))

    def _shapes_pay(self, npieces: int, nrows: int) -> bool:
        """Whether to look a tile of ``npieces`` pieces up by shape: a shape costs about what
        the tile's chains cost, so not where tiles rarely repeat: a tile of more pieces than
        rows (random blocks, residue classes of many strides), and a builder whose first
        ``_SHAPE_TRIAL`` lookups hit under 1 in ``_SHAPE_MIN_RATE`` times (causal triangles).
        Only speed depends on it: a tile planned from scratch has the same plan."""
        return self.use_shapes and npieces <= nrows and (
            self.shape_lookups < _SHAPE_TRIAL
            or self.shape_hits * _SHAPE_MIN_RATE >= self.shape_lookups)

    def _tile_shape(self, row0: int, R: int, nrows: int, pieces: list[int]):
        """``(shape, shift)`` of a tile without remainder rows, or None.  The shape is the
        tile's pieces restricted to its row span, each re-based to its first row there,
        columns moved ``shift`` left (a multiple of ``BLOCK_N``), and ``(R, nrows)``.

        Tiles of one shape are column translates of each other: their chains are the same
        list, moved by whole key blocks.  Every step of the affine plan (stacking,
        transposing, coalescing, costs) sees the chains' columns only through differences and
        residues, and the blocks plan through per-block counts, which such a move shifts by
        whole blocks; so tiles of one shape have the same plans, translated (the interior
        tiles of window, dilated and blocked bands are planned once).  Not for tiles whose
        rows meet a remainder block (mask bits would be part of the shape) or whose columns
        may reach the narrower last key block (``Lk % BLOCK_N``), where the counts are clipped."""
        lo, hi = row0, row0 + R * (nrows - 1)
        if self.rem_ptr is not None:
            B = self.rem_block
            i = bisect.bisect_left(self.rem_blocks, lo // B)
            if i < len(self.rem_blocks) and self.rem_blocks[i] <= hi // B:
                return None
        parts = []
        ref, top = math.inf, -1
        for j in pieces:
            pc = self.pieces[j]
            p = pc.p
            t0 = max(pc.ta, _cdiv(lo - pc.r0, p))
            t1 = min(pc.tb, (hi - pc.r0) // p + 1)
            if t0 >= t1:
                continue  # no live row in the tile's span: no chains
            f0, c0 = pc.oa * t0 + pc.ob, pc.ca * t0 + pc.cb
            n = t1 - t0 - 1
            ref = min(ref, f0)
            top = max(top, f0 + pc.s * (c0 - 1),
                      f0 + pc.oa * n + pc.s * (c0 + pc.ca * n - 1))
            parts.append((p, pc.s, pc.oa, pc.ca, pc.r0 + p * t0 - row0, f0, c0, t1 - t0))
        if not parts or top >= self.BN * (self.Lk // self.BN):
            return None
        shift = (ref // self.BN) * self.BN
        return (R, nrows) + tuple((p, st, oa, ca, r, f - shift, c, n)
                                  for p, st, oa, ca, r, f, c, n in parts), shift

    def _affine_plan(self, chains: list, masks: list, nrows: int):
        """(segments, mask tiles, cost) of a tile's chains and mask tiles (steps 4-5)."""
        if len(chains) > _COALESCE_MAX_CHAINS * nrows:
            # a tile this fragmented has no cheap affine plan (each chain walks at least one
            # masked key tile): skip the merging passes, whose work grows with the chains, and
            # let the blocks plan price it (the same elements either way, so still exact)
            # (one numpy array, costed vectorised: such tiles have thousands of chains)
            segs = chain_segments(chains)
            return (segs, masks, _W_TILE + _segments_cost(segs, nrows, self.BM, self.BN)
                    + len(masks) * (1 + _W_MASKED + _W_BITS))
        cost = self.chain_cost
        segs = coalesce(transpose(stack(chains, nrows, cost), nrows, cost), nrows, cost)
        return segs, masks, self._plan_cost(segs, masks, nrows)

    def _plan_cost(self, segs, masks, nrows) -> float:
        return (_W_TILE + sum(self._seg_cost(sg, nrows) for sg in segs)
                + len(masks) * (1 + _W_MASKED + _W_BITS))

    def _priced(self, segs, masks, nrows: int) -> bool:
        """Whether "auto" prices the blocks plan of an affine plan at all (speed guard): many
        segments and mask tiles, or a few segments that walk mostly masked key tiles (rational
        slopes with ``Lq != Lk``: residue-class pieces give tiles of a few segments whose
        columns drift across every key tile)."""
        if len(segs) + len(masks) >= _PLAN_MIN_ITEMS:
            return True
        walked = full = 0
        for sg in segs:
            # full in its columns: a short tile's row bound masks every key tile, which no plan
            # avoids, so it is not counted (block_m = nrows)
            k, f = _seg_key_tiles(sg, nrows, nrows, self.BN)
            walked += k
            full += f
        return walked - full >= _PLAN_MIN_MASKED and 2 * full <= walked

    def _blocks_bound(self, segs, masks, nrows: int = 0) -> float:
        """Cheap lower bound on the blocks plan's cost (a Python pass over the tables, no
        numpy): a segment's ``col0`` is the first key of one of its end rows and a mask
        tile's ``col0`` an element, so their distinct blocks are occupied, each at least one
        key tile.  With ``nrows``, also: at most ``nnz // (nrows * narrowest block)`` of them
        can be dense, the others are mask tiles.  (An empty end row could make it too high:
        then a blocks plan is missed, the schedule stays exact.)"""
        BN = self.BN
        if isinstance(segs, np.ndarray):  # a tile's unmerged chains (affine_tile)
            blocks = set((segs[:, 0] // BN).tolist())
        else:
            blocks = {sg[0] // BN for sg in segs}
        n = len(blocks | {m[0] // BN for m in masks})
        bound = _W_TILE + n
        if nrows:
            if isinstance(segs, np.ndarray):
                _, _, _, rl, rh, la, lb, ha, hb = segs.T
                nnz = int(((((ha - la) * (rl + rh - 1) * (rh - rl)) // 2)
                           + (hb - lb) * (rh - rl)).sum())
            else:
                nnz = sum(((ha - la) * (rl + rh - 1) * (rh - rl)) // 2 + (hb - lb) * (rh - rl)
                          for _, _, _, rl, rh, la, lb, ha, hb in segs)
            nnz += sum(nrows * m[1] for m in masks)  # at most, which keeps the bound low
            narrow = min(BN, self.Lk - (_cdiv(self.Lk, BN) - 1) * BN)
            bound += max(0, n - nnz // (nrows * narrow)) * (_W_MASKED + _W_BITS)
        return bound

    def _occupied_above(self, segs, masks, limit: float) -> bool:
        """Whether the tile's elements surely occupy more than ``limit`` key blocks, so that
        its blocks plan, at least ``_W_TILE`` plus one key tile per occupied block, costs more
        than ``limit + _W_TILE``.  Surely occupied: the blocks from the first to the last key
        of each segment's end rows where not empty (keys ``col_step <= BLOCK_N`` apart skip no
        block; farther apart, the two ends only), and those of each mask tile's first and last
        column (elements, by the cover).  A tighter bound than :meth:`_blocks_bound`, counted in
        Python until it passes ``limit`` (not for a layout of fewer key blocks than that): the
        tiles of strided and rational-slope layouts skip pricing so."""
        BN = self.BN
        if limit >= _cdiv(self.Lk, BN) or isinstance(segs, np.ndarray):
            # more blocks than there are, or a tile's thousands of unmerged chains (affine_tile),
            # which would cost what pricing them does
            return False
        seen: set[int] = set()
        for col0, cs, ncols, rl, rh, la, lb, ha, hb in segs:
            for r in (rl, rh - 1):
                lo, hi = max(la * r + lb, 0), min(ha * r + hb, ncols)
                if hi > lo:
                    b0, b1 = (col0 + cs * lo) // BN, (col0 + cs * (hi - 1)) // BN
                    seen.update(range(b0, b1 + 1) if cs <= BN else (b0, b1))
            if len(seen) > limit:
                return True
        for c, nc, _ in masks:
            seen.update((c // BN, (c + nc - 1) // BN))
        return len(seen) > limit

    def _block_counts(self, key, segs, masks) -> np.ndarray:
        """``block_counts`` of the tile ``key`` (``(row0, R, nrows)``) whose elements are
        ``segs`` and ``masks``, memoised: pricing its blocks plan, the mask check of
        build_schedule and the tables each need them, and builders of one ACSR share them."""
        counts = self.counts_cache.get(key)
        if counts is None:
            counts = self.counts_cache[key] = block_counts(segs, masks, key[2], self.Lk, self.BN)
        return counts

    def _choose_plan(self, key, segs, masks, cost):
        """``(segs, masks, cost, plan)`` of the tile ``key``: the affine plan ``(segs, masks)``
        always (the blocks plan is a function of it, built by :meth:`plan_tables` for the
        tiles finally kept only), and the cost and plan that ``self.plan`` says; "auto" takes
        blocks only at ``_BLOCKS_MARGIN`` of the affine cost or less.  The blocks plan is
        priced from its per-block element counts, without expanding the elements, after two
        cheap lower bounds."""
        nrows = key[2]
        if self.plan == "affine" or not (len(segs) or len(masks)):
            return segs, masks, cost, PLAN_AFFINE
        if self.plan == "auto" and (not self._priced(segs, masks, nrows)
                                    or self._blocks_bound(segs, masks, nrows)
                                    > _BLOCKS_MARGIN * cost
                                    or self._occupied_above(  # 1e-6: float sums' slack
                                        segs, masks, _BLOCKS_MARGIN * cost - _W_TILE + 1e-6)):
            return segs, masks, cost, PLAN_AFFINE
        counts = self._block_counts(key, segs, masks)
        runs = dense_runs(counts, nrows, self.Lk, self.BN)
        n_mask = int(np.count_nonzero(counts)) - sum(_cdiv(sg[2], self.BN) for sg in runs)
        bcost = self._plan_cost(runs, range(n_mask), nrows)
        if self.plan == "auto" and bcost > _BLOCKS_MARGIN * cost:
            return segs, masks, cost, PLAN_AFFINE
        return segs, masks, bcost, PLAN_BLOCKS

    def blocks_adds_masks(self, key, res) -> bool:
        """Whether a planned tile's blocks plan has mask tiles (the tile is not all dense
        runs); ``res`` is the :meth:`tile` result of the tile ``key``."""
        known = self.band_masks.get(key)  # band_costs counted the blocks of its tiles
        if known is not None:
            return known
        if res[0] is None:
            res = self.tile(*key)
        nrows = key[2]
        counts = self._block_counts(key, res[0], res[1])
        runs = dense_runs(counts, nrows, self.Lk, self.BN)
        return int(np.count_nonzero(counts)) > sum(_cdiv(sg[2], self.BN) for sg in runs)

    def plan_tables(self, key, segs, masks, plan):
        """The segments and mask tiles the schedule holds for the tile ``key`` that
        :meth:`tile` planned."""
        if plan == PLAN_BLOCKS:
            return block_plan(segs, masks, key[2], self.Lk, self.BN,
                              counts=self._block_counts(key, segs, masks))
        return segs, masks

    # -- row step per region -----------------------------------------------------------------
    def _chunk_tiles(self, start: int, end: int, R: int):
        """The tiles ``(row0, R, nrows)`` of ``[start, end)`` cut in ``BLOCK_M`` chunks per
        residue class of ``R``."""
        for c in range(min(R, end - start)):
            first = start + c
            n = _cdiv(end - first, R)
            for k in range(0, n, self.BM):
                yield first + R * k, R, min(self.BM, n - k)

    def _chunk_cost(self, start: int, end: int, R: int, stop: float = math.inf) -> float:
        """Cost of the region chunked with row step ``R``.  Pricing stops once the running sum
        exceeds ``stop`` (the cheapest step priced so far): tile costs are non-negative, so such
        a step cannot be chosen, and the partial sum returned still exceeds ``stop``; a step
        that ties or wins is summed in full, in the same order (the same choice)."""
        if not FAST_PATHS:
            stop = math.inf
        total = 0.0
        for t in self._chunk_tiles(start, end, R):
            total += self.tile(*t)[2]
            if total > stop:
                return total
        return total

    def _cheapest_step(self, start: int, end: int, steps) -> int:
        """The step of the least chunked cost, ties to the smaller step; ``steps`` ascending."""
        best, choice = math.inf, None
        for R in steps:
            cost = self._chunk_cost(start, end, R, best)
            if cost < best or choice is None:
                best, choice = cost, R
        return choice

    def _chunk_bound(self, start: int, end: int, R: int) -> tuple[float, float]:
        """(affine cost, lower bound of the planned cost) of the chunked region: a tile's
        planned cost is its affine cost or a blocks plan cost, so at least the smaller of
        its affine cost and :meth:`_blocks_bound`."""
        aff = low = 0.0
        for t in self._chunk_tiles(start, end, R):
            segs, masks, cost = self.affine_tile(*t)
            aff += cost
            low += (min(cost, self._blocks_bound(segs, masks)) if self._priced(segs, masks, t[2])
                    else cost)
        return aff, low

    def _choose_step(self, i: int) -> int:
        start, end = self.bounds[i], self.bounds[i + 1]
        length = end - start
        # the distinct (row step, period) pairs of the active pieces (few, where the pieces of
        # a fragmented layout number thousands), then the lcm over the few
        steps = self._region_steps(i)
        cands = {1}
        lcm = 1
        for p, period in steps:
            cands.add(p)
            cands.add(period)
            lcm = lcm * period // math.gcd(lcm, period)
        cands.add(lcm)
        cands = sorted(R for R in cands if R == 1 or R < length)
        if len(cands) == 1:
            return 1
        if self.plan != "auto":
            return self._cheapest_step(start, end, cands)
        # "auto": price the blocks plans of a row step only when its lower bound can beat the
        # best affine total (blocks plans only lower a total), so a layout whose fragmented
        # candidate steps lose anyway (the dilated window's R = 1) pays nothing for them; a
        # step skipped so cannot be the minimum, the choice is the one full pricing makes
        bounds = {R: self._chunk_bound(start, end, R) for R in cands}
        best = min(aff for aff, _ in bounds.values())
        return self._cheapest_step(start, end, [R for R in cands if bounds[R][1] <= best])

    # -- cuts --------------------------------------------------------------------------------
    def _cut_class(self, first: int, R: int, n: int, inner: list[int]) -> list[tuple[int, int]]:
        """Tiles ``(k, nrows)`` (class indices) for the class ``first + R*k``, ``k < n``; region
        boundaries at class indices ``inner``."""
        BM = self.BM
        inner = self._weighed_boundaries(inner, n)
        if not inner or len(inner) > _MAX_DP_BOUNDARIES:
            tiles = [(k, min(BM, n - k)) for k in range(0, n, BM)]
            self.unpriced.extend((first + R * k, R if m > 1 else 1, m) for k, m in tiles)
            return tiles
        # the tiles the DP weighs, their costs by position (not (i, j) keys: the DP runs for
        # every new document layout)
        grid = self._cut_grid(first, R, n, inner)
        cost, band = self._cut_costs(first, R, grid)
        best_start, at = _cut_dp(cost, grid.lo)
        cand, tiles, chosen, t = grid.cand, [], [], len(grid.cand) - 1
        while t:
            s = best_start[t]
            tiles.append((cand[s], cand[t] - cand[s]))
            chosen.append(at[t])
            t = s
        self.path_cost += sum(map(cost.__getitem__, chosen))
        if band is not None:  # entered into the tile caches when a tile is first asked for
            self.band_picks.append((first, tiles, band, chosen))
        return tiles[::-1]

    def _weighed_boundaries(self, inner: list[int], n: int) -> list[int]:
        """The region boundaries ``inner`` (class indices of a class of ``n``) the cut DP
        weighs: boundaries closer than BM/8 rows to the last one kept or to the end add little
        but cost much."""
        thin, last, gap = [], 0, max(1, self.BM // 8)
        for b in inner:
            if b - last >= gap and n - b >= gap:
                thin.append(b)
                last = b
        return thin

    def relaxed_cost(self) -> float:
        """Before :meth:`build`, a lower bound of the cost of the tiles it keeps, for a band
        layout (one class: all rows at row step 1, cut at its region boundaries): the cut
        DP over the same tiles priced at lower bounds of any plan's cost
        (:func:`~splat.tiling.band_costs.band_tile_floors`), less its slack (1e-9 a
        candidate); ``-inf`` for other layouts."""
        if self.bands is None or any(sp != (1, 1) for sp in self.pairs):
            return -math.inf
        n, BM = self.Lq, self.BM
        inner = self._weighed_boundaries(self.bounds[1:-1], n)
        if not inner or len(inner) > _MAX_DP_BOUNDARIES:  # BM chunks: no DP
            lo = np.arange(0, n, BM)
            return float(band_tile_floors(self.bands, lo, np.minimum(BM, n - lo), BM, self.BN,
                                          self.Lk).sum())
        grid = self._cut_grid(0, 1, n, inner)
        floors = band_tile_floors(self.bands, grid.I, grid.J - grid.I, BM, self.BN,
                                  self.Lk).tolist()
        start, at = _cut_dp(floors, grid.lo)
        total, t = 0.0, len(grid.cand) - 1
        while t:
            total += floors[at[t]]
            t = start[t]
        return total - 1e-9 * len(grid.cand)

    def _cut_grid(self, first: int, R: int, n: int, inner: list[int]) -> "_CutGrid":
        """The cut DP's candidates and tiles of the class ``first + R*k``, ``k < n``, with
        region boundaries ``inner``: a function of the regions and ``BLOCK_M``, so shared by
        the builders of one ACSR (build_schedule's "affine" builder weighs the same tiles)."""
        key = (first, R, n, tuple(inner))
        grid = self.grid_cache.get(key)
        if grid is None:
            grid = self.grid_cache[key] = _CutGrid(_cut_candidates([0] + inner, n, self.BM),
                                                   self.BM)
        return grid

    def _cut_costs(self, first: int, R: int, grid: "_CutGrid"):
        """The planned cost of each tile the DP weighs (:class:`_CutGrid`), and for a band
        layout the :class:`BandCosts` of those tiles (else None): vectorised where that gives
        the same number (:mod:`splat.tiling.band_costs`), the other tiles through :meth:`tile`."""
        I, J = grid.I, grid.J
        if R == 1 and self.bands is not None and I.size:
            bc = self._band_costs(first, grid)
            out = (bc.cost if self.plan == "auto" else bc.affine).tolist()
            for m in np.flatnonzero(bc.general).tolist():
                i, j = int(I[m]), int(J[m])
                out[m] = self.tile(first + i, 1, j - i)[2]
            return out, bc
        return [self.tile(first + R * i, R, j - i)[2]
                for i, j in zip(I.tolist(), J.tolist())], None

    def _band_costs(self, first: int, grid: "_CutGrid") -> BandCosts:
        """band_costs' prices of the DP's tiles ``[first + I, first + J)`` of ``grid``, shared
        by the builders of one ACSR: the "affine" builder that build_schedule runs after an
        "auto" one weighs the very same tiles, and reads their affine costs
        (``BandCosts.affine``, which "auto" prices too)."""
        if grid.band is not None and (grid.band[0] or self.plan != "auto"):
            return grid.band[1]
        bc = band_tile_costs(self.bands, first + grid.I, grid.J - grid.I, self.BM, self.BN,
                             self.Lk, self._plan_rules())
        grid.band = (self.plan == "auto", bc)
        return bc

    def _plan_rules(self) -> PlanRules:
        return PlanRules(self.plan == "auto", _PLAN_MIN_ITEMS, _PLAN_MIN_MASKED,
                         _COALESCE_MAX_CHAINS, _BLOCKS_MARGIN)

    def _plan_band_tiles(self, tiles: list[tuple[int, int]], bc: BandCosts,
                         at: list[int]) -> None:
        """Enter the tiles ``(row0, nrows)`` the DP kept into the tile caches, where band_costs
        priced them (``bc``, at positions ``at``): their plans; the segments of those whose
        affine plan no builder of the ACSR has made yet are left pending (:attr:`pending`),
        built vectorised by :meth:`resolve` for the schedule kept, or by :meth:`affine_tile`
        on demand (the segments :meth:`tile` would build)."""
        at_list = at
        at = np.array(at, dtype=np.int64)
        auto = self.plan == "auto"
        cost = (bc.cost if auto else bc.affine)[at].tolist()
        plan = bc.plan[at].tolist() if auto else [PLAN_AFFINE] * at.size
        todo = [(k, (row0, 1, nrows)) for k, ((row0, nrows), general)
                in enumerate(zip(tiles, bc.general[at].tolist()))
                if not general and (row0, 1, nrows) not in self.cache]
        affine = bc.affine[at].tolist()
        masks = bc.masks[at].tolist()
        acache, pending = self.affine_cache, self.pending
        for k, key in todo:
            hit = acache.get(key)
            if hit is None and key not in pending:
                pending[key] = (affine[k], bc, at_list[k])
            self.cache[key] = (None if hit is None else hit[0], [], cost[k], plan[k])
            if plan[k] == PLAN_BLOCKS:
                self.band_masks[key] = masks[k]

    def _build_pending(self, keys) -> None:
        """Build (vectorised) the affine segments of the pending tiles ``keys``."""
        by_costs: dict[int, list] = {}  # by the BandCosts that priced them
        for key in keys:
            p = self.pending.pop(key, None)
            if p is not None:
                by_costs.setdefault(id(p[1]), []).append((key, p))
        for group in by_costs.values():
            bc = group[0][1][1]
            at = np.array([p[2] for _, p in group], dtype=np.int64)
            for (key, p), tsegs in zip(group, band_segments_at(bc, at)):
                self.affine_cache[key] = (tsegs, [], p[0])

    def resolve(self, built: list) -> list:
        """``built`` (``(key, tile())``) with the segments of pending tiles built."""
        todo = [t for t, res in built if res[0] is None]
        if not todo:
            return built
        self._build_pending(todo)
        out = []
        for t, res in built:
            if res[0] is None:
                res = self.cache[t] = (self.affine_cache[t][0],) + res[1:]
            out.append((t, res))
        return out

    def late_segments(self, built: list) -> tuple[list[bool], np.ndarray, np.ndarray]:
        """The segments of the tiles of ``built`` (``(key, tile())``) whose affine plan is
        kept and still pending, built in bulk for the tables (the caches are left as they are:
        no other tile needs them): ``(late, segments, tile)``, whether each tile is one of
        them, and their segments (``int64 [n, 9]``) tile by tile, each tile's in the order
        :meth:`resolve` would give, ``tile`` its index in ``built``."""
        groups: dict[int, tuple] = {}  # by the BandCosts that priced them
        late = []
        for i, (t, res) in enumerate(built):
            p = self.pending.get(t) if res[0] is None and res[3] == PLAN_AFFINE else None
            late.append(p is not None)
            if p is not None:
                group = groups.setdefault(id(p[1]), (p[1], [], []))
                group[1].append(i)
                group[2].append(p[2])
        parts = [band_segment_table(bc, np.array(at, dtype=np.int64))
                 + (np.array(index, dtype=np.int64),) for bc, index, at in groups.values()]
        if not parts:
            return late, np.zeros((0, _SG), dtype=np.int64), np.zeros(0, dtype=np.int64)
        return (late, np.concatenate([segs for segs, _, _ in parts]),
                np.concatenate([index[slot] for _, slot, index in parts]))

    def planned(self, t):
        """:meth:`tile` without building pending segments (None in their place)."""
        if self.band_picks:
            self._enter_band_picks()
        hit = self.cache.get(t)
        return hit if hit is not None else self.tile(*t)

    def _enter_band_picks(self) -> None:
        """Enter the tiles the band layouts' cut DPs kept into the tile caches
        (:meth:`_plan_band_tiles`): done when the first tile is asked for, so never for a
        builder that is only priced (:attr:`path_cost`) or replaced by another."""
        picks, self.band_picks = self.band_picks, []
        for first, tiles, bc, at in picks:
            self._plan_band_tiles([(first + i, m) for i, m in tiles], bc, at)

    def band_path(self, tiles: list) -> tuple | None:
        """``(bc, positions)`` where the tiles ``tiles`` of :meth:`build` are those of its
        one class, a band layout's, all priced by band_costs (none the general way) and not
        yet entered into the caches: the BandCosts that priced them and their positions there,
        in the order of ``tiles``; else None."""
        if len(self.band_picks) != 1 or len(self.band_picks[0][1]) != len(tiles):
            return None
        _, _, bc, chosen = self.band_picks[0]
        pos = np.array(chosen[::-1], dtype=np.int64)  # the DP's path runs from the last row
        return None if bc.general[pos].any() else (bc, pos)

    def path_prices(self, bc: BandCosts, pos: np.ndarray) -> tuple[list, list, list]:
        """``(costs, plans, mask tiles)`` of the tiles at positions ``pos`` of ``bc`` for this
        builder's plan (as :meth:`_plan_band_tiles` enters them): the planned cost, the plan,
        and whether a blocks plan has mask tiles."""
        if self.plan != "auto":
            return bc.affine[pos].tolist(), [PLAN_AFFINE] * pos.size, [False] * pos.size
        return bc.cost[pos].tolist(), bc.plan[pos].tolist(), bc.masks[pos].tolist()

    def built_from_path(self, tiles: list, bc: BandCosts, pos: np.ndarray) -> list:
        """The planned tiles ``[(key, tile())]`` of a :meth:`band_path`, read off the band
        costs without the tile caches: their segments are left pending (:meth:`_assemble`
        builds them in bulk from ``bc`` for a path of affine plans only, :meth:`resolve`
        otherwise)."""
        costs, plans, masks = self.path_prices(bc, pos)
        acache, pending = self.affine_cache, self.pending
        for key, af, p in zip(tiles, bc.affine[pos].tolist(), pos.tolist()):
            if key not in acache and key not in pending:
                pending[key] = (af, bc, p)
        built = [(key, (acache[key][0] if key in acache else None, [], c, pl))
                 for key, c, pl in zip(tiles, costs, plans)]
        self.band_masks.update((key, m) for key, pl, m in zip(tiles, plans, masks)
                               if pl == PLAN_BLOCKS)
        self.path = (built, bc, pos) if PLAN_BLOCKS not in plans else None
        return built

    def build(self) -> list[tuple[int, int, int]]:
        """Row tiles ``(row0, R, nrows)``."""
        nreg = len(self.bounds) - 1
        if all(sp == (1, 1) for sp in self.pairs):  # every region's only candidate step is 1
            steps = [1] * nreg
        else:
            steps = [self._choose_step(i) for i in range(nreg)]
        tiles = []
        i = 0
        while i < nreg:
            j = i
            while j + 1 < nreg and steps[j + 1] == steps[i]:
                j += 1
            A, E, R = self.bounds[i], self.bounds[j + 1], steps[i]
            inner_rows = self.bounds[i + 1:j + 1]
            for c in range(min(R, E - A)):
                first = A + c
                n = _cdiv(E - first, R)
                inner = sorted({_cdiv(b - first, R) for b in inner_rows} - {0, n})
                inner = [k for k in inner if 0 < k < n]
                tiles.extend([(first + R * k, R if m > 1 else 1, m)
                              for k, m in self._cut_class(first, R, n, inner)])
            i = j + 1
        return tiles

    def mask_bits(self, bits: list[np.ndarray]) -> np.ndarray:
        """Pack mask tiles ``bool [nrows, ncols]`` into ``int32 [n, BLOCK_M,
        ceil(BLOCK_N/32)]`` words (one packbits for all: fragmented layouts have 10^4 tiles)."""
        W = _cdiv(self.BN, 32)
        full = np.zeros((len(bits), self.BM, W * 32), dtype=bool)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for k, b in enumerate(bits):
            by_shape.setdefault(b.shape, []).append(k)
        for (h, w), ks in by_shape.items():  # one copy per shape (a few), not per tile
            full[ks, :h, :w] = np.stack([bits[k] for k in ks])
        packed = np.packbits(full, axis=2, bitorder="little")          # [n, BM, W*4] bytes
        return packed.view("<u4").astype(np.uint32).view(np.int32).reshape(-1, self.BM, W)


class _CutGrid:
    """What the cut DP of one class weighs: candidate cuts ``cand`` (sorted class indices),
    and every tile ``[cand[s], cand[t])`` with ``lo[t] <= s < t`` (the starts less than
    ``BM`` before ``cand[t]``), by ``t`` then ``s``: ``I``, ``J`` (arrays of ``cand[s]``,
    ``cand[t]``); ``band``: ``(priced for "auto", BandCosts)`` of those tiles once a band
    layout's builder has priced them (``_Builder._band_costs``)."""

    def __init__(self, cand: np.ndarray, BM: int):
        lo = np.searchsorted(cand, cand - BM)
        width = np.arange(cand.size) - lo  # starts per end
        t = np.repeat(np.arange(cand.size), width)
        s = lo[t] + np.arange(t.size) - np.repeat(np.cumsum(width) - width, width)
        self.cand, self.lo = cand.tolist(), lo.tolist()
        self.I, self.J = cand[s], cand[t]
        self.band: tuple[bool, BandCosts] | None = None


def _cut_candidates(bases: list[int], n: int, BM: int) -> np.ndarray:
    """The cut DP's candidate cuts of a class of ``n`` rows, sorted: the plain ``BM`` chunks
    (always a candidate path), and from each base (0 and the region boundaries) a ``BM`` grid
    up to the base ``reach`` boundaries on (all of them when there are few)."""
    reach = len(bases) if len(bases) <= 6 else 2  # how many boundaries a grid may straddle
    b = np.array(bases, dtype=np.int64)
    stop = np.array(bases[reach:] + [n] * min(reach, len(bases)), dtype=np.int64)
    count = np.maximum(0, -(-(stop - b - BM) // BM))  # len(range(b + BM, stop, BM))
    grid = (np.repeat(b + BM, count)
            + BM * (np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)))
    return np.unique(np.concatenate([np.arange(0, n, BM), [n], b, grid]))


def _cut_dp(cost: list[float], lo: list[int]) -> tuple[list[int], list[int]]:
    """The cut DP over candidates ``0 .. n-1`` (``_Builder._cut_class``): the cheapest path
    where candidate ``t`` is reached from each ``s`` in ``[lo[t], t)`` at ``cost[p]`` (``p``
    running over all ``(t, s)`` in that order).  Returns, per ``t``, the chosen ``s`` and its
    ``p``.  A later ``s`` replaces the kept one only when cheaper by more than 1e-9 (paths of
    the same tiles summed in another order differ in the last bits).  A plain loop over Python
    floats: the DP is sequential, ~2 starts per candidate."""
    n = len(lo)
    best, start, at = [0.0] * n, [0] * n, [0] * n
    p = 0
    for t in range(1, n):
        bs = lo[t]
        bc = best[bs] + cost[p]
        bp = p
        p += 1
        s = bs + 1
        while s < t:  # (a while loop: no range object per candidate)
            c = best[s] + cost[p]
            if c < bc - 1e-9:
                bc, bs, bp = c, s, p
            p += 1
            s += 1
        best[t] = bc
        start[t] = bs
        at[t] = bp
    return start, at


def _affine_runs(bits: np.ndarray, col0: np.ndarray) -> list:
    """For each window ``k`` (``bits[k]``: rows x columns from ``col0[k]``, not empty), one
    chain if every non-empty row is a single contiguous run, the non-empty rows are contiguous
    and both run ends are affine in the row; else None."""
    n, nrows, width = bits.shape
    live = bits.any(axis=2)                                   # [n, nrows]
    first = bits.argmax(axis=2)
    cnt = bits.sum(axis=2)
    end = width - bits[:, :, ::-1].argmax(axis=2)
    rl = live.argmax(axis=1)
    rh = nrows - live[:, ::-1].argmax(axis=1)
    ok = (live.sum(axis=1) == rh - rl) & ((cnt == end - first) | ~live).all(axis=1)
    k = np.arange(n)
    f0, c0 = first[k, rl], cnt[k, rl]
    al = np.zeros(n, dtype=np.int64)
    ga = np.zeros(n, dtype=np.int64)
    if nrows >= 2:  # the steps from row rl to rl + 1, and the same on every pair of live rows
        two = rh - rl >= 2
        at = np.minimum(rl + 1, nrows - 1)
        al = np.where(two, first[k, at] - f0, 0)
        ga = np.where(two, cnt[k, at] - c0, 0)
        pair = live[:, 1:] & live[:, :-1]                      # both rows in [rl, rh)
        ok &= ((np.diff(first, axis=1) == al[:, None])
               & (np.diff(cnt, axis=1) == ga[:, None]) | ~pair).all(axis=1)
    return [(1, a, int(c) + f - a * r, g, n0 - g * r, r, h) if good else None
            for good, a, g, c, f, n0, r, h in zip(
                ok.tolist(), al.tolist(), ga.tolist(), col0.tolist(), f0.tolist(), c0.tolist(),
                rl.tolist(), rh.tolist())]


def build_schedule(acsr: ACSR, block_m: int = 64, block_n: int = 64, *,
                   order: str = "rows", plan: str = "auto") -> TileSchedule:
    """Tile schedule of ``acsr`` for ``block_m x block_n`` tiles (see the module docstring).

    ``order``: ``"rows"`` lists the row tiles by first row; ``"heavy_first"`` by decreasing
    work (key tiles), which shortens the tail of a GPU launch.  ``plan``: ``"auto"`` picks the
    affine or the blocks plan per row tile by cost (step 6); ``"affine"`` or ``"blocks"``
    forces one for every tile (tests and benchmarks)."""
    _check_arguments(acsr, block_m, block_n, plan, order)
    b, built = _plan_checked(acsr, block_m, block_n, plan)
    return _assemble(acsr, b, built, order)


def _check_arguments(acsr: ACSR, block_m: int, block_n: int, plan: str,
                     order: str = "rows") -> None:
    if block_m < 1 or block_n < 1:
        raise ValueError("block sizes must be >= 1")
    if max(acsr.Lq, acsr.Lk) > MAX_LENGTH:  # checked before any work: the tables are int32
        raise ValueError(f"Lq = {acsr.Lq} and Lk = {acsr.Lk} must be <= {MAX_LENGTH} "
                         f"(the schedule tables and kernel indices are int32)")
    _check_memory(acsr.Lq, block_m)
    if order not in ("rows", "heavy_first"):
        raise ValueError(f"unknown tile order {order!r}")
    if plan not in PLANS:
        raise ValueError(f"unknown tile plan {plan!r} (one of {', '.join(PLANS)})")


def plan_tiles(acsr: ACSR, block_m: int, block_n: int, plan: str = "auto",
               order: str = "rows", index: "_Builder | None" = None) -> tuple:
    """Steps 1-6 of :func:`build_schedule`, before its tables: ``(b, built)``, the builder and
    its planned tiles ``[((row0, R, nrows), tile()), ...]``, some with their segments still
    pending (``_assemble(acsr, b, built, order)`` is the schedule; ``order`` is
    only checked here).  Split-KV and the kernel variant choice price them without the
    tables, whose mask bits and blocks plans cost as much again.  ``index``: the builder of an
    earlier ``plan_tiles`` of ``acsr`` (any tile shape), whose index of the ACSR is reused.
    In steps: :func:`tile_builder`, :func:`cut_tiles`, :func:`plan_tiles_rest`."""
    b = tile_builder(acsr, block_m, block_n, plan, order, index)
    return plan_tiles_rest(acsr, b, cut_tiles(b))


def tile_builder(acsr: ACSR, block_m: int, block_n: int, plan: str = "auto",
                 order: str = "rows", index: "_Builder | None" = None) -> "_Builder":
    """The builder of :func:`plan_tiles` (the arguments checked), before any tile is cut
    (:func:`relaxed_tiles_floor` bounds the cost of the tiles it will keep)."""
    _check_arguments(acsr, block_m, block_n, plan, order)
    return _Builder(acsr, int(block_m), int(block_n), plan, index=index)


def cut_tiles(b: "_Builder") -> list:
    """Steps 1-3 of :func:`build_schedule` (each tile priced by its plan, step 6) for the
    builder ``b``: its row tiles ``(row0, R, nrows)`` (:func:`first_tiles_floor` bounds the
    cost of what :func:`plan_tiles_rest` keeps of them)."""
    return b.build()


def _plan_checked(acsr: ACSR, block_m: int, block_n: int, plan: str) -> tuple:
    b = _Builder(acsr, int(block_m), int(block_n), plan)
    return plan_tiles_rest(acsr, b, b.build())


def first_tiles_floor(b: _Builder) -> float:
    """A lower bound of the summed tile costs of what :func:`plan_tiles_rest` keeps of the
    tiles :func:`cut_tiles` cut with the builder ``b``, up to rounding, or ``-inf``.  The
    checks keep these tiles or, for "auto", take another builder's: the blocks-plan one where
    there are more regions than ``BLOCK_M`` chunks (it may cost less: ``-inf``), and the
    forced-affine one, whose tiles cost no less where every region's row step is 1: its cut
    DP weighs the same tiles of the same grid, none cheaper (a tile's planned cost is its
    affine cost or a cheaper blocks plan's), so its path costs no less than the cheapest,
    which these tiles' path is, less the DP's slack (a replacement needs a saving of 1e-9: at
    most that lost per candidate)."""
    if not _keeps_no_cheaper(b):
        return -math.inf
    candidates = sum(len(grid.cand) for grid in b.grid_cache.values())
    return b.path_cost + sum(b.planned(t)[2] for t in b.unpriced) - 1e-9 * candidates


def relaxed_tiles_floor(b: _Builder) -> float:
    """:func:`first_tiles_floor` before the tiles are cut: ``b.relaxed_cost()``, a lower
    bound of the cost of the tiles :func:`cut_tiles` will keep, where that bounds what
    :func:`plan_tiles_rest` keeps; ``-inf`` elsewhere."""
    return b.relaxed_cost() if _keeps_no_cheaper(b) else -math.inf


def chunk_tiles_estimate(b: _Builder) -> float | None:
    """An estimate of the cost of the tiles :func:`cut_tiles` will cut with the builder ``b``
    of a band layout, cheaper than :func:`relaxed_tiles_floor`: the lower bounds of the costs
    of plain ``BLOCK_M`` chunks (one path of the cut DP, which finds a cheaper one of tiles
    that cost more than their bounds); None for other layouts."""
    if b.bands is None:
        return None
    lo = np.arange(0, b.Lq, b.BM)
    return float(band_tile_floors(b.bands, lo, np.minimum(b.BM, b.Lq - lo), b.BM, b.BN,
                                  b.Lk).sum())


def _keeps_no_cheaper(b: _Builder) -> bool:
    """Whether :func:`plan_tiles_rest` keeps no tiles cheaper than those the builder ``b``
    cuts (:func:`first_tiles_floor` says why)."""
    return b.plan != "auto" or (len(b.bounds) - 1 <= _cdiv(b.Lq, b.BM)
                                and all(sp == (1, 1) for sp in b.pairs))


def plan_tiles_rest(acsr: ACSR, b: _Builder, tiles: list) -> tuple:
    """:func:`plan_tiles`' whole-schedule checks (step 6) of the tiles :func:`cut_tiles` cut
    with the builder ``b``: ``(b, built)`` of the builder kept."""
    auto, built = b.plan == "auto", None
    if auto and len(b.bounds) - 1 > _cdiv(acsr.Lq, b.BM):
        # tiles kept by the cut DP are priced, their segments built later, for the schedule
        # kept (resolve); the checks below read them
        b, built = _blocks_alternative(acsr, b, b.resolve([(t, b.planned(t)) for t in tiles]))
    costs, has_masks, adds_masks, built = _priced_tiles(b, tiles, built)
    if auto and adds_masks and _needs_no_masks(acsr):
        # Mask tiles in a layout that had none switch the whole launch to the _masked kernel
        # variant, whose every key tile costs W_MASK_KERNEL more (a cost the per-tile choice
        # does not see), and they compete with split-KV, the unmasked answer for layouts that
        # want two row groupings: keep such a schedule only when the whole of it, with that
        # extra, costs at most _NEW_MASKS_MARGIN of the all-affine schedule.
        # the tiles' affine plans are the same: only the DP runs
        a = _Builder(acsr, b.BM, b.BN, "affine", like=b)
        a_tiles = a.build()
        a_costs, a_has_masks, _, a_built = _priced_tiles(a, a_tiles)
        if _costs_total(costs, has_masks) > _NEW_MASKS_MARGIN * _costs_total(a_costs,
                                                                              a_has_masks):
            return a, _built(a, a_tiles, a_built)
    return b, _built(b, tiles, built)


def _blocks_alternative(acsr: ACSR, b: _Builder, built: list) -> tuple:
    """``(b, built)``, or the blocks-plan builder and its tiles where they are priced cheaper
    (:func:`plan_tiles_rest`, where there are more regions than ``BLOCK_M`` chunks)."""
    if _mostly_masked(b, built) and _chunks_bound(b, acsr.Lq) < _BLOCKS_MARGIN * _schedule_cost(
            built):
        # The row steps are chosen region by region; where the analysis cut the rows into more
        # regions than there are BLOCK_M chunks (residue-class pieces of rational slopes beside
        # other families) and most key tiles are masked, a step that
        # is cheapest per region can lose to plain BLOCK_M tiles of blocks plans overall.  Price
        # that schedule too (the tiles' affine plans are shared) and keep the cheaper, when a
        # cheap lower bound of BLOCK_M chunks (blocks plans bounded by their occupied blocks)
        # leaves it a chance.
        alt = _Builder(acsr, b.BM, b.BN, "blocks", like=b)
        alt_built = [(t, alt.tile(*t)) for t in alt.build()]
        if _schedule_cost(alt_built) < _BLOCKS_MARGIN * _schedule_cost(built):
            return alt, alt_built
    return b, built


def _priced_tiles(b: _Builder, tiles: list, built: list | None = None) -> tuple:
    """``(costs, has_masks, adds_masks, built)`` of the tiles ``tiles`` of the builder ``b``
    (or of the planned tiles ``built``): their planned costs, whether a tile has mask tiles or
    a blocks plan (:func:`_schedule_cost`), whether a blocks plan has mask tiles, and the
    planned tiles; these are None where the tiles are a :meth:`_Builder.band_path`'s, priced
    off its band costs (planned when kept: :func:`_built`)."""
    path = b.band_path(tiles) if built is None else None
    if path is None:
        built = built if built is not None else [(t, b.planned(t)) for t in tiles]
        return ([r[2] for _, r in built], any(r[3] == PLAN_BLOCKS or r[1] for _, r in built),
                b.plan == "auto" and any(r[3] == PLAN_BLOCKS and b.blocks_adds_masks(t, r)
                                         for t, r in built), built)
    costs, plans, masks = b.path_prices(*path)
    return (costs, PLAN_BLOCKS in plans,
            any(pl == PLAN_BLOCKS and m for pl, m in zip(plans, masks)), None)


def _built(b: _Builder, tiles: list, built: list | None) -> list:
    """The planned tiles of :func:`_priced_tiles`, built from the band path where it left them
    unbuilt."""
    return built if built is not None else b.built_from_path(tiles, *b.band_path(tiles))


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_memory(Lq: int, block_m: int) -> None:
    """Refuse, before any work, a schedule whose tiling would not fit in memory: the builder
    holds about ``_BYTES_PER_ROW_TILE`` per ``block_m`` rows at its peak (measured: 1.4 KB a
    tile for windows of 1-4 M rows), so 2**31 rows would need ~50 GB and many minutes."""
    need = _BYTES_PER_ROW_TILE * _cdiv(Lq, max(1, block_m))
    have = available_memory()
    if have is not None and need > have:
        raise MemoryError(f"tiling Lq = {Lq} rows needs about {need / 2**30:.1f} GiB "
                          f"({_BYTES_PER_ROW_TILE} bytes per {block_m}-row tile), more than the "
                          f"{have / 2**30:.1f} GiB available; split the sequence")


def _mostly_masked(b: _Builder, built: list) -> bool:
    """Whether at least half of the planned affine tiles' key tiles evaluate element masks
    (blocks-plan tiles count as masked: the schedule already left the affine plan there)."""
    walked = full = 0
    for (_, _, nrows), (segs, masks, _, tplan) in built:
        if tplan == PLAN_BLOCKS:
            continue
        walked += len(masks)
        if isinstance(segs, np.ndarray):
            k, f = _segments_key_tiles(segs, nrows, b.BM, b.BN)
            walked += int(k.sum())
            full += int(f.sum())
            continue
        for sg in segs:
            k, f = _seg_key_tiles(sg, nrows, b.BM, b.BN)
            walked += k
            full += f
    return walked > 0 and 2 * full < walked


def _chunks_bound(b: _Builder, Lq: int) -> float:
    """Lower bound of the cost of ``BLOCK_M`` chunks, each at the cheaper of its affine plan and
    a bound of its blocks plan (occupied and at most so many dense blocks)."""
    low = 0.0
    for t in b._chunk_tiles(0, Lq, 1):
        segs, masks, cost = b.affine_tile(*t)
        low += min(cost, b._blocks_bound(segs, masks, t[2]))
    return low


def _schedule_cost(built: list) -> float:
    """The model's cost of planned tiles, with the mask kernel's extra when any tile has masks."""
    return _costs_total([r[2] for _, r in built],
                        any(r[3] == PLAN_BLOCKS or r[1] for _, r in built))


def _costs_total(costs: list[float], has_masks: bool) -> float:
    """:func:`_schedule_cost` of tiles of these costs (summed in this order)."""
    total = sum(costs)
    return total * (1.0 + COST.W_MASK_KERNEL) if has_masks else total


def _needs_no_masks(acsr: ACSR) -> bool:
    """Whether the affine schedule has no mask tiles: the ACSR has no remainder (a remainder
    always yields at least one mask tile or an affine segment; either way the blocks plan's
    mask tiles are then weighed per tile only)."""
    return acsr.remainder is None or acsr.remainder.nnz == 0


def _assemble(acsr: ACSR, b: _Builder, built: list, order: str) -> TileSchedule:
    """The schedule tables of the planned tiles ``built`` (``((row0, R, nrows), tile())``),
    the segments still pending built here (:meth:`_Builder.late_segments` in bulk, the others
    by :meth:`_Builder.resolve`)."""
    block_m, block_n = b.BM, b.BN
    if b.path is not None and b.path[0] is built:
        return _assemble_path(acsr, b, order)
    if order == "rows":
        built.sort(key=lambda x: x[0][0])
    else:
        built.sort(key=lambda x: (-x[1][2], x[0][0]))
    late, late_segs, late_tile = b.late_segments(built)
    rest = [i for i, done in enumerate(late) if not done]
    tables = [b.plan_tables(t, tsegs, tmasks, tplan)
              for t, (tsegs, tmasks, _, tplan) in b.resolve([built[i] for i in rest])]
    counts = [len(tsegs) for tsegs, _ in tables]
    segs = np.concatenate([_segments_table([tsegs for tsegs, _ in tables]), late_segs])
    tile_of = np.concatenate([np.repeat(np.array(rest, dtype=np.int64), counts), late_tile])
    # each tile's segments by (col0, rho_lo), ties in their order (a stable sort per tile)
    segs = segs[np.lexsort((_places(tile_of), segs[:, 3], segs[:, 0], tile_of))]
    nsegs = np.bincount(tile_of, minlength=len(built))
    ends = np.cumsum(nsegs)
    row_tiles = np.concatenate([np.array([t for t, _ in built], dtype=np.int64).reshape(-1, 3),
                                np.stack([ends - nsegs, ends], axis=1)], axis=1)
    nmasks = np.zeros(len(built), dtype=np.int64)  # late tiles have none (band layouts)
    nmasks[rest] = [len(tmasks) for _, tmasks in tables]
    mtiles = [(col0, ncols) for _, tmasks in tables for col0, ncols, _ in tmasks]
    mbits = [bits for _, tmasks in tables for _, _, bits in tmasks]
    W = _cdiv(block_n, 32)
    return TileSchedule(
        acsr.Lq, acsr.Lk, block_m, block_n, row_tiles, segs,
        np.concatenate([[0], np.cumsum(nmasks)]),
        np.array(mtiles, dtype=np.int64).reshape(-1, _MT),
        b.mask_bits(mbits) if mbits else np.zeros((0, block_m, W), dtype=np.int32),
        np.array([r[3] for _, r in built], dtype=np.int8))


def _assemble_path(acsr: ACSR, b: _Builder, order: str) -> TileSchedule:
    """:func:`_assemble` of the planned tiles of a band path (:meth:`_Builder.built_from_path`,
    affine plans only) in bulk: the tiles' order, their segments from the band costs
    (:meth:`_Builder.late_segments` does the same per tile), and the tables."""
    built, bc, pos = b.path
    keys = np.array([t for t, _ in built], dtype=np.int64).reshape(-1, 3)
    if order == "rows":
        order_ = np.argsort(keys[:, 0], kind="stable")
    else:  # by decreasing cost, then first row (distinct)
        order_ = np.lexsort((keys[:, 0], -np.array([r[2] for _, r in built])))
    segs, tile_of = band_segment_table(bc, pos[order_])
    # each tile's segments by (col0, rho_lo), ties in their order (a stable sort per tile)
    segs = segs[np.lexsort((_places(tile_of), segs[:, 3], segs[:, 0], tile_of))]
    nsegs = np.bincount(tile_of, minlength=len(built))
    ends = np.cumsum(nsegs)
    return TileSchedule(acsr.Lq, acsr.Lk, b.BM, b.BN,
                        np.concatenate([keys[order_], np.stack([ends - nsegs, ends], axis=1)],
                                       axis=1), segs)


def _places(tile: np.ndarray) -> np.ndarray:
    """Each entry's place in its run of equal entries (a tile's segments lie together)."""
    start = np.flatnonzero(np.diff(tile, prepend=-1))
    return np.arange(tile.size) - np.repeat(start, np.diff(np.append(start, tile.size)))


def _segments_table(per_tile: list) -> np.ndarray:
    """``int64 [n, 9]``: the segments of every tile (lists of 9-tuples or ``[k, 9]`` arrays)
    one after the other, through one flat iterator (hundreds of tiles of a few segments)."""
    rows = [x.tolist() if isinstance(x, np.ndarray) else x for x in per_tile]
    n = sum(len(x) for x in rows)
    flat = itertools.chain.from_iterable(itertools.chain.from_iterable(rows))
    return np.fromiter(flat, dtype=np.int64, count=_SG * n).reshape(n, _SG)
