"""Quasi-affine masks: offsets and counts ``floor((a*i + b) / c)`` (cross attention with
Lq != Lk, pooled memories, block edges touched by a dilated band) are split into residue classes
of the row (``row_step`` = the period), each affine: O(c) pieces, exact (docs/acsr.md,
"Quasi-affine offsets and unions")."""

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from splat import patterns as P
from splat.analysis import acsr_from_mask, analyze


def check(a, m):
    a.validate()
    assert np.array_equal(a.to_mask(), m)
    assert a.nnz == int(m.sum())


def n_rem(a) -> int:
    return 0 if a.remainder is None else a.remainder.n


@st.composite
def rates(draw, max_c=16):
    """A rate a/c in lowest terms (c >= 2), an offset b, and sizes with Lq != Lk that keep the
    centre floor((a*q + b)/c) near the key range."""
    c = draw(st.integers(2, max_c))
    a = draw(st.integers(1, 3 * c).filter(lambda a: np.gcd(a, c) == 1))
    b = draw(st.integers(0, c - 1))
    Lq = draw(st.integers(16 * c, 640))
    Lk = max(16, (a * Lq) // c + draw(st.integers(-24, 24)))
    return a, b, c, Lq, Lk


def grid(Lq, Lk):
    return np.arange(Lq, dtype=np.int64)[:, None], np.arange(Lk, dtype=np.int64)[None, :]


def analysed_three_ways(m):
    """analyze(mask) (vertical compression on), the uncompressed scan, and the predicate path
    (row chunks, no compression): all exact, and the first two give the same pieces."""
    a = analyze(m)
    check(a, m)
    b = acsr_from_mask(m, compress=False)
    assert a == b
    f = analyze(P.from_mask(m))
    check(f, m)
    return a


@settings(max_examples=40, deadline=None)
@given(rates(), st.integers(1, 60))
def test_cross_window_gets_three_pieces_per_residue_class(r, w):
    a_, b, c, Lq, Lk = r
    q, k = grid(Lq, Lk)
    m = np.ascontiguousarray(np.abs(k - (a_ * q + b) // c) <= w)
    a = analysed_three_ways(m)
    # top ramp, band and bottom ramp, each one piece per residue class
    assert len(a.pieces) <= 3 * c + 2, (len(a.pieces), c)
    assert n_rem(a) <= 8  # corner rows of small windows (under min_piece_nnz cells)


@settings(max_examples=30, deadline=None)
@given(rates())
def test_pooled_causal_count_is_two_pieces_per_class(r):
    a_, b, c, Lq, Lk = r
    q, k = grid(Lq, Lk)
    m = np.ascontiguousarray(np.broadcast_to(k * c <= a_ * q + b, (Lq, Lk)))
    a = analysed_three_ways(m)
    assert len(a.pieces) <= 2 * c + 1


@settings(max_examples=30, deadline=None)
@given(rates(max_c=12), st.integers(2, 40), st.integers(1, 30),
       st.sampled_from(["key_globals", "two_windows", "dilated", "documents"]), st.integers(0, 2**31))
@example(r=(5, 0, 2, 228, 571), w=14, n=1, kind="documents", seed=431)  # 33 pieces, 5 documents
def test_unions_and_intersections_stay_O_c(r, w, n, kind, seed):
    """Families at one rational rate combined: the count stays O(c x families)."""
    a_, b, c, Lq, Lk = r
    q, k = grid(Lq, Lk)
    centre = (a_ * q + b) // c
    window = np.abs(k - centre) <= w
    if kind == "key_globals":  # cross window | the first n keys
        m, bound = window | (k < n), 5 * c + 2
    elif kind == "two_windows":  # two windows at the same rate
        m, bound = window | (np.abs(k - centre - 3 * w) <= w // 2), 5 * c + 2
    elif kind == "dilated":  # a dilated cross window: stride s runs, offsets at the rate a/c
        s = 2 + n % 3
        m, bound = (np.abs(k - centre) <= w * s) & ((k - centre) % s == 0), 12 * c + 2
    else:  # window & documents (key documents; a query's document is that of its centre)
        cuts = np.sort(np.random.default_rng(seed).integers(0, Lk, 4))
        m = window & (np.searchsorted(cuts, k, "right") == np.searchsorted(cuts, centre, "right"))
        # a document a few periods long may come out as short row-step-1 pieces (the greedy
        # pass's choice when residue classes are no shorter): 4c, not 3c, per document
        bound = 4 * c * (cuts.size + 1) + 2
    m = np.ascontiguousarray(np.broadcast_to(m, (Lq, Lk)))
    a = analysed_three_ways(m)
    assert len(a.pieces) <= bound, (kind, len(a.pieces), c)


@pytest.mark.parametrize("Lq, Lk, w, most", [(16384, 4096, 33, 12), (8192, 3072, 253, 24), (3072, 8192, 40, 9)])
def test_corpus_sized_cross_windows(Lq, Lk, w, most):
    """The corpus' cross windows (benchmarks/bench_corpus.py, centre floor(q*Lk/Lq)) through the
    predicate path: 4096 and 3073 pieces before residue classes, 12 and 24 now."""
    p = P.from_mask_fn(lambda q, k: np.abs(k - (q * Lk) // Lq) <= w, Lq, Lk)
    a = analyze(p)
    a.validate()
    assert len(a.pieces) <= most
    assert a.remainder is None
    for i0, rows in a.iter_mask_chunks():
        assert np.array_equal(rows, p.mask_rows(i0, i0 + rows.shape[0]))
    assert {pc.row_step for pc in a.pieces if pc.T > 1} <= {1, Lq // np.gcd(Lq, Lk)}


def test_blocked_union_dilated_block_edges():
    """blocked | dilated: the dilated cells next to a block edge join the block's interval every
    s rows (a quasi-affine offset of period s); corpus mask c08 went from 1396 pieces to 118."""
    L, B, w, s = 2048, 434, 49, 3
    m = P.blocked(B, L).mask() | P.dilated(w, s, L).mask()
    a = analysed_three_ways(np.ascontiguousarray(m))
    assert len(a.pieces) <= 70


def test_affine_masks_are_untouched():
    """Masks that were already affine keep their pieces (no fragments, no residue classes)."""
    for p in (P.window(100, 1000), P.causal_window(50, 1000), P.dilated(16, 4, 1000), P.blocked(128, 1000),
              P.window(64, 600, 1800)):
        a = analyze(p.mask())
        assert a == p.acsr()


def test_switch_off_gives_the_fragmented_pieces(monkeypatch):
    """SPLAT_ANALYSIS_QUASI=0 turns step 4b off (for comparisons): a cross window at rate 1/4
    is then one piece per 4 rows again, as exact."""
    q, k = grid(1024, 256)
    m = np.ascontiguousarray(np.abs(k - q // 4) <= 9)
    on = analyze(m)
    monkeypatch.setenv("SPLAT_ANALYSIS_QUASI", "0")
    off = analyze(m)
    check(on, m), check(off, m)
    assert len(on.pieces) <= 12 < 200 <= len(off.pieces)
