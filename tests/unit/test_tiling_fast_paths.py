"""The tiler's shortcuts give the schedules of the general path, table for table.

``splat.tiling.schedule.FAST_PATHS`` turns on tiles planned once per shape (column translates),
the cut DP's vectorised costs of band layouts (``splat.tiling.band_costs``), the forced
blocks plan priced from unmerged chains, and row steps whose pricing stops once they cannot
win (``_Builder._chunk_cost``).  They are speed only: with them off every tile is
planned from scratch, and the tables (and plans) must be the same, on the constructor layouts
they were made for (packed documents with random lengths, prefix-LM, chunked causal, unions
and intersections) and on the layouts they must leave alone (strided, dilated, cross windows,
remainders).
"""

from __future__ import annotations

import numpy as np
import pytest

from splat import patterns as P
from splat.analysis import analyze
from splat.tiling import band_costs, plan_split
from splat.tiling import schedule as S


def _lengths(rng, L, n):
    cuts = np.sort(rng.choice(np.arange(1, L), n - 1, replace=False))
    return np.diff(np.concatenate([[0], cuts, [L]])).tolist()


def _layouts(seed: int, L: int = 2048):
    rng = np.random.default_rng(seed)
    w = int(rng.integers(16, 256))
    return {
        "documents": P.documents(_lengths(rng, L, int(rng.integers(3, 40))), L),
        "causal_documents": P.documents(_lengths(rng, L, int(rng.integers(3, 40))), L,
                                        causal=True),
        "short_documents": P.documents(_lengths(rng, L, int(rng.integers(100, 300))), L),
        "prefix_lm": P.prefix_lm(int(rng.integers(1, L)), L),
        "chunked_causal": P.chunked_causal(int(rng.integers(8, 700)), L),
        "documents&causal_window": (P.documents(_lengths(rng, L, 6), L, causal=True)
                                    & P.causal_window(w, L)),
        "chunked_causal|causal_window": P.chunked_causal(int(rng.integers(64, 700)), L)
                                        | P.causal_window(w, L),
        "window|global_tokens": P.window(w, L)
                                | P.global_tokens(range(int(rng.integers(1, 40))), L),
        "window&blocked": P.window(w, L) & P.blocked(int(rng.integers(50, 600)), L),
        "dilated|dilated": P.dilated(int(rng.integers(4, 20)), 2, L)
                           | P.dilated(int(rng.integers(4, 12)), 3, L),
        "strided&causal_window": P.strided(w, int(rng.integers(16, 128)), L)
                                 & P.causal_window(4 * w, L),
        "cross_window": P.from_mask_fn(
            lambda q, k: np.abs(k - (q * (L // 2)) // L) <= 24, L, L // 2),
    }


def _same(a, b) -> bool:
    return a == b and np.array_equal(a.plans, b.plans)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_paths_give_the_general_schedules(seed, monkeypatch):
    for name, pattern in _layouts(seed).items():
        acsr = analyze(pattern)
        for block_n in (64, 32):
            for plan in S.PLANS:
                fast = S.build_schedule(acsr, 64, block_n, order="heavy_first", plan=plan)
                monkeypatch.setattr(S, "FAST_PATHS", False)
                slow = S.build_schedule(acsr, 64, block_n, order="heavy_first", plan=plan)
                monkeypatch.setattr(S, "FAST_PATHS", True)
                assert _same(fast, slow), (name, block_n, plan)


def test_fast_paths_give_the_general_split_schedules(monkeypatch):
    for name, pattern in _layouts(3).items():
        acsr = analyze(pattern)
        fast = plan_split(acsr, 64, 64)
        monkeypatch.setattr(S, "FAST_PATHS", False)
        slow = plan_split(acsr, 64, 64)
        monkeypatch.setattr(S, "FAST_PATHS", True)
        assert (fast[1] is None) == (slow[1] is None), name
        assert _same(fast[0], slow[0]), name
        if fast[1] is not None:
            assert _same(fast[1], slow[1]), name


def test_band_costs_price_the_tiles_as_the_builder_does():
    """Where band_costs prices a tile, the number is the builder's, to the bit."""
    rng = np.random.default_rng(7)
    L = 2048
    for pattern in (P.documents(_lengths(rng, L, 12), L, causal=True), P.prefix_lm(300, L),
                    P.window(40, L) & P.blocked(200, L)):
        b = S._Builder(analyze(pattern), 64, 64)
        assert b.bands is not None
        lo = rng.integers(0, L - 64, 400)
        nrows = rng.integers(1, 65, 400)
        rules = band_costs.PlanRules(True, S._PLAN_MIN_ITEMS, S._PLAN_MIN_MASKED, S._COALESCE_MAX_CHAINS,
                            S._BLOCKS_MARGIN)
        bc = band_costs.band_tile_costs(b.bands, lo, nrows, 64, 64, L, rules)
        assert not bc.general.all()
        segs = band_costs.band_tile_segments(b.bands, lo, nrows)
        for m in np.flatnonzero(~bc.general).tolist():
            planned = b.tile(int(lo[m]), 1, int(nrows[m]))
            assert (bc.cost[m], bc.plan[m]) == (planned[2], planned[3])
            assert segs[m] == list(planned[0]) and bc.affine[m] == b.affine_tile(
                int(lo[m]), 1, int(nrows[m]))[2]


def test_translated_tiles_share_one_plan():
    """A window's interior tiles are column translates: planned once per shape."""
    b = S._Builder(analyze(P.window(100, 4096)), 64, 64)
    for row0 in range(256, 3584, 64):
        b.affine_tile(row0, 1, 64)
    assert b.shape_hits >= 40 and len(b.shape_cache) <= 3
