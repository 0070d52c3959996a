"""The backward pass over ACSR schedules (`splat.tiling.backward`, issue 14), on the CPU: the
column layout is the exact transpose, the dense fp64 gradient formula agrees with finite
differences, and the tile-by-tile float32 model (dQ over the row schedule, dK/dV over the column
schedule) matches it on every test family, irregular masks with a block remainder, Lq != Lk,
empty rows and columns, GQA, and two tile shapes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splat import analyze
from splat import patterns as P
from splat import testing as T
from splat.tiling.backward import (column_schedule, reference_backward, run_backward,
                                   transpose_layout)
from splat.tiling.executor import reference_attention, run_schedule
from splat.tiling.schedule import build_schedule

L = 384


def _irregular(Lq, Lk, density, seed, empty_rows=(), empty_cols=()):
    rng = np.random.default_rng(seed)
    mask = rng.random((Lq, Lk)) < density
    mask[list(empty_rows)] = False
    mask[:, list(empty_cols)] = False
    return mask


MASKS = {f.name: (lambda f=f: T.mask_numpy(f, L)) for f in T.TEST_FAMILIES}
MASKS["irregular_lq_gt_lk"] = lambda: _irregular(300, 170, 0.08, 1, empty_rows=(5, 77, 299))
MASKS["irregular_lq_lt_lk"] = lambda: _irregular(130, 410, 0.05, 2, empty_cols=range(200, 260))
MASKS["window_union_lq_ne_lk"] = lambda: (np.abs(np.arange(200)[:, None] * 3 // 2
                                                 - np.arange(310)[None, :]) < 20) | (
    np.arange(310)[None, :] % 37 == 0)


@pytest.mark.parametrize("name", sorted(MASKS))
def test_transpose_layout_is_exact(name):
    mask = MASKS[name]()
    t = transpose_layout(analyze(mask))
    assert (t.Lq, t.Lk) == (mask.shape[1], mask.shape[0])
    assert np.array_equal(t.to_mask(), mask.T)


def _inputs(B, H, Hkv, Lq, Lk, D, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((B, H, Lq, D)), rng.standard_normal((B, Hkv, Lk, D)),
            rng.standard_normal((B, Hkv, Lk, D)), rng.standard_normal((B, H, Lq, D)))


def test_reference_gradient_matches_finite_differences():
    """The formula dS = P (dO Vᵀ - rowsum(dO O)) etc. against central differences of
    sum(O * dO), with an empty row and GQA (2 query heads per kv head)."""
    mask = _irregular(9, 11, 0.4, 3, empty_rows=(4,))
    q, k, v, do = _inputs(1, 2, 1, 9, 11, 8, 4)
    grads = reference_backward(q, k, v, do, mask, 0.3)

    def loss(q_, k_, v_):
        return float((reference_attention(q_, k_, v_, mask, 0.3)[0] * do).sum())

    rng = np.random.default_rng(5)
    eps = 1e-6
    for which, (x, g) in enumerate(zip((q, k, v), grads)):
        for _ in range(6):
            idx = tuple(int(rng.integers(n)) for n in x.shape)
            args = [q, k, v]
            plus, minus = x.copy(), x.copy()
            plus[idx] += eps
            minus[idx] -= eps
            args[which] = plus
            up = loss(*args)
            args[which] = minus
            numeric = (up - loss(*args)) / (2 * eps)
            assert abs(numeric - g[idx]) <= 1e-6 * max(1.0, abs(numeric)), (which, idx)
    assert not grads[0][:, :, 4].any()  # the empty row gets no gradient


@pytest.mark.parametrize("tiles", [(64, 64), (128, 32)], ids=["m64n64", "m128n32"])
@pytest.mark.parametrize("name", sorted(MASKS))
def test_tiled_backward_matches_dense_fp64(name, tiles):
    mask = MASKS[name]()
    Lq, Lk = mask.shape
    acsr = analyze(mask)
    bm, bn = tiles
    rows = build_schedule(acsr, bm, bn)
    cols = column_schedule(acsr, bm, bn)
    H, Hkv = (4, 2) if tiles == (64, 64) else (2, 2)
    q, k, v, do = _inputs(1, H, Hkv, Lq, Lk, 32, hash(name) % 1000)
    o, lse = run_schedule(rows, q, k, v, 0.2)
    got = run_backward(rows, cols, q, k, v, o, lse, do, 0.2)
    want = reference_backward(q, k, v, do, mask, 0.2)
    for g, w, what in zip(got, want, ("dq", "dk", "dv")):
        assert g.dtype == np.float32 and g.shape == w.shape, what
        err = np.linalg.norm(g - w) / max(np.linalg.norm(w), 1e-30)
        assert err <= 2e-5, f"{what}: relative error {err:.2e}"


def test_schedules_must_fit_the_inputs():
    mask = _irregular(40, 50, 0.2, 6)
    acsr = analyze(mask)
    rows, cols = build_schedule(acsr, 64, 64), column_schedule(acsr, 64, 64)
    q, k, v, do = _inputs(1, 1, 1, 40, 50, 16, 7)
    o, lse = run_schedule(rows, q, k, v)
    with pytest.raises(ValueError, match="transpose"):
        run_backward(rows, rows, q, k, v, o, lse, do)
    with pytest.raises(ValueError, match="lse must be"):
        run_backward(rows, cols, q, k, v, o, lse[..., :-1], do)


@st.composite
def compositions(draw):
    """Unions and intersections of random families at random Lq != Lk (masks nobody named)."""
    Lq, Lk = draw(st.integers(1, 150)), draw(st.integers(1, 150))
    small = st.integers(1, 12)
    leaves = [
        lambda: P.window(draw(small), Lq, Lk),
        lambda: P.causal(Lq, Lk),
        lambda: P.dilated(draw(small), draw(st.integers(1, 5)), Lq, Lk),
        lambda: P.strided(draw(small), draw(st.integers(1, 9)), Lq, Lk),
        lambda: P.blocked(draw(st.integers(1, 20)), Lq, Lk),
        lambda: P.global_tokens(draw(st.lists(st.integers(0, min(Lq, Lk) - 1), min_size=1,
                                              max_size=3)), Lq, Lk),
        lambda: P.random_blocks(draw(st.integers(1, 8)), draw(st.integers(1, 2)),
                                draw(st.integers(0, 99)), Lq, Lk),
    ]
    pick = lambda: leaves[draw(st.integers(0, len(leaves) - 1))]()  # noqa: E731
    p = pick()
    for _ in range(draw(st.integers(0, 2))):
        p = p | pick() if draw(st.booleans()) else p & pick()
    return p.mask()


@settings(max_examples=40, deadline=None)
@given(compositions(), st.sampled_from([(64, 64), (64, 32), (128, 64)]),
       st.sampled_from([(2, 2), (4, 1)]), st.integers(0, 2**16))
def test_tiled_backward_on_random_compositions(mask, tiles, heads, seed):
    acsr = analyze(mask)
    assert np.array_equal(transpose_layout(acsr).to_mask(), mask.T)
    rows, cols = build_schedule(acsr, *tiles), column_schedule(acsr, *tiles)
    q, k, v, do = _inputs(1, *heads, *mask.shape, 16, seed)
    o, lse = run_schedule(rows, q, k, v, 0.3)
    got = run_backward(rows, cols, q, k, v, o, lse, do, 0.3)
    # float32 against fp64; gradients that cancel to ~0 (one key a row: dS = 0) are held to
    # the inputs' unit scale
    for g, w in zip(got, reference_backward(q, k, v, do, mask, 0.3)):
        assert np.linalg.norm(g - w) <= 2e-5 * max(np.linalg.norm(w), 1.0)


@pytest.mark.parametrize("fam, L, block_n, splits", [
    (T.F("strided", local=128, stride=128), 3001, 32, (True, True)),
    (T.F("strided_gaps", local=64, stride=64), 3001, 64, (True, False)),
])
def test_split_schedules_add_up_to_the_gradients(fam, L, block_n, splits):
    """Layouts that want two row groupings split both the row schedule and the transposed
    layout's (the kernels' accumulating launches run the splits): the tiles of each pair cover
    every non-zero once between them, so main + split equals the dense gradients."""
    from splat.tiling.backward import column_schedules
    from splat.tiling.variants import tile_layout

    mask = T.mask_numpy(fam, L)
    acsr = analyze(mask)
    rows = tile_layout(acsr, 64, block_n, order="heavy_first")
    cols = column_schedules(acsr, 64, block_n)
    assert (rows[1] is not None, cols[1] is not None) == splits  # as packed for the GPU tests
    q, k, v, do = _inputs(1, 2, 1, L, L, 16, L)
    o, lse = run_schedule(build_schedule(acsr, 64, block_n), q, k, v, 0.3)
    got = run_backward(rows, cols, q, k, v, o, lse, do, 0.3)
    for g, w, what in zip(got, reference_backward(q, k, v, do, mask, 0.3), ("dq", "dk", "dv")):
        err = np.linalg.norm(g - w) / max(np.linalg.norm(w), 1e-30)
        assert err <= 2e-5, f"{what}: relative error {err:.2e}"
    # either schedule alone misses part of the gradients
    alone = run_backward(rows[0], cols[0], q, k, v, o, lse, do, 0.3)
    assert np.linalg.norm(alone[0] - got[0]) > 1e-3 * np.linalg.norm(got[0])
