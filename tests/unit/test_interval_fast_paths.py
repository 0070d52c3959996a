"""The interval algebra's fast paths against the dense mask, on random parameters and Lq != Lk:
an ACSR clipped to intervals (``a & b`` lists only the clipped cells; ``a | b`` only the cells
outside the other side's band), the complement, one merge for a tree of unions, and the O(n)
greedy grouping and mixed-radix sort that replaced binary searches and lexsort."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from splat import patterns as P
from splat.analysis import analyze, cells_of_acsr, complement, intersect_acsr, intervals_from_mask, union_of
from splat.analysis.greedy import greedy_groups
from splat.analysis.words import lex_order


@st.composite
def leaf(draw, Lq, Lk):
    """Any named family, strided and dilated ones and remainders included."""
    m = min(Lq, Lk)
    small = st.integers(1, max(1, m // 3 + 1))
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return P.window(draw(small), Lq, Lk)
    if kind == 1:
        return P.causal_window(draw(small), Lq, Lk)
    if kind == 2:
        return P.dilated(draw(small), draw(st.integers(1, 6)), Lq, Lk)
    if kind == 3:
        return P.strided(draw(small), draw(st.integers(1, 9)), Lq, Lk)
    if kind == 4:
        return P.blocked(draw(st.integers(1, m + 1)), Lq, Lk)
    if kind == 5:
        return P.global_tokens(draw(st.lists(st.integers(0, m - 1), min_size=1, max_size=5)), Lq, Lk)
    if kind == 6:
        return P.random_blocks(draw(st.integers(1, 8)), draw(st.integers(1, 3)), draw(st.integers(0, 99)), Lq, Lk)
    if kind == 7:
        B = draw(st.integers(1, 12))
        return P.fixed(B, draw(st.integers(1, B)), Lq, Lk)
    if kind == 8:
        return P.longformer(draw(small), draw(st.lists(st.integers(0, m - 1), min_size=1, max_size=2)), Lq, Lk)
    return P.from_mask(np.random.default_rng(draw(st.integers(0, 99))).random((Lq, Lk)) < 0.1)


@st.composite
def two(draw):
    Lq, Lk = draw(st.integers(1, 90)), draw(st.integers(1, 90))
    return draw(leaf(Lq, Lk)), draw(leaf(Lq, Lk))


def maximal(iv, m):
    assert np.array_equal(iv.to_mask(), m)
    same_row = iv.row[1:] == iv.row[:-1]
    assert (iv.start[1:][same_row] > iv.stop[:-1][same_row]).all()
    assert (iv.row[1:] >= iv.row[:-1]).all()


@settings(max_examples=150, deadline=None)
@given(two())
def test_acsr_clipped_to_intervals_is_the_intersection(ab):
    a, b = ab
    if not a.analytic:
        a, b = b, a
    if not a.analytic:
        return
    maximal(intersect_acsr(a.acsr(), b.intervals()), a.mask() & b.mask())


@settings(max_examples=150, deadline=None)
@given(two(), st.integers(0, 2))
def test_one_merge_for_unions_and_combinations(ab, depth):
    a, b = ab
    c = P.causal(a.Lq, a.Lk)
    p = {0: a | b, 1: (a | b) | c, 2: (a & b) | (c & a)}[depth]
    m = p.mask()
    maximal(p.intervals(), m)
    r = analyze(p)
    r.validate()
    assert np.array_equal(r.to_mask(), m)
    if a.analytic:
        maximal(union_of(a.Lq, a.Lk, [cells_of_acsr(a.acsr())]), a.mask())


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 60), st.integers(0, 2**31))
def test_greedy_groups_matches_the_sequential_greedy(n, seed):
    """The vectorised grouping against its definition, step by step."""
    rng = np.random.default_rng(seed)
    link = rng.random(n) < 0.8
    same = rng.random(n) < 0.7
    got = greedy_groups(link, same).tolist()
    lk = link.copy()
    lk[-1] = False
    sm = same & np.concatenate([[False], lk[:-1]]) & lk
    want, p = [], 0
    while p < n:
        want.append(p)
        alone = not lk[p] or (p + 3 < n and not sm[p + 1] and sm[p + 2])
        if alone:
            p += 1
            continue
        f = p + 1
        while sm[f]:
            f += 1
        p = f + 1
    assert got == want


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300), st.integers(1, 4), st.integers(0, 2**31))
def test_lex_order_is_lexsort(n, nkeys, seed):
    rng = np.random.default_rng(seed)
    keys = tuple(rng.integers(0, int(rng.integers(1, 50)), n) for _ in range(nkeys))
    assert np.array_equal(lex_order(keys), np.lexsort(keys))
    big = tuple(rng.integers(0, 1 << 40, n) for _ in range(3))  # past int64: lexsort itself
    assert np.array_equal(lex_order(big), np.lexsort(big))


def test_strided_and_window_lists_only_the_cells_near_the_window():
    """c05 of the corpus: strided & a causal window lists the window's cells, not the strided
    pattern's (1.15M cells at 16K)."""
    L = 2048
    s, w = P.strided(235, 114, L), P.causal_window(700, L)
    iv = (s & w).intervals()
    m = s.mask() & w.mask()
    assert np.array_equal(iv.to_mask(), m)
    assert np.array_equal(intervals_from_mask(m).start, iv.start)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.integers(1, 70), st.floats(0, 1), st.integers(0, 2**31))
def test_complement_is_the_other_cells(Lq, Lk, density, seed):
    rng = np.random.default_rng(seed)
    m = rng.random((Lq, Lk)) < density
    m[rng.random(Lq) < 0.3] = False  # empty rows become whole intervals
    maximal(complement(intervals_from_mask(m)), ~m)


@pytest.mark.parametrize("Lq, Lk", [(600, 600), (520, 700), (700, 430)])
def test_strided_side_of_a_union_lists_only_its_cells_outside_the_band(Lq, Lk):
    """c01 / c08 of the corpus: a dilated band mostly inside a causal window or the blocks."""
    d = P.dilated(30, 5, Lq, Lk)
    for band in (P.causal_window(100, Lq, Lk), P.blocked(97, Lq, Lk), P.window(3, Lq, Lk)):
        for p in (band | d, d | band, (band | d) & P.causal(Lq, Lk)):
            m = p.mask()
            maximal(p.intervals(), m)
            a = analyze(p)
            a.validate()
            assert np.array_equal(a.to_mask(), m)
