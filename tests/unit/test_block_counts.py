"""The blocks plan's per-block element counts (`splat.tiling.block_plan.block_counts`) against
counting the elements themselves: arithmetic progressions dense (several keys a block) and
sparse (fewer keys than blocks spanned: Sparse Transformer strided rows at long lengths), and
the segments and mask tiles of random layouts' tiles."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from splat import analyze
from splat import testing as T
from splat.tiling import chains as C
from splat.tiling.block_plan import _ap_block_counts, block_counts, tile_elements


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 400), st.integers(1, 60)),
                min_size=1, max_size=20),
       st.sampled_from([32, 64, 128]))
def test_progression_counts_are_the_elements_per_block(aps, block_n):
    first, step, cnt = (np.array(x, dtype=np.int64) for x in zip(*aps))
    nb = int((first + step * (cnt - 1)).max() // block_n + 2)
    want = np.zeros(nb, dtype=np.int64)
    for f, s, c in aps:
        np.add.at(want, (f + s * np.arange(c)) // block_n, 1)
    got = _ap_block_counts(first, step, cnt, block_n, nb)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([T.F("strided", local=40, stride=96), T.F("dilated", w=20, stride=5),
                        T.F("window", w=70), T.F("fixed", block=64, summary=4),
                        T.F("dilated_union", w=12, s1=3, s2=7)]),
       st.integers(0, 2000), st.integers(1, 64), st.sampled_from([1, 2, 96]),
       st.sampled_from([32, 64]))
def test_tile_counts_are_the_tiles_elements_per_block(fam, row0, nrows, R, block_n):
    """A tile's chains (``R``: its row step) as segments: the counts of `block_counts` are
    those of the elements `tile_elements` lists."""
    L = 2304
    acsr = analyze(T.mask_numpy(fam, L))
    nrows = min(nrows, (L - 1 - row0) // R + 1) if row0 < L else 1
    chains: list = []
    for piece in acsr.pieces:
        live = C.LivePiece(piece)
        if live.live:
            C.piece_chains(live, row0, R, nrows, chains)
    segs = [C.chain_segment(ch) for ch in chains]
    _, cols = tile_elements(segs, [], nrows)
    want = np.bincount(cols // block_n, minlength=-(-L // block_n)) if cols.size else \
        np.zeros(-(-L // block_n), dtype=np.int64)
    np.testing.assert_array_equal(block_counts(segs, [], nrows, L, block_n), want)
