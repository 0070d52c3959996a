"""The tiler's speed-ups for fragmented layouts give what the plain computations give.

Each helper is compared with a direct computation from its definition on random inputs: the
remainder's coordinates (``_remainder_coordinates`` against ``BlockRemainder.coordinates``), the
union of two remainders (against the union of their dense masks), the windows' affine-run check
(against a per-window scan), builders that share another's index of the ACSR and affine plans
(against fresh builders), the memoised block counts (against ``block_plan`` from scratch), and
whole schedules of random masks with a remainder (exact coverage, and the same tables from the
tile pass as from ``build_schedule`` + ``plan_split``).
"""

from __future__ import annotations

import numpy as np
import pytest

from splat import patterns as P
from splat.analysis import analyze
from splat.analysis.acsr import BlockRemainder
from splat.tiling import schedule as S
from splat.tiling.block_plan import block_plan
from splat.tiling.split import _union_remainders, plan_split


def _remainder(rng, block: int, n: int, nrb: int, ncb: int, density: float) -> BlockRemainder:
    cells = rng.choice(nrb * ncb, size=n, replace=False)
    cells.sort()
    blocks = np.stack([cells // ncb, cells % ncb], axis=1)
    masks = rng.random((n, block, block)) < density
    masks[:, 0, 0] = True  # no empty block
    return BlockRemainder(block, blocks, masks)


def _dense(rem: BlockRemainder, shape) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    B = rem.block
    for (rb, cb), m in zip(rem.blocks.tolist(), rem.masks):
        out[rb * B:(rb + 1) * B, cb * B:(cb + 1) * B] |= m
    return out


@pytest.mark.parametrize("block", [3, 8, 16, 64])
def test_remainder_coordinates_are_the_remainders(block):
    rng = np.random.default_rng(block)
    for density in (0.01, 0.2, 0.9):
        rem = _remainder(rng, block, 37, 9, 11, density)
        rows, cols = S._remainder_coordinates(rem)
        want_rows, want_cols = rem.coordinates()
        assert np.array_equal(rows, want_rows) and np.array_equal(cols, want_cols)


def test_union_of_remainders_is_the_union_of_their_masks():
    rng = np.random.default_rng(1)
    for block in (4, 16):
        a = _remainder(rng, block, 30, 8, 8, 0.1)
        b = _remainder(rng, block, 25, 8, 8, 0.1)  # shares some blocks with a
        u = _union_remainders(a, b)
        shape = (8 * block, 8 * block)
        assert np.array_equal(_dense(u, shape), _dense(a, shape) | _dense(b, shape))
        keys = u.blocks[:, 0].astype(np.int64) * 8 + u.blocks[:, 1]
        assert (np.diff(keys) > 0).all()  # sorted and unique, as BlockRemainder wants
    assert _union_remainders(a, None) is a and _union_remainders(None, b) is b


def _affine_run(b: np.ndarray, col0: int):
    """The definition: non-empty rows contiguous, each one run, both ends affine in the row."""
    rows = [r for r in range(b.shape[0]) if b[r].any()]
    if not rows or rows[-1] - rows[0] + 1 != len(rows):
        return None
    first, cnt = [], []
    for r in rows:
        cols = np.flatnonzero(b[r])
        if cols[-1] - cols[0] + 1 != cols.size:
            return None
        first.append(int(cols[0]))
        cnt.append(int(cols.size))
    al = first[1] - first[0] if len(rows) > 1 else 0
    ga = cnt[1] - cnt[0] if len(rows) > 1 else 0
    for k in range(1, len(rows)):
        if first[k] - first[k - 1] != al or cnt[k] - cnt[k - 1] != ga:
            return None
    rl = rows[0]
    return (1, al, col0 + first[0] - al * rl, ga, cnt[0] - ga * rl, rl, rows[-1] + 1)


def _windows(rng, n: int, nrows: int, width: int) -> np.ndarray:
    """Random windows, half of them exact affine runs (with random holes in some)."""
    bits = rng.random((n, nrows, width)) < 0.05
    for k in range(0, n, 2):
        bits[k] = False
        rl = int(rng.integers(0, nrows))
        rh = int(rng.integers(rl + 1, nrows + 1))
        f0, al = int(rng.integers(0, width // 2)), int(rng.integers(-1, 2))
        c0, ga = int(rng.integers(1, width // 2)), int(rng.integers(-1, 2))
        for r in range(rl, rh):
            f, c = f0 + al * (r - rl), c0 + ga * (r - rl)
            if 0 <= f and c >= 1 and f + c <= width:
                bits[k, r, f:f + c] = True
        if k % 4 == 2 and bits[k].any():
            r, c = np.argwhere(bits[k])[int(rng.integers(0, bits[k].sum()))]
            bits[k, r, c] = False
    bits[:, 0, 0] |= ~bits.any(axis=(1, 2))  # no empty window
    return bits


@pytest.mark.parametrize("nrows", [1, 2, 7, 64])
def test_affine_runs_of_windows_follow_the_definition(nrows):
    rng = np.random.default_rng(nrows)
    bits = _windows(rng, 400, nrows, 32)
    col0 = rng.integers(0, 1000, bits.shape[0])
    got = S._affine_runs(bits, col0)
    want = [_affine_run(bits[k], int(col0[k])) for k in range(bits.shape[0])]
    assert got == want
    assert sum(w is not None for w in want) > 50  # both outcomes are exercised


def _fragmented(seed: int, L: int = 1024):
    rng = np.random.default_rng(seed)
    q, k = np.arange(L)[:, None], np.arange(L)[None]
    mask = rng.random((L, L)) < 0.01
    mask |= (np.abs(q - k) <= int(rng.integers(4, 40))) & ((q - k) % int(rng.integers(2, 5)) == 0)
    mask |= (k % 97 == 0) & (q >= k)
    return analyze(P.from_mask(mask))


@pytest.mark.parametrize("seed", [0, 1])
def test_builders_sharing_an_acsr_plan_as_fresh_ones(seed):
    acsr = _fragmented(seed)
    assert acsr.remainder is not None
    for block_n in (64, 32):
        b = S._Builder(acsr, 64, block_n, "auto")
        built = b.build()
        for plan in ("affine", "blocks"):
            shared = S._Builder(acsr, 64, block_n, plan, like=b)
            fresh = S._Builder(acsr, 64, block_n, plan)
            tiles = fresh.build()
            assert shared.build() == tiles
            for t in tiles + built:
                got, want = shared.tile(*t), fresh.tile(*t)
                assert got[2:] == want[2:], (plan, t)
                assert [tuple(m[:2]) for m in got[1]] == [tuple(m[:2]) for m in want[1]]


def test_memoised_block_counts_give_the_blocks_plan_from_scratch():
    acsr = _fragmented(2)
    b = S._Builder(acsr, 64, 64, "blocks")
    for t in b.build():
        segs, masks, _, plan = b.tile(*t)
        got = b.plan_tables(t, segs, masks, plan)
        want = block_plan(segs, masks, t[2], acsr.Lk, 64)
        assert [tuple(s) for s in got[0]] == [tuple(s) for s in want[0]]
        assert len(got[1]) == len(want[1])
        for (c, n, bits), (wc, wn, wbits) in zip(got[1], want[1]):
            assert (c, n) == (wc, wn) and np.array_equal(bits, wbits)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_fragmented_schedules_are_exact(seed):
    acsr = _fragmented(seed, L=768)
    mask = acsr.to_mask()
    for block_n in (64, 32):
        main, extra = plan_split(acsr, 64, block_n, order="heavy_first")
        covered, overlaps = main.validate().coverage()
        if extra is not None:
            more, extra_overlaps = extra.validate().coverage()
            assert not (covered & more).any() and extra_overlaps == 0
            covered |= more
        assert overlaps == 0 and np.array_equal(covered, mask)


def test_schedule_stats_count_what_the_tables_hold():
    """``TileSchedule.stats`` (vectorised) against a walk of the tables: key tiles by
    ``_seg_key_tiles`` segment by segment, nnz by the elements the schedule covers."""
    for seed in (6, 7):
        acsr = _fragmented(seed, L=640)
        for block_n in (64, 32):
            s = S.build_schedule(acsr, 64, block_n, plan="auto")
            walked = full = 0
            for row0, step, nrows, b, e in s.row_tiles.tolist():
                for seg in s.segments[b:e].tolist():
                    k, f = S._seg_key_tiles(seg, nrows, 64, block_n)
                    walked, full = walked + k, full + f
            st = s.stats()
            assert st["key_tiles"] == walked + s.n_mask_tiles
            assert st["masked_key_tiles"] == walked + s.n_mask_tiles - full
            assert st["nnz"] == int(s.coverage()[0].sum()) == acsr.nnz
