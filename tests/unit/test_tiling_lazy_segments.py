"""Band tiles' segments built late, only for the schedule kept, give the tables the eager path
gave.

build_schedule no longer builds the affine segments of every tile a band layout's cut DP keeps
(``_Builder._plan_band_tiles``): those tiles wait in ``_Builder.pending`` until the schedule kept
needs them (``_Builder.resolve``; ``affine_tile`` / ``tile`` build one on demand), so the
segments of the "auto" builder's tiles are not built when the forced-affine pass wins, nor
those of the affine pass when it loses.  They are taken from the chains ``band_tile_costs``
merged when it priced the tiles (``band_segments_at``) instead of merging the tiles' chains
again (``band_tile_segments``).  Checked here: ``band_segments_at`` against
``band_tile_segments`` (one and several pricing chunks), the late segments against the eager
ones, and the schedule tables against those of builders that build every tile's segments on
the spot, on the --tables layouts (smaller), random documents and corpus-like band layouts, at
block_m 64 and 128 and block_n 64 and 32.
"""

from __future__ import annotations

import numpy as np
import pytest

from splat import patterns as P
from splat.analysis import analyze
from splat.tiling import band_costs as B
from splat.tiling import schedule as S

from test_tiling_tables_path import _band_layouts, _lengths


def _rules(auto=True):
    return S.PlanRules(auto, S._PLAN_MIN_ITEMS, S._PLAN_MIN_MASKED, S._COALESCE_MAX_CHAINS,
                       S._BLOCKS_MARGIN)


@pytest.mark.parametrize("cells", [None, 2000])
@pytest.mark.parametrize("block_n", [64, 32])
def test_segments_at_are_the_tiles_segments(monkeypatch, cells, block_n):
    """From the chains band_tile_costs merged (in one pricing chunk or several) as from
    band_tile_segments, for any subset of the priced tiles in any order."""
    if cells is not None:
        monkeypatch.setattr(B, "_CELLS_PER_CHUNK", cells)
    rng = np.random.default_rng(3)
    L, checked = 4096, 0
    for seed in range(3):
        for pattern in _band_layouts(seed, L=L):
            b = S._Builder(analyze(pattern), 64, block_n)
            if b.bands is None:
                continue
            nrows = rng.integers(1, 129, 1500)
            lo = rng.integers(0, L - nrows + 1)
            for auto in (True, False):
                bc = B.band_tile_costs(b.bands, lo, nrows, 64, block_n, L, _rules(auto))
                priced = np.flatnonzero(~bc.general)
                at = rng.permutation(priced)[: max(1, priced.size // 2)]
                want = B.band_tile_segments(b.bands, lo[at], nrows[at])
                assert B.band_segments_at(bc, at) == want
                checked += at.size
    assert checked > 10000


def _eager(monkeypatch):
    """Builders that build each band tile's segments when the DP keeps it (one tile at a time,
    band_tile_segments), as before the late path."""
    plan = S._Builder._plan_band_tiles

    def eager(self, tiles, bc, at):
        plan(self, tiles, bc, at)
        for key in list(self.pending):
            lo = np.array([key[0]], dtype=np.int64)
            nrows = np.array([key[2]], dtype=np.int64)
            self.affine_cache[key] = (B.band_tile_segments(self.bands, lo, nrows)[0], [],
                                      self.pending.pop(key)[0])
        for key, hit in list(self.cache.items()):
            if hit[0] is None:
                self.cache[key] = (self.affine_cache[key][0],) + hit[1:]

    monkeypatch.setattr(S._Builder, "_plan_band_tiles", eager)


def _layouts(seed, L):
    rng = np.random.default_rng(1000 + seed)
    w = int(rng.integers(64, 600))
    return _band_layouts(seed, L) + [
        P.documents(_lengths(rng, L, int(rng.integers(2, 40))), L, causal=bool(seed % 2)),
        P.window(w, L) & P.blocked(int(rng.integers(100, 1500)), L),
        P.documents(_lengths(rng, L, int(rng.integers(3, 12))), L, causal=True)
        & P.causal_window(int(rng.integers(32, 1024)), L),
    ]


def _tables(s):
    return [np.asarray(x).tobytes() for x in (s.row_tiles, s.segments, s.mask_ptr,
                                              s.mask_tiles, s.mask_bits, s.plans)]


@pytest.mark.parametrize("seed", range(4))
def test_late_segments_give_the_eager_tables(monkeypatch, seed):
    L = 4096 if seed % 2 else 8192
    acsrs = [analyze(p) for p in _layouts(seed, L)]
    shapes = [(64, 64), (64, 32), (128, 64), (128, 32)]
    late = [[_tables(S.build_schedule(a, bm, bn, order=o)) for a in acsrs for bm, bn in shapes]
            for o in ("rows", "heavy_first")]
    with monkeypatch.context() as m:
        _eager(m)
        eager = [[_tables(S.build_schedule(a, bm, bn, order=o)) for a in acsrs
                  for bm, bn in shapes] for o in ("rows", "heavy_first")]
    assert late == eager


def test_the_losing_pass_builds_no_segments():
    """window & blocked: the forced-affine pass wins (the blocks plans' masks would switch the
    launch to the masked kernel), and the "auto" builder's own tiles are never built."""
    L = 16384
    acsr = analyze(P.window(384, L) & P.blocked(1000, L))
    auto = S._Builder(acsr, 64, 64, "auto")
    built = [(t, auto.planned(t)) for t in auto.build()]
    assert any(res[0] is None for _, res in built)
    aff = S._Builder(acsr, 64, 64, "affine", like=auto)
    kept = aff.resolve([(t, aff.planned(t)) for t in aff.build()])
    assert all(res[0] is not None for _, res in kept)
    only_auto = {t for t, _ in built} - {t for t, _ in kept}
    assert only_auto and all(t in auto.pending for t in only_auto)
    for t, res in kept:  # the late segments are the builder's
        fresh = S._Builder(acsr, 64, 64, "affine")
        assert list(res[0]) == [tuple(x) for x in fresh.affine_tile(*t)[0]]
        break


@pytest.mark.parametrize("block_n", [64, 32])
def test_pieces_by_range_are_the_pieces_compared(block_n):
    """Where the pieces' first and last rows are both sorted, a tile's pieces are found as a
    range of piece indices (searchsorted): the same (tile, piece) pairs, in the same order, as
    comparing every tile with every piece, and so the same costs and segments."""
    rng = np.random.default_rng(11)
    L, ranged = 4096, 0
    for seed in range(3):
        for pattern in _layouts(seed, L):
            b = S._Builder(analyze(pattern), 64, block_n)
            if b.bands is None:
                continue
            pcs = b.bands
            nrows = rng.integers(1, 129, 2000)
            lo = rng.integers(0, L - nrows + 1)
            if not pcs.ranges:
                continue
            ranged += 1
            got = (B._chains(pcs, lo, nrows),
                   B.band_tile_costs(pcs, lo, nrows, 64, block_n, L, _rules()),
                   B.band_tile_segments(pcs, lo, nrows))
            pcs.ranges = False
            want = (B._chains(pcs, lo, nrows),
                    B.band_tile_costs(pcs, lo, nrows, 64, block_n, L, _rules()),
                    B.band_tile_segments(pcs, lo, nrows))
            for x, y in zip(got[0], want[0]):
                np.testing.assert_array_equal(x, y)
            for f in ("general", "cost", "plan", "affine", "masks"):
                np.testing.assert_array_equal(getattr(got[1], f), getattr(want[1], f))
            assert got[2] == want[2]
    assert ranged > 10
