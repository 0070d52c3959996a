"""The constructor-to-tables path's shortcuts give what the plain computations give.

Each rewrite is compared with the computation it replaces, written out here as it was: the cut
DP's candidates (``_cut_candidates``) and scan (``_cut_dp``, with near-ties inside its 1e-9
slack); the one-row merges band_costs makes (against the general path's tiles); the blocks
plan's cost, and whether it has mask tiles, over each tile's own blocks
(``band_costs._blocks_cost``, against ``block_counts`` per tile over all key blocks); the band
costs an "affine" builder reads from the "auto" builder of the same ACSR (against a fresh
"affine" builder); the row step of regions whose pieces all have row step and period 1; and the
schedule tables assembled in one pass (against the per-tile loop).
"""

from __future__ import annotations

import numpy as np
import pytest

from splat import patterns as P
from splat.analysis import analyze
from splat.tiling import schedule as S
from splat.tiling.block_plan import block_counts, dense_runs
from splat.tiling.chains import chain_segments


def _lengths(rng, L, n):
    cuts = np.sort(rng.choice(np.arange(1, L), n - 1, replace=False))
    return np.diff(np.concatenate([[0], cuts, [L]])).tolist()


def _band_layouts(seed: int, L: int = 4096):
    """Constructor layouts of the --tables benchmark, smaller: band layouts (row step 1)."""
    rng = np.random.default_rng(seed)
    w = int(rng.integers(64, 600))
    return [
        P.documents(_lengths(rng, L, int(rng.integers(4, 32))), L),
        P.documents(_lengths(rng, L, int(rng.integers(4, 32))), L, causal=True),
        P.prefix_lm(int(rng.integers(100, L // 2)), L),
        P.documents(_lengths(rng, L, 6), L, causal=True) & P.causal_window(w, L),
        P.chunked_causal(int(rng.integers(200, 1200)), L) | P.causal_window(w // 2, L),
        P.window(w // 2, L) | P.global_tokens(range(int(rng.integers(1, 64))), L),
        P.window(w, L) & P.blocked(int(rng.integers(300, 1200)), L),
    ]


def _scan(cost, lo):
    """The cut DP as _Builder._cut_class wrote it before ``_cut_dp``."""
    n = len(lo)
    best_cost, best_start, at, p = [0.0] * n, [0] * n, [0] * n, 0
    for t in range(1, n):
        bc, bs, bp = None, 0, 0
        for s in range(lo[t], t):
            c = best_cost[s] + cost[p]
            if bc is None or c < bc - 1e-9:
                bc, bs, bp = c, s, p
            p += 1
        best_cost[t], best_start[t], at[t] = bc, bs, bp
    return best_start, at


@pytest.mark.parametrize("seed", range(6))
def test_cut_dp_is_the_scan(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    lo = [0] + [int(max(0, t - rng.integers(1, 6))) for t in range(1, n)]
    lo = np.maximum.accumulate(lo).tolist()  # candidates sorted: lo is non-decreasing
    npairs = sum(t - lo[t] for t in range(n))
    # few distinct values, some a float rounding apart: ties and near-ties decide often
    base = rng.choice([0.1, 0.2, 0.3, 1.0, 2.0], npairs)
    cost = (base + rng.choice([0.0, 1e-12, -1e-12, 5e-10], npairs)).tolist()
    assert S._cut_dp(cost, lo) == _scan(cost, lo)


def _candidates(bases, n, BM):
    """The cut DP's candidates as _Builder._cut_class built them before ``_cut_candidates``."""
    cand = set(range(0, n, BM)) | {n}
    reach = len(bases) if len(bases) <= 6 else 2
    for bi, b in enumerate(bases):
        cand.add(b)
        stop = bases[bi + reach] if bi + reach < len(bases) else n
        k = b + BM
        while k < stop:
            cand.add(k)
            k += BM
    return sorted(cand)


@pytest.mark.parametrize("seed", range(8))
def test_cut_candidates_are_the_grids_from_each_base(seed):
    rng = np.random.default_rng(seed)
    BM = int(rng.choice([16, 64, 128]))
    n = int(rng.integers(1, 5000))
    for k in (0, 1, 3, 5, 6, 7, 30):
        inner = sorted(set(rng.integers(1, max(2, n), k).tolist()) - {0, n})
        got = S._cut_candidates([0] + inner, n, BM)
        assert got.tolist() == _candidates([0] + inner, n, BM)


def _blocks_costs_by_counts(b, lo, nrows):
    """The blocks plan's cost of tiles [lo, lo + nrows) from block_counts over all key blocks
    (``_Builder._choose_plan``'s pricing), and whether it has mask tiles, tile by tile."""
    out, masks = [], []
    for row0, n in zip(lo.tolist(), nrows.tolist()):
        chains, _ = b._tile_chains(row0, 1, n, b._pieces_in(row0, row0 + n - 1, 1, n))
        segs = chain_segments(chains) if chains else []
        counts = block_counts(segs, [], n, b.Lk, b.BN)
        runs = dense_runs(counts, n, b.Lk, b.BN)
        n_mask = int(np.count_nonzero(counts)) - sum(S._cdiv(sg[2], b.BN) for sg in runs)
        out.append(b._plan_cost(runs, range(n_mask), n))
        masks.append(n_mask > 0)
    return np.array(out), np.array(masks)


@pytest.mark.parametrize("block_n", [64, 32])
def test_blocks_costs_over_each_tiles_blocks_are_the_counts(block_n):
    from splat.tiling import band_costs as B

    rng = np.random.default_rng(block_n)
    outcomes = set()
    for pattern in _band_layouts(block_n, L=2048) + [P.blocked(256, 2048)]:  # + dense blocks
        b = S._Builder(analyze(pattern), 64, block_n)
        lo = rng.integers(0, 2048 - 64, 300)
        nrows = rng.integers(1, 65, 300)
        tile, al, be, ga, de, rl, rh = B._chains(b.bands, lo, nrows)
        weigh = np.ones(lo.size, dtype=bool)
        weigh[::3] = False  # tiles left out are 0
        got, masks = B._blocks_cost(weigh, tile, al, be, ga, de, rl, rh, nrows, 64, block_n, 2048)
        want, want_masks = _blocks_costs_by_counts(b, lo, nrows)
        assert np.array_equal(got[weigh], want[weigh]) and not got[~weigh].any()
        assert np.array_equal(masks[weigh], want_masks[weigh]) and not masks[~weigh].any()
        outcomes.update(want_masks[weigh].tolist())
    assert outcomes == {False, True}  # both are exercised


def test_an_affine_builder_reads_the_auto_builders_band_costs():
    for pattern in _band_layouts(1):
        acsr = analyze(pattern)
        for block_n in (64, 32):
            auto = S._Builder(acsr, 64, block_n, "auto")
            auto.build()
            shared = S._Builder(acsr, 64, block_n, "affine", like=auto)
            fresh = S._Builder(acsr, 64, block_n, "affine")
            tiles = fresh.build()
            assert shared.build() == tiles
            for t in tiles:
                got, want = shared.tile(*t), fresh.tile(*t)
                assert got[2:] == want[2:] and [tuple(x) for x in got[0]] == [
                    tuple(x) for x in want[0]], t


def test_band_costs_know_whether_blocks_plans_add_masks():
    """``blocks_adds_masks`` of the tiles band_costs planned (read from ``BandCosts.masks``)
    is the count from the tiles' block counts."""
    seen = set()
    for pattern in _band_layouts(4) + _band_layouts(5):
        acsr = analyze(pattern)
        for block_n in (64, 32):
            b = S._Builder(acsr, 64, block_n)
            for t in b.build():
                res = b.tile(*t)
                if res[3] != S.PLAN_BLOCKS or t not in b.band_masks:
                    continue
                fresh = S._Builder(acsr, 64, block_n)
                seen.add(b.blocks_adds_masks(t, res))
                assert b.blocks_adds_masks(t, res) == fresh.blocks_adds_masks(t, res), t
    assert seen  # some tile was checked


def test_regions_of_unit_steps_take_row_step_1():
    for pattern in _band_layouts(2):
        b = S._Builder(analyze(pattern), 64, 64)
        assert b.pairs == [(1, 1)]
        assert all(b._choose_step(i) == 1 for i in range(len(b.bounds) - 1))


def _assemble_per_tile(acsr, b, built, order):
    """_assemble as the per-tile loop it was."""
    if order == "rows":
        built.sort(key=lambda x: x[0][0])
    else:
        built.sort(key=lambda x: (-x[1][2], x[0][0]))
    row_tiles, segs, mptr, mtiles, mbits, plans = [], [], [0], [], [], []
    for (row0, R, nrows), (tsegs, tmasks, _, tplan) in built:
        tsegs, tmasks = b.plan_tables((row0, R, nrows), tsegs, tmasks, tplan)
        plans.append(tplan)
        tsegs = sorted(tsegs, key=lambda sg: (sg[0], sg[3]))
        row_tiles.append((row0, R, nrows, len(segs), len(segs) + len(tsegs)))
        segs.extend(tsegs)
        for col0, ncols, bits in tmasks:
            mtiles.append((col0, ncols))
            mbits.append(bits)
        mptr.append(len(mtiles))
    W = S._cdiv(b.BN, 32)
    return S.TileSchedule(
        acsr.Lq, acsr.Lk, b.BM, b.BN, np.array(row_tiles, dtype=np.int64).reshape(-1, 5),
        np.array(segs, dtype=np.int64).reshape(-1, 9), np.array(mptr, dtype=np.int64),
        np.array(mtiles, dtype=np.int64).reshape(-1, 2),
        b.mask_bits(mbits) if mbits else np.zeros((0, b.BM, W), dtype=np.int32),
        np.array(plans, dtype=np.int8))


def test_tables_assembled_in_one_pass_are_the_per_tile_tables():
    rng = np.random.default_rng(5)
    L = 640
    q, k = np.arange(L)[:, None], np.arange(L)[None]
    fragmented = (rng.random((L, L)) < 0.01) | ((np.abs(q - k) <= 9) & ((q - k) % 3 == 0))
    layouts = _band_layouts(3, L=2048) + [P.strided(64, 48, 2048), P.from_mask(fragmented)]
    for pattern in layouts:
        acsr = analyze(pattern)
        for block_n, plan in ((64, "auto"), (32, "blocks"), (64, "affine")):
            for order in ("rows", "heavy_first"):
                b = S._Builder(acsr, 64, block_n, plan)
                built = [(t, b.tile(*t)) for t in b.build()]
                got = S._assemble(acsr, b, list(built), order)
                want = _assemble_per_tile(acsr, b, list(built), order)
                assert got == want and np.array_equal(got.plans, want.plans)


@pytest.mark.parametrize("block_n", [64, 32])
def test_one_row_merges_price_the_tiles_as_the_builder_does(block_n):
    """Tiles one row across a region boundary (a piece's one row, which may continue its
    neighbour's line): where band_costs prices them, after the merge ``_coalesce`` would make,
    cost, plan and segments are the general path's, to the bit."""
    from splat.tiling import band_costs as B

    rng = np.random.default_rng(100 + block_n)
    L, merged, general = 2048, 0, 0
    for seed in range(3):
        for pattern in _band_layouts(seed, L=L):
            b = S._Builder(analyze(pattern), 64, block_n)
            edges = np.array([x for x in b.bounds if 0 < x < L], dtype=np.int64)
            if not edges.size:
                continue
            nrows = rng.integers(2, 65, 2 * edges.size)
            lo = np.concatenate([edges - 1, edges + 1 - nrows[edges.size:]])  # first / last row
            keep = (lo >= 0) & (lo + nrows <= L)
            lo, nrows = lo[keep], nrows[keep]
            rules = S.PlanRules(True, S._PLAN_MIN_ITEMS, S._PLAN_MIN_MASKED,
                                S._COALESCE_MAX_CHAINS, S._BLOCKS_MARGIN)
            bc = B.band_tile_costs(b.bands, lo, nrows, 64, block_n, L, rules)
            segs = B.band_tile_segments(b.bands, lo, nrows)
            before = np.bincount(B._chains(b.bands, lo, nrows)[0], minlength=lo.size)
            general += int(bc.general.sum())
            for m in np.flatnonzero(~bc.general).tolist():
                fresh = S._Builder(b.acsr, 64, block_n)  # planned from scratch, no shortcut
                planned = fresh.tile(int(lo[m]), 1, int(nrows[m]))
                assert (bc.cost[m], bc.plan[m]) == planned[2:], (lo[m], nrows[m])
                assert segs[m] == [tuple(x) for x in planned[0]]
                merged += len(segs[m]) < before[m]
    assert merged > 20  # the merge is exercised
