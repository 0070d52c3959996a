"""Affine interval bands (splat.analysis.bands): unions and intersections of interval patterns
worked out on row ranges, and their analysis from a few rows.  The fast path is checked against
the dense mask and against the analysis of the intervals of every row (identical ACSRs)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from splat import patterns as P
from splat.analysis import acsr_from_intervals, analyze
from splat.analysis.bands import Bands, acsr_from_bands, bands_from_acsr, combine, intervals_from_bands, kept_rows


def _lengths(draw, total):
    cuts = draw(st.lists(st.integers(1, max(1, total - 1)), max_size=5, unique=True)) if total > 1 else []
    bounds = [0] + sorted(c for c in cuts if c < total) + [total]
    return [b - a for a, b in zip(bounds, bounds[1:])]


@st.composite
def interval_leaf(draw, Lq, Lk):
    """A named family whose analytic ACSR is interval pieces (so it has bands)."""
    m = min(Lq, Lk)
    w = st.integers(1, max(1, m // 2 + 2))
    kind = draw(st.integers(0, 8))
    if kind == 0:
        return P.window(draw(w), Lq, Lk)
    if kind == 1:
        return P.causal(Lq, Lk)
    if kind == 2:
        return P.causal_window(draw(w), Lq, Lk)
    if kind == 3:
        return P.blocked(draw(st.integers(1, m + 2)), Lq, Lk)
    if kind == 4:
        total = draw(st.integers(1, m))
        return P.documents(_lengths(draw, total), Lq, Lk, causal=draw(st.booleans()))
    if kind == 5:
        return P.prefix_lm(draw(st.integers(0, m)), Lq, Lk)
    if kind == 6:
        return P.chunked_causal(draw(st.integers(1, m + 2)), Lq, Lk)
    if kind == 7:
        return P.global_tokens(draw(st.lists(st.integers(0, m - 1), min_size=1, max_size=4)), Lq, Lk)
    return P.longformer(draw(w), draw(st.lists(st.integers(0, m - 1), min_size=1, max_size=3)), Lq, Lk)


@st.composite
def combination(draw, Lq, Lk, depth=3):
    p = draw(interval_leaf(Lq, Lk))
    for _ in range(draw(st.integers(1, depth))):
        q = draw(interval_leaf(Lq, Lk))
        p = p | q if draw(st.booleans()) else p & q
    return p


@st.composite
def combos(draw, most=160):
    Lq, Lk = draw(st.integers(1, most)), draw(st.integers(1, most))
    return draw(combination(Lq, Lk))


def check_exact(a, m):
    a.validate()
    assert np.array_equal(a.to_mask(), m)
    assert a.nnz == int(m.sum())


@settings(max_examples=150, deadline=None)
@given(combos())
def test_combinations_of_interval_patterns_have_exact_bands(p):
    m = p.mask()
    bd = p.bands()
    assert bd is not None
    assert np.array_equal(bd.to_mask(), m)
    iv = intervals_from_bands(bd)  # maximal: the intervals of one row never touch
    same_row = iv.row[1:] == iv.row[:-1]
    assert (iv.start[1:][same_row] > iv.stop[:-1][same_row]).all()


@settings(max_examples=150, deadline=None)
@given(combos())
def test_band_analysis_is_the_analysis_of_every_row(p):
    """The runs of the kept rows give the same pieces as the runs of all rows (the contract of
    vertical compression), and the mask is exact."""
    a = analyze(p)
    check_exact(a, p.mask())
    assert a == acsr_from_intervals(intervals_from_bands(p.bands()))


@settings(max_examples=25, deadline=None)
@given(combos(most=1200))
def test_band_analysis_at_larger_sizes_lists_few_rows(p):
    a = analyze(p)
    check_exact(a, p.mask())
    assert a == acsr_from_intervals(intervals_from_bands(p.bands()))


@pytest.mark.parametrize("L", [4096, 16384])
def test_table_layouts_list_o_pieces_rows(L):
    """The issue-10 layouts: a few rows per band range, not O(L) (and identical pieces)."""
    rng = np.random.default_rng(1)
    lengths = np.diff(np.concatenate([[0], np.sort(rng.choice(np.arange(1, L), 11, replace=False)), [L]]))
    for p in (P.documents(lengths.tolist(), L, causal=True) & P.causal_window(512, L),
              P.chunked_causal(2048, L) | P.causal_window(256, L),
              P.window(256, L) | P.global_tokens(range(64), L),
              P.window(384, L) & P.blocked(1000, L)):
        bd = p.bands()
        rows = kept_rows(bd)
        assert rows.size <= 6 * (bd.n + 2) * 2
        assert analyze(p) == acsr_from_intervals(intervals_from_bands(bd))


def test_patterns_without_bands_fall_back():
    L = 64
    assert P.dilated(3, 2, L).bands() is None  # strided rows
    assert P.strided(4, 3, L).bands() is None
    assert P.from_mask(P.window(2, L).mask()).bands() is None
    assert (P.window(2, L) | P.dilated(3, 2, L)).bands() is None
    p = P.window(2, L) & P.dilated(3, 2, L)
    check_exact(analyze(p), p.mask())


def test_steep_and_crossing_bands():
    """Bands moving several columns a row, crossing each other (the runs swap ranks between two
    rows without meeting), a one-cell column and a ramp one cell wide on one row: analysed from
    every row where needed."""
    Lq, Lk = 38, 200
    r0, r1 = np.array([0, 0, 0, 0]), np.array([Lq, Lq, 10, 10])
    la, lb = np.array([5, -5, 0, 1]), np.array([0, 193, 100, 120])
    ha, hb = np.array([5, -5, 0, 2]), np.array([2, 195, 101, 120])
    everything = Bands(Lq, Lk, *(np.array([v]) for v in (0, Lq, 0, 0, 0, Lk)))
    bd = combine(Bands(Lq, Lk, r0, r1, la, lb, ha, hb), everything, "&")
    m = np.zeros((Lq, Lk), bool)
    for j in range(4):
        for r in range(r0[j], r1[j]):
            m[r, la[j] * r + lb[j]:ha[j] * r + hb[j]] = True
    assert np.array_equal(bd.to_mask(), m)
    a = acsr_from_bands(bd)
    check_exact(a, m)
    assert a == acsr_from_intervals(intervals_from_bands(bd))


def test_bands_of_an_acsr_round_trip():
    for p in (P.window(5, 50, 70), P.fixed(8, 1, 40), P.documents([3, 9, 20], 40, 33, causal=True)):
        bd = bands_from_acsr(p.acsr())
        assert bd is not None and np.array_equal(bd.to_mask(), p.mask())


@pytest.mark.parametrize("Lq, Lk", [(300, 300), (257, 410), (410, 190)])
def test_one_cell_bands_chain_like_the_rows(Lq, Lk):
    """Isolated cells chain into strided runs by their gaps: global columns (one-cell bands that
    stay put) chain the same way on every row of a range and need no listing; a diagonal among
    them (blocked(1): a one-cell band moving one column a row) changes the gaps every row."""
    g = P.global_tokens([5, 9, 13, 17, 60, 61, 90, 120, 150, 180], Lq, Lk)
    for p in (P.window(3, Lq, Lk) | g, P.causal(Lq, Lk) & (P.blocked(50, Lq, Lk) | g),
              P.blocked(1, Lq, Lk) | g, (P.blocked(1, Lq, Lk) | g) & P.causal_window(40, Lq, Lk),
              P.documents([40, 70, 60], Lq, Lk) | g):
        bd = p.bands()
        assert bd is not None
        a = acsr_from_bands(bd)
        check_exact(a, p.mask())
        assert a == acsr_from_intervals(intervals_from_bands(bd))
