"""Unions with global tokens (splat.analysis.cross): the global rows and columns plus the other
operands minus them, against the dense mask on random parameters and Lq != Lk."""

import numpy as np
import pytest
from hypothesis import event, given, settings, strategies as st

from splat import patterns as P
from splat.analysis import acsr_from_bands, analyze, cross_table, union_with_cross
from splat.analysis.acsr import ACSR


def check(a, m):
    a.validate()  # in bounds, pieces pairwise disjoint, remainder disjoint from them
    assert np.array_equal(a.to_mask(), m)
    assert a.nnz == int(m.sum())


@st.composite
def moving(draw, Lq, Lk):
    """A family whose cells move from row to row, or that has no bands."""
    m = min(Lq, Lk)
    small = st.integers(1, max(1, m // 3 + 1))
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return P.strided(draw(small), draw(st.integers(1, 12)), Lq, Lk)
    if kind == 1:
        return P.dilated(draw(small), draw(st.integers(1, 9)), Lq, Lk)
    if kind == 2:
        B = draw(st.integers(1, 12))
        return P.fixed(B, draw(st.integers(1, B)), Lq, Lk)
    if kind == 3:
        return P.random_blocks(draw(st.integers(1, 8)), draw(st.integers(1, 3)), draw(st.integers(0, 99)), Lq, Lk)
    if kind == 4:  # with an analysed mask (a remainder)
        noise = np.random.default_rng(draw(st.integers(0, 99))).random((Lq, Lk)) < 0.1
        return P.dilated(draw(small), draw(st.integers(2, 5)), Lq, Lk) | P.from_mask(noise)
    return P.strided(draw(small), draw(st.integers(2, 9)), Lq, Lk) | P.dilated(draw(small), 2, Lq, Lk)


@st.composite
def unions(draw):
    Lq, Lk = draw(st.integers(1, 120)), draw(st.integers(1, 120))
    idx = st.lists(st.integers(0, max(Lq, Lk) - 1), min_size=1, max_size=12)
    a = draw(moving(Lq, Lk))
    g = P.global_tokens(draw(idx), Lq, Lk)
    shape = draw(st.integers(0, 3))
    if shape == 0:
        return a | g
    if shape == 1:
        return g | a
    if shape == 2:
        return (a | g) | P.global_tokens(draw(idx), Lq, Lk)
    return g | (P.window(draw(st.integers(1, 5)), Lq, Lk) | a)


@settings(max_examples=250, deadline=None)
@given(unions())
def test_unions_with_global_tokens_are_exact(p):
    event("cross" if p.cross_parts() is not None else "other paths")  # small strided rows may be none
    check(analyze(p), p.mask())


@settings(max_examples=100, deadline=None)
@given(unions(), st.sampled_from([4, 8, 64]), st.integers(0, 40))
def test_block_and_min_piece_nnz(p, block, min_nnz):
    a = analyze(p, block=block, min_piece_nnz=min_nnz)
    check(a, p.mask())
    t = a.table
    T = t[:, 8]
    assert (t[:, 6] * T * (T - 1) // 2 + t[:, 7] * T >= min_nnz).all()
    assert a.remainder is None or a.remainder.block == block


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 90), st.integers(1, 90), st.data())
def test_cross_of_separate_rows_and_columns(Lq, Lk, data):
    """Rows and columns need not be the same tokens; holes anywhere in the columns."""
    rows = np.unique(data.draw(st.lists(st.integers(0, Lq - 1), max_size=6))).astype(np.int64)
    cols = np.unique(data.draw(st.lists(st.integers(0, Lk - 1), max_size=6))).astype(np.int64)
    a = P.strided(data.draw(st.integers(1, 20)), data.draw(st.integers(2, 11)), Lq, Lk).acsr()
    m = a.to_mask()
    m[rows] = True
    m[:, cols] = True
    check(union_with_cross(a, rows, cols, min_piece_nnz=0), m)
    c = np.zeros((Lq, Lk), dtype=bool)
    c[rows] = True
    c[:, cols] = True
    check(ACSR._from_table(Lq, Lk, cross_table(Lq, Lk, rows, cols)), c)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 90), st.integers(1, 90), st.integers(0, 99), st.data())
def test_remainder_minus_cross(Lq, Lk, seed, data):
    """An analysed mask with a remainder: its cells in the cross leave the remainder."""
    m = np.random.default_rng(seed).random((Lq, Lk)) < 0.2
    a = analyze(m, block=data.draw(st.sampled_from([4, 16, 64])))
    rows = np.unique(data.draw(st.lists(st.integers(0, Lq - 1), max_size=5))).astype(np.int64)
    cols = np.unique(data.draw(st.lists(st.integers(0, Lk - 1), max_size=5))).astype(np.int64)
    m[rows] = True
    m[:, cols] = True
    check(union_with_cross(a, rows, cols), m)


def test_interval_families_keep_the_band_algebra():
    """window / causal / blocked | global tokens: combined on row ranges as before."""
    L = 700
    g = P.global_tokens([3, 50, 51, 400, 699], L)
    for other in (P.window(40, L), P.causal_window(90, L), P.blocked(128, L) | P.window(9, L)):
        p = other | g
        assert p.cross_parts() is None
        assert analyze(p) == acsr_from_bands(p.bands())


def _counts(a):
    return len(a.pieces), 0 if a.remainder is None else a.remainder.n


def test_strided_blocks_stay_whole():
    """c09's shape at 4K: strided blocks of s rows keep row step 1 and leave holes in the global
    columns; far fewer pieces and remainder blocks than the analysis of the mask finds."""
    L, rng = 4096, np.random.default_rng(1)
    p = P.strided(212, 148, L) | P.global_tokens(np.sort(rng.choice(L, 32, replace=False)), L)
    a = analyze(p)
    m = p.mask()
    check(a, m)
    assert set(a.table[:, 2].tolist()) == {1}
    pieces, blocks = _counts(a)
    old_pieces, old_blocks = _counts(analyze(m))
    assert pieces * 3 < old_pieces * 2 and blocks * 5 < old_blocks, (pieces, blocks, old_pieces, old_blocks)


@pytest.mark.parametrize("Lq,Lk", [(3000, 3000), (2500, 3100), (3100, 2600)])
def test_dilated_band_splits_by_residue(Lq, Lk):
    """A dilated band holds a global column on 2w of its rows: split by residue class of the row
    (row step s), it is cut once per column instead."""
    rng = np.random.default_rng(2)
    g = np.sort(rng.choice(min(Lq, Lk), 16, replace=False))
    p = P.dilated(40, 5, Lq, Lk) | P.global_tokens(g, Lq, Lk)
    a = analyze(p)
    check(a, p.mask())
    assert 5 in set(a.table[:, 2].tolist())
    pieces, blocks = _counts(a)
    assert pieces < 700 and blocks < 40, (pieces, blocks)
