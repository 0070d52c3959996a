"""A tile's rows as chains (`splat.tiling.chains`): the segment of a chain holds exactly its
elements, and the three rewrites the tiler applies (stack, transpose, coalesce) keep every
element exactly once and never raise the priced cost, on random chains and on the chains of
random layouts' tiles."""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from splat import analyze
from splat import testing as T
from splat.tiling import chains as C
from splat.tiling import schedule as S

BM, BN = 64, 64


def chain_elements(ch) -> Counter:
    """(row, column) of every element of a chain ``(s, alpha, beta, gamma, delta, rl, rh)``."""
    s, al, be, ga, de, rl, rh = ch
    return Counter((rho, al * rho + be + s * j) for rho in range(rl, rh)
                   for j in range(max(0, ga * rho + de)))


def segment_elements(seg) -> Counter:
    """The same for a segment ``(col0, s, ncols, rl, rh, lo_a, lo_b, hi_a, hi_b)`` as the kernel
    walks it: row ``rho`` attends ``col0 + s*u`` for ``max(lo, 0) <= u < min(hi, ncols)``."""
    col0, s, ncols, rl, rh, lo_a, lo_b, hi_a, hi_b = (int(x) for x in seg)
    out = Counter()
    for rho in range(rl, rh):
        lo, hi = max(lo_a * rho + lo_b, 0), min(hi_a * rho + hi_b, ncols)
        out.update((rho, col0 + s * u) for u in range(lo, hi))
    return out


def total(items, elements) -> Counter:
    out = Counter()
    for it in items:
        out.update(elements(it))
    return out


@st.composite
def chain(draw, nrows: int = BM):
    """A chain whose counts are non-negative on its rows (``alpha`` a multiple of ``s``)."""
    s = draw(st.integers(1, 4))
    rl = draw(st.integers(0, nrows - 1))
    rh = draw(st.integers(rl + 1, min(nrows, rl + 16)))
    al = s * draw(st.integers(-3, 3))
    be = draw(st.integers(0, 200))
    ga = draw(st.integers(-2, 2))
    de = draw(st.integers(0, 12))
    # keep every row's count >= 0 and its first column >= 0
    de = max(de, -ga * rl, -ga * (rh - 1))
    be = max(be, -al * rl, -al * (rh - 1))
    return (s, al, be, ga, de, rl, rh)


@settings(max_examples=300, deadline=None)
@given(chain())
def test_a_chains_segment_holds_exactly_its_elements(ch):
    assert segment_elements(C.chain_segment(ch)) == chain_elements(ch)
    np.testing.assert_array_equal(C.chain_segments([ch])[0], C.chain_segment(ch))


@settings(max_examples=300, deadline=None)
@given(chain(), st.data())
def test_a_merge_is_the_union_of_its_two_chains(a, data):
    """``try_merge(A, B)`` (B starting on the row A ends) is one chain holding both, or None."""
    rows = a[6] - a[5]
    b = data.draw(chain())
    n = b[6] - b[5]
    b = b[:5] + (a[6], a[6] + n)  # B's rows follow A's
    merged = C.try_merge(a, b)
    if merged is not None:
        assert chain_elements(merged) == chain_elements(a) + chain_elements(b)
        assert (merged[5], merged[6]) == (a[5], a[5] + rows + n)


def _check_rewrites(chains: list, nrows: int) -> None:
    cost = C.ChainCost(BM, BN)
    want = total(chains, chain_elements)
    for rewrite in (C.stack, C.transpose):
        out = rewrite(list(chains), nrows, cost)
        assert total(out, chain_elements) == want, rewrite.__name__
        assert cost.total(out, nrows) <= cost.total(chains, nrows) + 1e-9, rewrite.__name__
    segs = C.coalesce(list(chains), nrows, cost)
    assert total(segs, segment_elements) == want
    # a merge is taken only where the merged segment costs no more than the two apart
    assert len(segs) <= len(chains)
    assert S._segments_cost(np.array(segs, dtype=np.int64).reshape(-1, 9), nrows, BM, BN) <= \
        cost.total(chains, nrows) + 1e-6


@settings(max_examples=200, deadline=None)
@given(st.lists(chain(), min_size=1, max_size=24))
def test_rewrites_keep_every_element_of_random_chains(chains):
    _check_rewrites(chains, BM)


def _random_family(rng, name: str):
    """``name`` with random parameters (the ranges a 512-row layout leaves room for)."""
    def i(lo, hi):
        return int(rng.integers(lo, hi + 1))

    params = {
        "window": lambda: dict(w=i(1, 100)),
        "causal_window": lambda: dict(w=i(1, 200)),
        "dilated": lambda: dict(w=i(1, 40), stride=i(2, 7)),
        "strided": lambda: dict(local=i(1, 80), stride=i(2, 90)),
        "fixed": lambda: dict(block=i(16, 128), summary=i(1, 8)),
        "blocked": lambda: dict(block=i(8, 200)),
        "longformer": lambda: dict(w=i(1, 60), n_globals=i(1, 20)),
        "dilated_union": lambda: dict(w=i(4, 20), s1=i(2, 4), s2=i(5, 7)),
    }[name]()
    return T.F(name, **params)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["window", "causal_window", "dilated", "strided", "fixed", "blocked",
                        "longformer", "dilated_union"]),
       st.integers(0, 10_000), st.sampled_from([1, 2, 3]))
def test_rewrites_keep_every_element_of_layout_tiles(family, seed, R):
    """The chains `piece_chains` cuts from a random layout's pieces (a random tile at row step
    ``R``) cover the mask's rows of the tile exactly where it has no remainder, and the
    rewrites keep them."""
    rng = np.random.default_rng(seed)
    L = 512
    mask = T.mask_numpy(_random_family(rng, family), L)
    acsr = analyze(mask)
    nrows = int(rng.integers(1, BM + 1))
    row0 = int(rng.integers(0, L - R * (nrows - 1)))
    chains: list = []
    for piece in acsr.pieces:
        live = C.LivePiece(piece)
        if live.live:
            C.piece_chains(live, row0, R, nrows, chains)
    rows = row0 + R * np.arange(nrows)
    want = Counter((rho, int(col)) for rho, r in enumerate(rows) for col in np.flatnonzero(mask[r]))
    if acsr.remainder is None:
        assert total(chains, chain_elements) == want
    if chains:
        _check_rewrites(chains, nrows)
